package ingest

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/stream/streamtest"
)

// TestLease: a held key is refused to another holder, kept past its TTL while refreshed, lost
// (Lost closed) when someone else takes it over, and free again once released.
func TestLease(t *testing.T) {
	srv := streamtest.StartBare(t)
	locks, err := NewJetStreamSnapshotLocks(t.Context(), srv.JS, time.Second, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	first, err := locks.Hold(t.Context(), "poll.afas", "replica-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := locks.Hold(t.Context(), "poll.afas", "replica-2"); !errors.Is(err, ErrHeld) {
		t.Fatalf("second holder: %v, want ErrHeld", err)
	}
	time.Sleep(2 * time.Second) // two TTLs: refreshed meanwhile, so still held
	select {
	case <-first.Lost():
		t.Fatal("a refreshed lease was lost")
	default:
	}
	if _, err := locks.Hold(t.Context(), "poll.afas", "replica-2"); !errors.Is(err, ErrHeld) {
		t.Fatalf("after two TTLs: %v, want ErrHeld", err)
	}

	// Another holder writes the key (as after an expiry and a take-over): the lease is lost.
	kv, err := srv.JS.KeyValue(t.Context(), SnapshotLockBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "poll.afas", []byte("replica-3")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("a lease taken over was not reported lost")
	}
	first.Release()
	first.Release() // safe twice
	if entry, err := kv.Get(t.Context(), "poll.afas"); err != nil || string(entry.Value()) != "replica-3" {
		t.Errorf("releasing a lost lease touched the new holder's key: %v %v", entry, err)
	}

	if err := kv.Delete(t.Context(), "poll.afas"); err != nil {
		t.Fatal(err)
	}
	second, err := locks.Hold(t.Context(), "poll.afas", "replica-2")
	if err != nil {
		t.Fatalf("a free key: %v", err)
	}
	second.Release()
	if _, err := kv.Get(t.Context(), "poll.afas"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("released key still there: %v", err)
	}
}
