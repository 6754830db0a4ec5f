// Package telemetry sets up OpenTelemetry for an orgsync service from the standard OTEL_*
// environment variables: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES for the resource,
// OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER ("otlp", "console" or "none"),
// OTEL_EXPORTER_OTLP_ENDPOINT and its per-signal variants, OTEL_EXPORTER_OTLP_PROTOCOL
// ("http/protobuf" by default, or "grpc"), OTEL_TRACES_SAMPLER and OTEL_SDK_DISABLED.
//
// Personal data stays out of exported spans unless ORGSYNC_TELEMETRY_PII=allow: see package pii
// and RedactingExporter.
//
// When no exporter is named and no OTLP endpoint is set, spans are still created (and carried
// across services) but not exported, so a service without a collector logs no export errors.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"

	"github.com/orgsync/orgsync/pkg/pii"
)

// Shutdown flushes and stops the providers Setup installed.
type Shutdown func(context.Context) error

// Setup installs global tracer and meter providers and the W3C trace-context and baggage
// propagators for the service, configured by lookup (os.LookupEnv in production).
func Setup(ctx context.Context, serviceName, version string, lookup func(string) (string, bool)) (Shutdown, error) {
	env := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") {
		return func(context.Context) error { return nil }, nil
	}

	allowPII, err := pii.Allowed(lookup)
	if err != nil {
		return nil, err
	}
	exporter := func(exp sdktrace.SpanExporter) sdktrace.SpanExporter {
		if allowPII {
			return exp
		}
		return RedactingExporter(exp)
	}

	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName), semconv.ServiceVersion(version)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}

	traceOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	switch name := exporterName(env, "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); name {
	case "none":
	case "console":
		exp, err := stdouttrace.New(stdouttrace.WithWriter(os.Stderr))
		if err != nil {
			return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=console: %w", err)
		}
		traceOpts = append(traceOpts, sdktrace.WithBatcher(exporter(exp)))
	case "otlp":
		var exp sdktrace.SpanExporter
		if protocol(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") == "grpc" {
			exp, err = otlptracegrpc.New(ctx)
		} else {
			exp, err = otlptracehttp.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
		traceOpts = append(traceOpts, sdktrace.WithBatcher(exporter(exp)))
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not one of otlp, console, none", name)
	}
	tracerProvider := sdktrace.NewTracerProvider(traceOpts...)
	otel.SetTracerProvider(tracerProvider)

	// Metrics are always readable as Prometheus text at /metrics (MetricsHandler), and exported
	// over OTLP as well when configured.
	pullReader, page, err := newPrometheus()
	if err != nil {
		return nil, errors.Join(err, tracerProvider.Shutdown(ctx))
	}
	metricsPage.Store(&page)
	meterOpts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(pullReader)}
	switch name := exporterName(env, "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"); name {
	case "none", "console":
		// Console metrics are noise in a service log; only OTLP is exported.
	case "otlp":
		var exp sdkmetric.Exporter
		if protocol(env, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") == "grpc" {
			exp, err = otlpmetricgrpc.New(ctx)
		} else {
			exp, err = otlpmetrichttp.New(ctx)
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("OTLP metric exporter: %w", err), tracerProvider.Shutdown(ctx))
		}
		meterOpts = append(meterOpts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	default:
		return nil, errors.Join(fmt.Errorf("OTEL_METRICS_EXPORTER: %q is not one of otlp, console, none", name), tracerProvider.Shutdown(ctx))
	}
	meterProvider := sdkmetric.NewMeterProvider(meterOpts...)
	otel.SetMeterProvider(meterProvider)

	return func(ctx context.Context) error {
		return errors.Join(tracerProvider.Shutdown(ctx), meterProvider.Shutdown(ctx))
	}, nil
}

// exporterName applies the spec's variable, defaulting to OTLP only when an endpoint is configured.
func exporterName(env func(string) string, variable, signalEndpoint string) string {
	if name := strings.ToLower(env(variable)); name != "" {
		return name
	}
	if env("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || env(signalEndpoint) != "" {
		return "otlp"
	}
	return "none"
}

func protocol(env func(string) string, signalVariable string) string {
	if p := env(signalVariable); p != "" {
		return p
	}
	if p := env("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" {
		return p
	}
	return "http/protobuf"
}
