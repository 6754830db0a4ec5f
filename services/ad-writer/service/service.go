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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
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
}

// ConfigFromEnv reads NATS_URL, HTTP_ADDR (default :8083), GRPC_ADDR (default :9093), LDAP_URL,
// LDAP_BIND_DN, LDAP_BIND_PASSWORD_FILE, LDAP_CA_FILE, LDAP_POOL_SIZE (2), AD_BASE_DN,
// AD_USERS_OU, AD_GROUPS_OU, AD_LEAVERS_OU, AD_MANAGED_OUS (";"-separated, default the three),
// AD_MARKER_ATTRIBUTE (adminDescription) and AD_MARKER_VALUE (managed-by:orgsync),
// AD_MUST_CHANGE_PASSWORD (true), AD_KEEP_RDN_ON_RENAME (false), AD_MEMBER_CHUNK (500),
// AD_DRY_RUN (false), AD_DRIFT_INTERVAL (5m; 0 turns it off) and AD_DRIFT_POLICY (correct or
// report).
func ConfigFromEnv(env *envconfig.Env) (Config, error) {
	cfg := Config{
		NATSURL: env.String("NATS_URL", nats.DefaultURL),
		NATS:    stream.ClientConfigFromEnv(env, false),
		Server:  server.ConfigFromEnv(Name, env, ":8083", ":9093"),
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
	return cfg, env.Err()
}

// Service is a running ad-writer.
type Service struct {
	cfg      Config
	server   *server.Server
	conn     *nats.Conn
	logger   *slog.Logger
	client   *ldap.Client
	writer   *writer.Writer
	consumer jetstream.Consumer
	results  jetstream.Consumer
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
	directory, err := js.Stream(ctx, stream.Directory)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("stream %s: %w", stream.Directory, err)
	}
	opts := cfg.Writer
	opts.Revisions = directoryRevisions{directory}
	w := writer.New(client, stream.NewPublisher(js), logger, opts)
	filter := stream.ResultsFilter(orgsyncv1.Target_TARGET_AD)
	results, err := js.OrderedConsumer(ctx, stream.Results, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("following RESULTS: %w", err)
	}
	if err := stream.ReadLatest(ctx, js, stream.Results, filter, func(msg jetstream.Msg) error { return seed(w, msg) }); err != nil {
		nc.Close()
		return nil, fmt.Errorf("loading earlier results: %w", err)
	}
	consumer, err := js.CreateOrUpdateConsumer(ctx, stream.Directory, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "ad-writer: converges Active Directory to the desired state",
		FilterSubject: stream.DirectoryFilter(orgsyncv1.Target_TARGET_AD),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       2 * time.Minute,
		MaxAckPending: 5000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	srv.AddCheck("jetstream", stream.ReadyCheck(nc, js))
	srv.AddCheck("ldap", func(ctx context.Context) error {
		if err := w.Paused(); err != nil {
			return fmt.Errorf("writer paused: %w", err)
		}
		return client.Ping(ctx)
	})
	return &Service{cfg: cfg, server: srv, conn: nc, logger: logger, client: client, writer: w, consumer: consumer, results: results}, nil
}

// directoryRevisions reads the newest revision of an object from DIRECTORY, a compacted log: its
// last message on the object's subject.
type directoryRevisions struct{ stream jetstream.Stream }

var _ writer.Revisions = directoryRevisions{}

func (d directoryRevisions) Newest(ctx context.Context, path string) (uint64, error) {
	msg, err := d.stream.GetLastMsgForSubject(ctx, "dir."+path) // stream.DirectorySubject's form
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var obj orgsyncv1.DesiredObject
	if err := proto.Unmarshal(msg.Data, &obj); err != nil {
		return 0, fmt.Errorf("decoding %s: %w", msg.Subject, err)
	}
	return obj.GetRevision(), nil
}

func seed(w *writer.Writer, msg jetstream.Msg) error {
	var result orgsyncv1.WriterResult
	if err := stream.Decode(msg, &result); err != nil {
		return err
	}
	w.Seed(&result, strings.TrimPrefix(msg.Subject(), "results."))
	return nil
}

// HTTPAddr is where health is served.
func (s *Service) HTTPAddr() string { return s.server.HTTPAddr().String() }

// Operations returns the LDAP operations sent so far, by kind.
func (s *Service) Operations() map[string]int64 { return s.client.Operations() }

// Durations returns the time spent in LDAP operations so far, by kind.
func (s *Service) Durations() map[string]time.Duration { return s.client.Durations() }

// Reconcile runs one drift reconcile pass now.
func (s *Service) Reconcile(ctx context.Context) (int, error) { return s.writer.Reconcile(ctx) }

// Paused returns why the writer is paused, or nil.
func (s *Service) Paused() error { return s.writer.Paused() }

// Run applies desired state until ctx ends, then stops the servers, drains NATS and closes LDAP.
func (s *Service) Run(ctx context.Context) error {
	s.logger.Info("serving", "http", s.HTTPAddr())
	group, groupCtx := errgroup.WithContext(ctx)
	group.Go(func() error { return s.server.Run(groupCtx) })
	group.Go(func() error {
		return stream.ConsumeBatch(groupCtx, s.consumer, batchSize, s.writer.HandleBatch, stream.ConsumeOptions{})
	})
	group.Go(func() error {
		return stream.Consume(groupCtx, s.results, func(_ context.Context, msg jetstream.Msg) error {
			return seed(s.writer, msg)
		}, stream.ConsumeOptions{NoAck: true})
	})
	if s.cfg.DriftInterval > 0 {
		group.Go(func() error {
			ticker := time.NewTicker(s.cfg.DriftInterval)
			defer ticker.Stop()
			for {
				select {
				case <-groupCtx.Done():
					return nil
				case <-ticker.C:
					if _, err := s.writer.Reconcile(groupCtx); err != nil && groupCtx.Err() == nil {
						s.logger.Warn("drift reconcile incomplete", "error", err)
					}
				}
			}
		})
	}
	err := group.Wait()
	if drainErr := s.conn.Drain(); drainErr != nil {
		err = errors.Join(err, fmt.Errorf("draining NATS: %w", drainErr))
	}
	s.client.Close()
	return err
}
