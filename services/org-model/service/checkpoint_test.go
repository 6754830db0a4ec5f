package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/checkpoint"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
)

func withCheckpoints(events int) func(*Config) {
	return func(cfg *Config) { cfg.Checkpoint = CheckpointConfig{Events: events, Interval: time.Hour} }
}

// storedCheckpoint reads the checkpoint org-model stored, or nil.
func (h harness) storedCheckpoint(t *testing.T) *orgsyncv1.ModelCheckpoint {
	t.Helper()
	store, err := h.js.ObjectStore(t.Context(), CheckpointBucket)
	if err != nil {
		return nil
	}
	// An object's chunks are read through a pipe with a deadline, which a loaded machine (the
	// race detector, two packages at a time) can miss: a read that times out is read again.
	var lastErr error
	for range 5 {
		obj, err := store.Get(t.Context(), checkpoint.Object)
		if err != nil {
			return nil
		}
		cp, err := checkpoint.Decode(obj)
		obj.Close()
		if err == nil {
			return cp
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

func (h harness) hrLastSeq(t *testing.T) uint64 {
	t.Helper()
	s, err := h.js.Stream(t.Context(), stream.HR)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// company publishes n workers in two units, each hired at t0, plus a move for every third.
func (h harness) company(t *testing.T, prefix string, n int, t0 time.Time) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s%03d", prefix, i)
		h.hr(t, "hire-"+id, worker(id, "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, t0))
		if i%3 == 0 {
			h.hr(t, "move-"+id, worker(id, "finance", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, t0.Add(time.Hour)))
		}
	}
}

func TestRestartFromCheckpointEqualsFullReplay(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	fake := clock.NewFake(t0)
	h.hr(t, "u1", unit("sales", "Sales", ""))
	h.hr(t, "u2", unit("finance", "Finance", ""))
	h.company(t, "A", 30, t0)

	_, stop := h.start(t, withClock(fake), withCheckpoints(10))
	covered := h.hrLastSeq(t)
	eventually(t, func() bool { return h.storedCheckpoint(t).GetHrSequence() == covered })
	stop()

	// While org-model is down: more hires, leavers, and a unit.
	h.hr(t, "u3", unit("legal", "Legal", ""))
	h.company(t, "B", 5, t0.Add(24*time.Hour))
	h.hr(t, "leave-A001", worker("A001", "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED, t0.Add(48*time.Hour)))
	fake.Set(t0.Add(72 * time.Hour))

	restarted, stop := h.start(t, withClock(fake), withCheckpoints(10))
	if got := h.storedCheckpoint(t).GetHrSequence(); got < covered {
		t.Fatalf("checkpoint covers %d, want at least %d", got, covered)
	}
	fromCheckpoint := restarted.model.Objects()
	stop()
	full, _ := h.start(t, withClock(fake))
	if diff := cmp.Diff(full.model.Objects(), fromCheckpoint, protocmp.Transform()); diff != "" {
		t.Errorf("desired state (-full replay +checkpoint and tail):\n%s", diff)
	}
	if len(fromCheckpoint) < 35 {
		t.Errorf("only %d desired objects", len(fromCheckpoint))
	}
}

// With a checkpoint, HR events can expire (HR_RETENTION) without forgetting a worker HR has not
// mentioned since: here the stream is purged up to the checkpoint's sequence, as retention would.
func TestFiniteRetentionKeepsQuietWorkers(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	fake := clock.NewFake(t0)
	h.hr(t, "u1", unit("sales", "Sales", ""))
	h.hr(t, "u2", unit("finance", "Finance", ""))
	h.hr(t, "hire-quiet", worker("QUIET", "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, t0))
	h.company(t, "A", 12, t0)

	_, stop := h.start(t, withClock(fake), withCheckpoints(5))
	covered := h.hrLastSeq(t)
	eventually(t, func() bool { return h.storedCheckpoint(t).GetHrSequence() == covered })
	stop()

	h.hr(t, "hire-late", worker("LATE", "finance", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, t0))
	hr, err := h.js.Stream(t.Context(), stream.HR)
	if err != nil {
		t.Fatal(err)
	}
	if err := hr.Purge(t.Context(), jetstream.WithPurgeSequence(covered+1)); err != nil {
		t.Fatal(err)
	}
	if info, _ := hr.Info(t.Context()); info.State.Msgs != 1 {
		t.Fatalf("HR keeps %d events after the purge, want 1", info.State.Msgs)
	}

	svc, _ := h.start(t, withClock(fake), withCheckpoints(5))
	dir := h.directory(t)
	for _, subject := range []string{"dir.entra.user.QUIET", "dir.entra.member.unit-sales.QUIET", "dir.entra.user.LATE", "dir.entra.member.unit-finance.LATE"} {
		if obj, ok := dir[subject]; !ok || obj.GetTombstone() {
			t.Errorf("%s after the restart: %v", subject, obj)
		}
	}
	if _, ok := svc.model.Worker("QUIET"); !ok {
		t.Errorf("the quiet worker is forgotten")
	}
}

func TestCorruptCheckpointFallsBackToFullReplay(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	h.hr(t, "u1", unit("sales", "Sales", ""))
	h.company(t, "A", 6, t0)
	store, err := h.js.CreateObjectStore(t.Context(), jetstream.ObjectStoreConfig{Bucket: CheckpointBucket})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutBytes(t.Context(), checkpoint.Object, []byte("not a checkpoint")); err != nil {
		t.Fatal(err)
	}
	svc, _ := h.start(t, withClock(clock.NewFake(t0)), withCheckpoints(1000))
	if _, ok := svc.model.Worker("A005"); !ok {
		t.Errorf("after an unreadable checkpoint, the replay did not rebuild the workers")
	}
}

// A leave that HR sends without a time of its own (SCIM active:false) takes effect when hr-ingest
// received it; restarting org-model days later does not move the leave date or restart the grace.
func TestLeaveDateAndGraceSurviveRestart(t *testing.T) {
	for _, checkpoints := range []int{0, 1} {
		t.Run(fmt.Sprintf("checkpoint every %d", checkpoints), func(t *testing.T) {
			h := newHarness(t)
			t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
			fake := clock.NewFake(t0)
			policyOption := withPolicy(t, "upnDomains: [corp.example.com]\ntimezone: UTC\nlifecycle: {membershipGrace: 14d}\n")
			received := func(event *orgsyncv1.HREvent, at time.Time) *orgsyncv1.HREvent {
				event.OccurredAt, event.ReceivedAt = nil, timestamppb.New(at)
				return event
			}
			h.hr(t, "u1", unit("sales", "Sales", ""))
			h.hr(t, "hire", received(worker("E1", "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, t0), t0.Add(-24*time.Hour)))
			h.hr(t, "leave", received(worker("E1", "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED, t0), t0))

			state := func() []any {
				dir := h.directory(t)
				user := dir["dir.entra.user.E1"].GetUser()
				return []any{user.GetAccountEnabled(), user.GetEmployeeLeaveDateTime().AsTime(), dir["dir.entra.member.unit-sales.E1"].GetTombstone()}
			}
			_, stop := h.start(t, policyOption, withClock(fake), withCheckpoints(checkpoints))
			want := []any{false, t0, false}
			if diff := cmp.Diff(want, state()); diff != "" {
				t.Fatalf("at the leave (-want +got):\n%s", diff)
			}
			stop()

			fake.Set(t0.Add(10 * 24 * time.Hour))
			_, stop = h.start(t, policyOption, withClock(fake), withCheckpoints(checkpoints))
			if diff := cmp.Diff(want, state()); diff != "" {
				t.Errorf("restarted 10 days later, within the grace period (-want +got):\n%s", diff)
			}
			stop()

			fake.Set(t0.Add(14*24*time.Hour + time.Minute))
			h.start(t, policyOption, withClock(fake), withCheckpoints(checkpoints))
			if diff := cmp.Diff([]any{false, t0, true}, state()); diff != "" {
				t.Errorf("restarted after the grace period (-want +got):\n%s", diff)
			}
		})
	}
}
