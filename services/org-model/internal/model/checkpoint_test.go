package model

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

// roundTrip marshals and unmarshals a checkpoint, as storing it does.
func roundTrip(t *testing.T, cp *orgsyncv1.ModelCheckpoint) *orgsyncv1.ModelCheckpoint {
	t.Helper()
	data, err := proto.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	var out orgsyncv1.ModelCheckpoint
	if err := proto.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// hierarchyHistory is a source with derived units, snapshots and leavers over three months.
func hierarchyHistory() []*orgsyncv1.HREvent {
	start := at("2026-01-05T09:00:00Z")
	var events []*orgsyncv1.HREvent
	add := func(e *orgsyncv1.HREvent) { events = append(events, e) }
	for day := range 90 {
		now := start.Add(time.Duration(day) * 24 * time.Hour)
		snapshotID := "daily-" + now.Format("20060102")
		add(&orgsyncv1.HREvent{Source: "scim", ReceivedAt: timestamppb.New(now), Payload: &orgsyncv1.HREvent_Snapshot{Snapshot: &orgsyncv1.SnapshotMarker{SnapshotId: snapshotID, Phase: orgsyncv1.SnapshotMarker_PHASE_BEGIN}}})
		for i := range 12 {
			if i == 5 && day >= 40 { // E5 is no longer in the export from day 40
				continue
			}
			department := []string{"EMEA", "US", "APAC"}[i%3]
			if i == 7 && day >= 60 {
				department = "LATAM"
			}
			w := scimWorker(workerID(i), "Acme", "Sales", department, managedBy(workerID(0)))
			if i == 0 {
				w = scimWorker(workerID(0), "Acme", "Sales", "", leads)
			}
			if i == 9 && day >= 30 {
				w.EmploymentStatus = terminated
			}
			e := &orgsyncv1.HREvent{EventId: snapshotID + "." + workerID(i), Source: "scim", SnapshotId: snapshotID, ReceivedAt: timestamppb.New(now),
				Payload: &orgsyncv1.HREvent_Worker{Worker: w}}
			add(e)
		}
		add(&orgsyncv1.HREvent{Source: "scim", ReceivedAt: timestamppb.New(now), Payload: &orgsyncv1.HREvent_Snapshot{Snapshot: &orgsyncv1.SnapshotMarker{SnapshotId: snapshotID, Phase: orgsyncv1.SnapshotMarker_PHASE_END}}})
		// Another source's export is left open at the end, to be carried by the checkpoint.
		if day == 89 {
			add(&orgsyncv1.HREvent{Source: "csv", ReceivedAt: timestamppb.New(now), Payload: &orgsyncv1.HREvent_Snapshot{Snapshot: &orgsyncv1.SnapshotMarker{SnapshotId: "open", Phase: orgsyncv1.SnapshotMarker_PHASE_BEGIN}}})
		}
	}
	return events
}

func workerID(i int) string { return "E" + string(rune('A'+i)) }

// TestRestoreFromCheckpointEqualsFullReplay replays each history in full, and again from a
// checkpoint taken at several points plus the events after it, and compares the desired states.
func TestRestoreFromCheckpointEqualsFullReplay(t *testing.T) {
	golden, err := policy.Load("testdata/golden-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		pol    *policy.Policy
		events []*orgsyncv1.HREvent
		now    time.Time
	}{
		{"golden company", golden, readEvents(t, companyFile), goldenNow},
		{"derived units and daily snapshots", mustPolicy(t, hierarchyPolicy), hierarchyHistory(), at("2026-04-10T12:00:00Z")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full := New(tc.pol)
			for _, e := range tc.events {
				full.Record(e, tc.now)
			}
			want := full.ComputeAll(tc.now)
			for _, split := range []int{0, len(tc.events) / 3, len(tc.events) - 1, len(tc.events)} {
				before := New(tc.pol)
				for _, e := range tc.events[:split] {
					before.Record(e, tc.now)
				}
				cp := roundTrip(t, before.Checkpoint(uint64(split), tc.now))
				// As at start: the identifiers recorded apart (ORGMODEL_IDENTIFIERS) come first.
				restored := New(tc.pol)
				restored.RestoreIdentifiers(before.TakeUnrecorded())
				if err := restored.Restore(cp); err != nil {
					t.Fatal(err)
				}
				for _, e := range tc.events[split:] {
					restored.Record(e, tc.now)
				}
				got := restored.ComputeAll(tc.now)
				if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
					t.Errorf("checkpoint after %d of %d events: desired state (-full replay +restored):\n%s", split, len(tc.events), diff)
				}
				if diff := cmp.Diff(full.Checkpoint(0, tc.now), restored.Checkpoint(0, tc.now), protocmp.Transform()); diff != "" {
					t.Errorf("checkpoint after %d events: state (-full replay +restored):\n%s", split, diff)
				}
			}
		})
	}
}

func TestRestoreRefusesAnUnusableCheckpoint(t *testing.T) {
	pol := mustPolicy(t, hierarchyPolicy)
	now := at("2026-03-01T09:00:00Z")
	m := New(pol)
	m.Apply(fromSource("scim", workerEvent(now, scimWorker("E1", "Acme", "Sales", "EMEA"))), now)
	good := m.Checkpoint(7, now)
	for _, tc := range []struct {
		name string
		pol  *policy.Policy
		edit func(*orgsyncv1.ModelCheckpoint)
	}{
		{"another layout", pol, func(cp *orgsyncv1.ModelCheckpoint) { cp.Format = 99 }},
		{"another hierarchy", mustPolicy(t, "sources: [{name: scim, hierarchy: [company]}]\n"), func(*orgsyncv1.ModelCheckpoint) {}},
		{"a record out of order", pol, func(cp *orgsyncv1.ModelCheckpoint) {
			cp.Workers[0].Timeline = append(cp.Workers[0].Timeline, cp.Workers[0].Timeline[0])
		}},
		{"a worker twice", pol, func(cp *orgsyncv1.ModelCheckpoint) { cp.Workers = append(cp.Workers, cp.Workers[0]) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := proto.CloneOf(good)
			tc.edit(cp)
			target := New(tc.pol)
			target.Apply(fromSource("scim", workerEvent(now, scimWorker("E9", "Acme", "Sales", "US"))), now)
			if err := target.Restore(cp); !errors.Is(err, ErrCheckpointUnusable) {
				t.Fatalf("Restore = %v, want ErrCheckpointUnusable", err)
			}
			if _, ok := target.Worker("E9"); !ok {
				t.Errorf("a refused checkpoint changed the model")
			}
		})
	}
}
