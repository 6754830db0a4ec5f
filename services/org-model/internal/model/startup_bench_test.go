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
	"github.com/orgsync/orgsync/services/org-model/internal/sample"
)

// dailyExports is days of daily full exports (BEGIN, every worker, END) of a source whose units
// come from company, division and department, with 1 in 500 workers moving and 1 in 2,000
// leaving each day; records carry no org unit and no occurred_at, as CSV and SCIM exports do.
func dailyExports(workers, days int, first time.Time) []*orgsyncv1.HREvent {
	events := make([]*orgsyncv1.HREvent, 0, days*(workers+2))
	eachDailyExport(workers, days, first, func(_ int, e *orgsyncv1.HREvent) { events = append(events, e) })
	return events
}

// eachDailyExport calls fn with every event of dailyExports in order, and the day it belongs to,
// without keeping them: years of history do not fit in memory at once.
func eachDailyExport(workers, days int, first time.Time, fn func(day int, e *orgsyncv1.HREvent)) {
	base := sample.Company(sample.Options{Workers: workers, Units: max(1, workers/20), Seed: 1, Now: first})
	units := map[string]*orgsyncv1.OrgUnit{}
	var records []*orgsyncv1.Worker
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
	for day := range days {
		at := timestamppb.New(first.AddDate(0, 0, day))
		id := fmt.Sprintf("export-%05d", day)
		marker := func(phase orgsyncv1.SnapshotMarker_Phase) *orgsyncv1.HREvent {
			return &orgsyncv1.HREvent{Source: "export", ReceivedAt: at, Payload: &orgsyncv1.HREvent_Snapshot{Snapshot: &orgsyncv1.SnapshotMarker{SnapshotId: id, Phase: phase}}}
		}
		fn(day, marker(orgsyncv1.SnapshotMarker_PHASE_BEGIN))
		for i, r := range records {
			if (i+day)%500 == 0 {
				r = proto.CloneOf(r)
				r.Department = records[(i+day*7)%len(records)].GetDepartment()
				records[i] = r
			}
			if (i+3*day)%2000 == 0 && r.GetEmploymentStatus() != terminated {
				r = proto.CloneOf(r)
				r.EmploymentStatus = terminated
				records[i] = r
			}
			fn(day, &orgsyncv1.HREvent{EventId: fmt.Sprintf("%s.%d", id, i), Source: "export", SnapshotId: id, ReceivedAt: at,
				Payload: &orgsyncv1.HREvent_Worker{Worker: r}})
		}
		fn(day, marker(orgsyncv1.SnapshotMarker_PHASE_END))
	}
}

// BenchmarkReplayVersusCheckpoint is org-model's start-up without JetStream: rebuilding the model
// from a history of daily exports, either by replaying all of it ("full") or by decoding a
// checkpoint taken the day before the last and replaying the last day ("checkpoint"), then
// computing the whole desired state. The service-level BenchmarkStartup adds JetStream.
func BenchmarkReplayVersusCheckpoint(b *testing.B) {
	const workers = 10_000
	first := time.Date(2021, 6, 1, 2, 0, 0, 0, time.UTC)
	pol := mustPolicy(b, "sources: [{name: export, hierarchy: [company, division, department]}]\ngroups: {rollup: {enabled: true}}\n")
	for _, days := range []int{10, 30} {
		events := dailyExports(workers, days, first)
		now := first.AddDate(0, 0, days)
		tail := len(events) - (workers + 2)
		before := New(pol)
		for _, e := range events[:tail] {
			before.Record(e, now)
		}
		data, err := proto.Marshal(before.Checkpoint(uint64(tail), now))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("days=%d/workers=%d/full", days, workers), func(b *testing.B) {
			var objects int
			for b.Loop() {
				m := New(pol)
				for _, e := range events {
					m.Record(e, now)
				}
				objects = len(m.ComputeAll(now))
			}
			b.ReportMetric(float64(len(events)), "hr-events")
			b.ReportMetric(float64(objects), "objects")
		})
		b.Run(fmt.Sprintf("days=%d/workers=%d/checkpoint", days, workers), func(b *testing.B) {
			for b.Loop() {
				var cp orgsyncv1.ModelCheckpoint
				if err := proto.Unmarshal(data, &cp); err != nil {
					b.Fatal(err)
				}
				m := New(pol)
				if err := m.Restore(&cp); err != nil {
					b.Fatal(err)
				}
				for _, e := range events[tail:] {
					m.Record(e, now)
				}
				m.ComputeAll(now)
			}
			b.ReportMetric(float64(len(data))/(1<<20), "checkpoint-MiB")
			b.ReportMetric(float64(len(events)-tail), "hr-events")
		})
	}
}

var historyDays = flag.Int("org-model.history-days", 10, "days of daily exports BenchmarkLongHistory streams (1826: five years)")

// BenchmarkLongHistory is the start-up the real-inputs issue asks for, at any length of history:
// -org-model.history-days days (10 by default; 1826 is five years, 18.3 million events) of daily
// full exports of 10,000 workers, streamed through the model rather than held in memory. "full"
// replays all of them and computes the desired state (a start before checkpoints); "checkpoint"
// restores the checkpoint the same replay took before the last day, replays that day (10,002
// events) and computes the same state.
//
//	go test -run '^$' -bench LongHistory -benchtime 1x -benchmem ./internal/model/ -org-model.history-days 1826
func BenchmarkLongHistory(b *testing.B) {
	const workers = 10_000
	days := max(*historyDays, 2)
	first := time.Date(2021, 6, 1, 2, 0, 0, 0, time.UTC)
	now := first.AddDate(0, 0, days)
	pol := mustPolicy(b, "sources: [{name: export, hierarchy: [company, division, department]}]\ngroups: {rollup: {enabled: true}}\n")
	var (
		checkpoint []byte
		lastDay    []*orgsyncv1.HREvent
		want       int
		heap       uint64
	)
	b.Run(fmt.Sprintf("days=%d/workers=%d/full", days, workers), func(b *testing.B) {
		var events int
		for b.Loop() {
			m := New(pol)
			events, lastDay = 0, lastDay[:0]
			eachDailyExport(workers, days, first, func(day int, e *orgsyncv1.HREvent) {
				if day == days-1 {
					if len(lastDay) == 0 {
						data, err := proto.Marshal(m.Checkpoint(uint64(events), now))
						if err != nil {
							b.Fatal(err)
						}
						checkpoint = data
					}
					lastDay = append(lastDay, e)
				}
				m.Record(e, now)
				events++
			})
			want = len(m.ComputeAll(now))
			b.StopTimer()
			heap = heapInUse()
			runtime.KeepAlive(m)
			b.StartTimer()
		}
		b.ReportMetric(float64(events), "hr-events")
		b.ReportMetric(float64(want), "objects")
		b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
	})
	b.Run(fmt.Sprintf("days=%d/workers=%d/checkpoint", days, workers), func(b *testing.B) {
		var objects int
		for b.Loop() {
			var cp orgsyncv1.ModelCheckpoint
			if err := proto.Unmarshal(checkpoint, &cp); err != nil {
				b.Fatal(err)
			}
			m := New(pol)
			if err := m.Restore(&cp); err != nil {
				b.Fatal(err)
			}
			for _, e := range lastDay {
				m.Record(e, now)
			}
			objects = len(m.ComputeAll(now))
			b.StopTimer()
			heap = heapInUse()
			runtime.KeepAlive(m)
			b.StartTimer()
		}
		if objects != want {
			b.Errorf("checkpoint start computed %d objects, the full replay %d", objects, want)
		}
		b.ReportMetric(float64(len(checkpoint))/(1<<20), "checkpoint-MiB")
		b.ReportMetric(float64(len(lastDay)), "hr-events")
		b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
	})
}
