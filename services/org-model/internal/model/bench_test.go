package model

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
	"github.com/orgsync/orgsync/services/org-model/internal/sample"
)

// largeOrg makes the benchmarks use the size (100,000 workers, 5,000 units) instead of
// the default 10,000 and 500, which keeps `make bench` short.
var largeOrg = flag.Bool("org-model.large", false, "benchmark a synthetic org of 100,000 workers and 5,000 units")

var benchNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func benchSize() (workers, units int) {
	if *largeOrg {
		return 100_000, 5_000
	}
	return 10_000, 500
}

func benchPolicy(b *testing.B) *policy.Policy {
	b.Helper()
	pol, err := policy.Load("testdata/golden-policy.yaml")
	if err != nil {
		b.Fatal(err)
	}
	return pol
}

func heapInUse() uint64 {
	runtime.GC()
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	return stats.HeapInuse
}

// BenchmarkFullRecompute replays a synthetic org into a fresh model and computes its whole
// desired state (users, unit, roll-up, manager and rule groups, memberships), as org-model does
// at start. It reports the objects computed and the heap the model holds afterwards.
func BenchmarkFullRecompute(b *testing.B) {
	workers, units := benchSize()
	events := sample.Company(sample.Options{Workers: workers, Units: units, Seed: 1, Now: benchNow, Lifecycle: true})
	pol := benchPolicy(b)
	b.Run(fmt.Sprintf("workers=%d/units=%d", workers, units), func(b *testing.B) {
		var objects int
		var heap uint64
		for b.Loop() {
			m := New(pol)
			for _, event := range events {
				m.Record(event, benchNow)
			}
			objects = len(m.ComputeAll(benchNow))
			b.StopTimer()
			heap = heapInUse()
			runtime.KeepAlive(m)
			b.StartTimer()
		}
		b.ReportMetric(float64(objects), "objects")
		b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
	})
}

// BenchmarkIncrementalEvents applies HR events one by one to a model of a synthetic org that is
// already computed: movers between units, title changes and leavers. Each event's changed objects
// are computed as org-model does before publishing; events/s is the figure.
func BenchmarkIncrementalEvents(b *testing.B) {
	workers, units := benchSize()
	events := sample.Company(sample.Options{Workers: workers, Units: units, Seed: 1, Now: benchNow, Lifecycle: true})
	m := New(benchPolicy(b))
	for _, event := range events {
		m.Record(event, benchNow)
	}
	m.ComputeAll(benchNow)
	var records []*orgsyncv1.Worker
	for _, event := range events {
		if w := event.GetWorker(); w != nil {
			records = append(records, w)
		}
	}
	b.Run(fmt.Sprintf("workers=%d/units=%d", workers, units), func(b *testing.B) {
		changed := 0
		i := 0
		now := benchNow
		for b.Loop() {
			i++
			now = now.Add(time.Second)
			next := proto.CloneOf(records[(i*7919)%len(records)])
			switch i % 3 {
			case 0:
				next.OrgUnitId = fmt.Sprintf("u%04d", (i*31)%units)
			case 1:
				next.JobTitle = fmt.Sprintf("Title %d", i)
			case 2:
				next.EmploymentStatus = orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED
			}
			changed += len(m.Apply(&orgsyncv1.HREvent{EventId: fmt.Sprint(i), OccurredAt: timestamppb.New(now),
				Payload: &orgsyncv1.HREvent_Worker{Worker: next}}, now))
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(changed)/float64(b.N), "objects/event")
	})
}
