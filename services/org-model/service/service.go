// Package service wires org-model together: it rebuilds the organisation by replaying stream HR,
// publishes the desired state to DIRECTORY (only what changed), follows the writers' results, and
// serves the query API. main and the local stack both start it here.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/metrics"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/access"
	"github.com/orgsync/orgsync/services/org-model/internal/approvals"
	"github.com/orgsync/orgsync/services/org-model/internal/audit"
	"github.com/orgsync/orgsync/services/org-model/internal/checkpoint"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
	"github.com/orgsync/orgsync/services/org-model/internal/config"
	"github.com/orgsync/orgsync/services/org-model/internal/decisions"
	"github.com/orgsync/orgsync/services/org-model/internal/desired"
	"github.com/orgsync/orgsync/services/org-model/internal/engine"
	"github.com/orgsync/orgsync/services/org-model/internal/guard"
	"github.com/orgsync/orgsync/services/org-model/internal/hrfollow"
	"github.com/orgsync/orgsync/services/org-model/internal/identifiers"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
	"github.com/orgsync/orgsync/services/org-model/internal/publish"
	"github.com/orgsync/orgsync/services/org-model/internal/query"
	"github.com/orgsync/orgsync/services/org-model/internal/results"
	"github.com/orgsync/orgsync/services/org-model/internal/status"
)

// Name is the service name in health checks, telemetry and logs.
const Name = config.Name

// DecisionsBucket is the JetStream key-value bucket that keeps the guard's rejections.
const DecisionsBucket = decisions.Bucket

// Config is org-model's configuration (config.Config).
type Config = config.Config

// Policy is the policy in force without a policy file, from the environment (config.Policy).
type Policy = config.Policy

// CheckpointConfig says how often org-model writes its checkpoint (config.Checkpoint).
type CheckpointConfig = config.Checkpoint

// ConfigFromEnv reads org-model's configuration from the environment; see config.FromEnv.
func ConfigFromEnv(env *envconfig.Env) (Config, error) { return config.FromEnv(env) }

// Service is a running org-model.
type Service struct {
	server    *server.Server
	conn      *nats.Conn
	js        jetstream.JetStream
	logger    *slog.Logger
	clock     clock.Clock
	model     *model.Model
	publisher *desired.Publisher
	guard     *guard.Guard
	results   *query.Results
	// causes remembers why each revision was published, for the audit trail's join.
	causes *audit.Causes
	// decisions keeps the guard's rejections and the recent decisions durable across restarts.
	decisions *decisions.Store
	// identifiers records assigned identifiers and held values.
	identifiers *identifiers.Store
	// heldConflicts are writers' conflict results read before the replay was done; the engine's
	// goroutine owns it.
	heldConflicts []*orgsyncv1.WriterResult
	// hr reads stream HR.
	hr *hrfollow.Follower
	// resultsFollower reads the writers' results into results and hands them to noteResult.
	resultsFollower *results.Follower
	// engine is the one goroutine that applies HR events, due transitions, approvals, writers'
	// conflicts and checkpoints to the model and publishes what changes; approvals wait for it
	// only as long as their request.
	engine *engine.Engine
	// approvals approves and rejects the batches the guard holds, on the engine.
	approvals *approvals.Approvals
	// publishing publishes admitted objects with retries and says whether publishing to
	// DIRECTORY is failing now.
	publishing *publish.Retrier
	// caughtUp is set once the HR replay at start has been applied and reconciled.
	caughtUp atomic.Bool
	// checkpoints writes the model's checkpoint now and then and restores it at start.
	checkpoints *checkpoint.Checkpointer
	// observers are the metric callbacks registered in New, unregistered when Run returns.
	observers []metric.Registration
	// access keeps delegations and helpdesk requests.
	access *access.Service
}

// New loads the policy, opens the listeners and connects to JetStream (waiting for it until ctx
// ends). Call Run to replay, reconcile and serve.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Service, error) {
	pol, err := cfg.LoadPolicy()
	if err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	srv, err := server.New(cfg.Server, logger)
	if err != nil {
		return nil, err
	}
	nc, js, err := stream.ConnectWith(ctx, cfg.NATSURL, Name, cfg.NATS, cfg.Streams, logger)
	if err != nil {
		srv.Close()
		return nil, err
	}
	decisionsKV, err := decisions.OpenBucket(ctx, js, cfg.Streams)
	if err != nil {
		nc.Close()
		srv.Close()
		return nil, err
	}
	identifiers, err := identifiers.Open(ctx, js, cfg.Streams, logger)
	if err != nil {
		nc.Close()
		srv.Close()
		return nil, err
	}
	var checkpoints jetstream.ObjectStore
	if cfg.Checkpoint.Events > 0 {
		if err := cfg.Validate(); err != nil {
			nc.Close()
			srv.Close()
			return nil, err
		}
		if checkpoints, err = checkpoint.OpenStore(ctx, js, cfg.Streams); err != nil {
			nc.Close()
			srv.Close()
			return nil, err
		}
	}
	accessKV, err := access.OpenBucket(ctx, js, cfg.Streams)
	if err != nil {
		nc.Close()
		srv.Close()
		return nil, err
	}
	targets := model.TargetsOf(pol)
	s := &Service{
		server:      srv,
		conn:        nc,
		js:          js,
		logger:      logger,
		clock:       cfg.Clock,
		model:       model.New(pol, targets...),
		publisher:   desired.NewPublisher(stream.NewPublisher(js)),
		guard:       guard.New(pol.Guard),
		results:     query.NewResults(),
		hr:          hrfollow.New(js, logger),
		causes:      audit.NewCauses(),
		identifiers: identifiers,
	}
	s.resultsFollower = results.NewFollower(js, s.results, s.noteResult, logger)
	s.publishing = publish.NewRetrier(s.publisher, s.causes, logger)
	s.decisions = decisions.NewStore(decisionsKV, s.guard, logger)
	s.engine = engine.New(s.clock, schedule{s})
	s.checkpoints = checkpoint.New(checkpoints, cfg.Checkpoint, s.model, s.engine, s.clock, logger)
	s.approvals = approvals.New(s.engine, s.guard, s.decisions, s.publishing, s.clock)
	s.access = access.New(s.engine, s.model, accessKV, s.emit, s.clock, s.caughtUp.Load, logger)
	orgsyncv1.RegisterOrgModelServiceServer(srv.GRPC(), query.NewServer(query.Deps{
		Model: s.model, Publisher: s.publisher, Results: s.results, Guard: s.guard, Clock: s.clock,
		Approve: s.approvals.Approve, Reject: s.approvals.Reject, Decided: s.decisions.List, Ready: s.caughtUp.Load, PlanTimeout: cfg.PlanTimeout,
		Audit: audit.NewReader(js, s.causes).List, Streams: func(ctx context.Context) ([]*orgsyncv1.StreamStatus, error) { return status.Streams(ctx, js) },
		Services: func(ctx context.Context) ([]*orgsyncv1.ServiceStatus, error) { return stream.ReadStatuses(ctx, js) },
		Access:   s.access,
	}))
	srv.Authorize(GRPCRules)
	if s.observers, err = status.Observe(js, s.guardHeld); err != nil {
		nc.Close()
		srv.Close()
		return nil, err
	}
	srv.AddCheck("jetstream", stream.ReadyCheck(nc, js))
	srv.AddCheck("hr-replay", func(context.Context) error {
		if !s.caughtUp.Load() {
			return errors.New("still replaying stream HR")
		}
		return nil
	})
	return s, nil
}

// GRPCAddr is where the query API is served.
func (s *Service) GRPCAddr() string { return s.server.GRPCAddr().String() }

// HTTPAddr is where health is served.
func (s *Service) HTTPAddr() string { return s.server.HTTPAddr().String() }

// Run seeds the publisher from DIRECTORY, replays HR, reconciles, and then applies new HR events
// and due lifecycle transitions as they come, until ctx ends; then it stops the servers and
// drains NATS.
func (s *Service) Run(ctx context.Context) error {
	s.logger.Info("serving", "grpc", s.GRPCAddr(), "http", s.HTTPAddr())
	group, groupCtx := errgroup.WithContext(ctx)
	s.approvals.SetLifetime(groupCtx)
	s.access.SetLifetime(groupCtx)
	group.Go(func() error { return s.server.Run(groupCtx) })
	group.Go(func() error { return s.followHR(groupCtx) })
	group.Go(func() error { return s.resultsFollower.Run(groupCtx) })
	group.Go(func() error { return s.engine.Run(groupCtx) })
	group.Go(func() error { return s.checkpoints.Run(groupCtx) })
	group.Go(func() error {
		return stream.ReportStatus(groupCtx, s.js, 0, stream.ReadyStatus(Name, stream.Instance(), s.server.Ready))
	})
	err := group.Wait()
	for _, observer := range s.observers {
		_ = observer.Unregister()
	}
	if drainErr := s.conn.Drain(); drainErr != nil {
		err = errors.Join(err, fmt.Errorf("draining NATS: %w", drainErr))
	}
	return err
}

// followHR replays stream HR without publishing — from the newest checkpoint when there is one,
// else from the start — reconciles the whole desired state once caught up, and from then on
// publishes what each new event changes.
func (s *Service) followHR(ctx context.Context) error {
	if err := publish.LoadPublished(ctx, s.js, s.publisher, s.causes); err != nil {
		return err
	}
	if err := s.decisions.Load(ctx); err != nil {
		return err
	}
	if err := s.loadIdentifiers(ctx); err != nil {
		return err
	}
	// Delegations and approved helpdesk memberships live apart from HR: loaded before the replay,
	// its reconcile publishes what they give.
	if err := s.engine.Do(ctx, s.access.Load); err != nil {
		return err
	}
	firstSeq, replayUntil, err := s.hr.Bounds(ctx)
	if err != nil {
		return err
	}
	var startSeq uint64
	if covered := s.checkpoints.Restore(ctx, firstSeq, replayUntil); covered > 0 {
		startSeq = covered + 1
		if covered >= replayUntil {
			replayUntil = 0
		}
	}
	if replayUntil == 0 {
		if err := s.engine.Do(ctx, s.reconcile); err != nil {
			return err
		}
	}
	return s.hr.Follow(ctx, startSeq, func(ctx context.Context, event *orgsyncv1.HREvent, sequence uint64) error {
		return s.engine.Do(ctx, func(ctx context.Context) error { return s.apply(ctx, event, sequence, replayUntil) })
	})
}

// apply applies one HR event on the engine's goroutine: recorded during the replay at start (and
// the whole state reconciled after the last one), applied and published after.
func (s *Service) apply(ctx context.Context, event *orgsyncv1.HREvent, sequence, replayUntil uint64) error {
	s.checkpoints.NoteApplied(sequence)
	if !s.caughtUp.Load() {
		s.model.Record(event, s.clock.Now())
		if sequence >= replayUntil {
			return s.reconcile(ctx)
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
	changes := s.model.Apply(event, s.clock.Now())
	cause := &orgsyncv1.Cause{
		HrEventId:  event.GetEventId(),
		HrSequence: sequence,
		Reason:     reason(event),
		ComputedAt: timestamppb.New(s.clock.Now()),
	}
	return s.emit(ctx, changes, cause)
}

// guardHeld counts the changes the mass-change guard holds.
func (s *Service) guardHeld() int {
	held := 0
	for _, batch := range s.guard.Pending() {
		held += len(batch.Objects)
	}
	return held
}

// schedule is the service's lifecycle schedule for the engine: transitions and future-dated
// records apply exactly when they fall due, once the replay at start is done (its reconcile
// applies those that fell due while the service was down).
type schedule struct{ s *Service }

var _ engine.Schedule = schedule{}

// NextDue is when the model's next transition falls due, zero before the replay is done.
func (sc schedule) NextDue() time.Time {
	if !sc.s.caughtUp.Load() {
		return time.Time{}
	}
	return sc.s.model.NextDue()
}

// Due applies and publishes the transitions due at now.
func (sc schedule) Due(ctx context.Context, now time.Time) error {
	changes := sc.s.model.Advance(now)
	cause := sc.s.access.DueCause(changes, &orgsyncv1.Cause{Reason: "lifecycle transition due", ComputedAt: timestamppb.New(now)}, now)
	return sc.s.emit(ctx, changes, cause)
}

// reconcile publishes every desired object that differs from DIRECTORY and a tombstone for every
// published object no longer desired, then marks the service caught up.
func (s *Service) reconcile(ctx context.Context) error {
	ctx, span := otel.Tracer("github.com/orgsync/orgsync/services/org-model").Start(ctx, "reconcile")
	defer span.End()
	now := s.clock.Now()
	cause := &orgsyncv1.Cause{Reason: "reconcile at start", ComputedAt: timestamppb.New(now)}
	all := s.model.ComputeAll(now)
	changes := model.Diff(all, s.publisher.Live())
	changes = append(changes, s.stillRejected(all, changes)...)
	if err := s.emit(ctx, changes, cause); err != nil {
		return err
	}
	s.caughtUp.Store(true)
	if err := s.takeHeldConflicts(ctx); err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "caught up with HR", "desired_objects", len(all))
	return nil
}

// stillRejected returns the desired objects that model.Diff left out because they equal what is
// published but whose path the guard keeps a rejection for, so that the guard sees HR has moved
// away from the rejected state (as it would have when reconcile passed every desired object).
func (s *Service) stillRejected(all, changes []*orgsyncv1.DesiredObject) []*orgsyncv1.DesiredObject {
	rejected, _ := s.guard.Rejected()
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
func (s *Service) emit(ctx context.Context, changes []*orgsyncv1.DesiredObject, cause *orgsyncv1.Cause) error {
	if err := s.recordIdentifiers(ctx); err != nil {
		return err
	}
	if len(changes) == 0 {
		return nil
	}
	classified := make([]guard.Change, len(changes))
	for i, obj := range changes {
		path := guard.PathOf(obj)
		classified[i] = guard.Change{Path: path, Object: obj, Effect: guard.Classify(s.publisher.Last(path), obj)}
	}
	enabled, memberships := s.publisher.Totals()
	admitted := s.guard.Admit(classified, guard.Totals{EnabledAccounts: enabled, Memberships: memberships}, cause, s.clock.Now())
	if held := len(changes) - len(admitted); held > 0 {
		s.logger.WarnContext(ctx, "changes held by the mass-change guard", "held", held, "cause", cause.GetReason(), "hr_event_id", cause.GetHrEventId())
	}
	for _, obj := range admitted {
		if err := s.publishing.Publish(ctx, obj, cause); err != nil {
			return err
		}
	}
	// A rejected state that HR has since moved away from is no longer suppressed.
	if err := s.decisions.SaveRejections(ctx); err != nil {
		s.logger.WarnContext(ctx, "guard decisions not saved; a restart may hold rejected changes again", "error", err)
	}
	return nil
}

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
