package service

import (
	"testing"
	"time"

	"github.com/orgsync/orgsync/pkg/redistest"
	"github.com/orgsync/orgsync/services/entra-writer/internal/budget"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// TestScalingOutDoesNotMultiply429s runs two entra-writer replicas against an emulator that
// allows 60 writes per 2 s. With a budget of 54 per 2 s shared in Redis they stay inside the quota
// and get no 429; with the same budget kept by each replica alone they offer twice as much and
// are throttled. Both converge.
func TestScalingOutDoesNotMultiply429s(t *testing.T) {
	o := synthOrg(240, 6)
	limit := budget.Limit{Writes: 54, Window: 2 * time.Second, Burst: 6}
	quota := emulator.Faults{WriteQuota: 60, QuotaWindow: 2 * time.Second}
	run := func(t *testing.T, redisURL string) int {
		p := newPipeline(t, quota)
		for range 2 {
			p.startWriter(t, func(cfg *Config) {
				cfg.WriteBudget, cfg.RedisURL, cfg.BudgetKey = limit, redisURL, "graph-writes:test"
			})
		}
		p.publish(t, o.objects)
		p.waitForResults(t, len(o.objects), 3*time.Minute)
		if got := len(p.emulator.Users()); got != o.workers {
			t.Errorf("%d users, want %d", got, o.workers)
		}
		return p.emulator.Stats().ErrorCodes[emulator.CodeTooManyRequests]
	}
	t.Run("shared budget in Redis", func(t *testing.T) {
		if throttled := run(t, redistest.Start(t)); throttled != 0 {
			t.Errorf("%d writes throttled with a shared budget, want 0", throttled)
		}
	})
	t.Run("separate budgets", func(t *testing.T) {
		if throttled := run(t, ""); throttled == 0 {
			t.Error("no write throttled with two separate budgets; the comparison shows nothing")
		}
	})
}
