// Package service wires hr-ingest together: configuration from the environment and the policy
// file, the JetStream connection, the rate limiter, the HTTP handlers and the servers. main and
// the local stack both start it here.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/ratelimit"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/ingest"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/policy"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/poll"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/writeback"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

// Name is the service name in health checks, telemetry and logs.
const Name = "hr-ingest"

// SourceConfig is one HR source (see package source): the one source configuration the policy
// file is read into and the pipeline is built from.
type SourceConfig = source.Config

// SourceAPI is where and how hr-ingest reads a notified employee from the source's vendor.
type SourceAPI = source.API

// SourcePoll is how hr-ingest polls a source of kind poll.
type SourcePoll = source.Poll

// SourcePollAuth is how a poll source's requests prove who sends them.
type SourcePollAuth = source.PollAuth

// SourceWriteBack is what hr-ingest writes back to a source (off unless it names attributes).
type SourceWriteBack = source.WriteBack

// SourceCallback is a signed webhook a source's write-back is sent to.
type SourceCallback = source.Callback

// WriteBackAttribute is an account attribute written back to a source.
type WriteBackAttribute = source.Attribute

// The attributes written back.
const (
	WriteBackUPN  = source.AttributeUPN
	WriteBackMail = source.AttributeMail
)

// SourceKind is how a source talks to orgsync.
type SourceKind = source.Kind

// Source kinds: how a source talks to orgsync.
const (
	KindCanonical = source.KindCanonical
	KindSCIM      = source.KindSCIM
	KindBambooHR  = source.KindBambooHR
	KindCSV       = source.KindCSV
	KindHiBob     = source.KindHiBob
	KindPoll      = source.KindPoll
	KindPersonio  = source.KindPersonio
)

// Config is hr-ingest's configuration.
type Config struct {
	NATSURL string
	// NATS is how the service authenticates to NATS (NATS_CREDS_FILE, …) and whether it creates the streams.
	NATS stream.ClientConfig
	// RedisURL, when set, makes the per-source rate limits shared across replicas.
	RedisURL           string
	Server             server.Config
	Streams            stream.Config
	Sources            []SourceConfig
	TimestampTolerance time.Duration
	MaxBodyBytes       int64
	PublishTimeout     time.Duration
	// RetryAfter is what a 503 asks the sender to wait; default 5s.
	RetryAfter time.Duration
	// OpenAPI is the OpenAPI document served at GET /openapi.yaml (main embeds it).
	OpenAPI []byte
	// UnauthenticatedPerMinute is each client address's budget of failed authentications per
	// minute (bursts of twice as many); default 10.
	UnauthenticatedPerMinute int
	// MaxInFlight caps the requests served at once; default 256.
	MaxInFlight int
	// SnapshotLockTTL is how long a source's open snapshot holds others of the source off
	// without being refreshed (a replica that died mid-upload); default 10m.
	SnapshotLockTTL time.Duration
	// TrustedProxies are reverse proxies whose X-Forwarded-For names the client.
	TrustedProxies []netip.Prefix
}

// ConfigFromEnv reads the configuration: NATS_URL, REDIS_URL, HTTP_ADDR (default :8080),
// GRPC_ADDR (default :9090), ORGSYNC_CONFIG (the policy file whose "sources" list configures the
// sources of every kind), HR_SOURCES (comma-separated canonical sources) and, per source,
// HR_SOURCE_<NAME>_SECRET or HR_SOURCE_<NAME>_SECRET_FILE holding one or more whsec_ secrets
// separated by spaces, WEBHOOK_TOLERANCE (default 5m), MAX_BODY_BYTES (default 1 MiB),
// PUBLISH_TIMEOUT (default 5s), RETRY_AFTER (default 5s), UNAUTHENTICATED_PER_MINUTE (failed
// authentications allowed per client address, default 10), MAX_IN_FLIGHT (default 256) and
// TRUSTED_PROXIES (comma-separated CIDR prefixes of reverse proxies whose X-Forwarded-For names
// the client), SNAPSHOT_LOCK_TTL (default 10m). At least one source must be configured.
func ConfigFromEnv(env *envconfig.Env) (Config, error) {
	cfg := Config{
		NATSURL:            env.String("NATS_URL", nats.DefaultURL),
		NATS:               stream.ClientConfigFromEnv(env, false),
		RedisURL:           env.Secret("REDIS_URL"),
		Server:             server.ConfigFromEnv(Name, env, ":8080", ":9090"),
		Streams:            stream.ConfigFromEnv(env),
		TimestampTolerance: env.Duration("WEBHOOK_TOLERANCE", 5*time.Minute),
		MaxBodyBytes:       int64(env.Int("MAX_BODY_BYTES", 1<<20)),
		PublishTimeout:     env.Duration("PUBLISH_TIMEOUT", 5*time.Second),
		RetryAfter:         env.Duration("RETRY_AFTER", 5*time.Second),
	}
	cfg.UnauthenticatedPerMinute = env.Int("UNAUTHENTICATED_PER_MINUTE", 10)
	cfg.MaxInFlight = env.Int("MAX_IN_FLIGHT", 256)
	cfg.SnapshotLockTTL = env.Duration("SNAPSHOT_LOCK_TTL", 10*time.Minute)
	for _, cidr := range strings.Split(env.String("TRUSTED_PROXIES", ""), ",") {
		if cidr = strings.TrimSpace(cidr); cidr == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(cidr)
		if err != nil {
			env.Fail("TRUSTED_PROXIES", fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/8", cidr))
			continue
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, prefix)
	}
	if cfg.UnauthenticatedPerMinute <= 0 {
		env.Fail("UNAUTHENTICATED_PER_MINUTE", fmt.Errorf("%d is not a positive number of requests", cfg.UnauthenticatedPerMinute))
	}
	if cfg.MaxInFlight <= 0 {
		env.Fail("MAX_IN_FLIGHT", fmt.Errorf("%d is not a positive number of requests", cfg.MaxInFlight))
	}
	if path := env.String("ORGSYNC_CONFIG", ""); path != "" {
		sources, err := policy.Load(path, func(name string) (string, bool) {
			v := env.Secret(name)
			return v, v != ""
		})
		if err != nil {
			env.Fail("ORGSYNC_CONFIG", err)
		}
		cfg.Sources = append(cfg.Sources, sources...)
	}
	for _, name := range strings.Split(env.String("HR_SOURCES", ""), ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		variable := "HR_SOURCE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_SECRET"
		canonical := SourceConfig{Name: name, Kind: KindCanonical}
		for i, value := range strings.Fields(env.Secret(variable)) {
			secret, err := webhook.ParseSecret(value)
			if err != nil {
				env.Fail(variable, fmt.Errorf("secret %d: %w", i+1, err))
				continue
			}
			canonical.Secrets = append(canonical.Secrets, secret)
		}
		if len(canonical.Secrets) == 0 {
			env.Fail(variable, errors.New("source "+name+" needs at least one secret (or "+variable+"_FILE)"))
		}
		cfg.Sources = append(cfg.Sources, canonical)
	}
	if len(cfg.Sources) == 0 && env.Err() == nil {
		env.Fail("HR_SOURCES", errors.New("no HR source is configured: set ORGSYNC_CONFIG (its sources list) or HR_SOURCES"))
	}
	if err := cfg.Validate(); err != nil {
		env.Fail("ORGSYNC_CONFIG", err)
	}
	return cfg, env.Err()
}

// Validate checks that every source has a known kind, a unique name and credentials for its
// kind.
func (c Config) Validate() error { return source.ValidateAll(c.Sources) }

// Service is a running hr-ingest.
type Service struct {
	server   *server.Server
	conn     *nats.Conn
	js       jetstream.JetStream
	redis    *redis.Client
	logger   *slog.Logger
	patterns []string
	// fetch consumes the notification sources' pending notifications until its context ends
	// (nil without such sources); Run owns its goroutine.
	fetch     func(context.Context) error
	unobserve func()
	// status reports the notification sources' fetches; nil without such sources.
	status func(context.Context) ([]notify.SourceStatus, error)
	// poller polls the poll sources (none: it does nothing); Run owns its goroutine.
	poller *poll.Poller
	// fetcher replays parked notifications; nil without notification sources.
	fetcher *notify.Fetcher
	// writeBack follows RESULTS and writes accounts back to their sources until its context
	// ends (nil when no source asked for write-back); Run owns its goroutine.
	writeBack func(context.Context) error
	// sink reports and replays the write-back; nil without it.
	sink *writeback.Sink
}

// PullStatusPattern reports, for orgsync's own clients (role viewer), how the fetches of
// notified employees stand per source (pending, oldest pending, parked, last error class) and
// how the polled sources stand (cursor, last poll, last full pull, last error, consecutive
// failures, parked).
const PullStatusPattern = "GET /v1/pull/status"

// PullReplayPattern replays a source's parked notifications (role operator), all of them or
// only those of ?employee=ID, once the cause is fixed.
const PullReplayPattern = "POST /v1/pull/{source}/replay"

// WriteBackReplayPattern writes a source's parked write-backs again (role operator), all of
// them or only ?worker=ID's, once the cause is fixed.
const WriteBackReplayPattern = "POST /v1/writeback/{source}/replay"

// OpenAPIPattern is where the OpenAPI document is served.
const OpenAPIPattern = "GET /openapi.yaml"

// New opens the listeners, connects to JetStream (waiting for it until ctx ends) and builds the
// handlers. Call Run to serve.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (_ *Service, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Whatever start-up opened is closed again when it fails: no port stays bound, no
	// connection open.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	rdb, err := ratelimit.Connect(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	if rdb != nil {
		undo = append(undo, func() { _ = rdb.Close() })
	}
	srv, err := server.New(cfg.Server, logger)
	if err != nil {
		return nil, err
	}
	undo = append(undo, srv.Close)
	nc, js, err := stream.ConnectWith(ctx, cfg.NATSURL, Name, cfg.NATS, cfg.Streams, logger)
	if err != nil {
		return nil, err
	}
	undo = append(undo, nc.Close)
	locks, err := ingest.NewJetStreamSnapshotLocks(ctx, js, cfg.SnapshotLockTTL, cfg.Streams.Replicas, logger)
	if err != nil {
		return nil, err
	}
	perMinute := cfg.UnauthenticatedPerMinute
	if perMinute <= 0 {
		perMinute = 10
	}
	var notifier ingest.Notifier
	clients := ingest.FetchClients(cfg.Sources)
	if len(clients) > 0 {
		if _, err := notify.EnsureStream(ctx, js, cfg.Streams.Replicas); err != nil {
			return nil, err
		}
		notifier = notify.NewStore(js)
	}
	limiter := ratelimit.New(rdb, "orgsync:hr-ingest:", logger)
	handler, err := ingest.NewHandler(cfg.Sources, stream.NewPublisher(js), ingest.Options{
		Notifier:             notifier,
		MaxBodyBytes:         cfg.MaxBodyBytes,
		TimestampTolerance:   cfg.TimestampTolerance,
		PublishTimeout:       cfg.PublishTimeout,
		RetryAfter:           cfg.RetryAfter,
		Limiter:              limiter,
		History:              ingest.NewJetStreamHistory(js),
		UnauthenticatedLimit: ratelimit.Limit{Events: perMinute, Period: time.Minute, Burst: 2 * perMinute},
		SnapshotLocks:        locks,
		MaxInFlight:          cfg.MaxInFlight,
		TrustedProxies:       cfg.TrustedProxies,
	}, logger)
	if err != nil {
		return nil, err
	}
	s := &Service{server: srv, conn: nc, js: js, redis: rdb, logger: logger, unobserve: func() {}}
	if len(clients) > 0 {
		fetcher := notify.NewFetcher(js, clients, handler.PublishEvent, notify.FetcherOptions{}, logger)
		run, err := fetcher.Start(ctx)
		if err != nil {
			return nil, err
		}
		s.fetch = run
		if registration, err := fetcher.ObserveMetrics(); err == nil {
			s.unobserve = func() { _ = registration.Unregister() }
		} else {
			logger.Warn("notification metrics not registered", "error", err)
		}
		s.status = fetcher.Status
		s.fetcher = fetcher
	}
	var pollStore *poll.Store
	if slices.ContainsFunc(cfg.Sources, func(c SourceConfig) bool { return c.Kind == KindPoll }) {
		if pollStore, err = poll.NewStore(ctx, js, cfg.Streams.Replicas); err != nil {
			return nil, err
		}
	}
	if s.poller, err = poll.New(cfg.Sources, pollStore, handler, locks.HoldPoll, limiter,
		poll.Options{Instance: stream.Instance()}, logger); err != nil {
		return nil, err
	}
	if s.poller.Sources() > 0 {
		if registration, err := s.poller.ObserveMetrics(); err == nil {
			unobserveNotify := s.unobserve
			s.unobserve = func() { unobserveNotify(); _ = registration.Unregister() }
		} else {
			logger.Warn("poll metrics not registered", "error", err)
		}
	}
	if sources := ingest.WriteBackSources(cfg.Sources); len(sources) > 0 {
		s.sink = writeback.New(js, sources, writeback.Options{Replicas: cfg.Streams.Replicas}, logger)
		if s.writeBack, err = s.sink.Start(ctx); err != nil {
			return nil, err
		}
		if registration, err := s.sink.ObserveMetrics(); err == nil {
			previous := s.unobserve
			s.unobserve = func() { previous(); _ = registration.Unregister() }
		} else {
			logger.Warn("write-back metrics not registered", "error", err)
		}
	}
	srv.HandleAuthenticated(PullStatusPattern, auth.Viewer, pullStatus(s.status, s.poller, s.sink))
	srv.HandleAuthenticated(PullReplayPattern, auth.Operator, replayNotifications(s.fetcher))
	srv.HandleAuthenticated(WriteBackReplayPattern, auth.Operator, replayWriteBacks(s.sink))
	s.patterns = append(s.patterns, PullStatusPattern, PullReplayPattern, WriteBackReplayPattern)
	for pattern, h := range handler.Routes() {
		srv.Handle(pattern, h)
		s.patterns = append(s.patterns, pattern)
	}
	// The dry run is for orgsync's own clients: orgsync's tokens, not a source's credentials.
	srv.HandleAuthenticated(ingest.DryRunPattern, auth.Viewer, handler.DryRun())
	s.patterns = append(s.patterns, ingest.DryRunPattern)
	if cfg.OpenAPI != nil {
		srv.Handle(OpenAPIPattern, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/yaml")
			_, _ = w.Write(cfg.OpenAPI)
		}))
		s.patterns = append(s.patterns, OpenAPIPattern)
	}
	s.patterns = append(s.patterns, "GET /healthz", "GET /readyz", "GET /metrics") // served by pkg/server
	sort.Strings(s.patterns)
	srv.AddCheck("jetstream", stream.ReadyCheck(nc, js))
	return s, nil
}

// Patterns lists every HTTP route the service serves, as ServeMux patterns.
func (s *Service) Patterns() []string { return s.patterns }

// HTTPAddr is where webhooks are received.
func (s *Service) HTTPAddr() string { return s.server.HTTPAddr().String() }

// GRPCAddr is where gRPC health and reflection are served.
func (s *Service) GRPCAddr() string { return s.server.GRPCAddr().String() }

// Run serves until ctx ends, then stops the servers, drains the NATS connection and closes Redis.
func (s *Service) Run(ctx context.Context) error {
	s.logger.Info("serving", "http", s.HTTPAddr(), "grpc", s.GRPCAddr())
	var reporter sync.WaitGroup
	reportCtx, stopReporting := context.WithCancel(ctx)
	reporter.Go(func() {
		_ = stream.ReportStatus(reportCtx, s.js, 0, stream.ReadyStatus(Name, stream.Instance(), s.server.Ready))
	})
	fetchCtx, stopFetching := context.WithCancel(ctx)
	var fetcher sync.WaitGroup
	if s.fetch != nil {
		fetcher.Go(func() {
			if err := s.fetch(fetchCtx); err != nil {
				s.logger.Error("fetching notified employees stopped", "error", err)
			}
		})
	}
	if s.poller.Sources() > 0 {
		fetcher.Go(func() { s.poller.Run(fetchCtx) })
	}
	if s.writeBack != nil {
		fetcher.Go(func() {
			if err := s.writeBack(fetchCtx); err != nil {
				s.logger.Error("writing accounts back to HR sources stopped", "error", err)
			}
		})
	}
	err := s.server.Run(ctx)
	stopFetching()
	fetcher.Wait()
	s.unobserve()
	stopReporting()
	reporter.Wait()
	if drainErr := s.conn.Drain(); drainErr != nil {
		err = errors.Join(err, fmt.Errorf("draining NATS: %w", drainErr))
	}
	if s.redis != nil {
		if closeErr := s.redis.Close(); closeErr != nil {
			err = errors.Join(err, fmt.Errorf("closing Redis: %w", closeErr))
		}
	}
	return err
}

// pullStatus answers, as JSON, the fetch status of every notification source ("sources", an
// empty list without such sources), the status of every poll source ("polls") and the
// write-back's ("writeBack", absent without it).
func pullStatus(status func(context.Context) ([]notify.SourceStatus, error), poller *poll.Poller, sink *writeback.Sink) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		statuses := []notify.SourceStatus{}
		var err error
		if status != nil {
			statuses, err = status(r.Context())
		}
		if err != nil {
			http.Error(w, "notification stream unavailable", http.StatusServiceUnavailable)
			return
		}
		polls := []poll.Status{}
		if poller.Sources() > 0 {
			if polls, err = poller.Status(r.Context()); err != nil {
				http.Error(w, "poll state unavailable", http.StatusServiceUnavailable)
				return
			}
		}
		answer := map[string]any{"sources": statuses, "polls": polls}
		if sink != nil {
			writeBack, err := sink.Status(r.Context())
			if err != nil {
				http.Error(w, "write-back state unavailable", http.StatusServiceUnavailable)
				return
			}
			answer["writeBack"] = writeBack
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	})
}

// replayNotifications replays a source's parked notifications and answers {"replayed": n}.
func replayNotifications(fetcher *notify.Fetcher) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fetcher == nil {
			http.Error(w, "no source of this hr-ingest pulls on notification", http.StatusNotFound)
			return
		}
		replayed, err := fetcher.Replay(r.Context(), r.PathValue("source"), r.URL.Query().Get("employee"))
		switch {
		case errors.Is(err, notify.ErrUnknownSource):
			http.Error(w, "source "+r.PathValue("source")+" does not pull on notification", http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, "notification stream unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int{"replayed": replayed})
	})
}

// replayWriteBacks writes a source's parked write-backs again and answers what happened.
func replayWriteBacks(sink *writeback.Sink) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sink == nil {
			http.Error(w, "no source of this hr-ingest writes back", http.StatusNotFound)
			return
		}
		result, err := sink.Replay(r.Context(), r.PathValue("source"), r.URL.Query().Get("worker"))
		switch {
		case errors.Is(err, writeback.ErrUnknownSource):
			http.Error(w, "source "+r.PathValue("source")+" does not write back", http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, "write-back state unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(result)
	})
}
