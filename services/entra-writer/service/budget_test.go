package service

import (
	"strings"
	"testing"
	"time"

	"github.com/orgsync/orgsync/pkg/redistest"
	"github.com/orgsync/orgsync/services/entra-writer/internal/budget"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// TestScalingOutDoesNotMultiply429s runs two entra-writer replicas against an emulator that
// allows 60 writes per 2 s. With a budget of 50 per 2 s (burst 5: at most 55 in any 2 s, a margin for
// the time between a grant and its arrival) shared in Redis they stay inside the quota
// and get no 429; with the same budget kept by each replica alone they offer twice as much and
// are throttled. Both converge.
func TestScalingOutDoesNotMultiply429s(t *testing.T) {
	o := synthOrg(240, 6)
	limit := budget.Limit{Writes: 50, Window: 2 * time.Second, Burst: 5}
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

// TestRetryAfterKeepsEveryReplicaOut converges an organisation with two replicas sharing Redis
// while Graph throttles a fifth of the calls with a Retry-After of one second, and keeps refusing
// calls inside that second, as Graph does. A 429 pauses both replicas: the only calls inside a
// window are those already on their way when it opened, at most one per other replica (each
// replica makes one call at a time), and each of those is refused and pauses too.
func TestRetryAfterKeepsEveryReplicaOut(t *testing.T) {
	o := synthOrg(12, 3)
	p := newPipeline(t, emulator.Faults{ThrottleRate: 0.2, RetryAfter: time.Second, HoldThrottle: true, Seed: 20261205})
	redisURL := redistest.Start(t)
	for range 2 {
		p.startWriter(t, func(cfg *Config) { cfg.RedisURL, cfg.BudgetKey = redisURL, "graph-writes:test" })
	}
	p.publish(t, o.objects)
	p.waitForResults(t, len(o.objects), 3*time.Minute)
	if d := o.differences(p); len(d) != 0 {
		t.Errorf("not converged:\n%s", strings.Join(d, "\n"))
	}
	stats := p.emulator.Stats()
	throttled := stats.ErrorCodes[emulator.CodeTooManyRequests]
	t.Logf("%d calls, %d answered 429, %d inside a Retry-After window", stats.Requests, throttled, stats.CallsInRetryAfterWindow)
	if windows := throttled - stats.CallsInRetryAfterWindow; stats.CallsInRetryAfterWindow > windows {
		t.Errorf("%d calls inside %d Retry-After windows; want at most one per window (the other replica's call on its way)", stats.CallsInRetryAfterWindow, windows)
	}
}
