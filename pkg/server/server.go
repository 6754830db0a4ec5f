// Package server runs an orgsync service's network side: a gRPC server with health (per service
// name) and reflection, an HTTP server with /healthz, /readyz and /metrics (Prometheus text),
// readiness from the service's own checks, and a graceful shutdown in order.
//
// It is meant for orgsync's own services, not for outside use.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"

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

	mu     sync.Mutex
	checks map[string]Check
}

// New opens both listeners, so that their addresses are known before serving, and builds the
// servers.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.ReadinessInterval <= 0 {
		cfg.ReadinessInterval = 2 * time.Second
	}
	grpcListener, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("gRPC listener on %s: %w", cfg.GRPCAddr, err)
	}
	httpListener, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		grpcListener.Close()
		return nil, fmt.Errorf("HTTP listener on %s: %w", cfg.HTTPAddr, err)
	}

	s := &Server{
		cfg:          cfg,
		logger:       logger,
		health:       health.NewServer(),
		mux:          http.NewServeMux(),
		grpcListener: grpcListener,
		httpListener: httpListener,
		checks:       map[string]Check{},
	}
	s.grpcServer = grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool {
			return info.FullMethodName != healthpb.Health_Check_FullMethodName &&
				info.FullMethodName != healthpb.Health_Watch_FullMethodName
		}),
	)))
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
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				if r.Pattern != "" {
					return r.Pattern
				}
				return r.Method
			}),
		),
		ReadHeaderTimeout: 10 * time.Second,
	}
	return s, nil
}

// GRPC is the gRPC server to register services on before Run.
func (s *Server) GRPC() *grpc.Server { return s.grpcServer }

// Handle registers an HTTP handler on the service's mux (patterns as in net/http.ServeMux).
func (s *Server) Handle(pattern string, handler http.Handler) { s.mux.Handle(pattern, handler) }

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
	errs := make(chan error, 2)
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

// ConfigFromEnv reads HTTP_ADDR, GRPC_ADDR and SHUTDOWN_TIMEOUT for the named service.
func ConfigFromEnv(name string, env *envconfig.Env, defaultHTTPAddr, defaultGRPCAddr string) Config {
	return Config{
		Name:            name,
		HTTPAddr:        env.String("HTTP_ADDR", defaultHTTPAddr),
		GRPCAddr:        env.String("GRPC_ADDR", defaultGRPCAddr),
		ShutdownTimeout: env.Duration("SHUTDOWN_TIMEOUT", 10*time.Second),
	}
}
