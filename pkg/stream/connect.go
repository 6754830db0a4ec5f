package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connect connects to NATS at url as client name, reconnecting for ever after a loss, and ensures
// orgsync's streams exist. The connection waits for the server at start until ctx ends.
func Connect(ctx context.Context, url, name string, cfg Config, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("NATS disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { logger.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to NATS at %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("JetStream: %w", err)
	}
	for {
		err = EnsureStreams(ctx, js, cfg)
		if err == nil {
			return nc, js, nil
		}
		logger.Warn("JetStream not ready; retrying", "url", url, "error", err)
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, nil, fmt.Errorf("JetStream at %s: %w", url, errors.Join(err, ctx.Err()))
		case <-time.After(time.Second):
		}
	}
}

// ReadyCheck reports whether the connection is up and JetStream answers.
func ReadyCheck(nc *nats.Conn, js jetstream.JetStream) func(context.Context) error {
	return func(ctx context.Context) error {
		if status := nc.Status(); status != nats.CONNECTED {
			return fmt.Errorf("NATS connection is %s", status)
		}
		if _, err := js.AccountInfo(ctx); err != nil {
			return fmt.Errorf("JetStream: %w", err)
		}
		return nil
	}
}
