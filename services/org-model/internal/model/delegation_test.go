package model

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

func delegation(id, delegate, from, start, end string) *orgsyncv1.Delegation {
	return &orgsyncv1.Delegation{DelegationId: id, DelegateWorkerId: delegate, FromWorkerId: from,
		StartDate: date(start), EndDate: date(end), Reason: "cover during leave"}
}

func isMember(m *Model, groupKey, workerID string) bool {
	return slices.Contains(members(m, groupKey), "user:"+workerID)
}

// TestDelegationStartsAndEndsOnItsDates gives E3 (marketing, Paris) E2's groups (unit-sales,
// rule-london) from 5 to 10 March: nothing before the start date, the groups on it, explained
// as delegated, following E2 when HR moves them, and gone on the end date.
func TestDelegationStartsAndEndsOnItsDates(t *testing.T) {
	m, now := newGroupsCompany(t)
	d := delegation("d1", "E3", "E2", "2026-03-05", "2026-03-10")
	if err := m.CheckDelegation(d, now); err != nil {
		t.Fatal(err)
	}
	changes, err := m.ApplyDelegation(d, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 || isMember(m, "unit-sales", "E3") {
		t.Fatalf("before the start date: changes %v, unit-sales %v", changes, members(m, "unit-sales"))
	}
	start := at("2026-03-05T00:00:00Z")
	if got := m.NextDue(); !got.Equal(start) {
		t.Fatalf("NextDue = %v, want the delegation's start %v", got, start)
	}

	m.Advance(start.Add(-time.Second))
	if isMember(m, "unit-sales", "E3") {
		t.Fatal("a second before the start date E3 is already in unit-sales")
	}
	m.Advance(start)
	for _, group := range []string{"unit-sales", "rule-london"} {
		if !isMember(m, group, "E3") {
			t.Errorf("on the start date E3 is not in %s: %v", group, members(m, group))
		}
	}
	if !isMember(m, "unit-marketing", "E3") {
		t.Error("the delegate lost their own unit group")
	}
	got := m.Explain(entra, "all-commercial", "E3")
	want := Explanation{Member: true, Path: []string{"all-commercial", "all-marketing", "unit-marketing"},
		Reason: "HR places the worker in org unit marketing (Example Ltd > Commercial > Marketing)", Kind: orgsyncv1.MembershipReason_MEMBERSHIP_REASON_ORG_UNIT}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("explain of the delegate's own membership (-want +got):\n%s", diff)
	}
	got = m.Explain(entra, "unit-sales", "E3")
	want = Explanation{Member: true, Path: []string{"unit-sales"}, Reason: "delegated from E2 until 2026-03-10 (delegation d1)",
		Kind: orgsyncv1.MembershipReason_MEMBERSHIP_REASON_DELEGATION,
		Grant: &orgsyncv1.MembershipGrant{DelegationId: "d1", FromWorkerId: "E2", EndDate: date("2026-03-10"),
			EndsAt: timestamppb.New(at("2026-03-10T00:00:00Z"))}}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("explain of the delegated membership (-want +got):\n%s", diff)
	}

	// HR moves E2 to marketing's sibling unit commercial: the delegate follows.
	moved := at("2026-03-06T09:00:00Z")
	m.Apply(workerEvent(moved, person("E2", "Jane", "Doe", "commercial", managedBy("E1"))), moved)
	if isMember(m, "unit-sales", "E3") || !isMember(m, "unit-commercial", "E3") {
		t.Errorf("after E2 moved: unit-sales %v, unit-commercial %v", members(m, "unit-sales"), members(m, "unit-commercial"))
	}

	end := at("2026-03-10T00:00:00Z")
	m.Advance(end.Add(-time.Second))
	if !isMember(m, "unit-commercial", "E3") {
		t.Fatal("a second before the end date the delegation is gone")
	}
	changes = m.Advance(end)
	if isMember(m, "unit-commercial", "E3") || isMember(m, "rule-london", "E3") {
		t.Errorf("on the end date E3 is still a delegate: %v, %v", members(m, "unit-commercial"), members(m, "rule-london"))
	}
	var tombstones []string
	for _, obj := range changes {
		if obj.GetTombstone() {
			tombstones = append(tombstones, obj.GetKey())
		}
	}
	slices.Sort(tombstones)
	if diff := cmp.Diff([]string{"rule-london/E3", "unit-commercial/E3"}, tombstones); diff != "" {
		t.Errorf("tombstones on the end date (-want +got):\n%s", diff)
	}
	if got := m.Explain(entra, "unit-commercial", "E3"); got.Member {
		t.Errorf("after the end: %+v", got)
	}
}

func TestUnitDelegationAndEarlyEnd(t *testing.T) {
	m, now := newGroupsCompany(t)
	d := &orgsyncv1.Delegation{DelegationId: "d2", DelegateWorkerId: "E2", FromOrgUnitId: "marketing",
		StartDate: date("2026-03-01"), EndDate: date("2026-04-01"), Reason: "covering marketing"}
	if _, err := m.ApplyDelegation(d, now); err != nil {
		t.Fatal(err)
	}
	if !isMember(m, "unit-marketing", "E2") {
		t.Fatalf("unit delegation in effect: unit-marketing %v", members(m, "unit-marketing"))
	}
	if got := m.Explain(entra, "unit-marketing", "E2").Reason; got != "delegated from org unit marketing until 2026-04-01 (delegation d2)" {
		t.Errorf("reason %q", got)
	}
	endedAt := now.Add(time.Hour)
	d.EndedAt = timestamppb.New(endedAt)
	if _, err := m.ApplyDelegation(d, endedAt); err != nil {
		t.Fatal(err)
	}
	if isMember(m, "unit-marketing", "E2") {
		t.Error("an ended delegation still gives the membership")
	}
	if got := m.DelegationState(d, endedAt); got != orgsyncv1.DelegationState_DELEGATION_STATE_ENDED {
		t.Errorf("state %v", got)
	}
}

// TestDelegationSurvivesCheckpoint restores a checkpoint into a fresh model, restores the
// delegations kept apart, and computes: the delegated memberships are there, and the end is
// scheduled.
func TestDelegationSurvivesCheckpoint(t *testing.T) {
	m, now := newGroupsCompany(t)
	d := delegation("d1", "E3", "E2", "2026-03-01", "2026-03-10")
	if _, err := m.ApplyDelegation(d, now); err != nil {
		t.Fatal(err)
	}
	restored := New(m.Policy())
	if err := restored.Restore(roundTrip(t, m.Checkpoint(42, now))); err != nil {
		t.Fatal(err)
	}
	if err := restored.RestoreDelegations([]*orgsyncv1.Delegation{d}); err != nil {
		t.Fatal(err)
	}
	restored.ComputeAll(now)
	if !isMember(restored, "unit-sales", "E3") {
		t.Fatalf("after restore: unit-sales %v", members(restored, "unit-sales"))
	}
	if got := restored.NextDue(); !got.Equal(at("2026-03-10T00:00:00Z")) {
		t.Errorf("NextDue after restore = %v, want the delegation's end", got)
	}
	// A plan's copies keep the delegation: a dry run does not show its memberships removed.
	if planned := m.WithPolicy(m.Policy(), now); !isMember(planned, "unit-sales", "E3") {
		t.Error("a copy under a policy lost the delegation")
	}
	if cloned := m.Clone(); !isMember(cloned, "unit-sales", "E3") || len(cloned.Advance(now.Add(time.Hour))) != 0 {
		t.Error("a clone lost the delegation")
	}
	restored.Advance(at("2026-03-10T00:00:00Z"))
	if isMember(restored, "unit-sales", "E3") {
		t.Error("the restored delegation did not end")
	}
}

func TestCheckDelegationNamesTheProblem(t *testing.T) {
	m, now := newGroupsCompany(t)
	tests := []struct {
		name string
		edit func(*orgsyncv1.Delegation)
		want string
	}{
		{"unknown delegate", func(d *orgsyncv1.Delegation) { d.DelegateWorkerId = "E99" }, `delegate_worker_id "E99" is not a worker`},
		{"unknown from worker", func(d *orgsyncv1.Delegation) { d.FromWorkerId = "E98" }, `from_worker_id "E98" is not a worker`},
		{"unknown unit", func(d *orgsyncv1.Delegation) { d.FromWorkerId, d.FromOrgUnitId = "", "nowhere" }, `from_org_unit_id "nowhere" is not an org unit`},
		{"both sources", func(d *orgsyncv1.Delegation) { d.FromOrgUnitId = "sales" }, "exactly one of from_worker_id and from_org_unit_id"},
		{"to oneself", func(d *orgsyncv1.Delegation) { d.FromWorkerId = "E3" }, "cannot be delegated their own memberships"},
		{"end before start", func(d *orgsyncv1.Delegation) { d.EndDate = date("2026-03-04") }, "end_date 2026-03-04 is not after start_date 2026-03-05"},
		{"end on start", func(d *orgsyncv1.Delegation) { d.EndDate = date("2026-03-05") }, "is not after start_date"},
		{"end passed", func(d *orgsyncv1.Delegation) { d.StartDate, d.EndDate = date("2026-02-01"), date("2026-02-10") }, "end_date 2026-02-10 has passed"},
		{"no start", func(d *orgsyncv1.Delegation) { d.StartDate = nil }, "start_date is required"},
		{"not a date", func(d *orgsyncv1.Delegation) { d.EndDate = &orgsyncv1.Date{Year: 2026, Month: 2, Day: 30} }, "end_date 2026-02-30 is not a calendar date"},
		{"no reason", func(d *orgsyncv1.Delegation) { d.Reason = " " }, "reason is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := delegation("d", "E3", "E2", "2026-03-05", "2026-03-10")
			tc.edit(d)
			err := m.CheckDelegation(d, now)
			if !errors.Is(err, ErrInvalidGrant) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrInvalidGrant naming %q", err, tc.want)
			}
		})
	}
}
