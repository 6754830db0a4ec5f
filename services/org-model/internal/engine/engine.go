// Package engine runs every change of org-model's state on one goroutine, in the order the
// changes arrive: HR events, lifecycle transitions as they fall due (clock ticks), approvals and
// rejections of held batches, writers' identifier conflicts, and checkpoints. Nothing else
// touches the model's mutable state, so no mutex is shared between the inputs; a caller hands
// its change to the engine (Do) and waits for it, and a caller that must not wait for ever
// (an approval while DIRECTORY refuses desired state) gives up when its context ends, before
// anything was done.
package engine

import (
	"context"
	"errors"
	"time"
)

// ErrStopped is returned by Do once the engine has stopped (its Run returned).
var ErrStopped = errors.New("org-model's engine has stopped")

// Clock is the time the engine schedules transitions by.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Schedule says when transitions fall due and applies them; both run on the engine's goroutine.
type Schedule interface {
	// NextDue is when the next transition falls due; zero when none is scheduled or the engine
	// should not apply transitions yet (the replay at start is not done).
	NextDue() time.Time
	// Due applies the transitions due at now.
	Due(ctx context.Context, now time.Time) error
}

type job struct {
	ctx  context.Context
	fn   func(ctx context.Context) error
	err  error
	done chan struct{}
}

// Engine is the goroutine that owns org-model's state. Do is safe for concurrent use; Run is
// called once, by the owner of the goroutine (the service's errgroup).
type Engine struct {
	clock   Clock
	jobs    chan *job
	stopped chan struct{}
}

// New returns an engine that schedules transitions by clock once Run runs. The schedule is
// given to Run, not here, because what it applies (the service's sync) hands its own changes to
// this engine and so is built after it.
func New(clock Clock) *Engine {
	return &Engine{clock: clock, jobs: make(chan *job), stopped: make(chan struct{})}
}

// Run takes changes one at a time, and applies schedule's due transitions between them, until
// ctx ends (it returns nil) or a transition fails (it returns that error). It blocks.
func (e *Engine) Run(ctx context.Context, schedule Schedule) error {
	defer close(e.stopped)
	var (
		due     <-chan time.Time
		armedAt time.Time
	)
	for {
		// Re-arm the timer only when the next due time moved, so a fake clock does not collect
		// a waiter per change.
		if next := schedule.NextDue(); !next.Equal(armedAt) {
			armedAt, due = next, nil
			if !next.IsZero() {
				due = e.clock.After(next.Sub(e.clock.Now()))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case j := <-e.jobs:
			j.err = j.fn(j.ctx)
			close(j.done)
		case <-due:
			armedAt, due = time.Time{}, nil
			if err := schedule.Due(ctx, e.clock.Now()); err != nil {
				return err
			}
		}
	}
}

// Do runs fn on the engine's goroutine, after the changes before it, and returns its error. It
// waits for the engine to take fn until ctx ends (then it returns ctx's error and fn never
// runs); once fn is taken, it waits for fn to finish, whatever ctx does, since fn may be
// deciding something that must not stop half-way. fn receives ctx and must not call Do.
func (e *Engine) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	j := &job{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case e.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-e.stopped:
		return ErrStopped
	}
	<-j.done
	return j.err
}
