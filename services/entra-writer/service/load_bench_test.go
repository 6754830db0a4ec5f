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
