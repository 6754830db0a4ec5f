package service

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
)

// TestDecisionsWhileDirectoryRefusesDesiredState: while stream DIRECTORY refuses desired state,
// org-model retries the publish of the HR change it is applying for as long as it takes (the HR
// stream is read by an ordered consumer that does not redeliver). An approval or a rejection then
// must not wait behind it for ever: it is refused at once with Unavailable and nothing is decided;
// once DIRECTORY accepts again, the waiting change is published and the approval goes through.
func TestDecisionsWhileDirectoryRefusesDesiredState(t *testing.T) {
	held := heldBatch(t, "s1")
	h, svc, api, batchID := held.h, held.svc, held.api, held.batch.GetBatchId()

	// DIRECTORY stops taking desired state (its subjects moved away: every publish is refused),
	// and a hire arrives: org-model keeps retrying its publish.
	directory, err := h.js.Stream(t.Context(), stream.Directory)
	if err != nil {
		t.Fatal(err)
	}
	cfg := directory.CachedInfo().Config
	subjects := cfg.Subjects
	cfg.Subjects = []string{"refusing.>"}
	if _, err := h.js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	h.hr(t, "hire", worker("N1", "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, heldT0.Add(time.Hour)))
	eventually(t, svc.publishing.Failing)

	for _, decide := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"approve", func(ctx context.Context) error {
			_, err := api.Approve(ctx, &orgsyncv1.ApproveRequest{BatchId: batchID})
			return err
		}},
		{"reject", func(ctx context.Context) error {
			_, err := api.Reject(ctx, &orgsyncv1.RejectRequest{BatchId: batchID})
			return err
		}},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		err := decide.call(ctx)
		cancel()
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s while DIRECTORY refuses: %v; want Unavailable (before: it waited behind the publish for ever)", decide.name, err)
		}
	}
	if pending, err := api.ListPending(t.Context(), &orgsyncv1.ListPendingRequest{}); err != nil || len(pending.GetBatches()) != 1 {
		t.Fatalf("after the refused decisions: %v, %v; want the batch still pending", pending, err)
	}

	// DIRECTORY takes desired state again: the hire is published, and the approval goes through.
	cfg.Subjects = subjects
	if _, err := h.js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return h.directory(t)["dir.entra.user.N1"] != nil })
	resp, err := api.Approve(t.Context(), &orgsyncv1.ApproveRequest{BatchId: batchID})
	if err != nil || resp.GetPublished() != 24 {
		t.Fatalf("approve once DIRECTORY accepts: %v, %v; want 24 published", resp, err)
	}
	if got := enabled(h, t, "E39"); got != "disabled" {
		t.Errorf("after the approval E39 is %s, want disabled", got)
	}
}

// heldSnapshot is an org-model with 40 workers in unit sales (hired at heldT0) after a full
// snapshot listed only 28 of them: the guard holds the batch that disables the other 12 (E28–E39)
// and removes their memberships, 24 objects.
type heldSnapshot struct {
	h     harness
	svc   *Service
	stop  func()
	api   orgsyncv1grpc.OrgModelServiceClient
	fake  *clock.Fake
	batch *orgsyncv1.PendingBatch
}

var heldT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func heldBatch(t *testing.T, snapshotID string) heldSnapshot {
	t.Helper()
	h := newHarness(t)
	fake := clock.NewFake(heldT0)
	h.hr(t, "u1", unit("sales", "Sales", ""))
	var ids []string
	for i := range 40 {
		id := fmt.Sprintf("E%02d", i)
		ids = append(ids, id)
		h.hr(t, "w"+id, worker(id, "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, heldT0))
	}
	svc, stop := h.start(t, withClock(fake))
	api := h.client(t, svc)
	snapshot := func(phase orgsyncv1.SnapshotMarker_Phase) *orgsyncv1.HREvent {
		return &orgsyncv1.HREvent{OccurredAt: timestamppb.New(heldT0.Add(time.Hour)), Payload: &orgsyncv1.HREvent_Snapshot{
			Snapshot: &orgsyncv1.SnapshotMarker{SnapshotId: snapshotID, Phase: phase}}}
	}
	fake.Set(heldT0.Add(time.Hour))
	h.hr(t, "s-begin", snapshot(orgsyncv1.SnapshotMarker_PHASE_BEGIN))
	for _, id := range ids[:28] {
		h.hr(t, "again"+id, worker(id, "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, heldT0.Add(time.Hour)))
	}
	h.hr(t, "s-end", snapshot(orgsyncv1.SnapshotMarker_PHASE_END))
	var batch *orgsyncv1.PendingBatch
	eventually(t, func() bool {
		pending, err := api.ListPending(t.Context(), &orgsyncv1.ListPendingRequest{})
		if err != nil || len(pending.GetBatches()) != 1 {
			return false
		}
		batch = pending.GetBatches()[0]
		return true
	})
	if batch == nil {
		t.FailNow()
	}
	return heldSnapshot{h: h, svc: svc, stop: stop, api: api, fake: fake, batch: batch}
}

// TestApprovalPublishesTheWholeBatchWhenItsCallerGoesAway: an approval whose caller's deadline
// ends while the batch is being published still publishes all of it — the decision is taken;
// stopping half-way left the rest unpublished until a restart, where the guard held it again.
func TestApprovalPublishesTheWholeBatchWhenItsCallerGoesAway(t *testing.T) {
	held := heldBatch(t, "s1")
	h, api, batchID := held.h, held.api, held.batch.GetBatchId()
	// Deadlines from 1 ms up: the first approval that is decided is the one whose caller went
	// away soonest after the decision (a shorter deadline ends before the lock is taken, and the
	// refused approval decides nothing).
	decided := false
	for deadline := time.Millisecond; !decided && deadline < 5*time.Second; deadline += deadline / 2 {
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		_, err := api.Approve(ctx, &orgsyncv1.ApproveRequest{BatchId: batchID})
		cancel()
		pending, listErr := api.ListPending(t.Context(), &orgsyncv1.ListPendingRequest{})
		if listErr != nil {
			t.Fatal(listErr)
		}
		decided = len(pending.GetBatches()) == 0
		if decided {
			t.Logf("decided with a deadline of %v (the approval answered %v)", deadline, status.Code(err))
		}
	}
	if !decided {
		t.Fatal("no approval was decided")
	}
	eventually(t, func() bool {
		disabled := 0
		for i := 28; i < 40; i++ {
			if enabled(h, t, fmt.Sprintf("E%02d", i)) == "disabled" {
				disabled++
			}
		}
		return disabled == 12
	})
	for i := 28; i < 40; i++ {
		if got := enabled(h, t, fmt.Sprintf("E%02d", i)); got != "disabled" {
			t.Errorf("E%02d is %s after the approval, want disabled", i, got)
		}
	}
}
