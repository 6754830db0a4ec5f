package model

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

const groupsPolicy = `
groups:
  rollup: {displayName: '"All - " + unit.name'}
  managers: {enabled: true}
  rules:
    - key: london
      filter: 'worker.location == "London"'
`

// members lists a group's direct members as "kind:key".
func members(m *Model, groupKey string) []string {
	_, list, ok := m.GroupMembers(entra, groupKey)
	if !ok {
		return []string{"(no group)"}
	}
	out := []string{}
	for _, member := range list {
		kind := "user"
		if member.Kind == orgsyncv1.MemberKind_MEMBER_KIND_GROUP {
			kind = "group"
		}
		out = append(out, kind+":"+member.Key)
	}
	return out
}

func groupName(m *Model, groupKey string) string {
	return m.Object(GroupRef(orgsyncv1.Target_TARGET_ENTRA, groupKey)).GetGroup().GetDisplayName()
}

func newGroupsCompany(t *testing.T) (*Model, time.Time) {
	t.Helper()
	now := at("2026-03-01T09:00:00Z")
	m := New(mustPolicy(t, groupsPolicy))
	for _, event := range []*orgsyncv1.HREvent{
		unitEvent("company", "Example Ltd", "", "E0"),
		unitEvent("commercial", "Commercial", "company", "E1"),
		unitEvent("sales", "Sales", "commercial", ""),
		unitEvent("marketing", "Marketing", "commercial", ""),
		workerEvent(now, person("E0", "Ceo", "Boss", "company")),
		workerEvent(now, person("E1", "Sam", "Lead", "commercial", managedBy("E0"))),
		workerEvent(now, person("E2", "Jane", "Doe", "sales", managedBy("E1"))),
		workerEvent(now, person("E3", "John", "Roe", "marketing", managedBy("E1"), func(w *orgsyncv1.Worker) { w.Location = "Paris" })),
	} {
		m.Apply(event, now)
	}
	return m, now
}

func TestRollupManagerAndRuleGroups(t *testing.T) {
	m, _ := newGroupsCompany(t)
	got := map[string][]string{}
	for _, key := range []string{"unit-sales", "all-company", "all-commercial", "all-sales", "managers-people", "managers-units", "rule-london"} {
		got[key] = members(m, key)
	}
	want := map[string][]string{
		"unit-sales":      {"user:E2"},
		"all-company":     {"group:all-commercial", "group:unit-company"},
		"all-commercial":  {"group:all-marketing", "group:all-sales", "group:unit-commercial"},
		"all-sales":       {"group:unit-sales"},
		"managers-people": {"user:E0", "user:E1"},
		"managers-units":  {"user:E0", "user:E1"},
		"rule-london":     {"user:E0", "user:E1", "user:E2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

func TestExplainMembership(t *testing.T) {
	m, _ := newGroupsCompany(t)
	tests := []struct {
		name, group, worker string
		want                Explanation
	}{
		{"direct unit member", "unit-sales", "E2", Explanation{Member: true, Path: []string{"unit-sales"},
			Reason: "HR places the worker in org unit sales (Example Ltd > Commercial > Sales)", Kind: orgsyncv1.MembershipReason_MEMBERSHIP_REASON_ORG_UNIT}},
		{"through nested roll-up groups", "all-company", "E2", Explanation{Member: true, Path: []string{"all-company", "all-commercial", "all-sales", "unit-sales"},
			Reason: "HR places the worker in org unit sales (Example Ltd > Commercial > Sales)", Kind: orgsyncv1.MembershipReason_MEMBERSHIP_REASON_ORG_UNIT}},
		{"rule group", "rule-london", "E2", Explanation{Member: true, Path: []string{"rule-london"},
			Reason: `rule "london" selects the worker: worker.location == "London" (test-policy.yaml:8)`, Kind: orgsyncv1.MembershipReason_MEMBERSHIP_REASON_RULE}},
		{"people manager", "managers-people", "E1", Explanation{Member: true, Path: []string{"managers-people"},
			Reason: "HR names the worker as manager of E2, E3", Kind: orgsyncv1.MembershipReason_MEMBERSHIP_REASON_MANAGER}},
		{"not a member", "rule-london", "E3", Explanation{Reason: "no unit, rule or nesting puts the worker in rule-london"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, m.Explain(entra, tc.group, tc.worker)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnitRenameMoveAndRemoval(t *testing.T) {
	m, now := newGroupsCompany(t)

	// A rename renames the unit's groups and the descriptions below it.
	m.Apply(unitEvent("commercial", "Revenue", "company", "E1"), now)
	if got := []string{groupName(m, "unit-commercial"), groupName(m, "all-commercial")}; !cmp.Equal(got, []string{"Org - Revenue", "All - Revenue"}) {
		t.Errorf("renamed groups = %v", got)
	}
	if got := m.Object(GroupRef(orgsyncv1.Target_TARGET_ENTRA, "unit-sales")).GetGroup().GetDescription(); got != "Members of org unit Example Ltd > Revenue > Sales (managed by orgsync)" {
		t.Errorf("sub-unit description = %q", got)
	}

	// A move re-nests the roll-up group.
	m.Apply(unitEvent("sales", "Sales", "company", ""), now)
	if diff := cmp.Diff([]string{"group:all-commercial", "group:all-sales", "group:unit-company"}, members(m, "all-company")); diff != "" {
		t.Errorf("after the move (-want +got):\n%s", diff)
	}

	// A removed unit's groups are emptied and deleted: membership tombstones come first.
	changes := m.Apply(&orgsyncv1.HREvent{Payload: &orgsyncv1.HREvent_OrgUnit{OrgUnit: &orgsyncv1.OrgUnit{
		OrgUnitId: "sales", Name: "Sales", ParentOrgUnitId: "company", Deleted: true}}}, now)
	var got []string
	for _, c := range changes {
		if c.GetTombstone() {
			got = append(got, c.GetKey())
		}
	}
	want := []string{"all-sales/unit-sales", "all-company/all-sales", "unit-sales/E2", "unit-sales", "all-sales"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tombstones in order (-want +got):\n%s", diff)
	}
}

func TestOutOfOrderReferencesAreKeptAndResolved(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	m := New(mustPolicy(t, ""))
	m.Apply(workerEvent(now, person("E2", "Jane", "Doe", "sales", managedBy("E1"))), now)
	m.Apply(unitEvent("sales", "Sales", "commercial", ""), now)
	wantProblems := []Problem{
		{"unit sales", `parent unit "commercial" is not known yet (orphan)`},
		{"worker E2", `manager "E1" is not known yet`},
	}
	if diff := cmp.Diff(wantProblems, m.Problems()); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if got := accountOf(m, "E2"); got.Groups != "unit-sales" || got.Manager != "" {
		t.Errorf("before the manager arrives: %+v", got)
	}
	m.Apply(workerEvent(now, person("E1", "Sam", "Lead", "sales")), now)
	m.Apply(unitEvent("commercial", "Commercial", "", ""), now)
	if got := accountOf(m, "E2"); got.Manager != "E1" {
		t.Errorf("manager link not resolved: %+v", got)
	}
	if got := m.Problems(); len(got) != 0 {
		t.Errorf("problems left: %v", got)
	}
}

func TestUnitCycleIsReportedNotLooped(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	m := New(mustPolicy(t, "groups: {rollup: {enabled: true}}\n"))
	m.Apply(unitEvent("a", "A", "b", ""), now)
	m.Apply(unitEvent("b", "B", "a", ""), now)
	if got := m.Object(GroupRef(orgsyncv1.Target_TARGET_ENTRA, "unit-a")).GetGroup().GetDescription(); got != "Members of org unit B > A (managed by orgsync)" {
		t.Errorf("description = %q", got)
	}
	// Roll-up groups in a cycle are not nested in each other: a nesting cycle would never end.
	if diff := cmp.Diff([]string{"group:unit-a", "group:unit-b"}, append(members(m, "all-a"), members(m, "all-b")...)); diff != "" {
		t.Errorf("roll-up members (-want +got):\n%s", diff)
	}
	roots, cycles := m.Roots()
	if len(roots) != 0 || !cmp.Equal(cycles, []string{"a"}) {
		t.Errorf("roots %v, cycles %v", roots, cycles)
	}
	wantProblems := []Problem{{"unit a", "is part of a cycle in the org tree"}, {"unit b", "is part of a cycle in the org tree"}}
	if diff := cmp.Diff(wantProblems, m.Problems()); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestSnapshotMarksMissingWorkersAsLeft(t *testing.T) {
	m, now := newGroupsCompany(t)
	snapshot := func(phase orgsyncv1.SnapshotMarker_Phase) *orgsyncv1.HREvent {
		return &orgsyncv1.HREvent{OccurredAt: timestamppb.New(now.Add(time.Hour)), Payload: &orgsyncv1.HREvent_Snapshot{Snapshot: &orgsyncv1.SnapshotMarker{SnapshotId: "s1", Phase: phase}}}
	}
	later := now.Add(time.Hour)
	m.Apply(snapshot(orgsyncv1.SnapshotMarker_PHASE_BEGIN), later)
	for _, id := range []string{"E0", "E1", "E2"} {
		info, _ := m.Worker(id)
		m.Apply(workerEvent(later, info.Record), later)
	}
	m.Apply(snapshot(orgsyncv1.SnapshotMarker_PHASE_END), later)
	if got := accountOf(m, "E3"); got.Enabled || got.Groups != "" {
		t.Errorf("worker missing from the snapshot: %+v", got)
	}
	if got := accountOf(m, "E2"); !got.Enabled {
		t.Errorf("worker in the snapshot: %+v", got)
	}
	// The next snapshot lists the worker again, with the record HR had all along.
	info, _ := m.Worker("E3")
	m.Apply(workerEvent(now, info.Record), later.Add(time.Hour))
	if got := accountOf(m, "E3"); !got.Enabled || got.Groups != "unit-marketing" {
		t.Errorf("worker listed again: %+v", got)
	}
}

func TestUPNCollisionsAndSAMAccountNames(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	m := New(mustPolicy(t, "mapping: {ad: {title: 'worker.job_title'}}\n"), entra, orgsyncv1.Target_TARGET_AD)
	var upns, sams []string
	for _, id := range []string{"E1", "E2", "E3"} {
		m.Apply(workerEvent(now, person(id, "Maximilian", "Oberhausen-Wolkenstein", "")), now)
		upns = append(upns, m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, id)).GetUser().GetUserPrincipalName())
		sams = append(sams, m.Object(UserRef(orgsyncv1.Target_TARGET_AD, id)).GetUser().GetAttributes()["sAMAccountName"])
	}
	want := []string{"maximilian.oberhausen-wolkenstein@corp.example.com", "maximilian.oberhausen-wolkenstein2@corp.example.com", "maximilian.oberhausen-wolkenstein3@corp.example.com"}
	if diff := cmp.Diff(want, upns); diff != "" {
		t.Errorf("UPNs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"moberhausen-wolkenst", "moberhausen-wolkens2", "moberhausen-wolkens3"}, sams); diff != "" {
		t.Errorf("sAMAccountNames (-want +got):\n%s", diff)
	}
	// A name change keeps the UPN (the policy does not ask for regeneration).
	m.Apply(workerEvent(now.Add(time.Hour), person("E1", "Max", "Wolkenstein", "")), now.Add(time.Hour))
	if got := m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "E1")).GetUser().GetUserPrincipalName(); got != want[0] {
		t.Errorf("UPN after a name change = %s", got)
	}
}

func TestNameChangeRegeneratesUPNOnlyWhenThePolicySaysSo(t *testing.T) {
	for _, tc := range []struct {
		policy, want string
	}{
		{"", "jane.doe@corp.example.com"},
		{"identifiers: {regenerateOnNameChange: true}\n", "jane.smith@corp.example.com"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			now := at("2026-03-01T09:00:00Z")
			m := New(mustPolicy(t, tc.policy))
			m.Apply(workerEvent(now, person("E1", "Jane", "Doe", "")), now)
			m.Apply(workerEvent(now.Add(time.Hour), person("E1", "Jane", "Smith", "")), now.Add(time.Hour))
			if got := m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "E1")).GetUser().GetUserPrincipalName(); got != tc.want {
				t.Errorf("UPN = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestUPNDomainsDecideWhichAddressesAreOrgsyncs(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	m := New(mustPolicy(t, "identifiers:\n  userPrincipalName: ['worker.work_email', 'mailSafe(worker.worker_id)']\n"))
	for id, email := range map[string]string{"E1": "jane@corp.example.com", "E2": "john@partner.example.org"} {
		m.Apply(workerEvent(now, person(id, "X", "Y", "", func(w *orgsyncv1.Worker) { w.WorkEmail = email })), now)
	}
	got := []string{m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "E1")).GetUser().GetUserPrincipalName(), m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "E2")).GetUser().GetUserPrincipalName()}
	if diff := cmp.Diff([]string{"jane@corp.example.com", "e2@corp.example.com"}, got); diff != "" {
		t.Errorf("UPNs (-want +got):\n%s", diff)
	}
}
