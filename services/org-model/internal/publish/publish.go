// Package publish sends admitted desired objects to stream DIRECTORY, retrying a refused publish
// until DIRECTORY acknowledges, and says whether publishing is failing now (approvals are refused
// meanwhile instead of waiting behind the retry).
package publish

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/audit"
	"github.com/orgsync/orgsync/services/org-model/internal/desired"
)

// Desired is the publisher of desired state that Retrier retries: it sends an object unless
// DIRECTORY already holds that state, and knows each path's revision.
type Desired interface {
	Publish(ctx context.Context, obj *orgsyncv1.DesiredObject, cause *orgsyncv1.Cause) (bool, error)
	Revision(path string) (uint64, bool)
}

var _ Desired = (*desired.Publisher)(nil)

// Causes remembers why each revision was published, for the audit trail's join.
type Causes interface {
	Record(path string, revision uint64, cause audit.Cause)
}

var _ Causes = (*audit.Causes)(nil)

// Retrier publishes desired objects with retries. Publish is called from the engine's goroutine
// (and an approval's, on the engine); Failing is safe for concurrent use.
type Retrier struct {
	desired Desired
	causes  Causes
	logger  *slog.Logger
	failed  atomic.Bool
}

// NewRetrier returns a Retrier over desired that records each published revision's cause in causes.
func NewRetrier(desired Desired, causes Causes, logger *slog.Logger) *Retrier {
	return &Retrier{desired: desired, causes: causes, logger: logger}
}

// Publish retries until DIRECTORY acknowledges or ctx ends: HR is read by an ordered consumer that
// does not redeliver, so giving up here would lose the change until the next restart. It blocks
// for as long as DIRECTORY refuses.
func (r *Retrier) Publish(ctx context.Context, obj *orgsyncv1.DesiredObject, cause *orgsyncv1.Cause) error {
	backoff := 100 * time.Millisecond
	for {
		published, err := r.desired.Publish(ctx, obj, cause)
		r.failed.Store(err != nil)
		if err == nil {
			if path, pathErr := subject.ObjectPath(obj); published && pathErr == nil {
				revision, _ := r.desired.Revision(path)
				r.causes.Record(path, revision, audit.Cause{Cause: cause, TraceID: audit.TraceID(ctx), ApprovalBatchID: cause.GetApprovalBatchId()})
			}
			return nil
		}
		r.logger.WarnContext(ctx, "desired state not published; retrying", "key", obj.GetKey(), "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// Failing reports whether the last publish attempt failed.
func (r *Retrier) Failing() bool { return r.failed.Load() }
