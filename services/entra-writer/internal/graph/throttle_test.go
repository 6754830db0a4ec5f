package graph

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/orgsync/orgsync/services/entra-writer/internal/budget"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// TestRetryAfterPausesEveryCall: after Graph's 429 with Retry-After, no call of this client or of
// another sharing the pause (another replica) reaches Graph until the wait is over — reads,
// writes and $batch alike; each is answered as Graph would answer it, with the time left.
func TestRetryAfterPausesEveryCall(t *testing.T) {
	emu := emulator.New(emulator.WithFaults(emulator.Faults{ThrottleRate: 1, RetryAfter: 30 * time.Second}))
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	pause := budget.NewLocalPause()
	replica := func() *Client {
		client, err := New(srv.URL+"/v1.0", NoAuth(), WithThrottle(pause))
		if err != nil {
			t.Fatal(err)
		}
		return client
	}
	first, second := replica(), replica()
	throttled := func(what string, err error, most time.Duration) {
		t.Helper()
		var dirErr *directory.Error
		if !errors.As(err, &dirErr) || dirErr.Class != directory.ClassThrottled || dirErr.RetryAfter <= 0 || dirErr.RetryAfter > most {
			t.Errorf("%s: %v; want throttled with a Retry-After of at most %s", what, err, most)
		}
	}
	_, err := first.GetUser(t.Context(), "00000000-0000-0000-0000-000000000001")
	throttled("the call Graph throttled", err, 30*time.Second)

	emu.SetFaults(emulator.Faults{}) // Graph would answer now: the pause, not Graph, keeps calls out
	sent := emu.Stats().Requests
	_, err = first.GetGroup(t.Context(), "00000000-0000-0000-0000-000000000002")
	throttled("a read inside the window", err, 30*time.Second)
	throttled("a write of another replica inside the window",
		second.AddMembers(t.Context(), "00000000-0000-0000-0000-000000000002", []string{"00000000-0000-0000-0000-000000000001"}), 30*time.Second)
	for _, err := range second.RemoveMembers(t.Context(), []directory.MemberRef{{GroupID: "00000000-0000-0000-0000-000000000002", MemberID: "00000000-0000-0000-0000-000000000001"}}) {
		throttled("a $batch inside the window", err, 30*time.Second)
	}
	stats := emu.Stats()
	if stats.Requests != sent || stats.CallsInRetryAfterWindow != 0 {
		t.Errorf("calls sent inside the window: %d (the emulator counted %d); want none", stats.Requests-sent, stats.CallsInRetryAfterWindow)
	}
}

// TestServiceUnavailableDelaysOnlyItsRequest: a 503 with Retry-After is the service unavailable
// for that request, not the app throttled: the next call goes to Graph at once, and the refused
// call carries the advised delay for its own retry.
func TestServiceUnavailableDelaysOnlyItsRequest(t *testing.T) {
	emu := emulator.New(emulator.WithFaults(emulator.Faults{ServerErrorRate: 1, RetryAfter: 30 * time.Second, Seed: 3}))
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	pause := budget.NewLocalPause()
	client, err := New(srv.URL+"/v1.0", NoAuth(), WithThrottle(pause))
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.GetUser(t.Context(), "00000000-0000-0000-0000-000000000001")
	if directory.ClassOf(err) != directory.ClassTransient {
		t.Fatalf("GetUser = %v, want a transient refusal", err)
	}
	emu.SetFaults(emulator.Faults{})
	sent := emu.Stats().Requests
	if _, err := client.GetGroup(t.Context(), "00000000-0000-0000-0000-000000000002"); directory.ClassOf(err) != directory.ClassNotFound {
		t.Errorf("the next call: %v, want Graph's own answer (not found)", err)
	}
	if got := emu.Stats().Requests - sent; got != 1 {
		t.Errorf("%d calls reached Graph after the 503, want 1", got)
	}
	if left, _ := pause.Remaining(t.Context()); left != 0 {
		t.Errorf("paused for %v after a 503", left)
	}
}
