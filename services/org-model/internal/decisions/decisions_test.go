package decisions

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// fakeGuard holds rejected states as the guard does: a map and a version that grows with changes.
type fakeGuard struct {
	rejected map[string]*orgsyncv1.DesiredObject
	version  uint64
}

func (g *fakeGuard) Rejected() (map[string]*orgsyncv1.DesiredObject, uint64) {
	out := map[string]*orgsyncv1.DesiredObject{}
	for path, obj := range g.rejected {
		out[path] = obj
	}
	return out, g.version
}

func (g *fakeGuard) RejectedVersion() uint64 { return g.version }

func (g *fakeGuard) Restore(rejected map[string]*orgsyncv1.DesiredObject) {
	for path, obj := range rejected {
		g.rejected[path] = obj
	}
	g.version++
}

func bucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	srv := streamtest.StartBare(t)
	js := srv.JS
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: Bucket})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func disabledUser(workerID string) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: workerID,
		Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{WorkerId: workerID}}}
}

func TestStore(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	t.Run("rejections saved survive a restart, and a dropped one is cleared", func(t *testing.T) {
		kv := bucket(t)
		g := &fakeGuard{rejected: map[string]*orgsyncv1.DesiredObject{
			"entra.user.E1": disabledUser("E1"), "entra.user.E%2E2": disabledUser("E.2"),
		}, version: 1}
		store := NewStore(kv, g, logger)
		if err := store.SaveRejections(t.Context()); err != nil {
			t.Fatal(err)
		}
		delete(g.rejected, "entra.user.E1")
		g.version++
		if err := store.SaveRejections(t.Context()); err != nil {
			t.Fatal(err)
		}

		restarted := &fakeGuard{rejected: map[string]*orgsyncv1.DesiredObject{}}
		if err := NewStore(kv, restarted, logger).Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		want := map[string]*orgsyncv1.DesiredObject{"entra.user.E%2E2": disabledUser("E.2")}
		if diff := cmp.Diff(want, restarted.rejected, protocmp.Transform()); diff != "" {
			t.Errorf("rejections after a restart (-want +got):\n%s", diff)
		}
	})

	t.Run("the newest decisions are kept, newest first, and older ones leave the bucket", func(t *testing.T) {
		kv := bucket(t)
		store := NewStore(kv, &fakeGuard{rejected: map[string]*orgsyncv1.DesiredObject{}}, logger)
		at := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
		for i := range keptDecisions + 3 {
			store.Record(t.Context(), &orgsyncv1.PendingBatch{BatchId: fmt.Sprintf("b%03d", i), Decision: orgsyncv1.Decision_DECISION_APPROVED,
				DecidedAt: timestamppb.New(at.Add(time.Duration(i) * time.Minute))})
		}
		listed := store.List()
		if len(listed) != keptDecisions || listed[0].GetBatchId() != fmt.Sprintf("b%03d", keptDecisions+2) {
			t.Fatalf("listed %d decisions, newest %q", len(listed), listed[0].GetBatchId())
		}
		restarted := NewStore(kv, &fakeGuard{rejected: map[string]*orgsyncv1.DesiredObject{}}, logger)
		if err := restarted.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(listed, restarted.List(), protocmp.Transform()); diff != "" {
			t.Errorf("decisions after a restart (-before +after):\n%s", diff)
		}
		if _, err := kv.Get(t.Context(), decisionKeyPrefix+"b000"); err == nil {
			t.Error("the oldest decision is still in the bucket")
		}
	})
}
