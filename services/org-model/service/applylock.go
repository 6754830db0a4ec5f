package service

import (
	"context"
	"errors"
	"sync/atomic"
)

// applyLock serialises applying HR events, scheduled transitions and approvals with publishing.
// Unlike a sync.Mutex, a request can stop waiting for it (LockContext): while DIRECTORY refuses
// desired state, the holder retries its publish for as long as it takes (HR is read by an ordered
// consumer that does not redeliver), and an approval must not wait behind it for ever.
type applyLock chan struct{}

func newApplyLock() applyLock { return make(applyLock, 1) }

// Lock waits for the lock.
func (l applyLock) Lock() { l <- struct{}{} }

// Unlock releases it.
func (l applyLock) Unlock() { <-l }

// LockContext waits for the lock until ctx ends.
func (l applyLock) LockContext(ctx context.Context) error {
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errPublishing is the answer to an approval while DIRECTORY refuses desired state: it would
// wait behind the changes already waiting to be published, so it is refused at once (gRPC
// Unavailable), with nothing decided.
var errPublishing = errors.New("org-model cannot publish desired state now (stream DIRECTORY refuses it); nothing was decided — try again once it accepts")

// publishHealth tracks whether publishing to DIRECTORY is failing now.
type publishHealth struct{ failed atomic.Bool }

// note records the outcome of a publish attempt.
func (h *publishHealth) note(err error) { h.failed.Store(err != nil) }

// failing reports whether the last publish attempt failed.
func (h *publishHealth) failing() bool { return h.failed.Load() }
