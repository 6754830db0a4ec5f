package converge

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// replica is one writer replica under the lease: it counts how many replicas are active at once.
type replica struct {
	lease  *Lease
	cancel context.CancelFunc
	done   chan error
	// activations counts how often it became active.
	activations atomic.Int32
}

type activity struct {
	mu      sync.Mutex
	now     int
	highest int
}

func (a *activity) enter() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now++
	a.highest = max(a.highest, a.now)
}

func (a *activity) leave() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now--
}

func startReplica(t *testing.T, kv jetstream.KeyValue, name string, ttl time.Duration, act *activity) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &replica{
		lease:  &Lease{KV: kv, Key: "entra-writer", Holder: name, TTL: ttl, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		cancel: cancel, done: make(chan error, 1),
	}
	go func() {
		r.done <- r.lease.Run(ctx, func(ctx context.Context) error {
			r.activations.Add(1)
			act.enter()
			defer act.leave()
			<-ctx.Done()
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func leaseBucket(t *testing.T, ttl time.Duration) jetstream.KeyValue {
	t.Helper()
	js := startJetStream(t)
	kv, err := js.CreateOrUpdateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "LEASE_TEST", TTL: ttl, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestOneReplicaIsActive starts three replicas: one holds the lease and the others stand by; when
// it stops, it lets go and another takes over at once, well before the lease would expire.
func TestOneReplicaIsActive(t *testing.T) {
	const ttl = 30 * time.Second
	kv := leaseBucket(t, ttl)
	var act activity
	replicas := []*replica{
		startReplica(t, kv, "a", ttl, &act), startReplica(t, kv, "b", ttl, &act), startReplica(t, kv, "c", ttl, &act),
	}
	activeOne := func() *replica {
		var found *replica
		for _, r := range replicas {
			if r.lease.Active() {
				if found != nil {
					t.Fatal("two replicas report themselves active")
				}
				found = r
			}
		}
		return found
	}
	waitUntil(t, "a replica is active", func() bool { return activeOne() != nil })
	first := activeOne()
	if holder, err := first.lease.CurrentHolder(t.Context()); err != nil || holder != first.lease.Holder {
		t.Errorf("holder = %q, %v; want %q", holder, err, first.lease.Holder)
	}
	time.Sleep(200 * time.Millisecond) // the standbys try again meanwhile

	stopped := time.Now()
	first.cancel()
	if err := <-first.done; err != nil {
		t.Fatalf("stopping the active replica: %v", err)
	}
	first.done <- nil // for its cleanup
	waitUntil(t, "another replica takes over", func() bool { r := activeOne(); return r != nil && r != first })
	if took := time.Since(stopped); took > 3*time.Second {
		t.Errorf("takeover after a graceful stop took %v; the lease was not let go", took)
	}
	act.mu.Lock()
	defer act.mu.Unlock()
	if act.highest != 1 {
		t.Errorf("%d replicas were active at once, want 1", act.highest)
	}
}

// TestLeaseExpiresWhenTheHolderDies: a holder that dies without letting go (kill -9) leaves its
// entry; a standby takes over once it expires.
func TestLeaseExpiresWhenTheHolderDies(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	kv := leaseBucket(t, ttl)
	if _, err := kv.Create(t.Context(), "entra-writer", []byte("killed")); err != nil {
		t.Fatal(err)
	}
	var act activity
	start := time.Now()
	r := startReplica(t, kv, "standby", ttl, &act)
	waitUntil(t, "the standby takes over", r.lease.Active)
	if took := time.Since(start); took < ttl/2 {
		t.Errorf("took over after %v, before the dead holder's entry could expire (TTL %v)", took, ttl)
	}
}

// TestHolderStepsDownWhenTheLeaseIsTaken: when the entry moves under an active replica (its
// entry expired while it was cut off and another replica took it), it stops being active.
func TestHolderStepsDownWhenTheLeaseIsTaken(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	kv := leaseBucket(t, ttl)
	var act activity
	r := startReplica(t, kv, "a", ttl, &act)
	waitUntil(t, "the replica is active", r.lease.Active)
	if _, err := kv.Put(t.Context(), "entra-writer", []byte("b")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the replica steps down", func() bool { return !r.lease.Active() })
	act.mu.Lock()
	now := act.now
	act.mu.Unlock()
	if now != 0 {
		t.Errorf("the active work did not end when the lease was lost")
	}
	if holder, err := r.lease.CurrentHolder(t.Context()); err != nil || holder != "b" {
		t.Errorf("holder = %q, %v; want b (the stepped-down replica must not take its entry back)", holder, err)
	}
}
