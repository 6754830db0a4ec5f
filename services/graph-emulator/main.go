// Command graph-emulator serves an in-memory Microsoft Graph v1.0 directory (package emulator)
// over HTTP, for running orgsync locally without a tenant.
//
// It listens on GRAPH_EMULATOR_ADDR (default 127.0.0.1:8081), prints the base URL to give to
// msgraph-sdk-go, logs JSON to stderr at GRAPH_EMULATOR_LOG_LEVEL (default info; every request
// is logged at debug) and serves its counters at GET /_emulator/stats. GRAPH_EMULATOR_VERIFIED_DOMAINS
// (comma-separated) makes it refuse, as a tenant does, a userPrincipalName in any other domain. SIGINT or SIGTERM shuts it
// down gracefully.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "graph-emulator: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	return serve(ctx, cfg, logger, os.Stdout)
}

// config is the emulator's configuration, read from the environment.
type config struct {
	// Addr is the TCP address to listen on (GRAPH_EMULATOR_ADDR).
	Addr string
	// LogLevel is the minimum level logged (GRAPH_EMULATOR_LOG_LEVEL: debug, info, warn, error).
	LogLevel slog.Level
	// VerifiedDomains are the tenant's verified domains (GRAPH_EMULATOR_VERIFIED_DOMAINS, comma
	// separated); empty accepts every domain.
	VerifiedDomains []string
}

func configFromEnv(getenv func(string) string) (config, error) {
	cfg := config{Addr: "127.0.0.1:8081", LogLevel: slog.LevelInfo}
	if addr := getenv("GRAPH_EMULATOR_ADDR"); addr != "" {
		cfg.Addr = addr
	}
	for _, domain := range strings.Split(getenv("GRAPH_EMULATOR_VERIFIED_DOMAINS"), ",") {
		if domain = strings.TrimSpace(domain); domain != "" {
			cfg.VerifiedDomains = append(cfg.VerifiedDomains, domain)
		}
	}
	if level := getenv("GRAPH_EMULATOR_LOG_LEVEL"); level != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
			return config{}, fmt.Errorf("GRAPH_EMULATOR_LOG_LEVEL: %w", err)
		}
	}
	return cfg, cfg.Validate()
}

// Validate reports a configuration the emulator cannot start with, naming the variable.
func (c config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("GRAPH_EMULATOR_ADDR %q is not host:port: %w", c.Addr, err)
	}
	return nil
}

// serve listens on cfg.Addr, announces the base URL on announce and serves until ctx ends. It
// owns the HTTP server's goroutine and waits for it before returning.
func serve(ctx context.Context, cfg config, logger *slog.Logger, announce io.Writer) error {
	listener, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	opts := []emulator.Option{emulator.WithLogger(logger)}
	if len(cfg.VerifiedDomains) > 0 {
		opts = append(opts, emulator.WithVerifiedDomains(cfg.VerifiedDomains...))
	}
	directory := emulator.New(opts...)
	mux := http.NewServeMux()
	mux.Handle("/", directory)
	mux.Handle("GET "+emulator.StatsPath, directory.StatsHandler())
	httpServer := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	if _, err := fmt.Fprintf(announce, "graph emulator listening on http://%s/v1.0\n", listener.Addr()); err != nil {
		listener.Close()
		return fmt.Errorf("announce address: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- httpServer.Serve(listener) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	shutdownErr := httpServer.Shutdown(shutdownCtx)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve HTTP: %w", err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("shut down HTTP server: %w", shutdownErr)
	}
	return nil
}
