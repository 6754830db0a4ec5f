package harness

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

const testBaseDN = "DC=corp,DC=example,DC=test"

// adDesiredUser is a desired AD user placed in the OU of unit (a leaver when leaver is set).
func adDesiredUser(layout ADLayout, worker, manager, unit string, leaver bool) *orgsyncv1.DesiredObject {
	u := &orgsyncv1.DesiredUser{
		WorkerId: worker, EmployeeId: worker, AccountEnabled: !leaver, DisplayName: "Name " + worker, GivenName: "Name", Surname: worker,
		UserPrincipalName: strings.ToLower(worker) + "@corp.example.test", MailNickname: strings.ToLower(worker), JobTitle: "Engineer",
		Department: "Sales", CompanyName: "Example Ltd", EmployeeType: "Employee", ManagerWorkerId: manager,
		Attributes: map[string]string{"sAMAccountName": "s" + strings.ToLower(worker), "parentDistinguishedName": "OU=" + unit + "," + layout.Staff},
	}
	if leaver {
		u.EmployeeLeaveDateTime = timestamppb.Now()
	}
	return &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_AD, Key: worker, Object: &orgsyncv1.DesiredObject_User{User: u}}
}

func adDesiredGroup(key, name string) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_AD, Key: key, Object: &orgsyncv1.DesiredObject_Group{Group: &orgsyncv1.DesiredGroup{
		GroupKey: key, DisplayName: name, Description: "Members of " + name,
	}}}
}

func adDesiredMember(groupKey string, kind orgsyncv1.MemberKind, memberKey string) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_AD, Key: groupKey + "/" + memberKey, Object: &orgsyncv1.DesiredObject_Membership{
		Membership: &orgsyncv1.DesiredMembership{GroupKey: groupKey, MemberKind: kind, MemberKey: memberKey},
	}}
}

// adEntryOf is the entry ad-writer makes of a desired user: at dn, with its attributes, state,
// marker and manager.
func adEntryOf(layout ADLayout, obj *orgsyncv1.DesiredObject, dn, managerDN string) ADEntry {
	e := ADEntry{DN: dn, Attrs: map[string][]string{}}
	for name, value := range adUserAttributes(obj.GetUser()) {
		if value != "" {
			e.Attrs[strings.ToLower(name)] = []string{value}
		}
	}
	e.Attrs["useraccountcontrol"] = []string{"512"}
	if !obj.GetUser().GetAccountEnabled() {
		e.Attrs["useraccountcontrol"] = []string{"514"}
	}
	e.Attrs[strings.ToLower(layout.MarkerAttribute)] = []string{layout.MarkerValue}
	e.Attrs["msds-keyversionnumber"] = []string{"2"} // added, then given its password
	if managerDN != "" {
		e.Attrs["manager"] = []string{managerDN}
	}
	return e
}

func adGroupEntry(layout ADLayout, key, name string, members ...string) ADEntry {
	return ADEntry{DN: "CN=" + name + "," + layout.Groups, Members: members, Attrs: map[string][]string{
		"samaccountname": {key}, "displayname": {name}, "description": {"Members of " + name}, "grouptype": {groupTypeGlobalSecurity},
		strings.ToLower(layout.MarkerAttribute): {layout.MarkerValue},
	}}
}

func TestCompareAD(t *testing.T) {
	layout := NewADLayout(testBaseDN, []string{"Sales 1", "Legal 2"})
	sales := "OU=Sales 1," + layout.Staff
	e1, e2, e3 := adDesiredUser(layout, "E1", "", "Sales 1", false), adDesiredUser(layout, "E2", "E1", "Sales 1", false), adDesiredUser(layout, "E3", "E1", "Legal 2", true)
	desired := []*orgsyncv1.DesiredObject{
		e1, e2, e3,
		adDesiredGroup("unit-u1", "Org - Sales 1"),
		adDesiredGroup("all-u1", "Org - Sales 1 (all)"),
		adDesiredMember("unit-u1", orgsyncv1.MemberKind_MEMBER_KIND_USER, "E1"),
		adDesiredMember("unit-u1", orgsyncv1.MemberKind_MEMBER_KIND_USER, "E2"),
		adDesiredMember("all-u1", orgsyncv1.MemberKind_MEMBER_KIND_GROUP, "unit-u1"),
	}
	dn1, dn2, dn3 := "CN=Name E1,"+sales, "CN=Name E2,"+sales, "CN=Name E3,"+layout.Leavers
	unitDN := "CN=Org - Sales 1," + layout.Groups
	converged := func() ADSnapshot {
		return ADSnapshot{
			Users: []ADEntry{adEntryOf(layout, e1, dn1, ""), adEntryOf(layout, e2, dn2, dn1), adEntryOf(layout, e3, dn3, dn1)},
			Groups: []ADEntry{
				adGroupEntry(layout, "unit-u1", "Org - Sales 1", dn1, dn2),
				adGroupEntry(layout, "all-u1", "Org - Sales 1 (all)", unitDN),
			},
		}
	}
	tests := []struct {
		name        string
		change      func(*ADSnapshot)
		want        []string
		wantRetired int
	}{
		{name: "converged", change: func(*ADSnapshot) {}},
		{name: "DNs differing only in case and spacing", change: func(s *ADSnapshot) {
			s.Groups[0].Members = []string{strings.ToUpper(dn1), strings.ReplaceAll(dn2, ",", ", ")}
			s.Users[1].Attrs["manager"] = []string{strings.ToLower(dn1)}
		}},
		{name: "duplicate account", change: func(s *ADSnapshot) {
			s.Users = append(s.Users, adEntryOf(layout, e2, "CN=Name E2 (se2),"+layout.Users, dn1))
		}, want: []string{"user E2: 2 accounts"}},
		{name: "retired account is no difference", change: func(s *ADSnapshot) {
			retired := adEntryOf(layout, adDesiredUser(layout, "E9", "", "Sales 1", true), "CN=Name E9,"+layout.Leavers, "")
			s.Users = append(s.Users, retired)
		}, wantRetired: 1},
		{name: "stray accounts and group", change: func(s *ADSnapshot) {
			enabled := adEntryOf(layout, adDesiredUser(layout, "E8", "", "Sales 1", false), "CN=Name E8,"+sales, "")
			unmarked := adEntryOf(layout, adDesiredUser(layout, "E9", "", "Sales 1", true), "CN=Name E9,"+layout.Leavers, "")
			delete(unmarked.Attrs, strings.ToLower(layout.MarkerAttribute))
			s.Users = append(s.Users, enabled, unmarked)
			s.Groups = append(s.Groups, adGroupEntry(layout, "unit-old", "Org - Old"))
		}, want: []string{
			`group "unit-old": not desired (1 groups)`,
			`user "E8": not desired (CN=Name E8,OU=Sales 1,OU=Staff,OU=Orgsync,DC=corp,DC=example,DC=test)`,
			`user "E9": not desired (CN=Name E9,OU=Leavers,OU=Orgsync,DC=corp,DC=example,DC=test)`,
		}},
		{name: "missing, stray and twice members", change: func(s *ADSnapshot) {
			s.Groups[0].Members = []string{dn1, dn3, dn3, "CN=Someone,CN=Users," + testBaseDN}
			s.Groups[1].Members = nil
		}, want: []string{
			"member group:unit-u1 of all-u1: missing",
			"member outside:CN=Someone,CN=Users,DC=corp,DC=example,DC=test of unit-u1: not desired",
			"member user:E2 of unit-u1: missing",
			"member user:E3 of unit-u1: not desired",
			"member user:E3 of unit-u1: not desired",
			"member user:E3 of unit-u1: twice",
		}},
		{name: "wrong attribute, state, OU and manager", change: func(s *ADSnapshot) {
			s.Users[1].Attrs["title"] = []string{"Old Title"}
			s.Users[1].Attrs["useraccountcontrol"] = []string{"514"}
			s.Users[2].DN = "CN=Name E3,OU=Legal 2," + layout.Staff
			s.Users[2].Attrs["useraccountcontrol"] = []string{"512"}
			delete(s.Users[2].Attrs, "manager")
			delete(s.Users[2].Attrs, "employeetype")
		}, want: []string{
			`user E2: enabled false, want true; title "Old Title", want "Engineer"`,
			`user E3: DN "CN=Name E3,OU=Legal 2,OU=Staff,OU=Orgsync,DC=corp,DC=example,DC=test", want below "OU=Leavers,OU=Orgsync,DC=corp,DC=example,DC=test"; ` +
				`employeeType "", want "Employee"; enabled true, want false; manager "", want "E1"`,
		}},
		{name: "initial password never set", change: func(s *ADSnapshot) {
			s.Users[0].Attrs["msds-keyversionnumber"] = []string{"1"}
		}, want: []string{"user E1: initial password never set (msDS-KeyVersionNumber 1)"}},
		{name: "wrong group name and marker", change: func(s *ADSnapshot) {
			s.Groups[1].DN = "CN=Old Name," + layout.Groups
			delete(s.Groups[1].Attrs, strings.ToLower(layout.MarkerAttribute))
		}, want: []string{
			`group all-u1: DN "CN=Old Name,OU=Groups,OU=Orgsync,DC=corp,DC=example,DC=test", want "CN=Org - Sales 1 (all),OU=Groups,OU=Orgsync,DC=corp,DC=example,DC=test"; adminDescription "", want "managed-by:orgsync"`,
		}},
		{name: "missing user and group", change: func(s *ADSnapshot) {
			s.Users = s.Users[1:]
			s.Groups = s.Groups[1:]
		}, want: []string{
			"group unit-u1: missing",
			"member group:unit-u1 of all-u1: missing",
			"member outside:CN=Org - Sales 1,OU=Groups,OU=Orgsync,DC=corp,DC=example,DC=test of all-u1: not desired",
			"member user:E1 of unit-u1: group missing",
			"member user:E2 of unit-u1: group missing",
			`user E1: missing`,
			`user E2: manager "outside: CN=Name E1,OU=Sales 1,OU=Staff,OU=Orgsync,DC=corp,DC=example,DC=test", want "E1"`,
			`user E3: manager "outside: CN=Name E1,OU=Sales 1,OU=Staff,OU=Orgsync,DC=corp,DC=example,DC=test", want "E1"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := converged()
			tt.change(&snap)
			got := CompareAD(snap, desired, layout)
			if diff := cmp.Diff(tt.want, got.Lines); diff != "" {
				t.Errorf("differences (-want +got):\n%s", diff)
			}
			if got.Equal() != (len(tt.want) == 0) || got.Retired != tt.wantRetired {
				t.Errorf("Equal() = %v, Retired %d with %d differences", got.Equal(), got.Retired, len(got.Lines))
			}
			if counts := [3]int{got.Users, got.Groups, got.Memberships}; counts != [3]int{3, 2, 3} {
				t.Errorf("desired users, groups, memberships %v, want [3 2 3]", counts)
			}
		})
	}
}

func TestPolicyWithAD(t *testing.T) {
	layout := NewADLayout(testBaseDN, []string{"Sales 1"})
	policy := PolicyWithAD(layout)
	if !strings.HasPrefix(policy, PolicyYAML) {
		t.Errorf("the AD policy does not extend PolicyYAML:\n%s", policy)
	}
	want := `    parentDistinguishedName: '(unit_path.size() > 1 ? "OU=" + unit_path[1] + "," : "") + "OU=Staff,OU=Orgsync,DC=corp,DC=example,DC=test"'`
	if !strings.Contains(policy, want) {
		t.Errorf("policy lacks %s:\n%s", want, policy)
	}
	env := strings.Join(layout.WriterEnv(), "\n")
	for _, setting := range []string{"AD_MANAGED_OUS=" + layout.Root, "AD_LEAVERS_OU=OU=Leavers,OU=Orgsync," + testBaseDN} {
		if !strings.Contains(env, setting) {
			t.Errorf("writer environment lacks %s:\n%s", setting, env)
		}
	}
}

func TestRangeEnd(t *testing.T) {
	tests := []struct {
		name     string
		attr     string
		want     int
		wantMore bool
	}{
		{name: "first range", attr: "member;range=0-1499", want: 1499, wantMore: true},
		{name: "last range", attr: "member;range=1500-*"},
		{name: "not ranged", attr: "member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, more := rangeEnd(tt.attr)
			if got != tt.want || more != tt.wantMore {
				t.Errorf("rangeEnd(%q) = %d, %v; want %d, %v", tt.attr, got, more, tt.want, tt.wantMore)
			}
		})
	}
}
