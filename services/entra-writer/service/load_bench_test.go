package service

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// BenchmarkInitialLoad loads a synthetic organisation of 10,000 workers in 600 units into an
// empty emulator and reports the Graph writes used against the fewest possible with batching,
// the HTTP requests, the 429s, and how long the writes alone would take at Graph's quota of
// about 20 writes a second per app and tenant. The memberships come unit by unit, as org-model
// publishes them, or in a random order after every user and group. Run it once: go test -run
// '^$' -bench InitialLoad -benchtime 1x ./services/entra-writer/service/
func BenchmarkInitialLoad(b *testing.B) {
	b.Run("memberships=unit-by-unit", func(b *testing.B) { benchmarkLoad(b, synthOrg(10_000, 600)) })
	b.Run("memberships=random", func(b *testing.B) {
		o := synthOrg(10_000, 600)
		o.shuffleMemberships(rand.New(rand.NewPCG(2026, 12)))
		benchmarkLoad(b, o)
	})
}

func benchmarkLoad(b *testing.B, o org) {
	for b.Loop() {
		p := startPipeline(b, emulator.Faults{})
		started := time.Now()
		p.publish(b, o.objects)
		p.waitForResults(b, len(o.objects), 30*time.Minute)
		elapsed := time.Since(started)

		stats := p.emulator.Stats()
		minimum := o.minimumWrites()
		b.ReportMetric(float64(stats.WriteRequests), "graph-writes")
		b.ReportMetric(float64(minimum), "minimum-writes")
		b.ReportMetric(float64(stats.WriteRequests)/float64(minimum), "writes/minimum")
		b.ReportMetric(float64(stats.Requests), "http-requests")
		b.ReportMetric(float64(stats.ErrorCodes[emulator.CodeTooManyRequests]), "429s")
		b.ReportMetric(float64(stats.WriteRequests)/20, "seconds-at-20-writes/s")
		b.ReportMetric(elapsed.Seconds(), "seconds-against-emulator")
		b.Logf("operations: %v", stats.Operations)
	}
}

// BenchmarkReorganisation loads the 10,000-worker organisation, then moves 2,000 workers (picked
// at random, unit heads stay) to another unit with that unit's head as their new manager — a
// reorganisation as org-model publishes it: the moved users' new revisions, then the memberships
// (old ones removed, new ones added) in random order. It reports the Graph writes of the move
// against the fewest possible: one update and one manager link per moved worker, one removal per
// old membership, one bind per 20 new members of a group. Run it once: go test -run '^$' -bench
// Reorganisation -benchtime 1x ./services/entra-writer/service/
func BenchmarkReorganisation(b *testing.B) {
	for b.Loop() {
		o := synthOrg(10_000, 600)
		p := startPipeline(b, emulator.Faults{})
		p.publish(b, o.objects)
		p.waitForResults(b, len(o.objects), 30*time.Minute)

		move, minimum := o.reorganise(rand.New(rand.NewPCG(2026, 15)), 2_000)
		before := p.emulator.Stats()
		started := time.Now()
		p.publish(b, move)
		p.waitForRevisions(b, move, 30*time.Minute)
		elapsed := time.Since(started)

		stats := p.emulator.Stats()
		writes := stats.WriteRequests - before.WriteRequests
		b.ReportMetric(float64(writes), "graph-writes")
		b.ReportMetric(float64(minimum), "minimum-writes")
		b.ReportMetric(float64(writes)/float64(minimum), "writes/minimum")
		b.ReportMetric(float64(stats.Requests-before.Requests), "http-requests")
		b.ReportMetric(float64(writes)/20, "seconds-at-20-writes/s")
		b.ReportMetric(elapsed.Seconds(), "seconds-against-emulator")
	}
}
