package converge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/stream"
)

// Lease makes one replica of a writer the active one: only the holder consumes DIRECTORY and runs
// drift, so one object is converged by one worker at a time. With every replica consuming, two
// revisions of an object could be applied at once by two replicas and the older write land last;
// each write then had to be followed by a read of the newest revision, and a replica killed
// between the two left the older state until the next drift pass. Graph throttles per app and
// tenant, and AD writes go to one DC, so a second active replica adds no throughput — it only
// takes over.
//
// The lease is a key in stream.LeaseBucket whose entries expire after the bucket's TTL. The
// holder renews it every third of the TTL, compare-and-set on its revision; a standby tries to
// create it every second. A holder that cannot renew for two thirds of the TTL steps down before the
// entry can expire, and one whose revision moved (another replica holds it) steps down at once.
// A holder that stops lets go, so a standby takes over without waiting for the TTL.
type Lease struct {
	KV jetstream.KeyValue
	// Key is the writer's name ("entra-writer"); Holder names this replica (stream.Instance()).
	Key, Holder string
	// TTL is the bucket's (stream.LeaseTTL).
	TTL    time.Duration
	Logger *slog.Logger

	mu     sync.Mutex
	active bool
}

// Active reports whether this replica holds the lease now.
func (l *Lease) Active() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active
}

func (l *Lease) set(active bool) {
	l.mu.Lock()
	l.active = active
	l.mu.Unlock()
}

// CurrentHolder returns the replica holding the lease, "" when none does.
func (l *Lease) CurrentHolder(ctx context.Context) (string, error) {
	entry, err := l.KV.Get(ctx, l.Key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lease %s: %w", l.Key, err)
	}
	return string(entry.Value()), nil
}

// Run runs active while this replica holds the lease, and waits on standby while another does,
// until ctx ends. active gets a context that ends when the lease is lost; it must return then.
// Run returns nil when ctx ends, or active's error when it fails while holding the lease.
func (l *Lease) Run(ctx context.Context, active func(context.Context) error) error {
	// A standby asks every second: creating an existing key is one cheap refused publish, and a
	// replica that let go is followed within a second.
	every := min(l.TTL/3, time.Second)
	standbyLogged := false
	for ctx.Err() == nil {
		revision, err := l.KV.Create(ctx, l.Key, []byte(l.Holder))
		switch {
		case err == nil:
			l.Logger.Info("active: holding the writer's lease", "lease", l.Key)
			standbyLogged = false
			if err := l.hold(ctx, revision, active); err != nil {
				return err
			}
			continue
		case errors.Is(err, jetstream.ErrKeyExists):
			if !standbyLogged {
				holder, _ := l.CurrentHolder(ctx)
				l.Logger.Info("standby: another replica holds the writer's lease", "lease", l.Key, "holder", holder)
				standbyLogged = true
			}
		case ctx.Err() == nil:
			l.Logger.Warn("writer's lease not taken; trying again", "lease", l.Key, "error", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
	return nil
}

// hold runs active under the lease at revision until ctx ends, the lease is lost, or active
// returns; then it lets the lease go.
func (l *Lease) hold(ctx context.Context, revision uint64, active func(context.Context) error) error {
	activeCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	l.set(true)
	go func() { done <- active(activeCtx) }()
	every := l.TTL / 3
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	renewed := time.Now()
	// stepDown stops active after the lease is lost; active's error is returned unless it only
	// says it was stopped.
	stepDown := func(why string, err error) error {
		l.Logger.Warn("standby: the writer's lease is lost", "lease", l.Key, "why", why, "error", err)
		stop()
		err = <-done
		l.set(false)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	for {
		select {
		case err := <-done:
			l.set(false)
			l.release(revision)
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-ticker.C:
			next, err := l.KV.Update(ctx, l.Key, []byte(l.Holder), revision)
			switch {
			case err == nil:
				revision, renewed = next, time.Now()
			case ctx.Err() != nil:
				// Stopping: the next round of the loop sees done.
			case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyNotFound):
				// It expired and another replica took it.
				return stepDown("another replica holds it", err)
			case time.Since(renewed) >= l.TTL-every:
				// Before the entry can expire and a standby start.
				return stepDown("not renewed in time", err)
			default:
				l.Logger.Warn("writer's lease not renewed; trying again", "lease", l.Key, "error", err)
			}
		}
	}
}

// release lets the lease go, so that a standby takes over at once rather than after the TTL.
func (l *Lease) release(revision uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.KV.Delete(ctx, l.Key, jetstream.LastRevision(revision)); err != nil {
		l.Logger.Warn("writer's lease not let go; a standby takes over when it expires", "lease", l.Key, "error", err)
	}
}

// NewLease returns the lease of the writer named key (its durable consumer's name) in
// stream.LeaseBucket, for this replica.
func NewLease(ctx context.Context, js jetstream.JetStream, key string, logger *slog.Logger) (*Lease, error) {
	kv, err := js.KeyValue(ctx, stream.LeaseBucket)
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", stream.LeaseBucket, err)
	}
	return &Lease{KV: kv, Key: key, Holder: stream.Instance(), TTL: stream.LeaseTTL, Logger: logger}, nil
}
