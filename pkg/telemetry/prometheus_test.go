package telemetry

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/orgsync/orgsync/pkg/metrics"
)

func TestMetricsAreWrittenAsPrometheusText(t *testing.T) {
	reader := sdkmetric.NewManualReader()
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

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	WritePrometheus(&out, &rm)
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
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("no line %q in:\n%s", want, out.String())
		}
	}
}
