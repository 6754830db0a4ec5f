// Package service wires the console: its configuration from the environment, the gRPC client of
// org-model, the OIDC sign-in, the sealed sessions, the web handler on its own listener, and
// health and metrics on pkg/server's listener apart from it. cmd's main and the local stack both
// start the console through it.
package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/server"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
	"github.com/orgsync/orgsync/services/console/internal/login"
	"github.com/orgsync/orgsync/services/console/internal/session"
	"github.com/orgsync/orgsync/services/console/internal/web"
)

// Name is the service name.
const Name = "console"

// Writer is a writer's admin endpoint and metrics, as the health page reads them.
type Writer = web.Writer

// Config is the console's configuration.
type Config struct {
	// Server is health and metrics (HTTP_ADDR) and gRPC health (GRPC_ADDR); Server.Auth is also
	// how the console checks the person's access token (ORGSYNC_AUTH_OIDC_*: the same issuer and
	// audience as org-model's).
	Server server.Config
	// ConsoleAddr is where the web console listens (CONSOLE_ADDR).
	ConsoleAddr string
	// PublicURL is the console's URL as browsers reach it (CONSOLE_PUBLIC_URL); the OIDC
	// callback is PublicURL + /auth/callback, and an https URL makes cookies Secure.
	PublicURL string
	// ClientID, ClientSecret and Scopes make the console an OIDC client (CONSOLE_OIDC_CLIENT_ID,
	// CONSOLE_OIDC_CLIENT_SECRET(_FILE), CONSOLE_OIDC_SCOPES).
	ClientID, ClientSecret string
	Scopes                 []string
	// SessionKey seals the cookies (CONSOLE_SESSION_KEY(_FILE), at least 32 bytes), shared by the
	// replicas.
	SessionKey []byte
	// OrgModelAddr is org-model's gRPC address (ORGMODEL_ADDR); OrgModelCAFile, when set, makes
	// the connection TLS with that CA (ORGMODEL_CA_FILE).
	OrgModelAddr, OrgModelCAFile string
	// HRIngestURL is hr-ingest's HTTP base URL for dry runs (HR_INGEST_URL); Sources are the source
	// names offered on the plan page (CONSOLE_PLAN_SOURCES).
	HRIngestURL string
	Sources     []string
	// Writers are the writers' admin endpoints (CONSOLE_WRITERS: "entra-writer=http://host:port,
	// ..."; optional ";metrics=http://host:port/metrics" after each URL).
	Writers []web.Writer
	// TraceURL is a trace UI URL with "{traceId}" (CONSOLE_TRACE_URL).
	TraceURL string
	// Targets are the targets whose groups units link to (CONSOLE_TARGETS, default entra).
	Targets []orgsyncv1.Target
}

// ConfigFromEnv reads the configuration and reports every bad variable by name.
func ConfigFromEnv(env *envconfig.Env) (Config, error) {
	cfg := Config{
		Server:         server.ConfigFromEnv(Name, env, ":8081", ":9091"),
		ConsoleAddr:    env.String("CONSOLE_ADDR", ":8080"),
		PublicURL:      strings.TrimSuffix(env.Required("CONSOLE_PUBLIC_URL"), "/"),
		ClientID:       env.Required("CONSOLE_OIDC_CLIENT_ID"),
		ClientSecret:   env.Secret("CONSOLE_OIDC_CLIENT_SECRET"),
		Scopes:         strings.Fields(env.String("CONSOLE_OIDC_SCOPES", "profile")),
		SessionKey:     []byte(env.Secret("CONSOLE_SESSION_KEY")),
		OrgModelAddr:   env.Required("ORGMODEL_ADDR"),
		OrgModelCAFile: env.String("ORGMODEL_CA_FILE", ""),
		HRIngestURL:    strings.TrimSuffix(env.String("HR_INGEST_URL", ""), "/"),
		Sources:        strings.FieldsFunc(env.String("CONSOLE_PLAN_SOURCES", ""), func(r rune) bool { return r == ',' || r == ' ' }),
		TraceURL:       env.String("CONSOLE_TRACE_URL", ""),
	}
	if len(cfg.SessionKey) < session.MinSecretBytes {
		env.Fail("CONSOLE_SESSION_KEY", fmt.Errorf("must be at least %d bytes (e.g. openssl rand -base64 48), from the variable or CONSOLE_SESSION_KEY_FILE", session.MinSecretBytes))
	}
	if cfg.Server.Auth.Issuer == "" {
		env.Fail("ORGSYNC_AUTH_OIDC_ISSUER", errors.New("the console signs people in with OIDC: set the issuer (and ORGSYNC_AUTH_OIDC_AUDIENCE, the audience of the access tokens org-model accepts)"))
	}
	if err := checkURL(cfg.PublicURL); cfg.PublicURL != "" && err != nil {
		env.Fail("CONSOLE_PUBLIC_URL", err)
	}
	targets, err := web.ParseTargets(env.String("CONSOLE_TARGETS", "entra"))
	if err != nil {
		env.Fail("CONSOLE_TARGETS", err)
	}
	cfg.Targets = targets
	writers, err := ParseWriters(env.String("CONSOLE_WRITERS", ""))
	if err != nil {
		env.Fail("CONSOLE_WRITERS", err)
	}
	cfg.Writers = writers
	if cfg.TraceURL != "" && !strings.Contains(cfg.TraceURL, "{traceId}") {
		env.Fail("CONSOLE_TRACE_URL", errors.New("must contain {traceId}, where the trace id goes"))
	}
	return cfg, env.Err()
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	return nil
}

// ParseWriters reads "name=url[;metrics=url],...".
func ParseWriters(list string) ([]web.Writer, error) {
	var writers []web.Writer
	var errs []error
	for entry := range strings.SplitSeq(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, rest, ok := strings.Cut(entry, "=")
		if !ok || name == "" {
			errs = append(errs, fmt.Errorf("entry %q is not name=adminURL", entry))
			continue
		}
		admin, metrics, _ := strings.Cut(rest, ";metrics=")
		writer := web.Writer{Name: name, AdminURL: admin, MetricsURL: metrics}
		for _, u := range []string{admin, metrics} {
			if u != "" {
				if err := checkURL(u); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", name, err))
				}
			}
		}
		writers = append(writers, writer)
	}
	return writers, errors.Join(errs...)
}

// Service is a running console.
type Service struct {
	cfg      Config
	logger   *slog.Logger
	srv      *server.Server
	conn     *grpc.ClientConn
	web      *http.Server
	listener net.Listener
}

// New opens the listeners and the org-model connection (which connects lazily), so that the
// addresses are known before Run.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (_ *Service, err error) {
	sessions, err := session.New(cfg.SessionKey, strings.HasPrefix(cfg.PublicURL, "https://"))
	if err != nil {
		return nil, fmt.Errorf("CONSOLE_SESSION_KEY: %w", err)
	}
	verifier, err := auth.NewVerifier(cfg.Server.Auth)
	if err != nil {
		return nil, err
	}
	transport := insecure.NewCredentials()
	if cfg.OrgModelCAFile != "" {
		pem, err := os.ReadFile(cfg.OrgModelCAFile)
		if err != nil {
			return nil, fmt.Errorf("ORGMODEL_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ORGMODEL_CA_FILE %s: no PEM certificate in it", cfg.OrgModelCAFile)
		}
		transport = credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(cfg.OrgModelAddr, grpc.WithTransportCredentials(transport),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
	if err != nil {
		return nil, fmt.Errorf("ORGMODEL_ADDR: %w", err)
	}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	listener, err := net.Listen("tcp", cfg.ConsoleAddr)
	if err != nil {
		return nil, fmt.Errorf("console listener on %s: %w", cfg.ConsoleAddr, err)
	}
	defer func() {
		if err != nil {
			listener.Close()
		}
	}()
	if cfg.PublicURL == "" {
		// The local stack on a free port: the console is reached where it listens.
		cfg.PublicURL = "http://" + listener.Addr().String()
	}
	httpClient := &http.Client{Timeout: 30 * time.Second, Transport: otelhttp.NewTransport(http.DefaultTransport)}
	handler, err := web.New(web.Config{
		OrgModel: orgsyncv1grpc.NewOrgModelServiceClient(conn),
		Verifier: verifier,
		Login: login.New(login.Config{
			Issuer: cfg.Server.Auth.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			RedirectURL: cfg.PublicURL + "/auth/callback", Scopes: cfg.Scopes,
		}),
		Sessions: sessions, HRIngestURL: cfg.HRIngestURL, Sources: cfg.Sources, Writers: cfg.Writers,
		TraceURL: cfg.TraceURL, Targets: cfg.Targets, HTTPClient: httpClient, Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	srv, err := server.New(cfg.Server, logger)
	if err != nil {
		return nil, err
	}
	srv.AddCheck("org-model", func(context.Context) error {
		// The console can serve while org-model reconnects; it is not ready while the connection
		// has failed.
		if state := conn.GetState().String(); state == "TRANSIENT_FAILURE" {
			conn.Connect()
			return errors.New("org-model is unreachable")
		}
		return nil
	})
	return &Service{
		cfg: cfg, logger: logger, srv: srv, conn: conn, listener: listener,
		web: &http.Server{
			Handler: otelhttp.NewHandler(handler, Name, otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				return "console " + r.Method
			})),
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute,
		},
	}, nil
}

// ConsoleAddr is where the web console listens.
func (s *Service) ConsoleAddr() net.Addr { return s.listener.Addr() }

// PublicURL is the console's URL as configured (or where it listens, when none was).
func (s *Service) PublicURL() string { return s.cfg.PublicURL }

// RedirectURL is the OIDC callback the issuer must know for this console.
func (s *Service) RedirectURL() string { return s.cfg.PublicURL + "/auth/callback" }

// HTTPAddr is where health and metrics are served.
func (s *Service) HTTPAddr() net.Addr { return s.srv.HTTPAddr() }

// Run serves until ctx ends, then stops the console's listener, the health server, and closes the
// org-model connection.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	webErr := make(chan error, 1)
	wg.Go(func() {
		if err := s.web.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			webErr <- fmt.Errorf("console HTTP server: %w", err)
		}
	})
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	srvErr := make(chan error, 1)
	wg.Go(func() { srvErr <- s.srv.Run(serveCtx) })
	var err error
	select {
	case <-ctx.Done():
	case err = <-webErr:
	}
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if shutdownErr := s.web.Shutdown(shutdownCtx); shutdownErr != nil {
		err = errors.Join(err, fmt.Errorf("console shutdown: %w", shutdownErr))
	}
	err = errors.Join(err, <-srvErr)
	wg.Wait()
	return errors.Join(err, s.conn.Close())
}
