// Package status reports, for org-model's status API and metrics, what the whole deployment's
// streams hold: each orgsync stream's size and its durable consumers' lag, and the gauges
// org-model reports for everyone (consumer lag, changes the mass-change guard holds).
package status

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/orgsync/orgsync/pkg/metrics"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Streams reports each orgsync stream's size and its durable consumers' lag.
func Streams(ctx context.Context, js jetstream.JetStream) ([]*orgsyncv1.StreamStatus, error) {
	var statuses []*orgsyncv1.StreamStatus
	for _, name := range []string{stream.HR, stream.Directory, stream.Results, stream.Audit} {
		str, err := js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		info := str.CachedInfo()
		st := &orgsyncv1.StreamStatus{Stream: name, Messages: info.State.Msgs, Bytes: info.State.Bytes}
		consumers := str.ListConsumers(ctx)
		for consumer := range consumers.Info() {
			if consumer.Config.Durable == "" {
				continue // ordered and ephemeral readers are not lag anyone waits on
			}
			st.Consumers = append(st.Consumers, &orgsyncv1.ConsumerStatus{
				Name: consumer.Name, Pending: consumer.NumPending, AckPending: int64(consumer.NumAckPending), Redelivered: int64(consumer.NumRedelivered),
			})
		}
		if err := consumers.Err(); err != nil {
			return nil, fmt.Errorf("consumers of %s: %w", name, err)
		}
		statuses = append(statuses, st)
	}
	return statuses, nil
}

// Observe registers the gauges org-model reports for the whole deployment: every durable
// consumer's lag, and the changes the guard holds (guardHeld, called from the metrics reader's
// goroutine, must be safe for concurrent use). The caller unregisters them when it stops.
func Observe(js jetstream.JetStream, guardHeld func() int) ([]metric.Registration, error) {
	lag, err := stream.ObserveConsumerLag(js)
	if err != nil {
		return nil, fmt.Errorf("consumer lag metric: %w", err)
	}
	observers := []metric.Registration{lag}
	meter := otel.Meter("github.com/orgsync/orgsync/services/org-model")
	pending, err := meter.Int64ObservableGauge(metrics.GuardPending, metric.WithUnit("{object}"),
		metric.WithDescription("Changes the mass-change guard holds until approved or rejected"))
	if err != nil {
		_ = lag.Unregister()
		return nil, fmt.Errorf("guard metric: %w", err)
	}
	registration, err := meter.RegisterCallback(func(_ context.Context, observer metric.Observer) error {
		observer.ObserveInt64(pending, int64(guardHeld()))
		return nil
	}, pending)
	if err != nil {
		_ = lag.Unregister()
		return nil, fmt.Errorf("guard metric: %w", err)
	}
	return append(observers, registration), nil
}
