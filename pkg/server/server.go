// Package server runs an orgsync service's network side: a gRPC server with health (per service
// name) and reflection, an HTTP server with /healthz, /readyz and /metrics (Prometheus text), an
// optional admin HTTP listener for authenticated operator routes, readiness from the service's own
// checks, and a graceful shutdown in order.
//
// Every gRPC method and admin route goes through pkg/auth's table of required roles: health is
// open, reflection needs an authenticated viewer, and a method missing from the table is refused
// (Run will not even start when a registered method is missing). gRPC (and the admin listener)
// serve TLS when a certificate is configured, and require client certificates when a client CA is.
//
// It is meant for orgsync's own services, not for outside use.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/stats"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/telemetry"
)

// Config says where a service listens and how it stops.
type Config struct {
	// Name is the service name: the gRPC health service name and the HTTP span prefix.
	Name string
	// GRPCAddr is the gRPC listen address, e.g. ":9090" or "127.0.0.1:0".
	GRPCAddr string
	// HTTPAddr is the HTTP listen address for health and the service's own endpoints.
	HTTPAddr string
	// ShutdownTimeout bounds the graceful part of the shutdown; default 10s.
	ShutdownTimeout time.Duration
	// ReadinessInterval is how often readiness checks run for gRPC health; default 2s.
	ReadinessInterval time.Duration
	// AdminAddr is the listen address for authenticated admin routes (ADMIN_ADDR); empty means no
	// admin listener, and registering an admin route then stops Run with an error.
	AdminAddr string
	// Auth says how callers of gRPC methods and admin routes authenticate; with nothing
	// configured every protected call is refused.
	Auth auth.Config
	// TLS is the certificate gRPC and the admin listener serve, and the CA of client certificates.
	TLS TLSConfig
	// HTTP timeouts for every listener; zero values take the defaults below.
	HTTPTimeouts HTTPTimeouts
}

// TLSConfig names the PEM files of a server certificate and, for mutual TLS, the client CA.
type TLSConfig struct {
	// CertFile and KeyFile are the server's certificate chain and key (GRPC_TLS_CERT_FILE,
	// GRPC_TLS_KEY_FILE); empty serves plaintext.
	CertFile, KeyFile string
	// ClientCAFile (GRPC_TLS_CLIENT_CA_FILE) makes client certificates signed by it required.
	ClientCAFile string
}

// Enabled reports whether TLS is configured.
func (c TLSConfig) Enabled() bool { return c.CertFile != "" }

// HTTPTimeouts bound how long a client may hold an HTTP connection.
type HTTPTimeouts struct {
	// ReadHeader bounds reading the headers (default 10s); Read the whole request (default 1m);
	// Idle a kept-alive connection between requests (default 2m).
	ReadHeader, Read, Idle time.Duration
	// Write bounds writing the answer on the service's HTTP listener (default 2m: a large HR
	// snapshot is acknowledged only after JetStream stored it). AdminWrite does the same on the
	// admin listener (default 10m: a drift pass reads the whole directory before it answers).
	Write, AdminWrite time.Duration
}

func (t HTTPTimeouts) withDefaults() HTTPTimeouts {
	orDefault := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	orDefault(&t.ReadHeader, 10*time.Second)
	orDefault(&t.Read, time.Minute)
	orDefault(&t.Idle, 2*time.Minute)
	orDefault(&t.Write, 2*time.Minute)
	orDefault(&t.AdminWrite, 10*time.Minute)
	return t
}

// Validate checks that the TLS files go together and that the auth configuration holds.
func (c Config) Validate() error {
	var errs []error
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE must be set together"))
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		errs = append(errs, errors.New("GRPC_TLS_CLIENT_CA_FILE needs GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE: client certificates are only asked for over TLS"))
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// serverTLS loads the certificate and the client CA.
func (c TLSConfig) serverTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("GRPC_TLS_CERT_FILE/GRPC_TLS_KEY_FILE: %w", err)
	}
	config := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("GRPC_TLS_CLIENT_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("GRPC_TLS_CLIENT_CA_FILE %s: no PEM certificate in it", c.ClientCAFile)
		}
		config.ClientCAs = pool
		config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return config, nil
}

// Check reports whether a dependency is reachable; nil means ready.
type Check func(ctx context.Context) error

// Server owns a service's listeners. Register services and handlers, add checks, then Run.
type Server struct {
	cfg          Config
	logger       *slog.Logger
	grpcServer   *grpc.Server
	health       *health.Server
	mux          *http.ServeMux
	httpServer   *http.Server
	grpcListener net.Listener
	httpListener net.Listener
	// authorizer enforces the table of required roles on gRPC methods and admin routes.
	authorizer *auth.Authorizer
	// adminMux, adminServer and adminListener exist when AdminAddr is set.
	adminMux      *http.ServeMux
	adminServer   *http.Server
	adminListener net.Listener
	// adminRoutes counts routes registered with HandleAdmin, to refuse them without a listener.
	adminRoutes int

	mu     sync.Mutex
	checks map[string]Check
}

// New opens the listeners, so that their addresses are known before serving, and builds the
// servers. On an error every listener it opened is closed again.
func New(cfg Config, logger *slog.Logger) (_ *Server, err error) {
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.ReadinessInterval <= 0 {
		cfg.ReadinessInterval = 2 * time.Second
	}
	timeouts := cfg.HTTPTimeouts.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	verifier, err := auth.NewVerifier(cfg.Auth)
	if err != nil {
		return nil, err
	}
	if !verifier.Enabled() {
		logger.Warn("authentication is not configured (ORGSYNC_AUTH_OIDC_ISSUER, ORGSYNC_AUTH_TOKENS_FILE): every gRPC query and admin route is refused; health and metrics stay open")
	}
	var tlsConfig *tls.Config
	if cfg.TLS.Enabled() {
		if tlsConfig, err = cfg.TLS.serverTLS(); err != nil {
			return nil, err
		}
	}

	var listeners []net.Listener
	defer func() {
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
		}
	}()
	listen := func(what, addr string) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s listener on %s: %w", what, addr, err)
		}
		listeners = append(listeners, l)
		return l, nil
	}
	grpcListener, err := listen("gRPC", cfg.GRPCAddr)
	if err != nil {
		return nil, err
	}
	httpListener, err := listen("HTTP", cfg.HTTPAddr)
	if err != nil {
		return nil, err
	}

	s := &Server{
		cfg:          cfg,
		logger:       logger,
		health:       health.NewServer(),
		mux:          http.NewServeMux(),
		grpcListener: grpcListener,
		httpListener: httpListener,
		authorizer:   auth.NewAuthorizer(verifier, logger),
		checks:       map[string]Check{},
	}
	// Health is open to everyone (kubelet, load balancers); reflection describes the API, so only
	// an authenticated caller may use it (grpcurl -H "authorization: Bearer …").
	s.authorizer.Allow(auth.Rules{
		healthpb.Health_Check_FullMethodName:                                   auth.Public,
		healthpb.Health_Watch_FullMethodName:                                   auth.Public,
		healthpb.Health_List_FullMethodName:                                    auth.Public,
		reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      auth.Viewer,
		reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: auth.Viewer,
	})
	grpcOptions := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool {
				return info.FullMethodName != healthpb.Health_Check_FullMethodName &&
					info.FullMethodName != healthpb.Health_Watch_FullMethodName
			}),
		)),
		grpc.ChainUnaryInterceptor(s.authorizer.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(s.authorizer.StreamInterceptor()),
	}
	if tlsConfig != nil {
		grpcOptions = append(grpcOptions, grpc.Creds(credentials.NewTLS(tlsConfig)))
	}
	s.grpcServer = grpc.NewServer(grpcOptions...)
	healthpb.RegisterHealthServer(s.grpcServer, s.health)
	reflection.Register(s.grpcServer)
	s.setServing(healthpb.HealthCheckResponse_NOT_SERVING)

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.serveReadyz)
	s.mux.Handle("GET /metrics", telemetry.MetricsHandler())
	s.httpServer = &http.Server{
		Handler: otelhttp.NewHandler(s.mux, cfg.Name,
			otelhttp.WithFilter(func(r *http.Request) bool {
				return r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && r.URL.Path != "/metrics"
			}),
			otelhttp.WithSpanNameFormatter(spanName),
		),
		ReadHeaderTimeout: timeouts.ReadHeader,
		ReadTimeout:       timeouts.Read,
		WriteTimeout:      timeouts.Write,
		IdleTimeout:       timeouts.Idle,
	}
	if cfg.AdminAddr != "" {
		adminListener, err := listen("admin HTTP", cfg.AdminAddr)
		if err != nil {
			return nil, err
		}
		if tlsConfig != nil {
			adminListener = tls.NewListener(adminListener, tlsConfig)
		}
		s.adminListener = adminListener
		s.adminMux = http.NewServeMux()
		s.adminServer = &http.Server{
			Handler:           otelhttp.NewHandler(s.authorizer.Middleware(s.adminMux), cfg.Name+" admin", otelhttp.WithSpanNameFormatter(spanName)),
			ReadHeaderTimeout: timeouts.ReadHeader,
			ReadTimeout:       timeouts.Read,
			WriteTimeout:      timeouts.AdminWrite,
			IdleTimeout:       timeouts.Idle,
		}
	}
	return s, nil
}

func spanName(_ string, r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return r.Method
}

// Close closes the listeners of a Server that will not Run (start-up failed after New).
func (s *Server) Close() {
	s.grpcListener.Close()
	s.httpListener.Close()
	if s.adminListener != nil {
		s.adminListener.Close()
	}
}

// Authorize adds rules for gRPC methods to the table (full method name → required role). Call it
// with the services registered on GRPC() before Run.
func (s *Server) Authorize(rules auth.Rules) { s.authorizer.Allow(rules) }

// HandleAdmin registers an admin route on the admin listener (ADMIN_ADDR), open only to callers
// holding role; pattern is as in net/http.ServeMux and is the route's key in the table.
func (s *Server) HandleAdmin(pattern string, role auth.Role, handler http.Handler) {
	s.adminRoutes++
	if s.adminMux == nil {
		return // Run refuses to start: an admin route without an admin listener
	}
	s.adminMux.Handle(pattern, handler)
	s.authorizer.Allow(auth.Rules{pattern: role})
}

// AdminAddr is the address the admin listener is bound to, or nil without one.
func (s *Server) AdminAddr() net.Addr {
	if s.adminListener == nil {
		return nil
	}
	return s.adminListener.Addr()
}

// unauthorizedMethods lists the registered gRPC methods the table does not name.
func (s *Server) unauthorizedMethods() []string {
	var methods []string
	for service, info := range s.grpcServer.GetServiceInfo() {
		for _, method := range info.Methods {
			methods = append(methods, "/"+service+"/"+method.Name)
		}
	}
	sort.Strings(methods)
	return s.authorizer.Missing(methods)
}

// GRPC is the gRPC server to register services on before Run.
func (s *Server) GRPC() *grpc.Server { return s.grpcServer }

// Handle registers an HTTP handler on the service's open mux (patterns as in net/http.ServeMux),
// next to health and metrics: only for endpoints with their own authentication (hr-ingest's
// signed webhooks). Admin routes go to HandleAdmin.
func (s *Server) Handle(pattern string, handler http.Handler) { s.mux.Handle(pattern, handler) }

// HandleAuthenticated registers a route on the service's open HTTP listener that only callers
// holding role may use, checked by pkg/auth's table like an admin route (a bearer token: 401
// without one, 403 without the role). It is for routes that people and orgsync's own clients
// call next to endpoints that carry their own authentication (hr-ingest's dry run next to its
// signed webhooks).
func (s *Server) HandleAuthenticated(pattern string, role auth.Role, handler http.Handler) {
	route := http.NewServeMux()
	route.Handle(pattern, handler)
	s.authorizer.Allow(auth.Rules{pattern: role})
	s.mux.Handle(pattern, s.authorizer.Middleware(route))
}

// AddCheck adds a readiness check; the service is ready when every check passes.
func (s *Server) AddCheck(name string, check Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
}

// GRPCAddr is the address the gRPC listener is bound to.
func (s *Server) GRPCAddr() net.Addr { return s.grpcListener.Addr() }

// HTTPAddr is the address the HTTP listener is bound to.
func (s *Server) HTTPAddr() net.Addr { return s.httpListener.Addr() }

// Ready runs every check and returns their failures joined, each named.
func (s *Server) Ready(ctx context.Context) error {
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for name, check := range s.checks {
		checks[name] = check
	}
	s.mu.Unlock()
	var errs []error
	for name, check := range checks {
		if err := check(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.Ready(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (s *Server) setServing(status healthpb.HealthCheckResponse_ServingStatus) {
	s.health.SetServingStatus("", status)
	s.health.SetServingStatus(s.cfg.Name, status)
}

// Run serves until ctx is done, then shuts down in order: gRPC health NOT_SERVING, gRPC
// GracefulStop (forced after the timeout), HTTP Shutdown with the timeout. It returns after both
// servers have stopped; draining NATS and flushing telemetry are the caller's next steps.
func (s *Server) Run(ctx context.Context) error {
	if missing := s.unauthorizedMethods(); len(missing) > 0 {
		s.Close()
		return fmt.Errorf("gRPC methods without a rule in the authorisation table: %v", missing)
	}
	if s.adminRoutes > 0 && s.adminServer == nil {
		s.Close()
		return errors.New("admin routes are registered but ADMIN_ADDR is empty")
	}
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.grpcServer.Serve(s.grpcListener); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errs <- fmt.Errorf("gRPC server: %w", err)
		}
	})
	wg.Go(func() {
		if err := s.httpServer.Serve(s.httpListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("HTTP server: %w", err)
		}
	})
	if s.adminServer != nil {
		wg.Go(func() {
			if err := s.adminServer.Serve(s.adminListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("admin HTTP server: %w", err)
			}
		})
	}
	readinessCtx, stopReadiness := context.WithCancel(ctx)
	wg.Go(func() { s.watchReadiness(readinessCtx) })

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	stopReadiness()
	s.health.Shutdown()

	stopped := make(chan struct{})
	go func() {
		s.grpcServer.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(s.cfg.ShutdownTimeout):
		s.logger.Warn("gRPC graceful stop timed out; closing connections", "timeout", s.cfg.ShutdownTimeout)
		s.grpcServer.Stop()
		<-stopped
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.httpServer.Shutdown(shutdownCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("HTTP shutdown: %w", err))
	}
	if s.adminServer != nil {
		if err := s.adminServer.Shutdown(shutdownCtx); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("admin HTTP shutdown: %w", err))
		}
	}
	wg.Wait()
	return runErr
}

// watchReadiness keeps the gRPC health status in step with the checks.
func (s *Server) watchReadiness(ctx context.Context) {
	ticker := time.NewTicker(s.cfg.ReadinessInterval)
	defer ticker.Stop()
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		checkCtx, cancel := context.WithTimeout(ctx, s.cfg.ReadinessInterval)
		status := healthpb.HealthCheckResponse_SERVING
		if err := s.Ready(checkCtx); err != nil {
			status = healthpb.HealthCheckResponse_NOT_SERVING
			if status != last {
				s.logger.Warn("not ready", "error", err)
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if status != last {
			s.setServing(status)
			last = status
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// ConfigFromEnv reads HTTP_ADDR, GRPC_ADDR, ADMIN_ADDR (no admin listener when empty),
// SHUTDOWN_TIMEOUT, GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE, GRPC_TLS_CLIENT_CA_FILE and the
// ORGSYNC_AUTH_* variables (auth.ConfigFromEnv) for the named service; problems are recorded on env.
func ConfigFromEnv(name string, env *envconfig.Env, defaultHTTPAddr, defaultGRPCAddr string) Config {
	cfg := Config{
		Name:            name,
		HTTPAddr:        env.String("HTTP_ADDR", defaultHTTPAddr),
		GRPCAddr:        env.String("GRPC_ADDR", defaultGRPCAddr),
		AdminAddr:       env.String("ADMIN_ADDR", ""),
		ShutdownTimeout: env.Duration("SHUTDOWN_TIMEOUT", 10*time.Second),
		Auth:            auth.ConfigFromEnv(env),
		TLS: TLSConfig{
			CertFile:     env.String("GRPC_TLS_CERT_FILE", ""),
			KeyFile:      env.String("GRPC_TLS_KEY_FILE", ""),
			ClientCAFile: env.String("GRPC_TLS_CLIENT_CA_FILE", ""),
		},
	}
	if (cfg.TLS.CertFile == "") != (cfg.TLS.KeyFile == "") {
		env.Fail("GRPC_TLS_CERT_FILE", errors.New("must be set together with GRPC_TLS_KEY_FILE"))
	}
	if cfg.TLS.ClientCAFile != "" && cfg.TLS.CertFile == "" {
		env.Fail("GRPC_TLS_CLIENT_CA_FILE", errors.New("needs GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE: client certificates are only asked for over TLS"))
	}
	return cfg
}
