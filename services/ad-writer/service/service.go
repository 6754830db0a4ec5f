// Package service wires ad-writer together: the LDAP pool, the writer, its durable consumer of
// DIRECTORY (target ad), the drift reconcile and the servers. main starts it here.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/orgsync/orgsync/pkg/converge"
	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
	"github.com/orgsync/orgsync/services/ad-writer/internal/writer"
)

// Name is the service name in health checks, telemetry and logs.
const Name = "ad-writer"

// ConsumerName is the durable consumer all ad-writer replicas share.
const ConsumerName = "ad-writer"

// batchSize is how many DIRECTORY messages are taken at once: a unit's memberships fit in one
// batch, so they go out as a few chunked modifies.
const batchSize = 500

// Config is ad-writer's configuration.
type Config struct {
	NATSURL string
	// NATS is how the service authenticates to NATS (NATS_CREDS_FILE, …) and whether it creates the streams.
	NATS    stream.ClientConfig
	Server  server.Config
	Streams stream.Config
	LDAP    ldap.Config
	Writer  writer.Options
	// DriftInterval is how often the uSNChanged reconcile runs (0: never).
	DriftInterval time.Duration
	// PauseProbe is how often a paused writer asks the DC whether it answers again; default 5s.
	PauseProbe time.Duration
}

// ConfigFromEnv reads NATS_URL, HTTP_ADDR (default :8083), GRPC_ADDR (default :9093), LDAP_URL,
// LDAP_BIND_DN, LDAP_BIND_PASSWORD_FILE, LDAP_CA_FILE, LDAP_POOL_SIZE (2), AD_BASE_DN,
// AD_USERS_OU, AD_GROUPS_OU, AD_LEAVERS_OU, AD_MANAGED_OUS (";"-separated, default the three),
// AD_MARKER_ATTRIBUTE (adminDescription) and AD_MARKER_VALUE (managed-by:orgsync),
// AD_MUST_CHANGE_PASSWORD (true), AD_KEEP_RDN_ON_RENAME (false), AD_MEMBER_CHUNK (500),
// AD_DRY_RUN (false), AD_DRIFT_INTERVAL (5m; 0 turns it off), AD_DRIFT_POLICY (correct or
// report), AD_PAUSE_PROBE (5s), and ADMIN_ADDR (default :8183: GET /v1/dead-letters for viewers,
// POST /v1/dead-letters/replay and POST /v1/drift/reconcile for operators) with ORGSYNC_AUTH_*
// and GRPC_TLS_* (server.ConfigFromEnv).
func ConfigFromEnv(env *envconfig.Env) (Config, error) {
	cfg := Config{
		NATSURL: env.String("NATS_URL", nats.DefaultURL),
		NATS:    stream.ClientConfigFromEnv(env, false),
		Server:  adminServerConfig(server.ConfigFromEnv(Name, env, ":8083", ":9093"), env),
		Streams: stream.ConfigFromEnv(env),
		LDAP: ldap.Config{
			URL: env.Required("LDAP_URL"), BindDN: env.Required("LDAP_BIND_DN"), CAFile: env.Required("LDAP_CA_FILE"),
			PoolSize: env.Int("LDAP_POOL_SIZE", 2), DryRun: env.Bool("AD_DRY_RUN", false),
		},
		Writer: writer.Options{
			BaseDN: env.Required("AD_BASE_DN"), UsersOU: env.Required("AD_USERS_OU"), GroupsOU: env.Required("AD_GROUPS_OU"),
			LeaversOU:       env.String("AD_LEAVERS_OU", ""),
			MarkerAttribute: env.String("AD_MARKER_ATTRIBUTE", "adminDescription"), MarkerValue: env.String("AD_MARKER_VALUE", "managed-by:orgsync"),
			MustChangePassword: env.Bool("AD_MUST_CHANGE_PASSWORD", true), KeepRDNOnRename: env.Bool("AD_KEEP_RDN_ON_RENAME", false),
			MemberChunk: env.Int("AD_MEMBER_CHUNK", 500),
		},
		DriftInterval: env.Duration("AD_DRIFT_INTERVAL", 5*time.Minute),
		PauseProbe:    env.Duration("AD_PAUSE_PROBE", 5*time.Second),
	}
	if ous := env.String("AD_MANAGED_OUS", ""); ous != "" {
		cfg.Writer.ManagedOUs = strings.Split(ous, ";")
	}
	switch policy := env.String("AD_DRIFT_POLICY", "correct"); policy {
	case "correct":
	case "report":
		cfg.Writer.DriftReportOnly = true
	default:
		env.Fail("AD_DRIFT_POLICY", fmt.Errorf("%q is not correct or report", policy))
	}
	if file := env.String("LDAP_BIND_PASSWORD_FILE", ""); file != "" {
		secret, err := os.ReadFile(file)
		if err != nil {
			env.Fail("LDAP_BIND_PASSWORD_FILE", err)
		}
		cfg.LDAP.BindPassword = strings.TrimRight(string(secret), "\r\n")
	} else {
		env.Fail("LDAP_BIND_PASSWORD_FILE", errors.New("required: the bind password is read from a file"))
	}
	if !strings.HasPrefix(cfg.LDAP.URL, "ldaps://") && !strings.HasPrefix(cfg.LDAP.URL, "ldap://") {
		env.Fail("LDAP_URL", fmt.Errorf("%q is not ldaps:// or ldap:// (StartTLS)", cfg.LDAP.URL))
	}
	if cfg.Writer.MemberChunk < 1 || cfg.Writer.MemberChunk > 1500 {
		env.Fail("AD_MEMBER_CHUNK", errors.New("must be 1 to 1500"))
	}
	if cfg.PauseProbe <= 0 {
		env.Fail("AD_PAUSE_PROBE", errors.New("must be positive"))
	}
	return cfg, env.Err()
}

// adminServerConfig gives the admin routes (dead letters, drift) their own listener:
// ADMIN_ADDR, default :8183.
func adminServerConfig(cfg server.Config, env *envconfig.Env) server.Config {
	cfg.AdminAddr = env.String("ADMIN_ADDR", ":8183")
	return cfg
}

// Service is a running ad-writer.
type Service struct {
	cfg    Config
	server *server.Server
	conn   *nats.Conn
	js     jetstream.JetStream
	logger *slog.Logger
	client *ldap.Client
	writer *writer.Writer
	// consumer takes DIRECTORY, stepping aside while the DC does not answer.
	consumer converge.Consumer
	// lease makes one replica the active one: only it consumes and runs drift.
	lease *converge.Lease
	// results follows RESULTS live, so a standby knows the object GUIDs and revisions the active
	// replica wrote when it takes over.
	results *converge.Results
	admin   converge.Admin

	driftMu   sync.Mutex
	lastDrift time.Time
}

// New opens the listeners, connects to JetStream, prepares the LDAP pool and loads the writer's
// earlier results so a restarted writer knows the objects it manages.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (_ *Service, err error) {
	client, err := ldap.New(cfg.LDAP, logger)
	if err != nil {
		return nil, err
	}
	if cfg.LDAP.DryRun {
		logger.Warn("AD_DRY_RUN: LDAP writes are logged, not sent")
	}
	if cfg.Server.AdminAddr == "" {
		// Built without ConfigFromEnv (tests, the local stack): the admin routes still get a
		// listener, on loopback.
		cfg.Server.AdminAddr = "127.0.0.1:0"
	}
	if cfg.PauseProbe <= 0 {
		cfg.PauseProbe = 5 * time.Second
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
	nc, js, err := stream.ConnectWith(ctx, cfg.NATSURL, Name, cfg.NATS, cfg.Streams, logger)
	if err != nil {
		return nil, err
	}
	opts := cfg.Writer
	if opts.Latest, err = converge.DirectoryLatest(ctx, js); err != nil {
		nc.Close()
		return nil, err
	}
	w := writer.New(client, stream.NewPublisher(js), logger, opts)
	results, err := converge.LoadResults(ctx, js, orgsyncv1.Target_TARGET_AD, w.Seed)
	if err != nil {
		nc.Close()
		return nil, err
	}
	consumer, err := js.CreateOrUpdateConsumer(ctx, stream.Directory, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "ad-writer: converges Active Directory to the desired state",
		FilterSubject: subject.DirectoryFilter(orgsyncv1.Target_TARGET_AD),
		AckPolicy:     jetstream.AckExplicitPolicy,
		// Short, for failover: a batch in hand is reported in progress every 10 s
		// (converge.Consumer), so only a replica that died leaves its batch to be delivered
		// again, 30 s later, to the replica active next.
		AckWait:       30 * time.Second,
		MaxAckPending: 5000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	lease, err := converge.NewLease(ctx, js, ConsumerName, logger)
	if err != nil {
		nc.Close()
		return nil, err
	}
	srv.AddCheck("jetstream", stream.ReadyCheck(nc, js))
	srv.AddCheck("ldap", client.Ping)
	s := &Service{cfg: cfg, server: srv, conn: nc, js: js, logger: logger, client: client, writer: w, results: results, lease: lease,
		consumer: converge.Consumer{
			Consumer: consumer, BatchSize: batchSize, Handle: w.HandleBatch, Pause: w.Pause(),
			Probe: client.Ping, ProbeEvery: cfg.PauseProbe, Logger: logger,
		}}
	s.admin = converge.Admin{
		Service: Name, Target: orgsyncv1.Target_TARGET_AD, JS: js, Pause: w.Pause(), DryRun: cfg.LDAP.DryRun,
		Drift:     func(ctx context.Context) (any, error) { return s.Reconcile(ctx) },
		LastDrift: s.LastDrift, Lease: lease, Logger: logger,
	}
	s.admin.Serve(srv)
	return s, nil
}

// HTTPAddr is where health is served.
func (s *Service) HTTPAddr() string { return s.server.HTTPAddr().String() }

// Operations returns the LDAP operations sent so far, by kind.
func (s *Service) Operations() map[string]int64 { return s.client.Operations() }

// Durations returns the time spent in LDAP operations so far, by kind.
func (s *Service) Durations() map[string]time.Duration { return s.client.Durations() }

// DriftPass is what a drift pass found: the objects edited outside orgsync and corrected (or,
// under AD_DRIFT_POLICY=report, found).
type DriftPass struct {
	Changed int `json:"changed"`
}

// Reconcile runs one drift reconcile pass now.
func (s *Service) Reconcile(ctx context.Context) (DriftPass, error) {
	changed, err := s.writer.Reconcile(ctx)
	if err == nil {
		s.driftMu.Lock()
		s.lastDrift = time.Now()
		s.driftMu.Unlock()
	}
	return DriftPass{Changed: changed}, err
}

// LastDrift is when the last drift pass ended (zero: none yet).
func (s *Service) LastDrift() time.Time {
	s.driftMu.Lock()
	defer s.driftMu.Unlock()
	return s.lastDrift
}

// GRPCAddr is where gRPC health is served.
func (s *Service) GRPCAddr() string { return s.server.GRPCAddr().String() }

// AdminAddr is where the admin routes (dead letters, drift) are served.
func (s *Service) AdminAddr() string { return s.server.AdminAddr().String() }

// Paused returns why the writer is paused, or nil.
func (s *Service) Paused() error {
	if paused, reason := s.writer.Pause().Paused(); paused {
		return errors.New(reason)
	}
	return nil
}

// Active reports whether this replica holds the writer's lease: only the active replica consumes
// DIRECTORY and runs drift; the others stand by to take over.
func (s *Service) Active() bool { return s.lease.Active() }

// Run applies desired state until ctx ends, then stops the servers, drains NATS and closes LDAP.
func (s *Service) Run(ctx context.Context) error {
	s.logger.Info("serving", "http", s.HTTPAddr())
	group, groupCtx := errgroup.WithContext(ctx)
	group.Go(func() error { return s.server.Run(groupCtx) })
	group.Go(func() error { return s.lease.Run(groupCtx, s.active) })
	group.Go(func() error { return s.results.Follow(groupCtx) })
	group.Go(func() error { return stream.ReportStatus(groupCtx, s.js, 0, s.admin.Status(s.server.Ready)) })
	err := group.Wait()
	if drainErr := s.conn.Drain(); drainErr != nil {
		err = errors.Join(err, fmt.Errorf("draining NATS: %w", drainErr))
	}
	s.client.Close()
	return err
}

// active is the work of the replica holding the lease, until ctx ends (the lease is lost or the
// service stops): consuming DIRECTORY and drift.
func (s *Service) active(ctx context.Context) error {
	group, groupCtx := errgroup.WithContext(ctx)
	group.Go(func() error { return s.consumer.Run(groupCtx) })
	if s.cfg.DriftInterval > 0 {
		group.Go(func() error {
			return converge.Every(groupCtx, s.cfg.DriftInterval, func(ctx context.Context) {
				if _, err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
					s.logger.Warn("drift reconcile incomplete", "error", err)
				}
			})
		})
	}
	return group.Wait()
}
