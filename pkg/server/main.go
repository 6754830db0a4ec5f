package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/orgsync/orgsync/pkg/logging"
	"github.com/orgsync/orgsync/pkg/telemetry"
)

// Main is the body of a service's main: it builds a context cancelled by SIGINT or SIGTERM, a JSON
// logger (level from LOG_LEVEL) and OpenTelemetry from OTEL_*, calls run, and flushes telemetry
// last. It returns run's error, logged once; main decides the exit code.
func Main(name, version string, run func(ctx context.Context, logger *slog.Logger) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	level, err := logging.ParseLevel(os.Getenv("LOG_LEVEL"))
	logger := logging.New(os.Stderr, name, level)
	if err != nil {
		logger.Error("bad configuration", "error", fmt.Errorf("LOG_LEVEL: %w", err))
		return err
	}
	shutdownTelemetry, err := telemetry.Setup(ctx, name, version, os.LookupEnv)
	if err != nil {
		logger.Error("bad telemetry configuration", "error", err)
		return err
	}
	runErr := run(ctx, logger)
	if runErr != nil {
		logger.Error("stopped", "error", runErr)
	} else {
		logger.Info("stopped")
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdownTelemetry(flushCtx); err != nil {
		logger.Warn("flushing telemetry", "error", err)
	}
	return runErr
}
