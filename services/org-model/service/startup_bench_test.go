package service

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/checkpoint"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
	"github.com/orgsync/orgsync/services/org-model/internal/sample"
)

// startupDays are the history lengths BenchmarkStartup measures, in days of daily full exports.
var startupDays = flag.String("org-model.startup-days", "30,90", "comma-separated history lengths (days of daily full exports) for BenchmarkStartup")

// startupWorkers is the size of each daily export.
var startupWorkers = flag.Int("org-model.startup-workers", 10_000, "workers in each daily export of BenchmarkStartup")

const startupPolicy = `upnDomains: [corp.example.com]
sources:
  - name: export
    hierarchy: [company, division, department]
groups:
  rollup: {enabled: true}
`

// BenchmarkStartup measures how long org-model takes from start to ready (HR replayed, desired
// state reconciled) after a history of daily full exports (BEGIN, every worker, END) of a
// source whose units come from attributes, with a few moves and leavers each day — once
// replaying the whole history ("full"), once from a checkpoint written after the day before the
// last plus the last day's export ("checkpoint"). It reports the seconds to ready and the peak
// Go heap of the process (org-model and the embedded NATS server) during the start.
//
//	go test -run '^$' -bench Startup -benchtime 3x -timeout 60m ./service/ -org-model.startup-days 30,90
func BenchmarkStartup(b *testing.B) {
	for _, field := range strings.Split(*startupDays, ",") {
		days, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || days < 2 {
			b.Fatalf("-org-model.startup-days: %q is not a number of days of at least 2", field)
		}
		b.Run(fmt.Sprintf("days=%d/workers=%d", days, *startupWorkers), func(b *testing.B) {
			benchmarkStartup(b, days, *startupWorkers)
		})
	}
}

func benchmarkStartup(b *testing.B, days, workers int) {
	srv := streamtest.Start(b)
	js := srv.JS
	policyFile := filepath.Join(b.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(startupPolicy), 0o600); err != nil {
		b.Fatal(err)
	}
	first := time.Date(2021, 6, 1, 2, 0, 0, 0, time.UTC)
	now := first.AddDate(0, 0, days)
	fake := clock.NewFake(now)
	start := func(checkpoints CheckpointConfig) (*Service, func()) {
		ctx, cancel := context.WithCancel(b.Context())
		svc, err := New(ctx, Config{
			NATSURL:    srv.ClientURL(),
			Server:     server.Config{Name: Name, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ReadinessInterval: 5 * time.Millisecond},
			Streams:    stream.DefaultConfig(),
			PolicyFile: policyFile,
			Clock:      fake,
			Checkpoint: checkpoints,
		}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := svc.Run(ctx); err != nil && ctx.Err() == nil {
				b.Errorf("Run: %v", err)
			}
		})
		for !svc.applier.CaughtUp() {
			time.Sleep(2 * time.Millisecond)
		}
		return svc, func() { cancel(); wg.Wait() }
	}

	// History up to the day before the last, a checkpoint of it, then the last day.
	base := sample.Company(sample.Options{Workers: workers, Units: max(1, workers/20), Seed: 1, Now: first, Lifecycle: false})
	published := publishExports(b, js, base, first, 0, days-1)
	// About one checkpoint a day of history, and the last one within seconds of the end.
	_, stop := start(CheckpointConfig{Events: workers + 2, Interval: 2 * time.Second})
	for storedSequence(b, js) < published {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	total := publishExports(b, js, base, first, days-1, days)
	// A first start publishes the whole desired state; the measured starts find it there.
	_, stop = start(CheckpointConfig{})
	stop()

	for _, mode := range []string{"full", "checkpoint"} {
		checkpoints := CheckpointConfig{}
		if mode == "checkpoint" {
			// Restore, but write no checkpoint during the measured start.
			checkpoints = CheckpointConfig{Events: 1 << 40, Interval: time.Hour}
		}
		b.Run(mode, func(b *testing.B) {
			var seconds, peak float64
			for b.Loop() {
				runtime.GC()
				sampler := startHeapSampler()
				began := time.Now()
				_, stop := start(checkpoints)
				seconds += time.Since(began).Seconds()
				peak = max(peak, float64(sampler.stop()))
				stop()
			}
			b.ReportMetric(seconds/float64(b.N), "s/start")
			b.ReportMetric(peak/(1<<20), "MiB-peak-heap")
			b.ReportMetric(float64(total), "hr-events")
		})
	}
}

// publishExports publishes the daily exports of days [from, to): each day BEGIN, every worker of
// base (1 in 500 moves department that day, 1 in 2,000 leaves), END — without occurred_at, as
// CSV and SCIM exports come, with the day as received_at. It returns the HR stream's last sequence.
func publishExports(b *testing.B, js jetstream.JetStream, base []*orgsyncv1.HREvent, first time.Time, from, to int) uint64 {
	b.Helper()
	var records []*orgsyncv1.Worker
	units := map[string]*orgsyncv1.OrgUnit{}
	for _, e := range base {
		if u := e.GetOrgUnit(); u != nil {
			units[u.GetOrgUnitId()] = u
		}
	}
	for _, e := range base {
		if w := e.GetWorker(); w != nil {
			r := proto.CloneOf(w)
			unit := units[r.GetOrgUnitId()]
			r.Division, r.Department, r.OrgUnitId = units[unit.GetParentOrgUnitId()].GetName(), unit.GetName(), ""
			records = append(records, r)
		}
	}
	pending := 0
	waitAcks := func() {
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("HR publishes not acknowledged within a minute")
		}
	}
	publish := func(e *orgsyncv1.HREvent) {
		hrSubject, err := subject.HRSubject(e)
		if err != nil {
			b.Fatal(err)
		}
		data, err := proto.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishAsync(hrSubject, data, jetstream.WithMsgID(e.GetEventId())); err != nil {
			b.Fatal(err)
		}
		// Keep the acknowledgements outstanding below the client's limit.
		if pending++; pending%1000 == 0 {
			waitAcks()
		}
	}
	for day := from; day < to; day++ {
		at := timestamppb.New(first.AddDate(0, 0, day))
		snapshotID := fmt.Sprintf("export-%05d", day)
		marker := func(phase orgsyncv1.SnapshotMarker_Phase) *orgsyncv1.HREvent {
			return &orgsyncv1.HREvent{EventId: snapshotID + "." + phase.String(), Source: "export", ReceivedAt: at,
				Payload: &orgsyncv1.HREvent_Snapshot{Snapshot: &orgsyncv1.SnapshotMarker{SnapshotId: snapshotID, Phase: phase, RecordCount: int64(len(records))}}}
		}
		publish(marker(orgsyncv1.SnapshotMarker_PHASE_BEGIN))
		for i, r := range records {
			if (i+day)%500 == 0 {
				r = proto.CloneOf(r)
				r.Department = records[(i+day*7)%len(records)].GetDepartment()
				records[i] = r
			}
			if (i+3*day)%2000 == 0 && r.GetEmploymentStatus() != orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED {
				r = proto.CloneOf(r)
				r.EmploymentStatus = orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED
				records[i] = r
			}
			publish(&orgsyncv1.HREvent{EventId: fmt.Sprintf("%s.%d", snapshotID, i), Source: "export", SnapshotId: snapshotID, ReceivedAt: at,
				Payload: &orgsyncv1.HREvent_Worker{Worker: r}})
		}
		publish(marker(orgsyncv1.SnapshotMarker_PHASE_END))
		waitAcks()
	}
	hr, err := js.Stream(b.Context(), stream.HR)
	if err != nil {
		b.Fatal(err)
	}
	return hr.CachedInfo().State.LastSeq
}

func storedSequence(b *testing.B, js jetstream.JetStream) uint64 {
	store, err := js.ObjectStore(b.Context(), CheckpointBucket)
	if err != nil {
		return 0
	}
	obj, err := store.Get(b.Context(), checkpoint.Object)
	if err != nil {
		return 0
	}
	defer obj.Close()
	cp, err := checkpoint.Decode(obj)
	if err != nil {
		b.Fatal(err)
	}
	return cp.GetHrSequence()
}

// heapSampler records the largest live Go heap seen while it runs.
type heapSampler struct {
	done chan struct{}
	peak chan uint64
}

func startHeapSampler() *heapSampler {
	s := &heapSampler{done: make(chan struct{}), peak: make(chan uint64, 1)}
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		ticker := time.NewTicker(5 * time.Millisecond)
		defer ticker.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-s.done:
				s.peak <- peak
				return
			case <-ticker.C:
			}
		}
	}()
	return s
}

func (s *heapSampler) stop() uint64 {
	close(s.done)
	return <-s.peak
}
