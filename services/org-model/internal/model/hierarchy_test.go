package model

import (
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

const hierarchyPolicy = `
sources:
  - name: scim
    hierarchy:
      levels: [company, division, department]
      managerAttribute: custom.isUnitLead
groups:
  rollup: {enabled: true}
  managers: {enabled: true}
  rules:
    - key: sales-people
      filter: '"Sales" in unit_path'
lifecycle:
  membershipGrace: 7d
`

// scimWorker is a worker of source "scim" placed by attributes only.
func scimWorker(id, company, division, department string, edits ...func(*orgsyncv1.Worker)) *orgsyncv1.Worker {
	return person(id, "Given"+id, "Family"+id, "", append([]func(*orgsyncv1.Worker){func(w *orgsyncv1.Worker) {
		w.Company, w.Division, w.Department = company, division, department
	}}, edits...)...)
}

func fromSource(source string, event *orgsyncv1.HREvent) *orgsyncv1.HREvent {
	event.Source = source
	return event
}

func leads(w *orgsyncv1.Worker) {
	w.CustomAttributes = map[string]string{"isUnitLead": "true"}
}

// unitIDs are the derived ids of the test company's units.
var (
	acmeID  = policy.UnitID("scim", []string{"Acme"})
	salesID = policy.UnitID("scim", []string{"Acme", "Sales"})
	emeaID  = policy.UnitID("scim", []string{"Acme", "Sales", "EMEA"})
	usID    = policy.UnitID("scim", []string{"Acme", "Sales", "US"})
	opsID   = policy.UnitID("scim", []string{"Acme", "Operations", "Facilities"})
)

// liveUnits lists the model's units that exist (not removed), as "name<parent name".
func liveUnits(m *Model) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for _, u := range m.units {
		if u.GetDeleted() {
			continue
		}
		out = append(out, u.GetName()+"<"+m.units[u.GetParentOrgUnitId()].GetName()+" lead="+u.GetManagerWorkerId())
	}
	sort.Strings(out)
	return out
}

func TestUnitsFromAttributes(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	m := New(mustPolicy(t, hierarchyPolicy))
	for _, w := range []*orgsyncv1.Worker{
		scimWorker("E1", "Acme", "Sales", "EMEA", leads),
		scimWorker("E2", "Acme", "Sales", "EMEA", managedBy("E1")),
		scimWorker("E3", "Acme", "Sales", "US", managedBy("E1")),
		scimWorker("E4", "Acme", "Sales", "", leads), // the division's head has no department
		scimWorker("E5", "Acme", "Operations", "Facilities"),
	} {
		m.Apply(fromSource("scim", workerEvent(now, w)), now)
	}
	wantUnits := []string{
		"Acme< lead=", "EMEA<Sales lead=E1", "Facilities<Operations lead=", "Operations<Acme lead=",
		"Sales<Acme lead=E4", "US<Sales lead=",
	}
	if diff := cmp.Diff(wantUnits, liveUnits(m)); diff != "" {
		t.Errorf("units (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		group string
		want  []string
	}{
		{GroupKey(emeaID), []string{"user:E1", "user:E2"}},
		{GroupKey(usID), []string{"user:E3"}},
		{GroupKey(salesID), []string{"user:E4"}},
		{RollupGroupKey(salesID), []string{"group:" + RollupGroupKey(emeaID), "group:" + RollupGroupKey(usID), "group:" + GroupKey(salesID)}},
		{RollupGroupKey(acmeID), []string{"group:" + RollupGroupKey(policy.UnitID("scim", []string{"Acme", "Operations"})), "group:" + RollupGroupKey(salesID), "group:" + GroupKey(acmeID)}},
		{UnitManagersGroup, []string{"user:E1", "user:E4"}},
		{PeopleManagersGroup, []string{"user:E1"}},
		{RuleGroupKey("sales-people"), []string{"user:E1", "user:E2", "user:E3", "user:E4"}},
	} {
		got := members(m, tc.group)
		sort.Strings(got)
		sort.Strings(tc.want)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("members of %s (-want +got):\n%s", tc.group, diff)
		}
	}
	if got := groupName(m, GroupKey(emeaID)); got != "Org - EMEA" {
		t.Errorf("EMEA's group is named %q", got)
	}

	// E3 moves to EMEA: US has no one left and is removed with its groups; E5 leaves, and
	// Facilities (then Operations) go once the grace period is over.
	later := now.Add(time.Hour)
	m.Apply(fromSource("scim", workerEvent(later, scimWorker("E3", "Acme", "Sales", "EMEA", managedBy("E1")))), later)
	m.Apply(fromSource("scim", workerEvent(later, scimWorker("E5", "Acme", "Operations", "Facilities", func(w *orgsyncv1.Worker) {
		w.EmploymentStatus = terminated
	}))), later)
	if got := accountOf(m, "E3").Groups; got != RuleGroupKey("sales-people")+" "+GroupKey(emeaID) {
		t.Errorf("E3's groups after the move: %q", got)
	}
	if got := m.Object(GroupRef(orgsyncv1.Target_TARGET_ENTRA, GroupKey(usID))); got != nil {
		t.Errorf("US's group still desired: %v", got)
	}
	if got := m.Object(GroupRef(orgsyncv1.Target_TARGET_ENTRA, GroupKey(opsID))); got == nil {
		t.Errorf("Facilities' group removed during the leaver's grace period")
	}
	m.Advance(later.Add(8 * 24 * time.Hour))
	wantUnits = []string{"Acme< lead=", "EMEA<Sales lead=E1", "Sales<Acme lead=E4"}
	if diff := cmp.Diff(wantUnits, liveUnits(m)); diff != "" {
		t.Errorf("units after the move and the leave (-want +got):\n%s", diff)
	}
	// Someone joins Facilities again: it comes back, under Operations.
	back := later.Add(9 * 24 * time.Hour)
	m.Apply(fromSource("scim", workerEvent(back, scimWorker("E6", "Acme", "Operations", "Facilities"))), back)
	if diff := cmp.Diff([]string{"user:E6"}, members(m, GroupKey(opsID))); diff != "" {
		t.Errorf("Facilities after a new joiner (-want +got):\n%s", diff)
	}
}

func TestUnitIDsAreStableAndSafe(t *testing.T) {
	for _, tc := range []struct {
		name string
		path []string
		want string
	}{
		{"plain", []string{"Acme", "Sales"}, policy.UnitID("scim", []string{"Acme", "Sales"})},
		{"symbols and diacritics", []string{"Acme", "R&D / Ångström labs"}, policy.UnitID("scim", []string{"Acme", "R&D / Ångström labs"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := policy.UnitID("scim", tc.path)
			if id != tc.want || len(id) > 48 {
				t.Errorf("id %q (len %d), want stable %q within 48 characters", id, len(id), tc.want)
			}
			if policy.MailSafe(id) != id {
				t.Errorf("id %q is not mail-safe", id)
			}
		})
	}
	// Values that mail-safe alike, or at different depths, still get distinct ids.
	ids := map[string]bool{}
	for _, path := range [][]string{{"Sales & Marketing"}, {"Sales Marketing"}, {"Acme", "Sales"}, {"Sales"}, {"Acme"}} {
		ids[policy.UnitID("scim", path)] = true
	}
	ids[policy.UnitID("bamboo", []string{"Acme"})] = true
	if len(ids) != 6 {
		t.Errorf("distinct paths share ids: %v", ids)
	}
}

func TestSnapshotJudgesOnlyItsOwnSource(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	m := New(mustPolicy(t, ""))
	m.Apply(unitEvent("sales", "Sales", "", ""), now)
	marker := func(source, id string, phase orgsyncv1.SnapshotMarker_Phase) *orgsyncv1.HREvent {
		return &orgsyncv1.HREvent{Source: source, ReceivedAt: timestamppb.New(now), Payload: &orgsyncv1.HREvent_Snapshot{Snapshot: &orgsyncv1.SnapshotMarker{SnapshotId: id, Phase: phase}}}
	}
	row := func(source, snapshotID string, w *orgsyncv1.Worker) *orgsyncv1.HREvent {
		e := fromSource(source, workerEvent(now, w))
		e.SnapshotId = snapshotID
		return e
	}
	for _, e := range []*orgsyncv1.HREvent{
		fromSource("csv", workerEvent(now, person("X1", "Xena", "One", "sales"))),
		fromSource("csv", workerEvent(now, person("X2", "Xavier", "Two", "sales"))),
		fromSource("workday", workerEvent(now, person("Y1", "Yara", "One", "sales"))),
		fromSource("hibob", workerEvent(now, person("Z1", "Zed", "One", "sales"))),
	} {
		m.Apply(e, now)
	}
	// Two exports interleave: csv lists X1 only, workday lists Y1; each END judges its own rows.
	later := now.Add(time.Hour)
	for _, e := range []*orgsyncv1.HREvent{
		marker("csv", "c1", orgsyncv1.SnapshotMarker_PHASE_BEGIN),
		marker("workday", "w1", orgsyncv1.SnapshotMarker_PHASE_BEGIN),
		row("workday", "w1", person("Y1", "Yara", "One", "sales")),
		row("csv", "c1", person("X1", "Xena", "One", "sales")),
		marker("csv", "c1", orgsyncv1.SnapshotMarker_PHASE_END),
		marker("workday", "w1", orgsyncv1.SnapshotMarker_PHASE_END),
	} {
		m.Apply(e, later)
	}
	got := map[string]bool{}
	for _, id := range []string{"X1", "X2", "Y1", "Z1"} {
		got[id] = accountOf(m, id).Enabled
	}
	want := map[string]bool{"X1": true, "X2": false, "Y1": true, "Z1": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("enabled after two interleaved exports (-want +got):\n%s", diff)
	}
	// A row of another snapshot of the same source does not count for this one.
	m.Apply(marker("workday", "w2", orgsyncv1.SnapshotMarker_PHASE_BEGIN), later)
	m.Apply(row("workday", "w-other", person("Y1", "Yara", "One", "sales")), later)
	m.Apply(marker("workday", "w2", orgsyncv1.SnapshotMarker_PHASE_END), later)
	if accountOf(m, "Y1").Enabled {
		t.Errorf("a row of another snapshot counted for w2")
	}
}

func TestEventTimeIsHRTimeElseReceiveTime(t *testing.T) {
	received := at("2026-03-02T10:00:00Z")
	occurred := at("2026-03-01T08:00:00Z")
	replayedAt := at("2026-06-30T00:00:00Z")
	for _, tc := range []struct {
		name  string
		event *orgsyncv1.HREvent
		want  time.Time
	}{
		{"HR's time", &orgsyncv1.HREvent{OccurredAt: timestamppb.New(occurred), ReceivedAt: timestamppb.New(received)}, occurred},
		{"receive time", &orgsyncv1.HREvent{ReceivedAt: timestamppb.New(received)}, received},
		{"neither", &orgsyncv1.HREvent{}, replayedAt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EventTime(tc.event, replayedAt); !got.Equal(tc.want) {
				t.Errorf("EventTime = %v, want %v", got, tc.want)
			}
		})
	}
}

// A leave without an end date (SCIM active:false) takes effect when hr-ingest received it; a
// replay of the same events weeks later gives the same leave date and grace period.
func TestLeaveDateAndGraceSurviveReplay(t *testing.T) {
	received := at("2026-03-02T10:00:00Z")
	pol := mustPolicy(t, "lifecycle: {membershipGrace: 14d}\n")
	events := []*orgsyncv1.HREvent{
		unitEvent("sales", "Sales", "", ""),
		{EventId: "hire", Source: "scim", ReceivedAt: timestamppb.New(received.Add(-48 * time.Hour)),
			Payload: &orgsyncv1.HREvent_Worker{Worker: person("E1", "Jane", "Doe", "sales")}},
		{EventId: "leave", Source: "scim", ReceivedAt: timestamppb.New(received),
			Payload: &orgsyncv1.HREvent_Worker{Worker: person("E1", "Jane", "Doe", "sales", func(w *orgsyncv1.Worker) { w.EmploymentStatus = terminated })}},
	}
	live := New(pol)
	for _, e := range events {
		live.Apply(e, received)
	}
	replayedAt := received.Add(10 * 24 * time.Hour)
	replayed := New(pol)
	for _, e := range events {
		replayed.Record(e, replayedAt)
	}
	replayed.ComputeAll(replayedAt)
	live.Advance(replayedAt)
	for name, m := range map[string]*Model{"live": live, "replayed": replayed} {
		got := accountOf(m, "E1")
		want := account{Exists: true, UPN: "jane.doe@corp.example.com", Title: "Engineer", Office: "London", Type: "Employee",
			Groups: "unit-sales", LeaveDate: received.Format(time.RFC3339)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: leaver 10 days in, within the grace period (-want +got):\n%s", name, diff)
		}
		if next := m.NextDue(); !next.Equal(received.Add(14 * 24 * time.Hour)) {
			t.Errorf("%s: grace ends at %v, want %v", name, next, received.Add(14*24*time.Hour))
		}
	}
}
