package engine_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/org-model/internal/clock"
	"github.com/orgsync/orgsync/services/org-model/internal/engine"
)

// fakeSchedule has one transition due at next; Due records when it ran and clears it.
type fakeSchedule struct {
	mu   sync.Mutex
	next time.Time
	ran  []time.Time
	err  error
}

func (f *fakeSchedule) NextDue() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next
}

func (f *fakeSchedule) Due(_ context.Context, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ran = append(f.ran, now)
	f.next = time.Time{}
	return f.err
}

func (f *fakeSchedule) runs() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.ran...)
}

var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

// start runs an engine until the test ends and returns a function that stops it and returns
// Run's error.
func start(t *testing.T, clk engine.Clock, schedule engine.Schedule) (*engine.Engine, func() error) {
	t.Helper()
	e := engine.New(clk)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, schedule) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { _ = stop() })
	return e, stop
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestEngine(t *testing.T) {
	t.Run("changes from many callers run one at a time, each once", func(t *testing.T) {
		e, _ := start(t, clock.NewFake(t0), &fakeSchedule{})
		var running, maxRunning, total atomic.Int64
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for range 50 {
					err := e.Do(t.Context(), func(context.Context) error {
						now := running.Add(1)
						if now > maxRunning.Load() {
							maxRunning.Store(now)
						}
						total.Add(1)
						running.Add(-1)
						return nil
					})
					if err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if got := total.Load(); got != 1000 {
			t.Errorf("%d changes ran, want 1000", got)
		}
		if got := maxRunning.Load(); got != 1 {
			t.Errorf("%d changes ran at once, want 1", got)
		}
	})

	t.Run("a change's error reaches its caller", func(t *testing.T) {
		e, _ := start(t, clock.NewFake(t0), &fakeSchedule{})
		errBad := errors.New("bad change")
		if err := e.Do(t.Context(), func(context.Context) error { return errBad }); !errors.Is(err, errBad) {
			t.Errorf("Do = %v, want %v", err, errBad)
		}
	})

	t.Run("a caller stops waiting while the engine is busy, and its change never runs", func(t *testing.T) {
		e, _ := start(t, clock.NewFake(t0), &fakeSchedule{})
		release := make(chan struct{})
		busy := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			_ = e.Do(t.Context(), func(context.Context) error { close(busy); <-release; return nil })
		})
		<-busy
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		ran := false
		if err := e.Do(ctx, func(context.Context) error { ran = true; return nil }); !errors.Is(err, context.Canceled) {
			t.Errorf("Do = %v, want context.Canceled", err)
		}
		close(release)
		wg.Wait()
		// A change after it runs, and the one given up did not.
		if err := e.Do(t.Context(), func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if ran {
			t.Error("the change whose caller gave up ran")
		}
	})

	t.Run("a transition applies when the clock reaches it, not before", func(t *testing.T) {
		clk := clock.NewFake(t0)
		schedule := &fakeSchedule{next: t0.Add(time.Hour)}
		e, _ := start(t, clk, schedule)
		// A change goes through the loop, which has armed the timer by then.
		if err := e.Do(t.Context(), func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		clk.Advance(59 * time.Minute)
		if err := e.Do(t.Context(), func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if got := schedule.runs(); len(got) != 0 {
			t.Fatalf("transition ran at %v, before it was due", got)
		}
		clk.Advance(time.Minute)
		eventually(t, func() bool { return len(schedule.runs()) == 1 })
		if diff := cmp.Diff([]time.Time{t0.Add(time.Hour)}, schedule.runs()); diff != "" {
			t.Errorf("transitions ran at (-want +got):\n%s", diff)
		}
	})

	t.Run("a failing transition stops the engine with its error, and later changes are refused", func(t *testing.T) {
		clk := clock.NewFake(t0)
		errPublish := errors.New("publish failed")
		schedule := &fakeSchedule{next: t0, err: errPublish}
		e := engine.New(clk)
		if err := e.Run(t.Context(), schedule); !errors.Is(err, errPublish) {
			t.Errorf("Run = %v, want %v", err, errPublish)
		}
		if err := e.Do(t.Context(), func(context.Context) error { return nil }); !errors.Is(err, engine.ErrStopped) {
			t.Errorf("Do after stop = %v, want ErrStopped", err)
		}
	})
}
