package telemetry

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprometheus "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// metricsPage is the /metrics handler Setup installs, which MetricsHandler serves.
var metricsPage atomic.Pointer[http.Handler]

// MetricsHandler serves the service's OpenTelemetry metrics in the Prometheus exposition format,
// for scraping at /metrics, through OpenTelemetry's Prometheus exporter: dots become
// underscores, counters end in _total, seconds in _seconds, ratios in _ratio. Before Setup (or
// with OTEL_SDK_DISABLED) it serves an empty page. It is safe for concurrent use.
func MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := metricsPage.Load()
		if page == nil {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			return
		}
		(*page).ServeHTTP(w, r)
	})
}

// newPrometheus returns a metric reader for a MeterProvider and the handler that serves what it
// reads, on a registry of its own (never the client library's global one).
func newPrometheus() (sdkmetric.Reader, http.Handler, error) {
	registry := prometheus.NewRegistry()
	reader, err := otelprometheus.New(otelprometheus.WithRegisterer(registry), otelprometheus.WithoutScopeInfo())
	if err != nil {
		return nil, nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	return reader, promhttp.HandlerFor(registry, promhttp.HandlerOpts{}), nil
}
