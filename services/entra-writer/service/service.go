// Package service wires entra-writer together: the Graph client, the writer, its durable consumer
// of DIRECTORY (target entra) and the servers. main and the local stack both start it here.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/microsoft/kiota-abstractions-go/authentication"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgauth "github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/metrics"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/budget"
	"github.com/orgsync/orgsync/services/entra-writer/internal/deadletter"
	"github.com/orgsync/orgsync/services/entra-writer/internal/drift"
	"github.com/orgsync/orgsync/services/entra-writer/internal/graph"
	"github.com/orgsync/orgsync/services/entra-writer/internal/writer"
)

// Name is the service name in health checks, telemetry and logs.
const Name = "entra-writer"

// batchSize is how many DIRECTORY messages the writer takes at once: enough for several full
// members@odata.bind requests per group during a bulk load.
const batchSize = 200

// ConsumerName is the durable consumer all entra-writer replicas share.
const ConsumerName = "entra-writer"

// Config is entra-writer's configuration.
type Config struct {
	NATSURL string
	// NATS is how the service authenticates to NATS (NATS_CREDS_FILE, …) and whether it creates the streams.
	NATS    stream.ClientConfig
	Server  server.Config
	Streams stream.Config
	// GraphBaseURL is Microsoft Graph v1.0 or the emulator.
	GraphBaseURL string
	// GraphAuth is "azure" (azidentity from AZURE_*) or "none" (the emulator).
	GraphAuth string
	// WriteBudget bounds Graph writes; zero Writes means no budget (tests, the emulator).
	WriteBudget budget.Limit
	// RedisURL, when set, makes the write budget shared by every replica.
	RedisURL string
	// BudgetKey names the shared budget: one per tenant and app.
	BudgetKey string
	// ManagedDomains are the userPrincipalName domains orgsync owns (empty: all).
	ManagedDomains []string
	// DryRun logs every Graph write instead of sending it, and logs results instead of
	// publishing them; it reads DIRECTORY with a consumer of its own.
	DryRun bool
	// PauseProbe is how often a paused writer checks whether Graph accepts its credentials
	// again; default 30s.
	PauseProbe time.Duration
	// DriftInterval is how often the drift reconcile runs (Graph delta queries); 0 turns it off.
	DriftInterval time.Duration
	// DriftPolicy says whether drift is corrected or only reported.
	DriftPolicy drift.Policy
	// MembershipGather is how long membership additions are held back per group while many
	// arrive at once, to be bound 20 at a time (writer.Options.GatherWindow); 0 turns it off.
	MembershipGather time.Duration
}

// ConfigFromEnv reads NATS_URL, HTTP_ADDR (default :8082), GRPC_ADDR (default :9092), ADMIN_ADDR
// (default :8182: GET /v1/dead-letters for viewers, POST /v1/dead-letters/replay and
// POST /v1/drift/reconcile for operators), ORGSYNC_AUTH_* and GRPC_TLS_* (server.ConfigFromEnv),
// GRAPH_BASE_URL (default Graph v1.0), GRAPH_AUTH ("azure", the default when AZURE_CLIENT_ID
// is set, or "none" for the emulator), the write budget GRAPH_WRITES_PER_WINDOW (default 2700,
// 90% of Graph's 3,000), GRAPH_WRITE_WINDOW (150s) and GRAPH_WRITE_BURST (100; 0 writes turns the
// budget off), REDIS_URL (optional: shares the budget across replicas) and MANAGED_UPN_DOMAINS
// (comma-separated userPrincipalName domains orgsync owns; users elsewhere are left alone),
// DRY_RUN (true: log the Graph writes and the results instead of making and publishing them),
// ENTRA_DRIFT_INTERVAL (15m; 0 turns the drift reconcile off), ENTRA_DRIFT_POLICY (correct,
// the default, or report) and ENTRA_MEMBERSHIP_GATHER (2s; 0 binds each batch's additions at once).
func ConfigFromEnv(env *envconfig.Env) (Config, error) {
	defaultAuth := "none"
	if env.String("AZURE_CLIENT_ID", "") != "" {
		defaultAuth = "azure"
	}
	cfg := Config{
		NATSURL:      env.String("NATS_URL", nats.DefaultURL),
		NATS:         stream.ClientConfigFromEnv(env, false),
		Server:       adminServerConfig(server.ConfigFromEnv(Name, env, ":8082", ":9092"), env),
		Streams:      stream.ConfigFromEnv(env),
		GraphBaseURL: strings.TrimRight(env.String("GRAPH_BASE_URL", graph.DefaultBaseURL), "/"),
		GraphAuth:    env.String("GRAPH_AUTH", defaultAuth),
		WriteBudget: budget.Limit{
			Writes: env.Int("GRAPH_WRITES_PER_WINDOW", 2700),
			Window: env.Duration("GRAPH_WRITE_WINDOW", 150*time.Second),
			Burst:  env.Int("GRAPH_WRITE_BURST", 100),
		},
		RedisURL:         env.Secret("REDIS_URL"),
		DryRun:           env.Bool("DRY_RUN", false),
		ManagedDomains:   strings.FieldsFunc(env.String("MANAGED_UPN_DOMAINS", ""), func(r rune) bool { return r == ',' || r == ' ' }),
		DriftInterval:    env.Duration("ENTRA_DRIFT_INTERVAL", 15*time.Minute),
		MembershipGather: env.Duration("ENTRA_MEMBERSHIP_GATHER", 2*time.Second),
	}
	if policy, err := drift.ParsePolicy(env.String("ENTRA_DRIFT_POLICY", "correct")); err != nil {
		env.Fail("ENTRA_DRIFT_POLICY", err)
	} else {
		cfg.DriftPolicy = policy
	}
	if cfg.MembershipGather < 0 {
		env.Fail("ENTRA_MEMBERSHIP_GATHER", errors.New("must not be negative (0 binds each batch's additions at once)"))
	}
	if cfg.DriftInterval < 0 {
		env.Fail("ENTRA_DRIFT_INTERVAL", errors.New("must not be negative (0 turns the drift reconcile off)"))
	}
	cfg.BudgetKey = "graph-writes:" + env.String("AZURE_TENANT_ID", cfg.GraphBaseURL) + ":" + env.String("AZURE_CLIENT_ID", "")
	if cfg.WriteBudget.Writes < 0 || cfg.WriteBudget.Burst < 0 || cfg.WriteBudget.Window <= 0 {
		env.Fail("GRAPH_WRITES_PER_WINDOW", errors.New("the write budget needs writes ≥ 0, burst ≥ 0 and a window > 0"))
	}
	if cfg.GraphAuth != "azure" && cfg.GraphAuth != "none" {
		env.Fail("GRAPH_AUTH", fmt.Errorf("%q is not azure or none", cfg.GraphAuth))
	}
	if !strings.HasPrefix(cfg.GraphBaseURL, "https://") && !strings.HasPrefix(cfg.GraphBaseURL, "http://") {
		env.Fail("GRAPH_BASE_URL", fmt.Errorf("%q is not an http(s) URL", cfg.GraphBaseURL))
	}
	return cfg, env.Err()
}

// adminServerConfig gives the admin routes (dead letters, drift) their own listener:
// ADMIN_ADDR, default :8182.
func adminServerConfig(cfg server.Config, env *envconfig.Env) server.Config {
	cfg.AdminAddr = env.String("ADMIN_ADDR", ":8182")
	return cfg
}

// Service is a running entra-writer.
type Service struct {
	server   *server.Server
	conn     *nats.Conn
	js       jetstream.JetStream
	logger   *slog.Logger
	writer   *writer.Writer
	consumer jetstream.Consumer
	// results follows RESULTS live, so object ids created by other replicas are known here.
	results    jetstream.Consumer
	ping       func(context.Context) error
	pauseProbe time.Duration
	dryRun     bool
	drift      *drift.Reconciler
	// driftInterval is how often drift runs; 0: never on its own.
	driftInterval time.Duration
	// gatherWindow is how long membership additions are held back per group.
	gatherWindow time.Duration
}

// New opens the listeners, connects to JetStream and Graph, and loads the writer's own earlier
// results so a restarted writer knows the objects it manages.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (_ *Service, err error) {
	var auth authentication.AuthenticationProvider = graph.NoAuth()
	if cfg.GraphAuth == "azure" {
		var err error
		if auth, err = graph.NewAzureAuth(cfg.GraphBaseURL); err != nil {
			return nil, err
		}
	} else if strings.HasPrefix(cfg.GraphBaseURL, graph.DefaultBaseURL) {
		logger.Warn("GRAPH_AUTH=none against Microsoft Graph itself: every call will be refused")
	}
	// Graph throttles per app and tenant: a Retry-After pauses every replica's calls, through
	// Redis when there is one (the key is the write budget's, so one per app and tenant).
	var rdb *redis.Client
	var throttle graph.Throttle = budget.NewLocalPause()
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", errors.New(redactedParseError(err)))
		}
		rdb = redis.NewClient(opts)
		throttle = budget.NewSharedPause(rdb, cfg.BudgetKey+":paused")
	}
	graphOpts := []graph.Option{graph.WithThrottle(throttle)}
	if cfg.DryRun {
		logger.Warn("dry run: Graph writes are logged, not sent; results are logged, not published")
		graphOpts = append(graphOpts, graph.WithDryRun(logger))
	}
	client, err := graph.New(cfg.GraphBaseURL, auth, graphOpts...)
	if err != nil {
		return nil, err
	}
	if cfg.Server.AdminAddr == "" {
		// Built without ConfigFromEnv (tests, the local stack): the admin routes still get a
		// listener, on loopback.
		cfg.Server.AdminAddr = "127.0.0.1:0"
	}
	srv, err := server.New(cfg.Server, logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			srv.Close()
		}
	}()
	var dir writer.Directory = client
	switch {
	case cfg.WriteBudget.Writes == 0:
		logger.Warn("no Graph write budget: writes are limited only by Graph's throttling")
	case rdb != nil:
		dir = budget.Wrap(client, budget.NewShared(rdb, cfg.BudgetKey, cfg.WriteBudget))
	default:
		dir = budget.Wrap(client, budget.NewLocal(cfg.WriteBudget))
	}
	if rdb != nil {
		srv.AddCheck("redis", func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
	}
	nc, js, err := stream.ConnectWith(ctx, cfg.NATSURL, Name, cfg.NATS, cfg.Streams, logger)
	if err != nil {
		return nil, err
	}
	if len(cfg.ManagedDomains) == 0 {
		logger.Warn("MANAGED_UPN_DOMAINS is not set: every userPrincipalName domain is treated as orgsync's")
	}
	if cfg.PauseProbe <= 0 {
		cfg.PauseProbe = 30 * time.Second
	}
	var sender writer.Sender = stream.NewPublisher(js)
	consumerName := ConsumerName
	if cfg.DryRun {
		sender, consumerName = loggingSender{logger}, ConsumerName+"-dry-run"
	}
	directoryStream, err := js.Stream(ctx, stream.Directory)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("stream %s: %w", stream.Directory, err)
	}
	latest := func(ctx context.Context, path string) (*orgsyncv1.DesiredObject, error) {
		msg, err := directoryStream.GetLastMsgForSubject(ctx, "dir."+path)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var obj orgsyncv1.DesiredObject
		if err := proto.Unmarshal(msg.Data, &obj); err != nil {
			return nil, fmt.Errorf("%s: %w", msg.Subject, err)
		}
		return &obj, nil
	}
	w := writer.New(dir, sender, logger, writer.Options{ManagedDomains: cfg.ManagedDomains, PausedRetry: cfg.PauseProbe, Latest: latest, GatherWindow: cfg.MembershipGather})
	// Replicas learn each other's object ids from RESULTS: the live follower starts before the
	// initial read, so no result falls between the two.
	results, err := js.OrderedConsumer(ctx, stream.Results, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{stream.ResultsFilter(orgsyncv1.Target_TARGET_ENTRA)},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("following RESULTS: %w", err)
	}
	if err := stream.ReadLatest(ctx, js, stream.Results, stream.ResultsFilter(orgsyncv1.Target_TARGET_ENTRA), func(msg jetstream.Msg) error {
		return seed(w, msg)
	}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("loading earlier results: %w", err)
	}
	consumer, err := js.CreateOrUpdateConsumer(ctx, stream.Directory, jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "entra-writer: converges Entra ID to the desired state",
		FilterSubject: stream.DirectoryFilter(orgsyncv1.Target_TARGET_ENTRA),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       2 * time.Minute,
		// Room for a whole load's memberships to be held back at once (see MembershipGather):
		// with less, a load gathers only what fits, and members of one group arrive apart.
		MaxAckPending: 50_000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	srv.AddCheck("jetstream", stream.ReadyCheck(nc, js))
	srv.AddCheck("graph", cachedCheck(client.Ping, 15*time.Second))
	box := deadletter.New(js, orgsyncv1.Target_TARGET_ENTRA)
	srv.HandleAdmin("GET /v1/dead-letters", orgauth.Viewer, jsonHandler(logger, func(r *http.Request) (any, error) { return box.List(r.Context()) }))
	srv.HandleAdmin("POST /v1/dead-letters/replay", orgauth.Operator, jsonHandler(logger, func(r *http.Request) (any, error) { return box.Replay(r.Context()) }))
	srv.AddCheck("writer", func(context.Context) error {
		if paused, reason := w.IsPaused(); paused {
			return fmt.Errorf("paused: %s", reason)
		}
		return nil
	})
	desired := func(ctx context.Context) ([]*orgsyncv1.DesiredObject, error) {
		var objs []*orgsyncv1.DesiredObject
		err := stream.ReadLatest(ctx, js, stream.Directory, stream.DirectoryFilter(orgsyncv1.Target_TARGET_ENTRA), func(msg jetstream.Msg) error {
			var obj orgsyncv1.DesiredObject
			if err := stream.Decode(msg, &obj); err != nil {
				return fmt.Errorf("%s: %w", msg.Subject(), err)
			}
			objs = append(objs, &obj)
			return nil
		})
		return objs, err
	}
	driftPolicy := cfg.DriftPolicy
	if cfg.DryRun {
		driftPolicy = drift.Report
	}
	reconciler := drift.New(client, w, desired, driftPolicy, logger)
	srv.HandleAdmin("POST /v1/drift/reconcile", orgauth.Operator, jsonHandler(logger, func(r *http.Request) (any, error) { return reconciler.Pass(r.Context()) }))
	return &Service{server: srv, conn: nc, js: js, logger: logger, writer: w, consumer: consumer, results: results,
		ping: client.Ping, pauseProbe: cfg.PauseProbe, dryRun: cfg.DryRun,
		drift: reconciler, driftInterval: cfg.DriftInterval, gatherWindow: cfg.MembershipGather}, nil
}

// status is what this replica reports for `orgsyncctl status`: readiness, running / paused (and
// why) / dry run, and the dead letters waiting for a replay.
func (s *Service) status(ctx context.Context) *orgsyncv1.ServiceStatus {
	st := stream.ReadyStatus(Name, stream.Instance(), s.server.Ready)(ctx)
	st.State = "running"
	if paused, reason := s.writer.IsPaused(); paused {
		st.State, st.PausedReason = "paused", reason
	} else if s.dryRun {
		st.State = "dry-run"
	}
	if last := s.drift.LastPass(); !last.IsZero() {
		st.LastDriftReconcile = timestamppb.New(last)
	}
	if dead, err := s.js.Stream(ctx, stream.DeadLetter); err == nil {
		if info, err := dead.Info(ctx, jetstream.WithSubjectFilter("dead.entra.>")); err == nil {
			st.DeadLetters = int64(len(info.State.Subjects))
			metrics.Default().DeadLetterSize(ctx, "entra", st.DeadLetters)
		}
	}
	return st
}

// consume applies DIRECTORY until ctx ends, stepping aside while the writer is paused: it stops
// fetching, probes Graph every PauseProbe, and resumes once the credentials are accepted again.
func (s *Service) consume(ctx context.Context) error {
	for ctx.Err() == nil {
		paused, _ := s.writer.Paused()
		consumeCtx, stop := context.WithCancel(ctx)
		// Stops consuming when the writer pauses; exits when consuming stops either way.
		go func() {
			select {
			case <-paused:
				stop()
			case <-consumeCtx.Done():
			}
		}()
		err := stream.ConsumeBatch(consumeCtx, s.consumer, batchSize, s.writer.HandleBatch, stream.ConsumeOptions{})
		stop()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.waitForCredentials(ctx); err != nil {
			return nil
		}
	}
	return nil
}

// waitForCredentials probes Graph until it accepts the credentials, then resumes the writer.
func (s *Service) waitForCredentials(ctx context.Context) error {
	ticker := time.NewTicker(s.pauseProbe)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
		err := s.ping(ctx)
		if err == nil {
			s.logger.Info("Graph accepts the credentials again; resuming")
			s.writer.Resume()
			return nil
		}
		s.logger.Warn("still paused", "probe", err)
	}
}

// loggingSender logs what the writer would publish, for a dry run.
type loggingSender struct{ logger *slog.Logger }

func (s loggingSender) Publish(ctx context.Context, subject, _ string, m proto.Message) (*jetstream.PubAck, error) {
	s.logger.InfoContext(ctx, "dry run: not published", "subject", subject, "message", prototext.Format(m))
	return &jetstream.PubAck{}, nil
}

// jsonHandler answers with the JSON of what serve returns, or 500 with the error.
func jsonHandler(logger *slog.Logger, serve func(*http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := serve(r)
		if err != nil {
			logger.ErrorContext(r.Context(), "admin request failed", "path", r.URL.Path, "error", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
}

// seed records one writer result, this replica's or another's.
func seed(w *writer.Writer, msg jetstream.Msg) error {
	var result orgsyncv1.WriterResult
	if err := stream.Decode(msg, &result); err != nil {
		return err
	}
	w.Seed(&result, strings.TrimPrefix(msg.Subject(), "results."))
	return nil
}

// ReconcileDrift runs one drift pass now and returns what it found.
func (s *Service) ReconcileDrift(ctx context.Context) ([]drift.Finding, error) {
	return s.drift.Pass(ctx)
}

// HTTPAddr is where health is served.
func (s *Service) HTTPAddr() string { return s.server.HTTPAddr().String() }

// AdminAddr is where the admin routes (dead letters, drift) are served.
func (s *Service) AdminAddr() string { return s.server.AdminAddr().String() }

// GRPCAddr is where gRPC health is served.
func (s *Service) GRPCAddr() string { return s.server.GRPCAddr().String() }

// Run applies desired state until ctx ends, then stops the servers and drains NATS.
func (s *Service) Run(ctx context.Context) error {
	s.logger.Info("serving", "http", s.HTTPAddr(), "grpc", s.GRPCAddr())
	group, groupCtx := errgroup.WithContext(ctx)
	group.Go(func() error { return s.server.Run(groupCtx) })
	group.Go(func() error { return s.consume(groupCtx) })
	if s.gatherWindow > 0 {
		// Held membership additions are bound when their window ends, also when no further
		// message arrives to trigger it.
		group.Go(func() error {
			ticker := time.NewTicker(max(s.gatherWindow/4, 50*time.Millisecond))
			defer ticker.Stop()
			for {
				select {
				case <-groupCtx.Done():
					return nil
				case <-ticker.C:
					s.writer.FlushGathered(groupCtx)
				}
			}
		})
	}
	group.Go(func() error { return stream.ReportStatus(groupCtx, s.js, 0, s.status) })
	if s.driftInterval > 0 {
		group.Go(func() error { return s.drift.Run(groupCtx, s.driftInterval) })
	}
	group.Go(func() error {
		return stream.Consume(groupCtx, s.results, func(_ context.Context, msg jetstream.Msg) error {
			return seed(s.writer, msg)
		}, stream.ConsumeOptions{NoAck: true})
	})
	err := group.Wait()
	s.writer.ReleaseGathered()
	if drainErr := s.conn.Drain(); drainErr != nil {
		err = errors.Join(err, fmt.Errorf("draining NATS: %w", drainErr))
	}
	return err
}

// redactedParseError describes a bad REDIS_URL without repeating it: it may hold a password.
func redactedParseError(err error) string {
	if strings.Contains(err.Error(), "://") || strings.Contains(err.Error(), "@") {
		return "not a valid redis:// or unix:// URL"
	}
	return err.Error()
}

// cachedCheck runs check at most once per interval, so readiness probes do not spend Graph
// requests.
func cachedCheck(check func(context.Context) error, interval time.Duration) func(context.Context) error {
	var mu sync.Mutex
	var last time.Time
	var lastErr error
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < interval && !last.IsZero() {
			return lastErr
		}
		lastErr, last = check(ctx), time.Now()
		return lastErr
	}
}
