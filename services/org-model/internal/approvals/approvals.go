// Package approvals decides on the batches the mass-change guard holds: an approval publishes a
// batch's objects, a rejection drops them and keeps the rejected states durable. Both run on the
// engine's goroutine, in order with HR events, and are refused at once (ErrPublishing) while
// publishing to DIRECTORY fails instead of waiting behind the publish being retried.
package approvals

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/decisions"
	"github.com/orgsync/orgsync/services/org-model/internal/engine"
	"github.com/orgsync/orgsync/services/org-model/internal/guard"
	"github.com/orgsync/orgsync/services/org-model/internal/publish"
)

// ErrPublishing is the answer to an approval while DIRECTORY refuses desired state: it would
// wait behind the changes already waiting to be published, so it is refused at once (gRPC
// Unavailable), with nothing decided.
var ErrPublishing = errors.New("org-model cannot publish desired state now (stream DIRECTORY refuses it); nothing was decided — try again once it accepts")

// Engine runs a function on the goroutine that owns the model.
type Engine interface {
	Do(ctx context.Context, fn func(ctx context.Context) error) error
}

var _ Engine = (*engine.Engine)(nil)

// Guard holds the batches decided on.
type Guard interface {
	Batch(id string) (*guard.Batch, bool)
	Approve(id string) ([]*orgsyncv1.DesiredObject, error)
	Reject(id string) (int, error)
}

var _ Guard = (*guard.Guard)(nil)

// Decisions keeps the decisions and the guard's rejections durable.
type Decisions interface {
	Record(ctx context.Context, batch *orgsyncv1.PendingBatch)
	SaveRejections(ctx context.Context) error
}

var _ Decisions = (*decisions.Store)(nil)

// Publisher publishes an approved object, retrying until DIRECTORY acknowledges, and says
// whether publishing is failing now.
type Publisher interface {
	Publish(ctx context.Context, obj *orgsyncv1.DesiredObject, cause *orgsyncv1.Cause) error
	Failing() bool
}

var _ Publisher = (*publish.Retrier)(nil)

// Clock says what time it is.
type Clock interface{ Now() time.Time }

// Approvals approves and rejects held batches. Approve and Reject are safe for concurrent use:
// they run on the engine's goroutine.
type Approvals struct {
	engine    Engine
	guard     Guard
	decisions Decisions
	publisher Publisher
	clock     Clock
	// lifetime ends when the service stops: an approval's objects are published until then
	// even when its caller has gone away.
	lifetime context.Context
}

// New returns the approvals over the given engine, guard, decisions store and publisher.
func New(engine Engine, guard Guard, decisions Decisions, publisher Publisher, clock Clock) *Approvals {
	return &Approvals{engine: engine, guard: guard, decisions: decisions, publisher: publisher, clock: clock}
}

// SetLifetime sets the context whose end stops publishing an approved batch whose caller has
// gone away. Call it before the engine runs; without it an approval publishes until its objects
// are all acknowledged.
func (a *Approvals) SetLifetime(ctx context.Context) { a.lifetime = ctx }

// Approve publishes a pending batch; the causes of its objects name the batch and who approved it.
func (a *Approvals) Approve(ctx context.Context, batchID string) (decided *orgsyncv1.PendingBatch, published int, err error) {
	err = a.decide(ctx, func(ctx context.Context) error {
		decided, published, err = a.approveNow(ctx, batchID)
		return err
	})
	return decided, published, err
}

// approveNow approves a pending batch on the engine's goroutine.
func (a *Approvals) approveNow(ctx context.Context, batchID string) (*orgsyncv1.PendingBatch, int, error) {
	held, ok := a.guard.Batch(batchID)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %q", guard.ErrNoBatch, batchID)
	}
	objects, err := a.guard.Approve(batchID)
	if err != nil {
		return nil, 0, err
	}
	now := a.clock.Now()
	by := decisions.PrincipalOf(ctx)
	decided := decisions.DecidedBatch(held, orgsyncv1.Decision_DECISION_APPROVED, by, now)
	a.decisions.Record(ctx, decided)
	cause := &orgsyncv1.Cause{Reason: "held batch approved", ComputedAt: timestamppb.New(now), ApprovalBatchId: batchID, ApprovedBy: by}
	// The batch is decided: its objects are published even if the caller goes away meanwhile
	// (stopping half-way would leave the rest unpublished until a restart, and held again then),
	// for as long as the service runs.
	publishCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	if a.lifetime != nil {
		defer context.AfterFunc(a.lifetime, cancel)()
	}
	for _, obj := range objects {
		if err := a.publisher.Publish(publishCtx, obj, cause); err != nil {
			return decided, 0, err
		}
	}
	return decided, len(objects), nil
}

// decide runs an approval or a rejection on the engine: refused at once with ErrPublishing while
// publishing to DIRECTORY fails (the engine is then retrying a publish for as long as it takes),
// and given up with ErrPublishing, nothing decided, when ctx ends before the engine takes it.
func (a *Approvals) decide(ctx context.Context, decision func(ctx context.Context) error) error {
	if a.publisher.Failing() {
		return ErrPublishing
	}
	taken := false
	err := a.engine.Do(ctx, func(ctx context.Context) error {
		taken = true
		if a.publisher.Failing() {
			return ErrPublishing
		}
		return decision(ctx)
	})
	if err != nil && !taken {
		return fmt.Errorf("%w (%w)", ErrPublishing, err)
	}
	return err
}

// Reject drops a pending batch and keeps its rejected states in the decisions bucket, so that a
// restart does not hold them again.
func (a *Approvals) Reject(ctx context.Context, batchID string) (decided *orgsyncv1.PendingBatch, rejected int, err error) {
	err = a.decide(ctx, func(ctx context.Context) error {
		decided, rejected, err = a.rejectNow(ctx, batchID)
		return err
	})
	return decided, rejected, err
}

// rejectNow rejects a pending batch on the engine's goroutine.
func (a *Approvals) rejectNow(ctx context.Context, batchID string) (*orgsyncv1.PendingBatch, int, error) {
	held, ok := a.guard.Batch(batchID)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %q", guard.ErrNoBatch, batchID)
	}
	n, err := a.guard.Reject(batchID)
	if err != nil {
		return nil, 0, err
	}
	decided := decisions.DecidedBatch(held, orgsyncv1.Decision_DECISION_REJECTED, decisions.PrincipalOf(ctx), a.clock.Now())
	a.decisions.Record(ctx, decided)
	return decided, n, a.decisions.SaveRejections(ctx)
}
