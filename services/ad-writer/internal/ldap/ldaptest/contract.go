package ldaptest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
)

// Directory is the writer's port (writer.Directory), restated here so that the suite does not
// import the writer.
type Directory interface {
	Search(ctx context.Context, base, filter string, attrs []string) ([]*ldap.Entry, error)
	AddEntry(ctx context.Context, dn string, attrs map[string][]string) error
	Modify(ctx context.Context, dn string, changes []ldap.Change) error
	ModifyDN(ctx context.Context, dn, newRDN, newSuperior string) error
	DeleteEntry(ctx context.Context, dn string) error
	HighestUSN(ctx context.Context) (int64, error)
	Members(ctx context.Context, groupDN string) ([]string, error)
}

// Result codes where AD and Samba answer differently; the writer accepts either.
const (
	// alreadyMember: adding a member value already there (AD 20, Samba 68).
	alreadyMemberAD, alreadyMemberSamba = ldap.ResultValueExists, ldap.ResultEntryExists
	// notMember: removing a member value that is not there, or by a DN that names no object any
	// more (AD 16, Samba 53).
	notMemberAD, notMemberSamba = ldap.ResultNoSuchAttribute, ldap.ResultUnwillingToPerfom
)

// The writer's own search filters (internal/writer), with %s for the escaped value.
const (
	userByEmployeeID = "(&(objectCategory=person)(objectClass=user)(employeeID=%s))"
	groupBySAM       = "(&(objectClass=group)(sAMAccountName=%s))"
	changedSince     = "(&(|(objectClass=user)(objectClass=group))(uSNChanged>=%d))"
)

// largeGroup exceeds AD's MaxValRange (1,500 values of an attribute per read), beyond which
// Client reads a group's members in ranges. Samba hands out every value at once.
const largeGroup = 1501

// RunContract checks that a Directory behaves as Active Directory (Samba AD as the reference)
// does in everything ad-writer relies on. newDirectory returns the directory and a new, empty OU
// in it for one subtest's objects; the users and groups in it must be gone when the subtest ends,
// because their names (sAMAccountName, userPrincipalName) are unique in the domain and the next
// subtest uses them again. Subtests run one after the other.
func RunContract(t *testing.T, newDirectory func(t *testing.T) (dir Directory, ou string)) {
	t.Run("a user is added disabled, then gets its password and is enabled in one modify", func(t *testing.T) {
		dir, ou := newDirectory(t)
		ctx := t.Context()
		dn := addUser(t, dir, ou, "Jane Doe", "jdoe", "E1")
		read := []string{"objectGUID", "userAccountControl", "msDS-KeyVersionNumber", "unicodePwd"}
		created := readOne(t, dir, dn, "(objectClass=user)", read)
		if created.GUID() == "" {
			t.Errorf("objectGUID of a new user = %q, want 16 bytes", created.Get("objectGUID"))
		}
		// msDS-KeyVersionNumber 1 is how the writer tells an account whose create stopped
		// before its password.
		want := map[string]string{"userAccountControl": "514", "msDS-KeyVersionNumber": "1", "unicodePwd": ""}
		if diff := cmp.Diff(want, pick(created, want)); diff != "" {
			t.Errorf("new user (-want +got):\n%s", diff)
		}

		err := dir.Modify(ctx, dn, []ldap.Change{
			{Op: ldap.Replace, Attr: "unicodePwd", Values: []string{ldap.UnicodePwd("short")}, Secret: true},
			{Op: ldap.Replace, Attr: "userAccountControl", Values: []string{"512"}},
		})
		checkCode(t, "a password the domain's policy refuses", err, ldap.ClassInvalid, goldap.LDAPResultConstraintViolation)
		if got := readOne(t, dir, dn, "(objectClass=user)", read); got.Get("userAccountControl") != "514" {
			t.Errorf("after a refused modify, userAccountControl = %s, want 514: a modify is all or nothing", got.Get("userAccountControl"))
		}

		if err := dir.Modify(ctx, dn, []ldap.Change{
			{Op: ldap.Replace, Attr: "unicodePwd", Values: []string{ldap.UnicodePwd("Contract-Pa55word!x")}, Secret: true},
			{Op: ldap.Replace, Attr: "userAccountControl", Values: []string{"512"}},
			{Op: ldap.Replace, Attr: "pwdLastSet", Values: []string{"0"}},
		}); err != nil {
			t.Fatal(err)
		}
		enabled := readOne(t, dir, dn, "(objectClass=user)", read)
		want = map[string]string{"userAccountControl": "512", "msDS-KeyVersionNumber": "2", "unicodePwd": ""}
		if diff := cmp.Diff(want, pick(enabled, want)); diff != "" {
			t.Errorf("after the password (-want +got):\n%s", diff)
		}
		if enabled.GUID() != created.GUID() {
			t.Errorf("objectGUID changed from %s to %s", created.GUID(), enabled.GUID())
		}
	})

	t.Run("the writer's lookups find exactly what they name, with the attributes asked for", func(t *testing.T) {
		dir, ou := newDirectory(t)
		ctx := t.Context()
		jane := addUser(t, dir, ou, "Jane Doe", "jdoe", "E1", "title", "Engineer")
		john := addUser(t, dir, ou, "John Roe", "jroe", "E2")
		sales := addGroup(t, dir, ou, "Org - Sales", "sales")

		tests := []struct {
			name, base, filter string
			want               []string
		}{
			{"a user by employeeID", ou, fmt.Sprintf(userByEmployeeID, "E1"), []string{jane}},
			{"no user with that employeeID", ou, fmt.Sprintf(userByEmployeeID, "E9"), nil},
			{"a group by sAMAccountName", ou, fmt.Sprintf(groupBySAM, "sales"), []string{sales}},
			{"a user is not a group", ou, fmt.Sprintf(groupBySAM, "jdoe"), nil},
			{"an entry by objectGUID", ou, guidFilter(t, dir, john), []string{john}},
			{"users and groups changed since USN 1, not the OU", ou, fmt.Sprintf(changedSince, 1), []string{jane, john, sales}},
			{"read back at its DN", jane, "(objectClass=user)", []string{jane}},
			{"a user is not read back as a group", jane, "(objectClass=group)", nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				entries, err := dir.Search(ctx, tt.base, tt.filter, []string{"objectGUID"})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, dns(entries), sameDNs()...); diff != "" {
					t.Errorf("Search(%s) (-want +got):\n%s", tt.filter, diff)
				}
			})
		}

		entries, err := dir.Search(ctx, ou, fmt.Sprintf(userByEmployeeID, "E1"), []string{"employeeID", "sAMAccountName"})
		if err != nil || len(entries) != 1 {
			t.Fatalf("Search = %v, %v", entries, err)
		}
		got := map[string]string{"employeeID": entries[0].Get("employeeID"), "sAMAccountName": entries[0].Get("sAMAccountName"),
			"title": entries[0].Get("title"), "objectGUID": entries[0].Get("objectGUID")}
		want := map[string]string{"employeeID": "E1", "sAMAccountName": "jdoe", "title": "", "objectGUID": ""}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("attributes of a search for employeeID and sAMAccountName (-want +got):\n%s", diff)
		}

		_, err = dir.Search(ctx, "OU=Missing,"+ou, "(objectClass=user)", []string{"objectGUID"})
		checkCode(t, "a search under a base that does not exist", err, ldap.ClassNotFound, ldap.ResultNoSuchObject)
	})

	t.Run("a DN, a sAMAccountName or a userPrincipalName already taken is refused as existing", func(t *testing.T) {
		dir, ou := newDirectory(t)
		jane := addUser(t, dir, ou, "Jane Doe", "jdoe", "E1", "userPrincipalName", "jane.doe@corp.example.test")
		tests := []struct {
			name, dn string
			attrs    map[string][]string
			wantCode uint16
			// wantProperty is the attribute the error names ("": not checked).
			wantProperty string
		}{
			{name: "the same DN", dn: jane, attrs: userAttrs("jdoe2", "E2"), wantCode: ldap.ResultEntryExists},
			{name: "the same DN in other case", dn: strings.ToLower(jane), attrs: userAttrs("jdoe3", "E3"), wantCode: ldap.ResultEntryExists},
			{name: "the same sAMAccountName", dn: "CN=Jane Doe (2)," + ou, attrs: userAttrs("jdoe", "E4"),
				wantCode: ldap.ResultEntryExists, wantProperty: "sAMAccountName"},
			{name: "the same sAMAccountName in other case", dn: "CN=Jane Doe (3)," + ou, attrs: userAttrs("JDoe", "E5"),
				wantCode: ldap.ResultEntryExists, wantProperty: "sAMAccountName"},
			{name: "a group with a user's sAMAccountName", dn: "CN=jdoe," + ou, attrs: groupAttrs("jdoe"),
				wantCode: ldap.ResultEntryExists, wantProperty: "sAMAccountName"},
			// AD and Samba answer a unique value held by another object with 19, not 68.
			{name: "the same userPrincipalName", dn: "CN=Jane Doe (4)," + ou, attrs: userAttrs("jdoe4", "E6", "userPrincipalName", "jane.doe@corp.example.test"),
				wantCode: goldap.LDAPResultConstraintViolation, wantProperty: "userPrincipalName"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := dir.AddEntry(t.Context(), tt.dn, tt.attrs)
				checkCode(t, "add", err, ldap.ClassExists, tt.wantCode)
				if got := ldap.PropertyOf(err); tt.wantProperty != "" && got != tt.wantProperty {
					t.Errorf("the error names attribute %q, want %q", got, tt.wantProperty)
				}
			})
		}
	})

	t.Run("an entry whose parent does not exist is refused as not found", func(t *testing.T) {
		dir, ou := newDirectory(t)
		err := dir.AddEntry(t.Context(), "CN=Jane Doe,OU=Missing,"+ou, userAttrs("jdoe", "E1"))
		checkCode(t, "add under a missing OU", err, ldap.ClassNotFound, ldap.ResultNoSuchObject)
	})

	t.Run("attributes are replaced and deleted, a modify is all or nothing", func(t *testing.T) {
		dir, ou := newDirectory(t)
		ctx := t.Context()
		jane := addUser(t, dir, ou, "Jane Doe", "jdoe", "E1", "title", "Engineer", "department", "Sales")
		if err := dir.Modify(ctx, jane, []ldap.Change{
			{Op: ldap.Replace, Attr: "title", Values: []string{"Lead"}},
			{Op: ldap.Delete, Attr: "department"},
		}); err != nil {
			t.Fatal(err)
		}
		read := []string{"title", "department", "description"}
		want := map[string]string{"title": "Lead", "department": "", "description": ""}
		if diff := cmp.Diff(want, pick(readOne(t, dir, jane, "(objectClass=user)", read), want)); diff != "" {
			t.Errorf("after the modify (-want +got):\n%s", diff)
		}

		// The drift reconcile deletes what it read a moment ago; someone may have deleted it since.
		err := dir.Modify(ctx, jane, []ldap.Change{
			{Op: ldap.Replace, Attr: "title", Values: []string{"Director"}},
			{Op: ldap.Delete, Attr: "department"},
		})
		checkCode(t, "deleting an attribute that has no value", err, ldap.ClassNotFound, ldap.ResultNoSuchAttribute)
		if diff := cmp.Diff(want, pick(readOne(t, dir, jane, "(objectClass=user)", read), want)); diff != "" {
			t.Errorf("after a refused modify (-want +got):\n%s", diff)
		}

		err = dir.Modify(ctx, "CN=Nobody,"+ou, []ldap.Change{{Op: ldap.Replace, Attr: "title", Values: []string{"Lead"}}})
		checkCode(t, "a modify of an entry that does not exist", err, ldap.ClassNotFound, ldap.ResultNoSuchObject)

		err = dir.Modify(ctx, jane, []ldap.Change{{Op: ldap.Replace, Attr: "sAMAccountName", Values: []string{"jroe"}}})
		if err != nil {
			t.Fatalf("renaming the account: %v", err)
		}
		addUser(t, dir, ou, "Jane Doe (2)", "jdoe", "E2") // the old name is free again
	})

	t.Run("manager names an existing user and follows it", func(t *testing.T) {
		dir, ou := newDirectory(t)
		ctx := t.Context()
		boss := addUser(t, dir, ou, "Boss", "boss", "E1")
		jane := addUser(t, dir, ou, "Jane Doe", "jdoe", "E2")
		// "000020B5: Referenced object not found": a constraint, not a missing entry — a manager DN
		// gone stale (the manager moved meanwhile) is refused as invalid.
		err := dir.Modify(ctx, jane, []ldap.Change{{Op: ldap.Replace, Attr: "manager", Values: []string{"CN=Nobody," + ou}}})
		checkCode(t, "a manager that does not exist", err, ldap.ClassInvalid, goldap.LDAPResultConstraintViolation)
		if err := dir.Modify(ctx, jane, []ldap.Change{{Op: ldap.Replace, Attr: "manager", Values: []string{boss}}}); err != nil {
			t.Fatal(err)
		}
		if err := dir.ModifyDN(ctx, boss, "CN=Big Boss", ""); err != nil {
			t.Fatal(err)
		}
		if got := readOne(t, dir, jane, "(objectClass=user)", []string{"manager"}).Get("manager"); !ldap.SameDN(got, "CN=Big Boss,"+ou) {
			t.Errorf("manager after the manager's rename = %q, want CN=Big Boss,%s", got, ou)
		}
		if err := dir.Modify(ctx, jane, []ldap.Change{{Op: ldap.Delete, Attr: "manager"}}); err != nil {
			t.Fatal(err)
		}
		if got := readOne(t, dir, jane, "(objectClass=user)", []string{"manager"}).Get("manager"); got != "" {
			t.Errorf("manager after its delete = %q", got)
		}
	})

	t.Run("members are added, refused when present or unknown, and removed", func(t *testing.T) {
		dir, ou := newDirectory(t)
		ctx := t.Context()
		group := addGroup(t, dir, ou, "Org - Sales", "sales")
		nested := addGroup(t, dir, ou, "Org - Sales EMEA", "sales-emea")
		jane := addUser(t, dir, ou, "Jane Doe", "jdoe", "E1")
		john := addUser(t, dir, ou, "John Roe", "jroe", "E2")
		jim := addUser(t, dir, ou, "Jim Poe", "jpoe", "E3")
		other := addOU(t, dir, ou, "Moved")
		member := func(op ldap.ChangeOp, values ...string) error {
			return dir.Modify(ctx, group, []ldap.Change{{Op: op, Attr: "member", Values: values}})
		}
		checkMembers := func(step string, want ...string) {
			t.Helper()
			got, err := dir.Members(ctx, group)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, sameDNs()...); diff != "" {
				t.Errorf("members after %s (-want +got):\n%s", step, diff)
			}
		}

		if err := member(ldap.Add, jane, john, nested); err != nil {
			t.Fatal(err)
		}
		checkMembers("adding two users and a group", jane, john, nested)
		checkCode(t, "adding a member again", member(ldap.Add, jane), ldap.ClassExists, alreadyMemberAD, alreadyMemberSamba)
		checkCode(t, "adding a chunk with one member already there", member(ldap.Add, jim, john), ldap.ClassExists, alreadyMemberAD, alreadyMemberSamba)
		checkMembers("refused adds (all or nothing)", jane, john, nested)
		checkCode(t, "adding a DN that names no object", member(ldap.Add, "CN=Nobody,"+ou), ldap.ClassNotFound, ldap.ResultNoSuchObject)

		if err := member(ldap.Delete, john); err != nil {
			t.Fatal(err)
		}
		checkMembers("removing a member", jane, nested)
		checkCode(t, "removing a member that is not there", member(ldap.Delete, john), ldap.ClassUnknown, notMemberAD, notMemberSamba)

		// Another replica moves a member: member values follow it, and a removal by the DN this
		// replica cached is answered as for a value that is not there.
		if err := dir.ModifyDN(ctx, jane, "CN=Jane Doe", other); err != nil {
			t.Fatal(err)
		}
		moved := "CN=Jane Doe," + other
		checkMembers("the member moved", moved, nested)
		checkCode(t, "removing a member by its DN before it moved", member(ldap.Delete, jane), ldap.ClassUnknown, notMemberAD, notMemberSamba)
		if err := member(ldap.Delete, moved); err != nil {
			t.Fatal(err)
		}
		checkMembers("removing it by its current DN", nested)

		if got, err := dir.Members(ctx, "CN=Nobody,"+ou); err != nil || len(got) != 0 {
			t.Errorf("members of a group that does not exist = %v, %v; want none", got, err)
		}
	})

	t.Run("a large group is read whole", func(t *testing.T) {
		dir, ou := newDirectory(t)
		ctx := t.Context()
		group := addGroup(t, dir, ou, "Org - Big", "big")
		want := make([]string, largeGroup)
		for i := range want {
			want[i] = fmt.Sprintf("CN=Contact %04d,%s", i, ou)
			if err := dir.AddEntry(ctx, want[i], map[string][]string{"objectClass": {"top", "contact"}}); err != nil {
				t.Fatal(err)
			}
		}
		for start := 0; start < len(want); start += 500 {
			chunk := want[start:min(start+500, len(want))]
			if err := dir.Modify(ctx, group, []ldap.Change{{Op: ldap.Add, Attr: "member", Values: chunk}}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := dir.Members(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, sameDNs()...); diff != "" {
			t.Errorf("members of a group of %d (-want +got):\n%s", largeGroup, diff)
		}
	})

	t.Run("ModifyDN renames and moves, keeping the object", func(t *testing.T) {
		dir, ou := newDirectory(t)
		ctx := t.Context()
		users, leavers := addOU(t, dir, ou, "Users"), addOU(t, dir, ou, "Leavers")
		jane := addUser(t, dir, users, "Jane Doe", "jdoe", "E1")
		addUser(t, dir, users, "Jane Smith", "jsmith", "E2")
		guid := readOne(t, dir, jane, "(objectClass=user)", []string{"objectGUID"}).GUID()

		steps := []struct {
			name, rdn, parent, want string
		}{
			{"renamed in its OU", "CN=Jane Roe", "", "CN=Jane Roe," + users},
			{"moved, keeping its name", "CN=Jane Roe", leavers, "CN=Jane Roe," + leavers},
			{"moved back and renamed at once", "CN=Jane Doe", users, "CN=Jane Doe," + users},
			{"a name with a comma and an equals sign", "CN=" + ldap.EscapeRDNValue("Doe, Jane=J"), "", "CN=" + ldap.EscapeRDNValue("Doe, Jane=J") + "," + users},
		}
		current := jane
		for _, step := range steps {
			if err := dir.ModifyDN(ctx, current, step.rdn, step.parent); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
			entries, err := dir.Search(ctx, ou, fmt.Sprintf(userByEmployeeID, "E1"), []string{"objectGUID"})
			if err != nil || len(entries) != 1 {
				t.Fatalf("%s: Search = %v, %v", step.name, entries, err)
			}
			if !ldap.SameDN(entries[0].DN, step.want) || entries[0].GUID() != guid {
				t.Errorf("%s: at %s with objectGUID %s, want %s, %s", step.name, entries[0].DN, entries[0].GUID(), step.want, guid)
			}
			if _, err := dir.Search(ctx, current, "(objectClass=user)", []string{"objectGUID"}); ldap.Code(err) != ldap.ResultNoSuchObject {
				t.Errorf("%s: the old DN %s answers %v, want result 32", step.name, current, err)
			}
			current = entries[0].DN
		}

		checkCode(t, "renaming onto another entry's DN", dir.ModifyDN(ctx, current, "CN=Jane Smith", ""), ldap.ClassExists, ldap.ResultEntryExists)
		checkCode(t, "moving an entry that does not exist", dir.ModifyDN(ctx, "CN=Nobody,"+users, "CN=Nobody", leavers), ldap.ClassNotFound, ldap.ResultNoSuchObject)
		// AD answers 32; Samba 80 (other: "00002095: objectclass: Cannot rename ..., parent does not
		// exist!"), which Client classifies as not found too: a missing OU, not a DC that cannot serve.
		checkCode(t, "moving under an OU that does not exist", dir.ModifyDN(ctx, current, "CN=Jane Doe", "OU=Missing,"+ou),
			ldap.ClassNotFound, ldap.ResultNoSuchObject, goldap.LDAPResultOther)
	})

	t.Run("every write raises HighestUSN, and uSNChanged finds what changed since", func(t *testing.T) {
		dir, ou := newDirectory(t)
		ctx := t.Context()
		jane := addUser(t, dir, ou, "Jane Doe", "jdoe", "E1")
		john := addUser(t, dir, ou, "John Roe", "jroe", "E2")
		group := addGroup(t, dir, ou, "Org - Sales", "sales")
		other := addOU(t, dir, ou, "Moved")
		writes := []struct {
			name  string
			write func() error
			want  []string
		}{
			{"a modify", func() error {
				return dir.Modify(ctx, jane, []ldap.Change{{Op: ldap.Replace, Attr: "title", Values: []string{"Lead"}}})
			}, []string{jane}},
			{"a member added", func() error {
				return dir.Modify(ctx, group, []ldap.Change{{Op: ldap.Add, Attr: "member", Values: []string{john}}})
			}, []string{group}},
			{"a move", func() error { return dir.ModifyDN(ctx, jane, "CN=Jane Doe", other) }, []string{"CN=Jane Doe," + other}},
			{"an add", func() error { return dir.AddEntry(ctx, "CN=Jim Poe,"+ou, userAttrs("jpoe", "E3")) }, []string{"CN=Jim Poe," + ou}},
		}
		for _, w := range writes {
			before, err := dir.HighestUSN(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.write(); err != nil {
				t.Fatalf("%s: %v", w.name, err)
			}
			after, err := dir.HighestUSN(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if after <= before {
				t.Errorf("%s: HighestUSN %d, then %d; want it raised", w.name, before, after)
			}
			entries, err := dir.Search(ctx, ou, fmt.Sprintf(changedSince, before+1), []string{"objectGUID"})
			if err != nil {
				t.Fatal(err)
			}
			// A DC may count a linked value's change on both ends; what was written must be there.
			for _, dn := range w.want {
				if !slices.ContainsFunc(dns(entries), func(got string) bool { return ldap.SameDN(got, dn) }) {
					t.Errorf("%s: changed since USN %d: %v, want %s among them", w.name, before+1, dns(entries), dn)
				}
			}
		}
	})

	t.Run("a deleted entry leaves the groups it was a member of", func(t *testing.T) {
		dir, ou := newDirectory(t)
		ctx := t.Context()
		parent := addGroup(t, dir, ou, "Org - Sales", "sales")
		child := addGroup(t, dir, ou, "Org - Sales EMEA", "sales-emea")
		jane := addUser(t, dir, ou, "Jane Doe", "jdoe", "E1")
		if err := dir.Modify(ctx, parent, []ldap.Change{{Op: ldap.Add, Attr: "member", Values: []string{child, jane}}}); err != nil {
			t.Fatal(err)
		}
		if err := dir.DeleteEntry(ctx, child); err != nil {
			t.Fatal(err)
		}
		got, err := dir.Members(ctx, parent)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{jane}, got, sameDNs()...); diff != "" {
			t.Errorf("members after the nested group's delete (-want +got):\n%s", diff)
		}
		checkCode(t, "deleting it again", dir.DeleteEntry(ctx, child), ldap.ClassNotFound, ldap.ResultNoSuchObject)
		users := addOU(t, dir, ou, "Users")
		addUser(t, dir, users, "John Roe", "jroe", "E2")
		checkCode(t, "deleting an OU that holds an entry", dir.DeleteEntry(ctx, users), ldap.ClassInvalid, goldap.LDAPResultNotAllowedOnNonLeaf)
	})
}

func userAttrs(sam, employeeID string, more ...string) map[string][]string {
	attrs := map[string][]string{
		"objectClass":        {"top", "person", "organizationalPerson", "user"},
		"userAccountControl": {"514"},
		"sAMAccountName":     {sam},
		"employeeID":         {employeeID},
		"adminDescription":   {"managed-by:orgsync"},
	}
	for i := 0; i+1 < len(more); i += 2 {
		attrs[more[i]] = []string{more[i+1]}
	}
	return attrs
}

func groupAttrs(sam string) map[string][]string {
	return map[string][]string{
		"objectClass": {"top", "group"}, "sAMAccountName": {sam}, "groupType": {"-2147483646"},
		"adminDescription": {"managed-by:orgsync"},
	}
}

// addUser adds a user as the writer does (disabled, no password) and returns its DN; more are
// further attribute name and value pairs.
func addUser(t *testing.T, dir Directory, parent, cn, sam, employeeID string, more ...string) string {
	t.Helper()
	dn := "CN=" + ldap.EscapeRDNValue(cn) + "," + parent
	if err := dir.AddEntry(t.Context(), dn, userAttrs(sam, employeeID, more...)); err != nil {
		t.Fatalf("adding %s: %v", dn, err)
	}
	return dn
}

// addGroup adds a global security group as the writer does and returns its DN.
func addGroup(t *testing.T, dir Directory, parent, cn, sam string) string {
	t.Helper()
	dn := "CN=" + ldap.EscapeRDNValue(cn) + "," + parent
	if err := dir.AddEntry(t.Context(), dn, groupAttrs(sam)); err != nil {
		t.Fatalf("adding %s: %v", dn, err)
	}
	return dn
}

func addOU(t *testing.T, dir Directory, parent, name string) string {
	t.Helper()
	dn := "OU=" + ldap.EscapeRDNValue(name) + "," + parent
	if err := dir.AddEntry(t.Context(), dn, map[string][]string{"objectClass": {"top", "organizationalUnit"}}); err != nil {
		t.Fatalf("adding %s: %v", dn, err)
	}
	return dn
}

// readOne reads the entry at dn as the writer reads back what it wrote.
func readOne(t *testing.T, dir Directory, dn, filter string, attrs []string) *ldap.Entry {
	t.Helper()
	entries, err := dir.Search(t.Context(), dn, filter, attrs)
	if err != nil || len(entries) != 1 {
		t.Fatalf("reading %s: %v, %v", dn, entries, err)
	}
	return entries[0]
}

func guidFilter(t *testing.T, dir Directory, dn string) string {
	t.Helper()
	filter, err := ldap.GUIDFilter(readOne(t, dir, dn, "(objectClass=*)", []string{"objectGUID"}).GUID())
	if err != nil {
		t.Fatal(err)
	}
	return filter
}

// pick returns the first value of each attribute named in want ("" when absent).
func pick(e *ldap.Entry, want map[string]string) map[string]string {
	got := map[string]string{}
	for name := range want {
		got[name] = e.Get(name)
	}
	return got
}

func dns(entries []*ldap.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.DN)
	}
	return out
}

// sameDNs compares lists of DNs as sets of entries: in any order, by ldap.SameDN.
func sameDNs() []cmp.Option {
	return []cmp.Option{
		cmpopts.EquateEmpty(),
		cmpopts.SortSlices(func(a, b string) bool { return strings.ToLower(a) < strings.ToLower(b) }),
		cmp.Comparer(ldap.SameDN),
	}
}

// checkCode checks that err is an LDAP answer with one of codes, of the class the writer acts on
// (ldap.ClassUnknown: any class).
func checkCode(t *testing.T, what string, err error, class ldap.Class, codes ...uint16) {
	t.Helper()
	if !slices.Contains(codes, ldap.Code(err)) {
		want := make([]string, len(codes))
		for i, code := range codes {
			want[i] = fmt.Sprint(code)
		}
		t.Errorf("%s: %v; want result %s", what, err, strings.Join(want, " or "))
		return
	}
	if class != ldap.ClassUnknown && ldap.ClassOf(err) != class {
		t.Errorf("%s: %v is of class %d, want %d", what, err, ldap.ClassOf(err), class)
	}
}
