// Package apply keeps stream DIRECTORY in step with the organisation HR describes: it replays
// stream HR at start (from the newest checkpoint when there is one), reconciles the whole desired
// state once caught up, then applies each new HR event, each lifecycle transition as it falls
// due, and each writer's report that an identifier is held by an account orgsync does not
// manage — and passes what changes through the mass-change guard to DIRECTORY.
//
// Everything that touches the model runs on the one engine goroutine (package engine): Follow
// and NoteResult hand their work to it, and the Applier is the engine's Schedule. The Applier
// decides and sequences; the model (package model) computes, and the ports below store and
// publish.
package apply

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/metrics"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/access"
	"github.com/orgsync/orgsync/services/org-model/internal/checkpoint"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
	"github.com/orgsync/orgsync/services/org-model/internal/decisions"
	"github.com/orgsync/orgsync/services/org-model/internal/desired"
	"github.com/orgsync/orgsync/services/org-model/internal/engine"
	"github.com/orgsync/orgsync/services/org-model/internal/guard"
	"github.com/orgsync/orgsync/services/org-model/internal/hrfollow"
	"github.com/orgsync/orgsync/services/org-model/internal/identifiers"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
	"github.com/orgsync/orgsync/services/org-model/internal/publish"
)

// Engine runs a function on the goroutine that owns the model.
type Engine interface {
	Do(ctx context.Context, fn func(ctx context.Context) error) error
}

var _ Engine = (*engine.Engine)(nil)

// Published is what org-model last published to DIRECTORY, per object path.
type Published interface {
	Last(path string) *orgsyncv1.DesiredObject
	Revision(path string) (uint64, bool)
	Live() []*orgsyncv1.DesiredObject
	Totals() (enabledUsers, memberships int)
}

var _ Published = (*desired.Publisher)(nil)

// Publisher publishes an admitted object, retrying until DIRECTORY acknowledges or ctx ends.
type Publisher interface {
	Publish(ctx context.Context, obj *orgsyncv1.DesiredObject, cause *orgsyncv1.Cause) error
}

var _ Publisher = (*publish.Retrier)(nil)

// Decisions keeps the guard's rejections durable across restarts.
type Decisions interface {
	Load(ctx context.Context) error
	SaveRejections(ctx context.Context) error
}

var _ Decisions = (*decisions.Store)(nil)

// Identifiers records the identifiers org-model assigned and the values foreign accounts hold.
type Identifiers interface {
	Load(ctx context.Context) (assignments []model.Assignment, held []model.HeldIdentifier, unreadable int, err error)
	Record(ctx context.Context, assignments []model.Assignment, held []model.HeldIdentifier, now time.Time) error
}

var _ Identifiers = (*identifiers.Store)(nil)

// Checkpoints restores the model from its newest checkpoint and learns which HR sequence the
// model has applied.
type Checkpoints interface {
	Restore(ctx context.Context, firstSeq, lastSeq uint64) (covered uint64)
	NoteApplied(sequence uint64)
}

var _ Checkpoints = (*checkpoint.Checkpointer)(nil)

// HR reads stream HR.
type HR interface {
	Bounds(ctx context.Context) (first, last uint64, err error)
	Follow(ctx context.Context, startSeq uint64, apply func(ctx context.Context, event *orgsyncv1.HREvent, sequence uint64) error) error
}

var _ HR = (*hrfollow.Follower)(nil)

// Grants are the delegations and approved helpdesk memberships, kept apart from HR: loaded into
// the model before the replay (its reconcile publishes what they give), and named as the cause
// of the starts and ends they put on the model's schedule.
type Grants interface {
	Load(ctx context.Context) error
	DueCause(changes []*orgsyncv1.DesiredObject, base *orgsyncv1.Cause, now time.Time) *orgsyncv1.Cause
}

var _ Grants = (*access.Service)(nil)

// Deps are what an Applier works with. LoadPublished reads what DIRECTORY holds into Published
// before anything is replayed. Grants may be nil: then there are no delegations.
type Deps struct {
	Model         *model.Model
	Guard         *guard.Guard
	Published     Published
	Publisher     Publisher
	LoadPublished func(ctx context.Context) error
	Decisions     Decisions
	Identifiers   Identifiers
	Checkpoints   Checkpoints
	Grants        Grants
	HR            HR
	Engine        Engine
	Clock         clock.Clock
	Logger        *slog.Logger
}

// Applier applies HR, due transitions and identifier conflicts to the model and publishes what
// changes. Follow is one goroutine, owned by its caller; NoteResult and CaughtUp are safe for
// concurrent use; NextDue and Due are called by the engine on its goroutine.
type Applier struct {
	deps Deps
	// caughtUp is set once the HR replay at start has been applied and reconciled.
	caughtUp atomic.Bool
	// heldConflicts are writers' conflict results read before the replay was done; the engine's
	// goroutine owns it.
	heldConflicts []*orgsyncv1.WriterResult
}

var _ engine.Schedule = (*Applier)(nil)

// New returns an Applier over deps; nothing happens until Follow runs.
func New(deps Deps) *Applier { return &Applier{deps: deps} }

// CaughtUp says whether the HR replay at start has been applied and reconciled: until then the
// model is incomplete, so queries and readiness wait for it.
func (a *Applier) CaughtUp() bool { return a.caughtUp.Load() }

// Follow replays stream HR without publishing — from the newest checkpoint when there is one,
// else from the start — reconciles the whole desired state once caught up, and from then on
// publishes what each new event changes. It blocks until ctx ends or reading HR fails.
func (a *Applier) Follow(ctx context.Context) error {
	if err := a.deps.LoadPublished(ctx); err != nil {
		return err
	}
	if err := a.deps.Decisions.Load(ctx); err != nil {
		return err
	}
	if err := a.loadIdentifiers(ctx); err != nil {
		return err
	}
	if a.deps.Grants != nil {
		if err := a.deps.Engine.Do(ctx, a.deps.Grants.Load); err != nil {
			return err
		}
	}
	firstSeq, replayUntil, err := a.deps.HR.Bounds(ctx)
	if err != nil {
		return err
	}
	var startSeq uint64
	if covered := a.deps.Checkpoints.Restore(ctx, firstSeq, replayUntil); covered > 0 {
		startSeq = covered + 1
		if covered >= replayUntil {
			replayUntil = 0
		}
	}
	if replayUntil == 0 {
		if err := a.deps.Engine.Do(ctx, a.reconcile); err != nil {
			return err
		}
	}
	return a.deps.HR.Follow(ctx, startSeq, func(ctx context.Context, event *orgsyncv1.HREvent, sequence uint64) error {
		return a.deps.Engine.Do(ctx, func(ctx context.Context) error { return a.apply(ctx, event, sequence, replayUntil) })
	})
}

// apply applies one HR event on the engine's goroutine: recorded during the replay at start (and
// the whole state reconciled after the last one), applied and published after.
func (a *Applier) apply(ctx context.Context, event *orgsyncv1.HREvent, sequence, replayUntil uint64) error {
	a.deps.Checkpoints.NoteApplied(sequence)
	if !a.caughtUp.Load() {
		a.deps.Model.Record(event, a.deps.Clock.Now())
		if sequence >= replayUntil {
			return a.reconcile(ctx)
		}
		return nil
	}
	// The process span says which event it applied (ids only), and the accept time travels on as
	// baggage to the writers, which measure the change's end-to-end latency from it.
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.String("orgsync.hr.event_id", event.GetEventId()), attribute.String("orgsync.hr.source", event.GetSource()))
	if workerID := event.GetWorker().GetWorkerId(); workerID != "" {
		span.SetAttributes(attribute.String("orgsync.worker_id", workerID))
	}
	if unitID := event.GetOrgUnit().GetOrgUnitId(); unitID != "" {
		span.SetAttributes(attribute.String("orgsync.org_unit_id", unitID))
	}
	if event.GetReceivedAt() != nil {
		ctx = metrics.WithAcceptedAt(ctx, event.GetReceivedAt().AsTime())
	}
	changes := a.deps.Model.Apply(event, a.deps.Clock.Now())
	cause := &orgsyncv1.Cause{
		HrEventId:  event.GetEventId(),
		HrSequence: sequence,
		Reason:     reason(event),
		ComputedAt: timestamppb.New(a.deps.Clock.Now()),
	}
	return a.emit(ctx, changes, cause)
}

// NextDue is when the model's next lifecycle transition falls due; zero before the replay at
// start is done (its reconcile applies those that fell due while the service was down).
func (a *Applier) NextDue() time.Time {
	if !a.caughtUp.Load() {
		return time.Time{}
	}
	return a.deps.Model.NextDue()
}

// Due applies and publishes the transitions due at now, exactly when they fall due.
func (a *Applier) Due(ctx context.Context, now time.Time) error {
	changes := a.deps.Model.Advance(now)
	cause := &orgsyncv1.Cause{Reason: "lifecycle transition due", ComputedAt: timestamppb.New(now)}
	if a.deps.Grants != nil {
		cause = a.deps.Grants.DueCause(changes, cause, now)
	}
	return a.emit(ctx, changes, cause)
}

// Emit passes one batch of changes made outside HR (a delegation, a helpdesk decision) through
// the guard and publishes what it admits; it must run on the engine's goroutine.
func (a *Applier) Emit(ctx context.Context, changes []*orgsyncv1.DesiredObject, cause *orgsyncv1.Cause) error {
	return a.emit(ctx, changes, cause)
}

// reconcile publishes every desired object that differs from DIRECTORY and a tombstone for every
// published object no longer desired, then marks the replay caught up.
func (a *Applier) reconcile(ctx context.Context) error {
	ctx, span := otel.Tracer("github.com/orgsync/orgsync/services/org-model").Start(ctx, "reconcile")
	defer span.End()
	now := a.deps.Clock.Now()
	cause := &orgsyncv1.Cause{Reason: "reconcile at start", ComputedAt: timestamppb.New(now)}
	all := a.deps.Model.ComputeAll(now)
	changes := model.Diff(all, a.deps.Published.Live())
	changes = append(changes, a.stillRejected(all, changes)...)
	if err := a.emit(ctx, changes, cause); err != nil {
		return err
	}
	a.caughtUp.Store(true)
	if err := a.takeHeldConflicts(ctx); err != nil {
		return err
	}
	a.deps.Logger.InfoContext(ctx, "caught up with HR", "desired_objects", len(all))
	return nil
}

// stillRejected returns the desired objects that model.Diff left out because they equal what is
// published but whose path the guard keeps a rejection for, so that the guard sees HR has moved
// away from the rejected state (as it would have when reconcile passed every desired object).
func (a *Applier) stillRejected(all, changes []*orgsyncv1.DesiredObject) []*orgsyncv1.DesiredObject {
	rejected, _ := a.deps.Guard.Rejected()
	if len(rejected) == 0 {
		return nil
	}
	inChanges := make(map[string]bool, len(changes))
	for _, obj := range changes {
		inChanges[guard.PathOf(obj)] = true
	}
	var out []*orgsyncv1.DesiredObject
	for _, obj := range all {
		if path := guard.PathOf(obj); rejected[path] != nil && !inChanges[path] {
			out = append(out, obj)
		}
	}
	return out
}

// emit passes one batch of changes through the guard and publishes what it admits.
func (a *Applier) emit(ctx context.Context, changes []*orgsyncv1.DesiredObject, cause *orgsyncv1.Cause) error {
	if err := a.recordIdentifiers(ctx); err != nil {
		return err
	}
	if len(changes) == 0 {
		return nil
	}
	classified := make([]guard.Change, len(changes))
	for i, obj := range changes {
		path := guard.PathOf(obj)
		classified[i] = guard.Change{Path: path, Object: obj, Effect: guard.Classify(a.deps.Published.Last(path), obj)}
	}
	enabled, memberships := a.deps.Published.Totals()
	admitted := a.deps.Guard.Admit(classified, guard.Totals{EnabledAccounts: enabled, Memberships: memberships}, cause, a.deps.Clock.Now())
	if held := len(changes) - len(admitted); held > 0 {
		a.deps.Logger.WarnContext(ctx, "changes held by the mass-change guard", "held", held, "cause", cause.GetReason(), "hr_event_id", cause.GetHrEventId())
	}
	for _, obj := range admitted {
		if err := a.deps.Publisher.Publish(ctx, obj, cause); err != nil {
			return err
		}
	}
	// A rejected state that HR has since moved away from is no longer suppressed.
	if err := a.deps.Decisions.SaveRejections(ctx); err != nil {
		a.deps.Logger.WarnContext(ctx, "guard decisions not saved; a restart may hold rejected changes again", "error", err)
	}
	return nil
}

// reason is the cause's reason for an HR event: what kind of change it was, without personal data.
func reason(event *orgsyncv1.HREvent) string {
	switch p := event.GetPayload().(type) {
	case *orgsyncv1.HREvent_Worker:
		return "worker " + strings.ToLower(strings.TrimPrefix(p.Worker.GetEmploymentStatus().String(), "EMPLOYMENT_STATUS_")) + " in HR"
	case *orgsyncv1.HREvent_OrgUnit:
		return "org unit changed in HR"
	case *orgsyncv1.HREvent_Snapshot:
		return "HR snapshot " + strings.ToLower(strings.TrimPrefix(p.Snapshot.GetPhase().String(), "PHASE_"))
	default:
		return "HR event"
	}
}
