// Package service wires org-model together — configuration, constructors, start and stop — and
// holds no behaviour of its own: package apply replays stream HR and publishes the desired state
// to DIRECTORY (only what changed) on the engine's goroutine, package results follows the
// writers' results, package query serves the API. main and the local stack both start it here.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/errgroup"

	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
	"github.com/orgsync/orgsync/services/org-model/internal/access"
	"github.com/orgsync/orgsync/services/org-model/internal/apply"
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

// IdentifiersBucket is the JetStream key-value bucket of the identifiers org-model assigned
// and the values foreign accounts hold (identifiers.Bucket).
const IdentifiersBucket = identifiers.Bucket

// CheckpointBucket is the JetStream object store that keeps org-model's checkpoint.
const CheckpointBucket = checkpoint.Bucket

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
	server *server.Server
	conn   *nats.Conn
	js     jetstream.JetStream
	logger *slog.Logger
	guard  *guard.Guard
	// model is the organisation; the engine's goroutine owns it, the query API and the
	// checkpoint read it.
	model *model.Model
	// resultsFollower reads the writers' results into the query API's results and hands them to
	// the applier.
	resultsFollower *results.Follower
	// engine is the one goroutine that applies HR events, due transitions, approvals, writers'
	// conflicts and checkpoints to the model and publishes what changes; approvals wait for it
	// only as long as their request.
	engine *engine.Engine
	// applier replays and follows HR, reconciles, and publishes what changes, on the engine.
	applier *apply.Applier
	// approvals approves and rejects the batches the guard holds, on the engine.
	approvals *approvals.Approvals
	// publishing publishes admitted objects with retries and says whether publishing to
	// DIRECTORY is failing now.
	publishing *publish.Retrier
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
	publisher := desired.NewPublisher(stream.NewPublisher(js))
	causes := audit.NewCauses()
	writerResults := query.NewResults()
	s := &Service{server: srv, conn: nc, js: js, logger: logger, guard: guard.New(pol.Guard), model: model.New(pol, targets...)}
	decisionsStore := decisions.NewStore(decisionsKV, s.guard, logger)
	s.publishing = publish.NewRetrier(publisher, causes, logger)
	s.engine = engine.New(cfg.Clock)
	// Delegations and helpdesk decisions publish through the Applier, made next.
	s.access = access.New(s.engine, s.model, accessKV,
		func(ctx context.Context, changes []*orgsyncv1.DesiredObject, cause *orgsyncv1.Cause) error {
			return s.applier.Emit(ctx, changes, cause)
		}, cfg.Clock, func() bool { return s.applier.CaughtUp() }, logger)
	s.checkpoints = checkpoint.New(checkpoints, cfg.Checkpoint, s.model, s.engine, cfg.Clock, logger)
	s.applier = apply.New(apply.Deps{
		Model:         s.model,
		Guard:         s.guard,
		Published:     publisher,
		Publisher:     s.publishing,
		LoadPublished: func(ctx context.Context) error { return publish.LoadPublished(ctx, js, publisher, causes) },
		Decisions:     decisionsStore,
		Identifiers:   identifiers,
		Checkpoints:   s.checkpoints,
		Grants:        s.access,
		HR:            hrfollow.New(js, logger),
		Engine:        s.engine,
		Clock:         cfg.Clock,
		Logger:        logger,
	})
	s.resultsFollower = results.NewFollower(js, writerResults, s.applier.NoteResult, logger)
	s.approvals = approvals.New(s.engine, s.guard, decisionsStore, s.publishing, cfg.Clock)
	orgsyncv1grpc.RegisterOrgModelServiceServer(srv.GRPC(), query.NewServer(query.Deps{
		Model: s.model, Publisher: publisher, Results: writerResults, Guard: s.guard, Clock: cfg.Clock,
		Approve: s.approvals.Approve, Reject: s.approvals.Reject, Decided: decisionsStore.List, Ready: s.applier.CaughtUp, PlanTimeout: cfg.PlanTimeout,
		Audit: audit.NewReader(js, causes).List, Streams: func(ctx context.Context) ([]*orgsyncv1.StreamStatus, error) { return status.Streams(ctx, js) },
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
		if !s.applier.CaughtUp() {
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
	group.Go(func() error { return s.applier.Follow(groupCtx) })
	group.Go(func() error { return s.resultsFollower.Run(groupCtx) })
	group.Go(func() error { return s.engine.Run(groupCtx, s.applier) })
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

// guardHeld counts the changes the mass-change guard holds.
func (s *Service) guardHeld() int {
	held := 0
	for _, batch := range s.guard.Pending() {
		held += len(batch.Objects)
	}
	return held
}
