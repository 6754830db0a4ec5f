package converge

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/orgsync/orgsync/pkg/metrics"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// reader collects what the engine counts through metrics.Default(), whose instruments forward to
// the first global meter provider: it is installed before any test runs.
var reader = sdkmetric.NewManualReader()

func TestMain(m *testing.M) {
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	os.Exit(m.Run())
}

// directoryWrites returns the orgsync.directory.writes counts by "target kind operation outcome".
func directoryWrites(t *testing.T) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != metrics.DirectoryWrites || !ok {
				continue
			}
			for _, p := range sum.DataPoints {
				value := func(k attribute.Key) string { v, _ := p.Attributes.Value(k); return v.AsString() }
				got[value(metrics.TargetKey)+" "+value(metrics.KindKey)+" "+value(metrics.OperationKey)+" "+value(metrics.OutcomeKey)] += p.Value
			}
		}
	}
	return got
}

// TestOutcomesAreCounted: every write a writer reports is counted by target, kind, operation and
// outcome — the same for both writers, since both report through the engine.
func TestOutcomesAreCounted(t *testing.T) {
	js := startJetStream(t)
	e := New(orgsyncv1.Target_TARGET_AD, stream.NewPublisher(js), nil, slog.New(slog.DiscardHandler))
	before := directoryWrites(t)
	items, _ := e.Decode(t.Context(), []jetstream.Msg{message(t, user("E1", 1, "Lead")), message(t, user("E2", 1, "Lead"))})
	result := e.Result(items[0].Obj)
	result.Outcome, result.Operations = orgsyncv1.Outcome_OUTCOME_APPLIED, []string{"user.create", "user.password"}
	if err := e.Succeed(t.Context(), items[0], result); err != nil {
		t.Fatal(err)
	}
	if err := e.Park(t.Context(), items[1], errors.New("refused"), Failure{}); !errors.Is(err, stream.ErrPermanent) {
		t.Fatalf("Park = %v", err)
	}
	got := directoryWrites(t)
	for k, v := range before {
		got[k] -= v
		if got[k] == 0 {
			delete(got, k)
		}
	}
	want := map[string]int64{"ad user user.create applied": 1, "ad user user.password applied": 1, "ad user apply failed": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("directory writes counted (-want +got):\n%s", diff)
	}
	if !e.Stale("ad.user.E1", 0) || e.Applied("ad.user.E2") != 0 {
		t.Errorf("applied revisions: E1 %d, E2 %d; want 1 and 0 (a parked state is not applied)", e.Applied("ad.user.E1"), e.Applied("ad.user.E2"))
	}
}
