package guard

import (
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

func user(id string, enabled bool) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: id, Object: &orgsyncv1.DesiredObject_User{
		User: &orgsyncv1.DesiredUser{WorkerId: id, AccountEnabled: enabled}}}
}

func disables(n, from int) []Change {
	var out []Change
	for i := from; i < from+n; i++ {
		obj := user(fmt.Sprintf("E%d", i), false)
		out = append(out, Change{Path: PathOf(obj), Object: obj, Effect: Disable})
	}
	return out
}

func TestClassify(t *testing.T) {
	member := &orgsyncv1.DesiredObject{Object: &orgsyncv1.DesiredObject_Membership{Membership: &orgsyncv1.DesiredMembership{GroupKey: "g", MemberKey: "E1"}}}
	gone := &orgsyncv1.DesiredObject{Tombstone: true, Object: member.Object}
	tests := []struct {
		name       string
		last, next *orgsyncv1.DesiredObject
		want       Effect
	}{
		{"new user", nil, user("E1", true), Harmless},
		{"disable", user("E1", true), user("E1", false), Disable},
		{"enable", user("E1", false), user("E1", true), Harmless},
		{"delete a user", user("E1", false), &orgsyncv1.DesiredObject{Tombstone: true, Object: user("E1", false).Object}, Disable},
		{"remove a membership", member, gone, Removal},
		{"tombstone again", gone, gone, Harmless},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.last, tc.next); got != tc.want {
				t.Errorf("Classify = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGuard(t *testing.T) {
	cfg := policy.Guard{MaxChanges: 10, MaxShare: 0.2, MinChangesForShare: 3, Window: time.Hour}
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	totals := Totals{EnabledAccounts: 100, Memberships: 300}
	t.Run("below the thresholds everything flows", func(t *testing.T) {
		g := New(cfg)
		if got := g.Admit(disables(5, 0), totals, nil, now); len(got) != 5 || len(g.Pending()) != 0 {
			t.Errorf("admitted %d, pending %d", len(got), len(g.Pending()))
		}
	})
	t.Run("a share above the limit is held, harmless changes flow", func(t *testing.T) {
		g := New(cfg)
		harmless := Change{Path: "entra.user.N1", Object: user("N1", true), Effect: Harmless}
		got := g.Admit(append(disables(5, 0), harmless), Totals{EnabledAccounts: 20}, nil, now)
		if diff := cmp.Diff([]string{"N1"}, keys(got)); diff != "" {
			t.Errorf("admitted (-want +got):\n%s", diff)
		}
		pending := g.Pending()
		if len(pending) != 1 || pending[0].Disables != 5 || len(pending[0].Objects) != 5 {
			t.Fatalf("pending = %+v", pending)
		}
		if want := "5 of 20 accounts disabled or deleted within 1h0m0s (25%), more than the 20% allowed"; pending[0].Reason != want {
			t.Errorf("reason = %q", pending[0].Reason)
		}
	})
	t.Run("changes within the window add up", func(t *testing.T) {
		g := New(cfg)
		g.Admit(disables(6, 0), totals, nil, now)
		got := g.Admit(disables(6, 6), totals, nil, now.Add(30*time.Minute))
		if len(got) != 0 || len(g.Pending()) != 1 {
			t.Errorf("second batch admitted %d, pending %d", len(got), len(g.Pending()))
		}
		// Later in the window, further destructive changes join the open batch.
		g.Admit(disables(1, 20), totals, nil, now.Add(40*time.Minute))
		if got := len(g.Pending()[0].Objects); got != 7 {
			t.Errorf("held objects = %d, want 7", got)
		}
		// After the window, a small batch flows again once the open batch is decided.
		if _, err := g.Reject(g.Pending()[0].ID); err != nil {
			t.Fatal(err)
		}
		if got := g.Admit(disables(2, 30), totals, nil, now.Add(2*time.Hour)); len(got) != 2 {
			t.Errorf("admitted after the window: %d", len(got))
		}
	})
	t.Run("approve returns the held changes; a harmless change releases one", func(t *testing.T) {
		g := New(cfg)
		g.Admit(disables(11, 0), totals, nil, now)
		reenabled := user("E3", true)
		if got := g.Admit([]Change{{Path: PathOf(reenabled), Object: reenabled, Effect: Harmless}}, totals, nil, now); len(got) != 1 {
			t.Errorf("re-enable not admitted")
		}
		id := g.Pending()[0].ID
		approved, err := g.Approve(id)
		if err != nil || len(approved) != 10 {
			t.Errorf("approved %d, %v", len(approved), err)
		}
		if _, err := g.Approve(id); !errors.Is(err, ErrNoBatch) {
			t.Errorf("second approve: %v", err)
		}
	})
	t.Run("reject suppresses the same state until it changes", func(t *testing.T) {
		g := New(cfg)
		g.Admit(disables(11, 0), totals, nil, now)
		if n, err := g.Reject(g.Pending()[0].ID); err != nil || n != 11 {
			t.Fatalf("reject: %d, %v", n, err)
		}
		if got := g.Admit(disables(1, 0), totals, nil, now.Add(time.Minute)); len(got) != 0 || len(g.Pending()) != 0 {
			t.Errorf("a rejected state came back: admitted %d, pending %d", len(got), len(g.Pending()))
		}
		enabled := user("E0", true)
		if got := g.Admit([]Change{{Path: PathOf(enabled), Object: enabled, Effect: Harmless}}, totals, nil, now); len(got) != 1 {
			t.Errorf("a new state of a rejected object was not admitted")
		}
	})
}

func keys(objs []*orgsyncv1.DesiredObject) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKey())
	}
	return out
}

func TestHeldObjectStaysHeldWhileTheWindowIsQuiet(t *testing.T) {
	g := New(policy.Guard{MaxChanges: 2, Window: time.Hour})
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	g.Admit(disables(3, 0), Totals{EnabledAccounts: 100}, nil, now)
	id := g.Pending()[0].ID
	if _, err := g.Approve(id); err != nil {
		t.Fatal(err)
	}
	g.Admit(disables(3, 10), Totals{EnabledAccounts: 100}, nil, now.Add(2*time.Hour))
	// A newer destructive state of a held object joins the batch instead of being published,
	// and the order of what is published follows the order of the changes.
	again := disables(1, 10)
	harmless := []Change{{Path: "entra.user.N1", Object: user("N1", true)}, again[0], {Path: "entra.user.N2", Object: user("N2", true)}}
	if diff := cmp.Diff([]string{"N1", "N2"}, keys(g.Admit(harmless, Totals{EnabledAccounts: 100}, nil, now.Add(3*time.Hour)))); diff != "" {
		t.Errorf("admitted (-want +got):\n%s", diff)
	}
	if !g.Held(again[0].Path) {
		t.Error("held object released by a newer destructive state")
	}
}

func TestBatchIDsAreNotGuessable(t *testing.T) {
	format := regexp.MustCompile(`^b-[0-9a-f]{20}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := newBatchID()
		if !format.MatchString(id) {
			t.Fatalf("batch id %q is not b- and 80 random bits in hex", id)
		}
		if seen[id] {
			t.Fatalf("batch id %q repeated", id)
		}
		seen[id] = true
	}
}
