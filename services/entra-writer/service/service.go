// Package service wires entra-writer together: the Graph client, the writer, its durable consumer
// of DIRECTORY (target entra) and the servers. main and the local stack both start it here.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

	"github.com/orgsync/orgsync/pkg/converge"
	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/budget"
	"github.com/orgsync/orgsync/services/entra-writer/internal/drift"
	"github.com/orgsync/orgsync/services/entra-writer/internal/graph"
	"github.com/orgsync/orgsync/services/entra-writer/internal/webhook"
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
	// FirstDayMailSender is the mailbox that sends new hires' first-day Temporary Access Passes,
	// and approved helpdesk requests' passes and passwords, to the workers' managers
	// (writer.Options.CredentialMailSender); empty: none is made.
	FirstDayMailSender string
	// FirstDayWebhookURL, when set, receives those credentials instead of the manager's mailbox,
	// signed with FirstDayWebhookSecret (Standard Webhooks' whsec_…) and named
	// FirstDayWebhookName in results and audit records.
	FirstDayWebhookURL    string
	FirstDayWebhookSecret string
	FirstDayWebhookName   string
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
// the default, or report), ENTRA_MEMBERSHIP_GATHER (2s; 0 binds each batch's additions at once)
// and the channel of first-day Temporary Access Passes (docs/access.md) and of helpdesk
// credentials (docs/helpdesk.md), at most one of:
// ENTRA_FIRST_DAY_MAIL_SENDER (the mailbox, a userPrincipalName, that sends them to managers) or
// ENTRA_FIRST_DAY_WEBHOOK_URL with ENTRA_FIRST_DAY_WEBHOOK_SECRET (or _FILE; Standard Webhooks'
// whsec_…) and ENTRA_FIRST_DAY_WEBHOOK_NAME (default ticketing); neither: none are made.
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
		RedisURL:            env.Secret("REDIS_URL"),
		DryRun:              env.Bool("DRY_RUN", false),
		ManagedDomains:      strings.FieldsFunc(env.String("MANAGED_UPN_DOMAINS", ""), func(r rune) bool { return r == ',' || r == ' ' }),
		DriftInterval:       env.Duration("ENTRA_DRIFT_INTERVAL", 15*time.Minute),
		MembershipGather:    env.Duration("ENTRA_MEMBERSHIP_GATHER", 2*time.Second),
		FirstDayMailSender:  strings.TrimSpace(env.String("ENTRA_FIRST_DAY_MAIL_SENDER", "")),
		FirstDayWebhookURL:  strings.TrimSpace(env.String("ENTRA_FIRST_DAY_WEBHOOK_URL", "")),
		FirstDayWebhookName: env.String("ENTRA_FIRST_DAY_WEBHOOK_NAME", "ticketing"),
	}
	if cfg.FirstDayWebhookURL != "" {
		cfg.FirstDayWebhookSecret = env.Secret("ENTRA_FIRST_DAY_WEBHOOK_SECRET")
		switch {
		case cfg.FirstDayMailSender != "":
			env.Fail("ENTRA_FIRST_DAY_WEBHOOK_URL", errors.New("first-day passes go to one channel: set it or ENTRA_FIRST_DAY_MAIL_SENDER, not both"))
		case !strings.HasPrefix(cfg.FirstDayWebhookURL, "https://") && !strings.HasPrefix(cfg.FirstDayWebhookURL, "http://"):
			env.Fail("ENTRA_FIRST_DAY_WEBHOOK_URL", errors.New("is not an http(s) URL"))
		case cfg.FirstDayWebhookSecret == "":
			env.Fail("ENTRA_FIRST_DAY_WEBHOOK_SECRET", errors.New("is required with ENTRA_FIRST_DAY_WEBHOOK_URL: the webhook is signed"))
		}
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
	server *server.Server
	conn   *nats.Conn
	js     jetstream.JetStream
	logger *slog.Logger
	writer *writer.Writer
	// consumer takes DIRECTORY, stepping aside while the writer is paused.
	consumer converge.Consumer
	// lease makes one replica the active one: only it consumes and runs drift.
	lease *converge.Lease
	// results follows RESULTS live, so object ids created by other replicas are known here.
	results *converge.Results
	admin   converge.Admin
	drift   *drift.Reconciler
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
		opts, parseErr := redis.ParseURL(cfg.RedisURL)
		if parseErr != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", errors.New(redactedParseError(parseErr)))
		}
		rdb = redis.NewClient(opts)
		// A start that fails leaves no connection open (err is New's result).
		defer func() {
			if err != nil {
				_ = rdb.Close()
			}
		}()
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
		dir = budget.Wrap(client, budget.NewShared(rdb, cfg.BudgetKey, cfg.WriteBudget, logger))
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
	var sender converge.Sender = stream.NewPublisher(js)
	consumerName := ConsumerName
	if cfg.DryRun {
		sender, consumerName = loggingSender{logger}, ConsumerName+"-dry-run"
	}
	if cfg.DryRun && (cfg.FirstDayMailSender != "" || cfg.FirstDayWebhookURL != "") {
		// A dry run makes no credential: Graph's answer, which alone shows the pass, is not sent.
		logger.Warn("DRY_RUN: first-day Temporary Access Passes and helpdesk credentials are not made")
		cfg.FirstDayMailSender, cfg.FirstDayWebhookURL = "", ""
	}
	var credentialWebhook writer.CredentialWebhook
	if cfg.FirstDayWebhookURL != "" {
		endpoint, err := webhook.New(cfg.FirstDayWebhookName, cfg.FirstDayWebhookURL, cfg.FirstDayWebhookSecret)
		if err != nil {
			nc.Close()
			return nil, err
		}
		credentialWebhook = endpoint
	}
	latest, err := converge.DirectoryLatest(ctx, js)
	if err != nil {
		nc.Close()
		return nil, err
	}
	w := writer.New(dir, sender, logger, writer.Options{ManagedDomains: cfg.ManagedDomains, PausedRetry: cfg.PauseProbe, Latest: latest, GatherWindow: cfg.MembershipGather,
		CredentialMailSender: cfg.FirstDayMailSender, CredentialWebhook: credentialWebhook})
	// Replicas learn each other's object ids from RESULTS.
	results, err := converge.LoadResults(ctx, js, orgsyncv1.Target_TARGET_ENTRA, w.Seed)
	if err != nil {
		nc.Close()
		return nil, err
	}
	consumer, err := js.CreateOrUpdateConsumer(ctx, stream.Directory, jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "entra-writer: converges Entra ID to the desired state",
		FilterSubject: subject.DirectoryFilter(orgsyncv1.Target_TARGET_ENTRA),
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
	lease, err := converge.NewLease(ctx, js, consumerName, logger)
	if err != nil {
		nc.Close()
		return nil, err
	}
	srv.AddCheck("jetstream", stream.ReadyCheck(nc, js))
	srv.AddCheck("graph", cachedCheck(client.Ping, 15*time.Second))
	driftPolicy := cfg.DriftPolicy
	if cfg.DryRun {
		driftPolicy = drift.Report
	}
	reconciler := drift.New(client, w, converge.DesiredStates(js, orgsyncv1.Target_TARGET_ENTRA), driftPolicy, logger)
	admin := converge.Admin{
		Service: Name, Target: orgsyncv1.Target_TARGET_ENTRA, JS: js, Pause: w.Pause(), DryRun: cfg.DryRun,
		Drift:     func(ctx context.Context) (any, error) { return reconciler.Pass(ctx) },
		LastDrift: reconciler.LastPass, Lease: lease, Logger: logger,
	}
	admin.Serve(srv)
	return &Service{server: srv, conn: nc, js: js, logger: logger, writer: w, results: results, admin: admin, lease: lease,
		consumer: converge.Consumer{
			Consumer: consumer, BatchSize: batchSize, Handle: w.HandleBatch, Pause: w.Pause(),
			Probe: client.Ping, ProbeEvery: cfg.PauseProbe, Logger: logger,
		},
		drift: reconciler, driftInterval: cfg.DriftInterval, gatherWindow: cfg.MembershipGather}, nil
}

// active is the work of the replica holding the lease, until ctx ends (the lease is lost or the
// service stops): consuming DIRECTORY, binding held memberships on time, and drift.
func (s *Service) active(ctx context.Context) error {
	// Held additions go back to the stream at once, for whichever replica is active next.
	defer s.writer.ReleaseGathered()
	group, groupCtx := errgroup.WithContext(ctx)
	group.Go(func() error { return s.consumer.Run(groupCtx) })
	if s.gatherWindow > 0 {
		// Held membership additions are bound when their window ends, also when no further
		// message arrives to trigger it.
		group.Go(func() error {
			return converge.Every(groupCtx, max(s.gatherWindow/4, 50*time.Millisecond), s.writer.FlushGathered)
		})
	}
	if s.driftInterval > 0 {
		group.Go(func() error { return s.drift.Run(groupCtx, s.driftInterval) })
	}
	return group.Wait()
}

// loggingSender logs what the writer would publish, for a dry run.
type loggingSender struct{ logger *slog.Logger }

func (s loggingSender) Publish(ctx context.Context, subject, _ string, m proto.Message) (*jetstream.PubAck, error) {
	s.logger.InfoContext(ctx, "dry run: not published", "subject", subject, "message", prototext.Format(m))
	return &jetstream.PubAck{}, nil
}

// Active reports whether this replica holds the writer's lease: only the active replica consumes
// DIRECTORY and runs drift; the others stand by to take over.
func (s *Service) Active() bool { return s.lease.Active() }

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
	group.Go(func() error { return s.lease.Run(groupCtx, s.active) })
	group.Go(func() error { return stream.ReportStatus(groupCtx, s.js, 0, s.admin.Status(s.server.Ready)) })
	// A standby follows RESULTS too, so it knows every object id when it takes over.
	group.Go(func() error { return s.results.Follow(groupCtx) })
	err := group.Wait()
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
