package model

import (
	"testing"
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// firstDayAt is the worker's desired Entra user's first_day_credential.first_day_at, "" when unset.
func firstDayAt(m *Model, workerID string) string {
	credential := m.Object(UserRef(entra, workerID)).GetUser().GetFirstDayCredential()
	if credential == nil {
		return ""
	}
	return credential.GetFirstDayAt().AsTime().Format(time.RFC3339)
}

func TestFirstDayCredentialFollowsTheStartDate(t *testing.T) {
	company := []*orgsyncv1.HREvent{unitEvent("company", "Example Ltd", "", ""), unitEvent("sales", "Sales", "company", "")}
	type check struct {
		at    string
		event *orgsyncv1.HREvent // nil: only time passes
		want  string
	}
	const on = "timezone: Europe/London\nlifecycle:\n  firstDayCredential: {enabled: true, lifetimeMinutes: 240, usableOnce: true}\n"
	tests := []struct {
		name   string
		policy string
		steps  []check
	}{
		{
			name:   "asked from the start of the first day in the policy's time zone, not before, and it stays",
			policy: on,
			steps: []check{
				{at: "2026-06-20T09:00:00Z", event: workerEvent(at("2026-06-20T09:00:00Z"), person("E9", "Jane", "Doe", "sales", starting("2026-06-22"))), want: ""},
				{at: "2026-06-21T22:59:59Z", want: ""},
				// 00:00 in London (BST) is 23:00 UTC the day before.
				{at: "2026-06-21T23:00:00Z", want: "2026-06-21T23:00:00Z"},
				{at: "2026-06-25T09:00:00Z", event: workerEvent(at("2026-06-25T09:00:00Z"), person("E9", "Jane", "Doe", "sales", starting("2026-06-22"), titled("Lead"))), want: "2026-06-21T23:00:00Z"},
			},
		},
		{
			name:   "off by default",
			policy: "timezone: Europe/London\n",
			steps: []check{
				{at: "2026-06-20T09:00:00Z", event: workerEvent(at("2026-06-20T09:00:00Z"), person("E9", "Jane", "Doe", "sales", starting("2026-06-22"))), want: ""},
				{at: "2026-06-22T09:00:00Z", want: ""},
			},
		},
		{
			name:   "a leaver has none",
			policy: on,
			steps: []check{
				{at: "2026-06-20T09:00:00Z", event: workerEvent(at("2026-06-20T09:00:00Z"), person("E9", "Jane", "Doe", "sales", starting("2026-06-01"))), want: "2026-05-31T23:00:00Z"},
				{at: "2026-06-21T09:00:00Z", event: workerEvent(at("2026-06-21T09:00:00Z"), person("E9", "Jane", "Doe", "sales", starting("2026-06-01"), status(terminated))), want: ""},
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
				if got := firstDayAt(m, "E9"); got != s.want {
					t.Errorf("step %d at %s: first_day_at %q, want %q", i, s.at, got, s.want)
				}
			}
			if got := m.Object(UserRef(ad, "E9")).GetUser().GetFirstDayCredential(); got != nil {
				t.Errorf("AD's desired user asks for a first-day credential: %v", got)
			}
		})
	}
	t.Run("the policy's lifetime and one-time use", func(t *testing.T) {
		m := New(mustPolicy(t, on))
		for _, event := range company {
			m.Apply(event, at("2026-06-22T09:00:00Z"))
		}
		m.Apply(workerEvent(at("2026-06-22T09:00:00Z"), person("E9", "Jane", "Doe", "sales", starting("2026-06-22"))), at("2026-06-22T09:00:00Z"))
		credential := m.Object(UserRef(entra, "E9")).GetUser().GetFirstDayCredential()
		if credential.GetLifetimeMinutes() != 240 || !credential.GetIsUsableOnce() {
			t.Errorf("first-day credential %v, want 240 minutes, usable once", credential)
		}
	})
}
