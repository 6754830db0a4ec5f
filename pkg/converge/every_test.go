package converge

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestEveryCallsUntilTheContextEnds: Every calls f on each tick with its context, and returns nil
// once that context ends (a writer stepping down or stopping).
func TestEveryCallsUntilTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- Every(ctx, 5*time.Millisecond, func(got context.Context) {
			if got != ctx {
				t.Error("f did not get Every's context")
			}
			if calls.Add(1) == 3 {
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Every = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls, want 3 (none after the context ended)", n)
	}
}
