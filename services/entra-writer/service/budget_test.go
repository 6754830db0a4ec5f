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
// allows 60 writes per 2 s, each replica with a budget of 50 per 2 s (burst 5: at most 55 in any
// 2 s, a margin for the time between a grant and its arrival). Only the replica holding the lease
// writes, so they get no 429 whether the budget is shared in Redis or kept by each replica alone
// (before the lease, two replicas with budgets of their own offered twice as much and were
// throttled). Exactly one of them is active.
func TestScalingOutDoesNotMultiply429s(t *testing.T) {
	o := synthOrg(240, 6)
	limit := budget.Limit{Writes: 50, Window: 2 * time.Second, Burst: 5}
	quota := emulator.Faults{WriteQuota: 60, QuotaWindow: 2 * time.Second}
	run := func(t *testing.T, redisURL string) {
		p := newPipeline(t, quota)
		var replicas []*Service
		for range 2 {
			replicas = append(replicas, p.startWriterWith(t, func(cfg *Config) {
				cfg.WriteBudget, cfg.RedisURL, cfg.BudgetKey = limit, redisURL, "graph-writes:test"
			}, nil))
		}
		p.publish(t, o.objects)
		p.waitForResults(t, len(o.objects), 3*time.Minute)
		if got := len(p.emulator.Users()); got != o.workers {
			t.Errorf("%d users, want %d", got, o.workers)
		}
		if throttled := p.emulator.Stats().ErrorCodes[emulator.CodeTooManyRequests]; throttled != 0 {
			t.Errorf("%d writes throttled, want 0", throttled)
		}
		if active := countActive(replicas); active != 1 {
			t.Errorf("%d replicas active, want 1", active)
		}
	}
	t.Run("shared budget in Redis", func(t *testing.T) { run(t, redistest.Start(t)) })
	t.Run("a budget per replica", func(t *testing.T) { run(t, "") })
}

func countActive(replicas []*Service) int {
	n := 0
	for _, r := range replicas {
		if r.Active() {
			n++
		}
	}
	return n
}

// TestRetryAfterKeepsEveryReplicaOut converges an organisation with two replicas sharing Redis
// while Graph throttles a fifth of the calls with a Retry-After of one second, and keeps refusing
// calls inside that second, as Graph does. Only the active replica calls Graph, one call at a
// time, and a 429 pauses every call: no call reaches Graph inside a Retry-After window.
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
	if throttled == 0 {
		t.Error("no call throttled; the test shows nothing")
	}
	if stats.CallsInRetryAfterWindow != 0 {
		t.Errorf("%d calls inside a Retry-After window, want 0", stats.CallsInRetryAfterWindow)
	}
}

// TestStandbyTakesOver: the active replica stops in the middle of a load; the standby takes over
// within a couple of seconds (the stopping replica lets its lease go and gives its held
// memberships back) and the load converges exactly.
func TestStandbyTakesOver(t *testing.T) {
	o := synthOrg(120, 4)
	p := newPipeline(t, emulator.Faults{})
	first, stopFirst := p.startReplica(t, nil, nil)
	deadline := time.Now().Add(10 * time.Second)
	for !first.Active() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !first.Active() {
		t.Fatal("the only replica did not become active")
	}
	second, _ := p.startReplica(t, nil, nil)
	p.publish(t, o.objects)
	for len(p.emulator.Users()) < o.workers/4 && time.Now().Before(deadline.Add(time.Minute)) {
		time.Sleep(20 * time.Millisecond)
	}
	if second.Active() {
		t.Fatal("the standby is active while the first replica holds the lease")
	}
	stopped := time.Now()
	stopFirst()
	for !second.Active() && time.Since(stopped) < 10*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if !second.Active() {
		t.Fatal("the standby did not take over within 10s of the active replica stopping")
	}
	t.Logf("took over %v after the active replica stopped, %d of %d users written by then", time.Since(stopped).Round(time.Millisecond), len(p.emulator.Users()), o.workers)
	p.waitForResults(t, len(o.objects), 3*time.Minute)
	if d := o.differences(p); len(d) != 0 {
		t.Errorf("not converged after the takeover:\n%s", strings.Join(d, "\n"))
	}
}
