// Package stack runs the whole orgsync pipeline in one process — embedded JetStream, the Graph
// emulator, hr-ingest, org-model and entra-writer, the console with a dev OIDC issuer when asked,
// and ad-writer once a domain controller is given to StartADWriter — for `make run` and the
// end-to-end tests. Each service runs exactly as
// its own binary would, wired by its own service package.
package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/pkg/logging"
	"github.com/orgsync/orgsync/pkg/natsembed"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	adwriter "github.com/orgsync/orgsync/services/ad-writer/service"
	console "github.com/orgsync/orgsync/services/console/service"
	entrawriter "github.com/orgsync/orgsync/services/entra-writer/service"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
	hringest "github.com/orgsync/orgsync/services/hr-ingest/service"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
	orgmodel "github.com/orgsync/orgsync/services/org-model/service"
)

// DevSecret is the local stack's webhook secret for source "local" — for development only.
const DevSecret = "whsec_b3Jnc3luYy1sb2NhbC1kZXYtc2VjcmV0"

// Source is the HR source name the local stack configures.
const Source = "local"

// Ports says where the pieces listen; 0 picks a free port.
type Ports struct {
	NATS, Emulator                   int
	HRIngestHTTP, HRIngestGRPC       int
	OrgModelHTTP, OrgModelGRPC       int
	EntraWriterHTTP, EntraWriterGRPC int
	EntraWriterAdmin                 int
	ADWriterHTTP, ADWriterGRPC       int
	ADWriterAdmin                    int
	// Console is the web console, ConsoleHTTP its health and metrics, Issuer the dev OIDC issuer.
	Console, ConsoleHTTP, Issuer int
}

// FixedPorts are the local stack's well-known ports, chosen clear of the usual NATS (4222) and
// Redis (6379) ones.
var FixedPorts = Ports{
	NATS: 14222, Emulator: 18080,
	HRIngestHTTP: 18081, HRIngestGRPC: 19081,
	OrgModelHTTP: 18082, OrgModelGRPC: 19082,
	EntraWriterHTTP: 18083, EntraWriterGRPC: 19083, EntraWriterAdmin: 18183,
	ADWriterHTTP: 18084, ADWriterGRPC: 19084, ADWriterAdmin: 18184,
	Console: 18090, ConsoleHTTP: 18091, Issuer: 18099,
}

// Options configure a stack.
type Options struct {
	// StoreDir holds JetStream's files.
	StoreDir  string
	Ports     Ports
	UPNDomain string
	// LogWriter receives the services' JSON logs (default: discarded) at LogLevel.
	LogWriter io.Writer
	LogLevel  slog.Level
	// AdminToken is the static API token with role admin that the services accept; empty
	// generates a random one (Stack.AdminToken). Only its SHA-256 is written, to a tokens file in
	// StoreDir.
	AdminToken string
	// HoldWriter, when set, keeps entra-writer from consuming until it is closed, so a test can
	// let several changes queue up on DIRECTORY and see them written in one batch.
	HoldWriter <-chan struct{}
	// Sources are HR sources besides "local" (e.g. a SCIM source with its bearer token).
	Sources []hringest.SourceConfig
	// PolicyFile is org-model's policy file (ORGSYNC_CONFIG); empty is the built-in policy.
	// org-model publishes AD's desired state only when the policy maps AD (deploy/local/sample/policy-ad.yaml does).
	PolicyFile string
	// NATSConfigFile, when set, starts the embedded server from this nats-server configuration
	// (accounts, users, permissions: deploy/nats/nats-server.conf) on a free port instead of an
	// open server, and NATSClients gives each service, by service name, its own credentials.
	// org-model's entry creates the streams unless it says WaitForStreams.
	NATSConfigFile string
	NATSClients    map[string]stream.ClientConfig
	// Console starts the web console and a dev OIDC issuer where DevUsers sign in; the services
	// then accept the issuer's tokens besides the admin token.
	Console bool
	// TraceURL is the console's trace link template ("{traceId}"); ConsoleTargets the targets
	// its units link groups in (default entra).
	TraceURL       string
	ConsoleTargets []orgsyncv1.Target
	// SubscribedSkus are the tenant's licences in the Graph emulator (subscribedSkus, with their
	// prepaid units), for policies that attach licences to groups; TenantUsageLocation is the
	// tenant's country, which members without usageLocation inherit (empty: none, so their
	// licences are in error).
	SubscribedSkus      []emulator.SubscribedSku
	TenantUsageLocation string
	// FirstDayMailSender is the mailbox entra-writer sends first-day Temporary Access Passes
	// from (ENTRA_FIRST_DAY_MAIL_SENDER); empty: none are made.
	FirstDayMailSender string
}

// Stack is a running pipeline.
type Stack struct {
	NATS     *natsserver.Server
	Emulator *emulator.Server
	// EmulatorURL is the emulator's Graph base URL, http://ADDR/v1.0.
	EmulatorURL string
	HRIngest    *hringest.Service
	OrgModel    *orgmodel.Service
	EntraWriter *entrawriter.Service
	// ADWriter is nil until StartADWriter has started it.
	ADWriter *adwriter.Service
	// Console and Issuer (the dev OIDC issuer) run when Options.Console says so.
	Console *console.Service
	Issuer  *authtest.Issuer
	// AdminToken is the dev admin token: a bearer token for org-model's gRPC API and the
	// writers' admin routes.
	AdminToken string

	// opts, natsURL, streams and auth are what StartADWriter wires ad-writer with, as Start
	// wired the others.
	opts    Options
	natsURL string
	streams stream.Config
	auth    auth.Config

	emulatorServer *http.Server
	emulatorDone   chan struct{}
	// services counts the running services; they stop when the Start context ends.
	services sync.WaitGroup
	mu       sync.Mutex
	errs     []error
}

// Start starts everything and returns once every service is serving; the services run until ctx
// ends. Call Wait after cancelling ctx.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	if opts.LogWriter == nil {
		opts.LogWriter = io.Discard
	}
	logger := func(service string) *slog.Logger { return logging.New(opts.LogWriter, service, opts.LogLevel) }
	if opts.UPNDomain == "" {
		opts.UPNDomain = "corp.example.com"
	}
	adminToken, authCfg, err := devAuth(opts)
	if err != nil {
		return nil, err
	}
	var issuer *authtest.Issuer
	if opts.Console {
		if issuer, err = startIssuer(opts.Ports.Issuer); err != nil {
			return nil, err
		}
		authCfg.Issuer, authCfg.Audience = issuer.URL(), authtest.Audience
	}
	var natsSrv *natsserver.Server
	if opts.NATSConfigFile != "" {
		natsSrv, err = natsembed.StartFromConfigFile(opts.NATSConfigFile, opts.StoreDir)
	} else {
		natsSrv, err = natsembed.Start(natsembed.Options{Port: orRandom(opts.Ports.NATS), StoreDir: opts.StoreDir})
	}
	if err != nil {
		if issuer != nil {
			issuer.Close()
		}
		return nil, err
	}
	s := &Stack{
		NATS: natsSrv, Emulator: emulator.New(emulatorOptions(opts)...), emulatorDone: make(chan struct{}), AdminToken: adminToken, Issuer: issuer,
		opts: opts, natsURL: natsSrv.ClientURL(), streams: stream.DefaultConfig(), auth: authCfg,
	}
	serverConfig := s.serverConfig
	emulatorListener, err := net.Listen("tcp", addr(opts.Ports.Emulator))
	if err != nil {
		natsSrv.Shutdown()
		return nil, fmt.Errorf("Graph emulator listener: %w", err)
	}
	s.EmulatorURL = "http://" + emulatorListener.Addr().String() + "/v1.0"
	emulatorMux := http.NewServeMux()
	emulatorMux.Handle("/", s.Emulator)
	emulatorMux.Handle("GET "+emulator.StatsPath, s.Emulator.StatsHandler())
	s.emulatorServer = &http.Server{Handler: otelhttp.NewHandler(emulatorMux, "graph-emulator",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "graph-emulator " + r.Method })), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.emulatorDone)
		if err := s.emulatorServer.Serve(emulatorListener); !errors.Is(err, http.ErrServerClosed) {
			s.fail(fmt.Errorf("Graph emulator: %w", err))
		}
	}()

	streams, natsURL := s.streams, s.natsURL
	secret, err := webhook.ParseSecret(DevSecret)
	if err != nil {
		return nil, s.abort(err)
	}
	if owner, ok := opts.NATSClients[orgmodel.Name]; ok && !owner.WaitForStreams {
		// hr-ingest starts first and waits for the streams: create them with org-model's
		// credentials now, as an init job would.
		nc, _, err := stream.ConnectWith(ctx, natsURL, orgmodel.Name, owner, streams, logger(orgmodel.Name))
		if err != nil {
			return nil, s.abort(err)
		}
		nc.Close()
	}
	if s.HRIngest, err = hringest.New(ctx, hringest.Config{
		NATSURL: natsURL, Streams: streams, NATS: opts.NATSClients[hringest.Name],
		Server:             serverConfig(hringest.Name, opts.Ports.HRIngestHTTP, opts.Ports.HRIngestGRPC),
		Sources:            append([]hringest.SourceConfig{{Name: Source, Secrets: []webhook.Secret{secret}}}, opts.Sources...),
		TimestampTolerance: 5 * time.Minute, MaxBodyBytes: 1 << 20, PublishTimeout: 5 * time.Second,
	}, logger(hringest.Name)); err != nil {
		return nil, s.abort(err)
	}
	s.run(ctx, s.HRIngest.Run)
	if s.OrgModel, err = orgmodel.New(ctx, orgmodel.Config{
		NATSURL: natsURL, Streams: streams, NATS: opts.NATSClients[orgmodel.Name],
		Server:     serverConfig(orgmodel.Name, opts.Ports.OrgModelHTTP, opts.Ports.OrgModelGRPC),
		Policy:     orgmodel.Policy{UPNDomain: opts.UPNDomain, GroupNamePrefix: "Org - "},
		PolicyFile: opts.PolicyFile,
	}, logger(orgmodel.Name)); err != nil {
		return nil, s.abort(err)
	}
	s.run(ctx, s.OrgModel.Run)
	writerServer := serverConfig(entrawriter.Name, opts.Ports.EntraWriterHTTP, opts.Ports.EntraWriterGRPC)
	writerServer.AdminAddr = addr(opts.Ports.EntraWriterAdmin)
	if s.EntraWriter, err = entrawriter.New(ctx, entrawriter.Config{
		NATSURL: natsURL, Streams: streams, NATS: opts.NATSClients[entrawriter.Name],
		Server:       writerServer,
		GraphBaseURL: s.EmulatorURL, GraphAuth: "none", FirstDayMailSender: opts.FirstDayMailSender,
	}, logger(entrawriter.Name)); err != nil {
		return nil, s.abort(err)
	}
	if opts.Console {
		if err := s.startConsole(ctx); err != nil {
			return nil, s.abort(err)
		}
	}
	if opts.HoldWriter == nil {
		s.run(ctx, s.EntraWriter.Run)
		return s, nil
	}
	s.run(ctx, func(ctx context.Context) error {
		select {
		case <-opts.HoldWriter:
		case <-ctx.Done():
		}
		// Run also when ctx is already done, so the writer's servers and connection shut down.
		return s.EntraWriter.Run(ctx)
	})
	return s, nil
}

func (s *Stack) run(ctx context.Context, run func(context.Context) error) {
	s.services.Go(func() {
		if err := run(ctx); err != nil {
			s.fail(err)
		}
	})
}

func (s *Stack) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

// abort stops what has started when a later piece fails to start; the services already started
// stop with the caller's context.
func (s *Stack) abort(err error) error {
	_ = s.emulatorServer.Close()
	<-s.emulatorDone
	s.NATS.Shutdown()
	if s.Issuer != nil {
		s.Issuer.Close()
	}
	return err
}

// Wait waits for the services to stop (they stop when the Start context ends), then stops the
// emulator and NATS, and returns what went wrong on the way.
func (s *Stack) Wait() error {
	s.services.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.emulatorServer.Shutdown(shutdownCtx)
	<-s.emulatorDone
	s.NATS.Shutdown()
	s.NATS.WaitForShutdown()
	if s.Issuer != nil {
		s.Issuer.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// EmulatorAddr is the emulator's host:port.
func (s *Stack) EmulatorAddr() string {
	return strings.TrimSuffix(strings.TrimPrefix(s.EmulatorURL, "http://"), "/v1.0")
}

// WebhookURL is where the local HR source posts.
func (s *Stack) WebhookURL() string {
	return "http://" + s.HRIngest.HTTPAddr() + "/v1/sources/" + Source + "/events"
}

// Post signs body with the dev secret as webhook id and posts it to hr-ingest.
func Post(ctx context.Context, client *http.Client, url, webhookID string, body []byte) (*http.Response, []byte, error) {
	secret, err := webhook.ParseSecret(DevSecret)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	webhook.SetHeaders(req.Header, secret, webhookID, time.Now(), body)
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	return resp, respBody, err
}

// serverConfig is a service's servers on the given ports (0: free ones), accepting the dev token.
func (s *Stack) serverConfig(name string, httpPort, grpcPort int) server.Config {
	return server.Config{Name: name, HTTPAddr: addr(httpPort), GRPCAddr: addr(grpcPort), ShutdownTimeout: 5 * time.Second, Auth: s.auth}
}

// devAuth returns the admin token (opts' or a new random one) and the auth configuration that
// accepts it: a tokens file holding its SHA-256, in the store directory (or a temporary file).
func devAuth(opts Options) (string, auth.Config, error) {
	token := opts.AdminToken
	if token == "" {
		var err error
		if token, err = auth.NewToken(); err != nil {
			return "", auth.Config{}, err
		}
	}
	dir := opts.StoreDir
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", auth.Config{}, fmt.Errorf("store directory: %w", err)
	}
	file, err := os.CreateTemp(dir, "orgsync-tokens-*.yaml")
	if err != nil {
		return "", auth.Config{}, fmt.Errorf("tokens file: %w", err)
	}
	defer file.Close()
	content := fmt.Sprintf("# The local stack's dev admin token (make run), stored hashed.\ntokens:\n  - name: local-admin\n    sha256: %s\n    roles: [admin]\n", auth.HashToken(token))
	if _, err := file.WriteString(content); err != nil {
		return "", auth.Config{}, fmt.Errorf("tokens file: %w", err)
	}
	return token, auth.Config{TokensFile: filepath.Clean(file.Name())}, nil
}

// emulatorOptions are the Graph emulator's options for a stack.
func emulatorOptions(opts Options) []emulator.Option {
	var out []emulator.Option
	if len(opts.SubscribedSkus) > 0 {
		out = append(out, emulator.WithSubscribedSkus(opts.SubscribedSkus...))
	}
	if opts.TenantUsageLocation != "" {
		out = append(out, emulator.WithTenantUsageLocation(opts.TenantUsageLocation))
	}
	return out
}

func addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

func orRandom(port int) int {
	if port == 0 {
		return -1
	}
	return port
}
