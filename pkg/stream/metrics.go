package stream

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/orgsync/orgsync/pkg/metrics"
)

// countRedelivery counts msg in metrics.Redeliveries when it is not its first delivery.
func countRedelivery(ctx context.Context, msg jetstream.Msg) {
	if meta, err := msg.Metadata(); err == nil && meta.NumDelivered > 1 {
		metrics.Default().Redelivered(ctx, meta.Stream, meta.Consumer)
	}
}

// ObserveConsumerLag reports metrics.ConsumerLag — the messages each durable consumer of
// orgsync's streams has yet to receive — whenever metrics are collected, until the returned
// registration is unregistered. One service per deployment (org-model) observes for all.
func ObserveConsumerLag(js jetstream.JetStream) (metric.Registration, error) {
	meter := otel.Meter(instrumentationName)
	lag, err := meter.Int64ObservableGauge(metrics.ConsumerLag, metric.WithUnit("{message}"),
		metric.WithDescription("Messages a durable consumer has yet to receive"))
	if err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(ctx context.Context, observer metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		for _, name := range []string{HR, Directory, Results, Audit} {
			s, err := js.Stream(ctx, name)
			if err != nil {
				continue // a stream not there yet has no lag to report
			}
			consumers := s.ListConsumers(ctx)
			for info := range consumers.Info() {
				if info.Config.Durable == "" {
					continue
				}
				observer.ObserveInt64(lag, int64(info.NumPending),
					metric.WithAttributes(metrics.StreamKey.String(name), metrics.ConsumerKey.String(info.Name)))
			}
		}
		return nil
	}, lag)
}
