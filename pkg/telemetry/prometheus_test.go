package telemetry

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/orgsync/orgsync/pkg/metrics"
)

// TestMetricsKeepTheirPrometheusNames checks the names the dashboards and docs/observability.md
// use, as OpenTelemetry's Prometheus exporter writes them.
func TestMetricsKeepTheirPrometheusNames(t *testing.T) {
	reader, page, err := newPrometheus()
	if err != nil {
		t.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	instruments, err := metrics.New(provider.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	accepted := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	changeCtx := metrics.WithAcceptedAt(ctx, accepted)
	if got, ok := metrics.AcceptedAt(changeCtx); !ok || !got.Equal(accepted) {
		t.Fatalf("AcceptedAt = %v, %v; baggage %q", got, ok, baggage.FromContext(changeCtx).String())
	}
	instruments.HREvent(ctx, "workday", "accepted", "", 3)
	instruments.HREvent(ctx, "workday", "rejected", "invalid", 1)
	instruments.DirectoryWrite(changeCtx, "entra", "user", "user.create", "applied")
	instruments.ChangeApplied(changeCtx, "entra", "user", accepted.Add(1500*time.Millisecond))
	instruments.ChangeApplied(ctx, "entra", "user", accepted) // no accept time: not recorded
	instruments.BudgetUsed(ctx, 0.25)

	recorder := httptest.NewRecorder()
	page.ServeHTTP(recorder, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(recorder.Result().Body)
	out := string(body)
	for _, want := range []string{
		"# TYPE orgsync_hr_events_total counter",
		`orgsync_hr_events_total{orgsync_outcome="accepted",orgsync_source="workday"} 3`,
		`orgsync_hr_events_total{orgsync_outcome="rejected",orgsync_reason="invalid",orgsync_source="workday"} 1`,
		`orgsync_directory_writes_total{orgsync_object_kind="user",orgsync_operation="user.create",orgsync_outcome="applied",orgsync_target="entra"} 1`,
		"# TYPE orgsync_change_latency_seconds histogram",
		`orgsync_change_latency_seconds_bucket{orgsync_object_kind="user",orgsync_target="entra",le="1"} 0`,
		`orgsync_change_latency_seconds_bucket{orgsync_object_kind="user",orgsync_target="entra",le="2.5"} 1`,
		`orgsync_change_latency_seconds_count{orgsync_object_kind="user",orgsync_target="entra"} 1`,
		`orgsync_change_latency_seconds_sum{orgsync_object_kind="user",orgsync_target="entra"} 1.5`,
		"orgsync_graph_budget_used_ratio 0.25",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("no line %q in:\n%s", want, out)
		}
	}
}

func TestMetricsHandlerBeforeSetupIsEmpty(t *testing.T) {
	// No test in this package calls Setup, so no page is installed.
	recorder := httptest.NewRecorder()
	MetricsHandler().ServeHTTP(recorder, httptest.NewRequest("GET", "/metrics", nil))
	if recorder.Code != 200 || recorder.Body.Len() != 0 {
		t.Errorf("before Setup: %d %q, want 200 and an empty page", recorder.Code, recorder.Body.String())
	}
}
