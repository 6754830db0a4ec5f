package service

import (
	"errors"
	"sync/atomic"
)

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
