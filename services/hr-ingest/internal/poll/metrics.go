package poll

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ObserveMetrics reports, per poll source, whenever metrics are collected (until the
// registration is unregistered): hr_ingest.poll.consecutive_failures,
// hr_ingest.poll.parked (1 when polling stopped for an error retrying cannot fix),
// hr_ingest.poll.since_last_success (seconds; how stale the source's data may be) and
// hr_ingest.poll.invalid_records (records skipped because they cannot be mapped). They are read
// from the state bucket, so every replica reports every source.
func (p *Poller) ObserveMetrics() (metric.Registration, error) {
	meter := otel.Meter("github.com/orgsync/orgsync/services/hr-ingest/internal/poll")
	failures, err := meter.Int64ObservableGauge("hr_ingest.poll.consecutive_failures", metric.WithUnit("{poll}"),
		metric.WithDescription("Polls of the source failed since the last success"))
	if err != nil {
		return nil, err
	}
	parked, err := meter.Int64ObservableGauge("hr_ingest.poll.parked",
		metric.WithDescription("1 when polling the source stopped for an error retrying cannot fix (restart with fixed settings)"))
	if err != nil {
		return nil, err
	}
	stale, err := meter.Float64ObservableGauge("hr_ingest.poll.since_last_success", metric.WithUnit("s"),
		metric.WithDescription("Time since the source's last successful poll"))
	if err != nil {
		return nil, err
	}
	invalid, err := meter.Int64ObservableGauge("hr_ingest.poll.invalid_records", metric.WithUnit("{record}"),
		metric.WithDescription("Polled records skipped because they cannot be mapped"))
	if err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(ctx context.Context, observer metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		statuses, err := p.Status(ctx)
		if err != nil {
			return nil // the bucket is not reachable: nothing to report this time
		}
		for _, s := range statuses {
			attrs := metric.WithAttributes(attribute.String("source", s.Source))
			observer.ObserveInt64(failures, int64(s.ConsecutiveFailures), attrs)
			isParked := int64(0)
			if s.Parked {
				isParked = 1
			}
			observer.ObserveInt64(parked, isParked, attrs)
			if !s.LastSuccess.IsZero() {
				observer.ObserveFloat64(stale, time.Since(s.LastSuccess).Seconds(), attrs)
			}
			observer.ObserveInt64(invalid, s.InvalidRecords, attrs)
		}
		return nil
	}, failures, parked, stale, invalid)
}
