package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/subject"
)

// ErrSnapshotOpen says another snapshot of the same source is being published.
var ErrSnapshotOpen = errors.New("another snapshot of this source is being published")

// SnapshotLocks lets one snapshot per source be open (between its BEGIN and END markers) at a
// time, so that two exports of one source never interleave; snapshots of different sources
// never wait for each other.
type SnapshotLocks interface {
	// Open takes source's lock for snapshotID, or returns ErrSnapshotOpen. release gives it
	// back; it must be called once, when the snapshot has ended or failed.
	Open(ctx context.Context, source, snapshotID string) (release func(), err error)
}

// SnapshotLockBucket is the JetStream key-value bucket holding the open snapshot of each
// source: a create-only key per source, across every hr-ingest replica.
const SnapshotLockBucket = "hr_ingest_snapshots"

// JetStreamSnapshotLocks are SnapshotLocks in a JetStream key-value bucket. A lock expires
// after its TTL unless its holder refreshes it (every third of the TTL while it publishes), so
// a replica that dies mid-snapshot holds nobody up for longer than that. It is safe for
// concurrent use.
type JetStreamSnapshotLocks struct {
	kv     jetstream.KeyValue
	ttl    time.Duration
	logger *slog.Logger
}

var _ SnapshotLocks = (*JetStreamSnapshotLocks)(nil)

// NewJetStreamSnapshotLocks creates or updates the lock bucket (SnapshotLockBucket) with ttl
// (default 10 minutes) and replicas.
func NewJetStreamSnapshotLocks(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int, logger *slog.Logger) (*JetStreamSnapshotLocks, error) {
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      SnapshotLockBucket,
		Description: "The snapshot each HR source is publishing (hr-ingest); a key expires unless refreshed.",
		History:     1,
		TTL:         ttl,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", SnapshotLockBucket, err)
	}
	return &JetStreamSnapshotLocks{kv: kv, ttl: ttl, logger: logger}, nil
}

// Open implements SnapshotLocks: it holds source's key (Hold) for the snapshot's lifetime.
func (l *JetStreamSnapshotLocks) Open(ctx context.Context, source, snapshotID string) (func(), error) {
	lease, err := l.Hold(ctx, subject.Token(source), snapshotID)
	if errors.Is(err, ErrHeld) {
		return nil, ErrSnapshotOpen
	}
	if err != nil {
		return nil, fmt.Errorf("opening a snapshot of source %q: %w", source, err)
	}
	return lease.Release, nil
}

// ErrHeld says another holder has the key.
var ErrHeld = errors.New("held by another holder")

// Lease is a key of the lock bucket held by one holder across every replica, refreshed while it
// is held. The snapshot of a source and the poller of a source are each one lease.
type Lease struct {
	lost    chan struct{}
	release func()
}

// Lost is closed when the lease was lost: its key was taken over or deleted, or it could not
// be refreshed for a whole TTL (it has expired). The holder must then stop what the lease
// guards.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Release stops refreshing the lease and deletes its key if it is still this holder's. It is
// safe to call more than once.
func (l *Lease) Release() { l.release() }

// Hold takes key (a valid key-value key) for holder, or returns ErrHeld when another holder has
// it. The lease is refreshed every third of the TTL until Release (the refresher goroutine is
// owned by the lease and ends with Release); if it cannot be refreshed it expires after the TTL.
func (l *JetStreamSnapshotLocks) Hold(ctx context.Context, key, holder string) (*Lease, error) {
	revision, err := l.kv.Create(ctx, key, []byte(holder))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, ErrHeld
	}
	if err != nil {
		return nil, fmt.Errorf("taking %s: %w", key, err)
	}
	lease := &Lease{lost: make(chan struct{})}
	refreshCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var refresher sync.WaitGroup
	var mu sync.Mutex // guards revision between the refresher and release
	refresher.Go(func() {
		ticker := time.NewTicker(l.ttl / 3)
		defer ticker.Stop()
		refreshed := time.Now()
		for {
			select {
			case <-refreshCtx.Done():
				return
			case <-ticker.C:
			}
			mu.Lock()
			next, err := l.kv.Update(refreshCtx, key, []byte(holder), revision)
			if err == nil {
				revision, refreshed = next, time.Now()
			}
			mu.Unlock()
			if err == nil || refreshCtx.Err() != nil {
				continue
			}
			taken := errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound)
			if taken || time.Since(refreshed) >= l.ttl {
				l.logger.Warn("lease lost", "key", key, "error", err)
				close(lease.lost)
				return
			}
			l.logger.Warn("lease not refreshed; it may expire", "key", key, "error", err)
		}
	})
	var once sync.Once
	lease.release = func() {
		once.Do(func() {
			stop()
			refresher.Wait()
			mu.Lock()
			defer mu.Unlock()
			// Only this holder's key is deleted: if it expired and another holder took it,
			// the revision no longer matches.
			deleteCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := l.kv.Delete(deleteCtx, key, jetstream.LastRevision(revision)); err != nil {
				l.logger.Warn("lease not released; it expires after its TTL", "key", key, "error", err)
			}
		})
	}
	return lease, nil
}
