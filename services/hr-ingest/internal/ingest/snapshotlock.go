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

// Open implements SnapshotLocks.
func (l *JetStreamSnapshotLocks) Open(ctx context.Context, source, snapshotID string) (func(), error) {
	key := subject.Token(source)
	revision, err := l.kv.Create(ctx, key, []byte(snapshotID))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, ErrSnapshotOpen
	}
	if err != nil {
		return nil, fmt.Errorf("opening a snapshot of source %q: %w", source, err)
	}
	refreshCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var refresher sync.WaitGroup
	var mu sync.Mutex // guards revision between the refresher and release
	refresher.Go(func() {
		ticker := time.NewTicker(l.ttl / 3)
		defer ticker.Stop()
		for {
			select {
			case <-refreshCtx.Done():
				return
			case <-ticker.C:
			}
			mu.Lock()
			next, err := l.kv.Update(refreshCtx, key, []byte(snapshotID), revision)
			if err == nil {
				revision = next
			}
			mu.Unlock()
			if err != nil && refreshCtx.Err() == nil {
				l.logger.Warn("snapshot lock not refreshed; it may expire before the snapshot ends", "source", source, "error", err)
			}
		}
	})
	var once sync.Once
	release := func() {
		once.Do(func() {
			stop()
			refresher.Wait()
			mu.Lock()
			defer mu.Unlock()
			// Only this holder's key is deleted: if it expired and another snapshot took it,
			// the revision no longer matches.
			deleteCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := l.kv.Delete(deleteCtx, key, jetstream.LastRevision(revision)); err != nil {
				l.logger.Warn("snapshot lock not released; it expires after its TTL", "source", source, "error", err)
			}
		})
	}
	return release, nil
}
