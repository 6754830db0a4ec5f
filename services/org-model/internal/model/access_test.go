package model

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// accessRevokedAt is the worker's desired Entra user's access_revoked_at, "" when unset.
func accessRevokedAt(m *Model, workerID string) string {
	user := m.Object(UserRef(entra, workerID)).GetUser()
	if user.GetAccessRevokedAt() == nil {
		return ""
	}
	return user.GetAccessRevokedAt().AsTime().Format(time.RFC3339)
}

func TestAccessRevokedAtFollowsTheLeave(t *testing.T) {
	company := []*orgsyncv1.HREvent{unitEvent("company", "Example Ltd", "", ""), unitEvent("sales", "Sales", "company", "")}
	type check struct {
		at    string
		event *orgsyncv1.HREvent // nil: only time passes
		want  string
	}
	tests := []struct {
		name   string
		policy string
		steps  []check
	}{
		{
			name: "a termination ends access at HR's time, and it stays while the worker stays a leaver",
			steps: []check{
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales")), want: ""},
				{at: "2026-03-02T09:00:00Z", event: workerEvent(at("2026-03-02T09:00:00Z"), person("E9", "Jane", "Doe", "sales", status(terminated))), want: "2026-03-02T09:00:00Z"},
				// HR sends the termination again, with another title: the moment does not move.
				{at: "2026-03-05T09:00:00Z", event: workerEvent(at("2026-03-05T09:00:00Z"), person("E9", "Jane", "Doe", "sales", status(terminated), titled("Former"))), want: "2026-03-02T09:00:00Z"},
				{at: "2026-06-01T00:00:00Z", want: "2026-03-02T09:00:00Z"},
			},
		},
		{
			name: "an end date ends access when the account is disabled, not before",
			steps: []check{
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales", ending("2026-03-31"))), want: ""},
				{at: "2026-03-31T23:59:59Z", want: ""},
				{at: "2026-04-01T00:00:00Z", want: "2026-04-01T00:00:00Z"},
			},
		},
		{
			name: "a rehire clears it and the next leave sets its own",
			steps: []check{
				{at: "2026-01-01T09:00:00Z", event: workerEvent(at("2026-01-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales", ending("2026-01-31"))), want: ""},
				{at: "2026-02-01T00:00:00Z", want: "2026-02-01T00:00:00Z"},
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales", starting("2026-03-01"))), want: ""},
				{at: "2026-04-01T09:00:00Z", event: workerEvent(at("2026-04-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales", starting("2026-03-01"), status(terminated))), want: "2026-04-01T09:00:00Z"},
			},
		},
		{
			name:   "revokeAccess: never leaves it unset",
			policy: "lifecycle: {revokeAccess: never}\n",
			steps: []check{
				{at: "2026-03-02T09:00:00Z", event: workerEvent(at("2026-03-02T09:00:00Z"), person("E9", "Jane", "Doe", "sales", status(terminated))), want: ""},
			},
		},
		{
			name:   "leaveDateOnly never disables, so access is not revoked",
			policy: "lifecycle: {leaverMode: leaveDateOnly}\n",
			steps: []check{
				{at: "2026-03-02T09:00:00Z", event: workerEvent(at("2026-03-02T09:00:00Z"), person("E9", "Jane", "Doe", "sales", status(terminated))), want: ""},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(mustPolicy(t, tc.policy))
			for _, event := range company {
				m.Apply(event, at(tc.steps[0].at))
			}
			for i, s := range tc.steps {
				if s.event != nil {
					m.Apply(s.event, at(s.at))
				} else {
					m.Advance(at(s.at))
				}
				if got := accessRevokedAt(m, "E9"); got != s.want {
					t.Errorf("step %d at %s: access_revoked_at %q, want %q", i, s.at, got, s.want)
				}
			}
		})
	}
}

func TestAccessRevokedAtForWorkersMissingFromASnapshot(t *testing.T) {
	for _, tc := range []struct {
		policy string
		want   bool
	}{
		{policy: "", want: false},
		{policy: "lifecycle: {revokeAccess: terminations}\n", want: false},
		{policy: "lifecycle: {revokeAccess: allLeavers}\n", want: true},
	} {
		t.Run("policy "+tc.policy, func(t *testing.T) {
			m := New(mustPolicy(t, tc.policy))
			now := at("2026-03-01T09:00:00Z")
			for _, event := range []*orgsyncv1.HREvent{unitEvent("sales", "Sales", "", ""),
				workerEvent(now, person("E1", "Sam", "Stays", "sales")), workerEvent(now, person("E9", "Jane", "Doe", "sales"))} {
				m.Apply(event, now)
			}
			later := now.Add(time.Hour)
			snapshot := func(phase orgsyncv1.SnapshotMarker_Phase) *orgsyncv1.HREvent {
				return &orgsyncv1.HREvent{OccurredAt: timestamppb.New(later), Payload: &orgsyncv1.HREvent_Snapshot{Snapshot: &orgsyncv1.SnapshotMarker{SnapshotId: "s1", Phase: phase}}}
			}
			m.Apply(snapshot(orgsyncv1.SnapshotMarker_PHASE_BEGIN), later)
			m.Apply(workerEvent(later, person("E1", "Sam", "Stays", "sales")), later)
			m.Apply(snapshot(orgsyncv1.SnapshotMarker_PHASE_END), later)
			if accountOf(m, "E9").Enabled {
				t.Fatal("the worker missing from the snapshot is still enabled")
			}
			if got := accessRevokedAt(m, "E9") != ""; got != tc.want {
				t.Errorf("access_revoked_at set = %v, want %v", got, tc.want)
			}
		})
	}
}
