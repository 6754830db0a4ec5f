package service

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
)

// TestLifecycle follows one worker through hire, move, leave and rehire against Samba.
func TestLifecycle(t *testing.T) {
	d := newDomain(t, "lifecycle", "Sales", "Eng")
	d.startWriter(t, nil)
	const id = "L1"
	groupDN := "CN=Org - lc-sales," + d.groups
	inOU := func(ou string) func(*orgsyncv1.DesiredUser) {
		return func(u *orgsyncv1.DesiredUser) { u.Attributes["parentDistinguishedName"] = d.ou(ou) }
	}
	var guid, password string
	steps := []struct {
		name    string
		publish []*orgsyncv1.DesiredObject
		check   func(t *testing.T, results map[string]string)
	}{
		{
			name: "pre-hire: created disabled with its initial password",
			publish: []*orgsyncv1.DesiredObject{group("lc-sales", 1), user(id, 1, func(u *orgsyncv1.DesiredUser) {
				inOU("Sales")(u)
				u.AccountEnabled = false
			}), member("lc-sales", orgsyncv1.MemberKind_MEMBER_KIND_USER, id, 1, false)},
			check: func(t *testing.T, results map[string]string) {
				e := d.entry(t, "(employeeID="+id+")", "userAccountControl")
				if diff := cmp.Diff("514", e.Get("userAccountControl")); diff != "" {
					t.Errorf("userAccountControl before the start date (-want +got):\n%s", diff)
				}
				password = <-d.generated
				if err := bind(t, "l1@corp.example.test", password); err == nil {
					t.Error("a disabled account could bind")
				}
			},
		},
		{
			name:    "hire: enabled on the start date",
			publish: []*orgsyncv1.DesiredObject{user(id, 2, inOU("Sales"))},
			check: func(t *testing.T, results map[string]string) {
				e := d.entry(t, "(employeeID="+id+")", "userAccountControl", "sAMAccountName", "userPrincipalName", "title", "department",
					"company", "physicalDeliveryOfficeName", "telephoneNumber", "mail", "displayName", "givenName", "sn", "memberOf")
				want := map[string]string{
					"dn": "CN=Worker L1," + d.ou("Sales"), "userAccountControl": "512", "sAMAccountName": "l1", "userPrincipalName": "l1@corp.example.test",
					"title": "Engineer", "department": "Sales", "company": "Example", "physicalDeliveryOfficeName": "London",
					"telephoneNumber": "+44 20 7946 0000", "mail": "l1@corp.example.test", "displayName": "Worker L1", "givenName": "Worker", "sn": "L1",
					"memberOf": groupDN, "result.object_id": e.GUID(), "result.upn": "l1@corp.example.test",
				}
				got := map[string]string{"dn": e.DN, "result.object_id": results["object_id"], "result.upn": results["upn"]}
				for name := range want {
					if v := e.Get(name); v != "" {
						got[name] = v
					}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("hired user (-want +got):\n%s", diff)
				}
				guid = e.GUID()
				if err := bind(t, "l1@corp.example.test", password); err != nil {
					t.Errorf("the new user cannot bind with its initial password: %v", err)
				}
			},
		},
		{
			name: "mover across OUs, renamed, keeps memberships",
			publish: []*orgsyncv1.DesiredObject{user(id, 3, func(u *orgsyncv1.DesiredUser) {
				inOU("Eng")(u)
				u.DisplayName, u.Department, u.JobTitle = "Lee Mover", "Engineering", ""
			})},
			check: func(t *testing.T, _ map[string]string) {
				e := d.entry(t, "(employeeID="+id+")", "department", "title", "memberOf")
				got := map[string]string{"dn": e.DN, "department": e.Get("department"), "title": e.Get("title"), "memberOf": e.Get("memberOf"), "guid": e.GUID()}
				want := map[string]string{"dn": "CN=Lee Mover," + d.ou("Eng"), "department": "Engineering", "title": "", "memberOf": groupDN, "guid": guid}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("moved user (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "leaver disabled, moved, removed from groups",
			publish: []*orgsyncv1.DesiredObject{
				user(id, 4, func(u *orgsyncv1.DesiredUser) {
					inOU("Eng")(u)
					u.DisplayName, u.AccountEnabled = "Lee Mover", false
					u.EmployeeLeaveDateTime = timestamppb.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
				}),
				member("lc-sales", orgsyncv1.MemberKind_MEMBER_KIND_USER, id, 2, true),
			},
			check: func(t *testing.T, _ map[string]string) {
				e := d.entry(t, "(employeeID="+id+")", "userAccountControl", "memberOf")
				uac, _ := strconv.Atoi(e.Get("userAccountControl"))
				got := map[string]any{"dn": e.DN, "disabled": uac&2 != 0, "memberOf": e.Values("memberOf")}
				want := map[string]any{"dn": "CN=Lee Mover," + d.leavers, "disabled": true, "memberOf": []string(nil)}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("leaver (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "rehire re-enabled and moved back",
			publish: []*orgsyncv1.DesiredObject{
				user(id, 5, func(u *orgsyncv1.DesiredUser) { inOU("Eng")(u); u.DisplayName = "Lee Mover" }),
				member("lc-sales", orgsyncv1.MemberKind_MEMBER_KIND_USER, id, 3, false),
			},
			check: func(t *testing.T, _ map[string]string) {
				e := d.entry(t, "(employeeID="+id+")", "userAccountControl", "memberOf")
				got := map[string]string{"dn": e.DN, "userAccountControl": e.Get("userAccountControl"), "memberOf": e.Get("memberOf"), "guid": e.GUID()}
				want := map[string]string{"dn": "CN=Lee Mover," + d.ou("Eng"), "userAccountControl": "512", "memberOf": groupDN, "guid": guid}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("rehired user (-want +got):\n%s", diff)
				}
			},
		},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			d.publish(t, step.publish...)
			results := d.waitFor(t, 30*time.Second, step.publish...)
			r := results["ad.user."+id]
			step.check(t, map[string]string{"object_id": r.GetObjectId(), "upn": r.GetUserPrincipalName()})
		})
	}
}

// TestGroupsNestingAndIdempotence builds nested groups, then re-applies the same desired state
// with new revisions: nothing is written the second time.
func TestGroupsNestingAndIdempotence(t *testing.T) {
	d := newDomain(t, "groups")
	svc, _ := d.startWriter(t, nil)
	state := func(revision uint64) []*orgsyncv1.DesiredObject {
		return []*orgsyncv1.DesiredObject{
			group("g-parent", revision), group("g-child", revision),
			user("G1", revision, nil), user("G2", revision, func(u *orgsyncv1.DesiredUser) { u.ManagerWorkerId = "G1" }),
			member("g-child", orgsyncv1.MemberKind_MEMBER_KIND_USER, "G1", revision, false),
			member("g-child", orgsyncv1.MemberKind_MEMBER_KIND_USER, "G2", revision, false),
			member("g-parent", orgsyncv1.MemberKind_MEMBER_KIND_GROUP, "g-child", revision, false),
		}
	}
	first := state(1)
	d.publish(t, first...)
	d.waitFor(t, 30*time.Second, first...)

	childDN, parentDN := "CN=Org - g-child,"+d.groups, "CN=Org - g-parent,"+d.groups
	got := map[string]any{
		"parent members": d.members(t, parentDN),
		"child members":  len(d.members(t, childDN)),
		"child type":     d.entry(t, "(sAMAccountName=g-child)", "groupType").Get("groupType"),
		"G2 manager":     d.entry(t, "(employeeID=G2)", "manager").Get("manager"),
	}
	want := map[string]any{
		"parent members": []string{childDN}, "child members": 2, "child type": "-2147483646",
		"G2 manager": "CN=Worker G1," + d.users,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}

	writes := func() int64 {
		ops := svc.Operations()
		return ops["add"] + ops["modify"] + ops["modifydn"] + ops["delete"]
	}
	before := writes()
	second := state(2)
	d.publish(t, second...)
	results := d.waitFor(t, 30*time.Second, second...)
	for path, r := range results {
		// Memberships are re-sent (an existing member is success, LDAP 20/68); users and groups
		// are compared first and left alone.
		if r.GetKind() != orgsyncv1.ObjectKind_OBJECT_KIND_MEMBERSHIP && r.GetOutcome() != orgsyncv1.Outcome_OUTCOME_UNCHANGED {
			t.Errorf("%s re-applied: %s %v", path, r.GetOutcome(), r.GetOperations())
		}
	}
	if got, want := writes()-before, int64(1); got > want {
		// The one write: g-parent's single membership is sent as is (LDAP 68 from Samba: success).
		t.Errorf("re-applying the same state made %d writes, want at most %d", got, want)
	}
	if diff := cmp.Diff([]string{childDN}, d.members(t, parentDN)); diff != "" {
		t.Errorf("parent members after re-apply (-want +got):\n%s", diff)
	}
}

// bind binds as a user over LDAPS, with the test CA.
func bind(t *testing.T, principal, password string) error {
	t.Helper()
	client, err := ldap.New(ldap.Config{URL: dc.URL, BindDN: principal, BindPassword: password, CAFile: dc.CAFile}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	return client.Ping(t.Context())
}

// TestManagerLinkFollowsHR: the manager attribute is set, put back by drift after an edit by hand,
// and taken away when HR no longer names a manager. (Worker ids are unique across the package's
// tests: they share one AD domain, where sAMAccountName and userPrincipalName are unique.)
func TestManagerLinkFollowsHR(t *testing.T) {
	d := newDomain(t, "managers")
	svc, _ := d.startWriter(t, nil)
	withManager := func(id string) func(*orgsyncv1.DesiredUser) {
		return func(u *orgsyncv1.DesiredUser) { u.ManagerWorkerId = id }
	}
	objs := []*orgsyncv1.DesiredObject{user("HM1", 1, nil), user("HM2", 1, nil), user("HR1", 1, withManager("HM1"))}
	d.publish(t, objs...)
	d.waitFor(t, 30*time.Second, objs...)
	m1, m2 := d.entry(t, "(employeeID=HM1)").DN, d.entry(t, "(employeeID=HM2)").DN
	manager := func() string { return d.entry(t, "(employeeID=HR1)", "manager").Get("manager") }
	if got := manager(); !ldap.SameDN(got, m1) {
		t.Fatalf("manager of HR1 = %q, want %q", got, m1)
	}

	if _, err := svc.Reconcile(t.Context()); err != nil { // the baseline pass
		t.Fatal(err)
	}
	reportDN := d.entry(t, "(employeeID=HR1)").DN
	if err := d.admin.Modify(t.Context(), reportDN, []ldap.Change{{Op: ldap.Replace, Attr: "manager", Values: []string{m2}}}); err != nil {
		t.Fatal(err)
	}
	found, err := svc.Reconcile(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := manager(); found.Changed != 1 || !ldap.SameDN(got, m1) {
		t.Errorf("after a drift pass: %d found, manager of HR1 = %q; want 1 found and %q", found.Changed, got, m1)
	}

	unmanaged := user("HR1", 2, nil)
	d.publish(t, unmanaged)
	d.waitFor(t, 30*time.Second, unmanaged)
	if got := manager(); got != "" {
		t.Errorf("manager of HR1 after HR removed it = %q, want none", got)
	}
}
