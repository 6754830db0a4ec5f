package writeback

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ObserveMetrics reports hr_ingest.writeback.pending (results not yet handled) and, per source,
// hr_ingest.writeback.parked whenever metrics are collected, until the registration is
// unregistered.
func (s *Sink) ObserveMetrics() (metric.Registration, error) {
	meter := otel.Meter("github.com/orgsync/orgsync/services/hr-ingest/internal/writeback")
	pending, err := meter.Int64ObservableGauge("hr_ingest.writeback.pending", metric.WithUnit("{result}"),
		metric.WithDescription("Writer results waiting to be written back to their HR sources"))
	if err != nil {
		return nil, err
	}
	parked, err := meter.Int64ObservableGauge("hr_ingest.writeback.parked", metric.WithUnit("{write-back}"),
		metric.WithDescription("Write-backs the HR source refused for a reason retrying cannot fix, waiting for a replay"))
	if err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(ctx context.Context, observer metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		status, err := s.Status(ctx)
		if err != nil {
			return nil // JetStream is not reachable: nothing to report this time
		}
		observer.ObserveInt64(pending, status.Pending)
		for _, src := range status.Sources {
			observer.ObserveInt64(parked, int64(src.Parked), metric.WithAttributes(attribute.String("source", src.Source)))
		}
		return nil
	}, pending, parked)
}
