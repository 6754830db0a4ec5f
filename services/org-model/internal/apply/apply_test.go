package apply_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/apply"
	"github.com/orgsync/orgsync/services/org-model/internal/audit"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
	"github.com/orgsync/orgsync/services/org-model/internal/desired"
	"github.com/orgsync/orgsync/services/org-model/internal/engine"
	"github.com/orgsync/orgsync/services/org-model/internal/guard"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
	"github.com/orgsync/orgsync/services/org-model/internal/publish"
)

var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

// sent is one message the applier published to DIRECTORY.
type sent struct {
	subject string
	object  *orgsyncv1.DesiredObject
}

// directory stands in for stream DIRECTORY: it keeps every message sent, in order.
type directory struct {
	mu   sync.Mutex
	sent []sent
}

func (d *directory) Publish(_ context.Context, subj, _ string, m proto.Message) (*jetstream.PubAck, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sent = append(d.sent, sent{subject: subj, object: proto.Clone(m).(*orgsyncv1.DesiredObject)})
	return &jetstream.PubAck{Sequence: uint64(len(d.sent))}, nil
}

func (d *directory) messages() []sent {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.sent)
}

// hrStream stands in for stream HR: the events before Follow starts are the replay, and live
// events arrive on a channel afterwards.
type hrStream struct {
	replay []*orgsyncv1.HREvent
	live   chan *orgsyncv1.HREvent
}

func (h *hrStream) Bounds(context.Context) (uint64, uint64, error) {
	if len(h.replay) == 0 {
		return 0, 0, nil
	}
	return 1, uint64(len(h.replay)), nil
}

func (h *hrStream) Follow(ctx context.Context, startSeq uint64, apply func(ctx context.Context, event *orgsyncv1.HREvent, sequence uint64) error) error {
	sequence := uint64(0)
	for _, event := range h.replay {
		sequence++
		if sequence < startSeq {
			continue
		}
		if err := apply(ctx, event, sequence); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case event := <-h.live:
			sequence++
			if err := apply(ctx, event, sequence); err != nil {
				return err
			}
		}
	}
}

// identifierRecords keeps what the applier records, like the identifiers bucket.
type identifierRecords struct {
	mu          sync.Mutex
	assignments []model.Assignment
	held        []model.HeldIdentifier
}

func (r *identifierRecords) Load(context.Context) ([]model.Assignment, []model.HeldIdentifier, int, error) {
	return nil, nil, 0, nil
}

func (r *identifierRecords) Record(_ context.Context, assignments []model.Assignment, held []model.HeldIdentifier, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.assignments = append(r.assignments, assignments...)
	r.held = append(r.held, held...)
	return nil
}

func (r *identifierRecords) heldValues() []model.HeldIdentifier {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.held)
}

// noCheckpoints has no checkpoint to restore and remembers the sequences applied.
type noCheckpoints struct {
	mu      sync.Mutex
	applied []uint64
}

func (c *noCheckpoints) Restore(context.Context, uint64, uint64) uint64 { return 0 }
func (c *noCheckpoints) NoteApplied(sequence uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applied = append(c.applied, sequence)
}

// noDecisions keeps no decisions.
type noDecisions struct{}

func (noDecisions) Load(context.Context) error           { return nil }
func (noDecisions) SaveRejections(context.Context) error { return nil }

// fixture is an applier over a real model, guard, engine, publisher and publish retrier; only
// the streams and buckets are stand-ins.
type fixture struct {
	applier     *apply.Applier
	engine      *engine.Engine
	published   *desired.Publisher
	directory   *directory
	hr          *hrStream
	identifiers *identifierRecords
	checkpoints *noCheckpoints
	clock       *clock.Fake
}

// newFixture builds the applier; alreadyPublished is what DIRECTORY holds before the start.
func newFixture(t *testing.T, replay []*orgsyncv1.HREvent, alreadyPublished ...*orgsyncv1.DesiredObject) *fixture {
	t.Helper()
	pol, err := policy.Default("corp.example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	clk := clock.NewFake(t0)
	f := &fixture{directory: &directory{}, hr: &hrStream{replay: replay, live: make(chan *orgsyncv1.HREvent)},
		identifiers: &identifierRecords{}, checkpoints: &noCheckpoints{}, clock: clk}
	f.published = desired.NewPublisher(f.directory)
	causes := audit.NewCauses()
	f.engine = engine.New(clk)
	f.applier = apply.New(apply.Deps{
		Model:     model.New(pol, model.TargetsOf(pol)...),
		Guard:     guard.New(pol.Guard),
		Published: f.published,
		Publisher: publish.NewRetrier(f.published, causes, logger),
		LoadPublished: func(context.Context) error {
			for _, obj := range alreadyPublished {
				if err := f.published.Seed(obj); err != nil {
					return err
				}
			}
			return nil
		},
		Decisions:   noDecisions{},
		Identifiers: f.identifiers,
		Checkpoints: f.checkpoints,
		HR:          f.hr,
		Engine:      f.engine,
		Clock:       clk,
		Logger:      logger,
	})
	return f
}

// run runs the engine and Follow until the test ends, as the service's errgroup does.
func (f *fixture) run(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- f.engine.Run(ctx, f.applier) })
	wg.Go(func() { errs <- f.applier.Follow(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("stopped with %v", err)
			}
		}
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func hire(workerID, unitID, email string) *orgsyncv1.HREvent {
	return &orgsyncv1.HREvent{EventId: "hire-" + workerID, OccurredAt: timestamppb.New(t0.Add(-time.Hour)), Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{
		WorkerId: workerID, OrgUnitId: unitID, EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
		Name: &orgsyncv1.PersonName{GivenName: "Renee", FamilyName: "Odegard"}, WorkEmail: email,
	}}}
}

func orgUnit(unitID, name string) *orgsyncv1.HREvent {
	return &orgsyncv1.HREvent{EventId: "unit-" + unitID, Payload: &orgsyncv1.HREvent_OrgUnit{OrgUnit: &orgsyncv1.OrgUnit{OrgUnitId: unitID, Name: name}}}
}

func userPath(t *testing.T, workerID string) string {
	t.Helper()
	path, err := subject.ObjectPath(&orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: workerID,
		Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{WorkerId: workerID}}})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReplayIsReconciledOnceThenEventsApply: the replay at start publishes nothing event by
// event; once it is applied, one reconcile publishes what differs from DIRECTORY (a tombstone for
// what HR no longer describes) and the applier is caught up; a live event then publishes what it
// changes, with its HR sequence in the cause.
func TestReplayIsReconciledOnceThenEventsApply(t *testing.T) {
	gonePath := userPath(t, "GONE")
	gone := &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: "GONE", Revision: 4,
		Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{WorkerId: "GONE", UserPrincipalName: "gone@corp.example.com", AccountEnabled: true}}}
	f := newFixture(t, []*orgsyncv1.HREvent{orgUnit("sales", "Sales"), hire("E1", "sales", "")}, gone)
	if f.applier.CaughtUp() || !f.applier.NextDue().IsZero() {
		t.Fatal("caught up, or a transition scheduled, before the replay")
	}
	f.run(t)
	eventually(t, "caught up with the replay", f.applier.CaughtUp)

	afterReconcile := f.directory.messages()
	bySubject := map[string]int{}
	for _, msg := range afterReconcile {
		bySubject[msg.subject]++
		if msg.object.GetCause().GetReason() != "reconcile at start" {
			t.Errorf("%s published with reason %q during the start, want only the reconcile's", msg.subject, msg.object.GetCause().GetReason())
		}
	}
	for subj, count := range bySubject {
		if count != 1 {
			t.Errorf("%s published %d times by the start, want once", subj, count)
		}
	}
	if last := f.published.Last(gonePath); !last.GetTombstone() {
		t.Errorf("%s after reconcile = %v, want a tombstone: HR no longer describes it", gonePath, last)
	}
	if f.published.Last(userPath(t, "E1")).GetUser() == nil {
		t.Errorf("E1's user is not published by the reconcile")
	}
	if diff := cmp.Diff([]uint64{1, 2}, f.checkpoints.applied); diff != "" {
		t.Errorf("sequences noted for the checkpoint (-want +got):\n%s", diff)
	}

	f.hr.live <- hire("E2", "sales", "")
	eventually(t, "E2 published", func() bool { return f.published.Last(userPath(t, "E2")).GetUser() != nil })
	cause := f.published.Last(userPath(t, "E2")).GetCause()
	if cause.GetHrSequence() != 3 || cause.GetHrEventId() != "hire-E2" || cause.GetReason() != "worker active in HR" {
		t.Errorf("E2's cause = %v, want HR sequence 3, event hire-E2, reason \"worker active in HR\"", cause)
	}
}

// conflict is what entra-writer reports when an account orgsync does not manage holds a
// user's property.
func conflict(workerID, property string, revision uint64) *orgsyncv1.WriterResult {
	return &orgsyncv1.WriterResult{Target: orgsyncv1.Target_TARGET_ENTRA, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_USER, Key: workerID,
		Revision: revision, Outcome: orgsyncv1.Outcome_OUTCOME_FAILED, ErrorClass: orgsyncv1.ErrorClass_ERROR_CLASS_CONFLICT, Property: property}
}

// TestIdentifierConflicts: a writer's conflict about the revision published now records the
// held value and republishes the user with the next candidate; a conflict about an older
// revision, or a result that is not an identifier conflict, changes nothing.
func TestIdentifierConflicts(t *testing.T) {
	f := newFixture(t, []*orgsyncv1.HREvent{hire("E1", "", "renee@corp.example.com")})
	f.run(t)
	eventually(t, "caught up with the replay", f.applier.CaughtUp)
	path := userPath(t, "E1")
	first := f.published.Last(path)
	if got := first.GetUser().GetUserPrincipalName(); got != "renee@corp.example.com" {
		t.Fatalf("first UPN = %q, want the work e-mail's", got)
	}
	firstRevision, _ := f.published.Revision(path)

	for _, tc := range []struct {
		name   string
		result *orgsyncv1.WriterResult
	}{
		{"an older revision's conflict", conflict("E1", "userPrincipalName", firstRevision-1)},
		{"a conflict on a property that is no identifier", conflict("E1", "displayName", firstRevision)},
		{"a failure that is not a conflict", func() *orgsyncv1.WriterResult {
			r := conflict("E1", "userPrincipalName", firstRevision)
			r.ErrorClass = orgsyncv1.ErrorClass_ERROR_CLASS_INVALID
			return r
		}()},
	} {
		t.Run(tc.name+" changes nothing", func(t *testing.T) {
			before := len(f.directory.messages())
			if err := f.applier.NoteResult(t.Context(), tc.result); err != nil {
				t.Fatal(err)
			}
			if after := len(f.directory.messages()); after != before {
				t.Errorf("%d messages published, want none", after-before)
			}
		})
	}

	t.Run("the current revision's conflict takes the next candidate", func(t *testing.T) {
		if err := f.applier.NoteResult(t.Context(), conflict("E1", "userPrincipalName", firstRevision)); err != nil {
			t.Fatal(err)
		}
		next := f.published.Last(path)
		got := []string{next.GetUser().GetUserPrincipalName(), next.GetCause().GetReason()}
		want := []string{"renee.odegard@corp.example.com", apply.HeldReason}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("republished user (-want +got):\n%s", diff)
		}
		held := f.identifiers.heldValues()
		if len(held) != 1 || held[0].Value != "renee@corp.example.com" || held[0].Property != "userPrincipalName" {
			t.Errorf("held identifiers recorded = %+v, want renee@corp.example.com as a held UPN", held)
		}
	})
}

// TestConflictReadDuringReplayWaitsForReconcile: a conflict that arrives before the replay is
// done is kept and applied right after the reconcile, against the revision published then.
func TestConflictReadDuringReplayWaitsForReconcile(t *testing.T) {
	replay := []*orgsyncv1.HREvent{hire("E1", "", "renee@corp.example.com")}
	// What an earlier run published: the reconcile of this run finds nothing to change.
	earlier := newFixture(t, replay)
	earlier.run(t)
	eventually(t, "the earlier run caught up", earlier.applier.CaughtUp)
	published := earlier.published.Live()

	f := newFixture(t, replay, published...)
	path := userPath(t, "E1")
	revision := earlier.published.Last(path).GetRevision()
	if revision == 0 {
		t.Fatal("E1 is not among what the earlier run published")
	}
	// Before Follow runs the replay is not done: the engine takes the result and keeps it.
	ctx, cancel := context.WithCancel(t.Context())
	engineDone := make(chan error, 1)
	go func() { engineDone <- f.engine.Run(ctx, f.applier) }()
	t.Cleanup(func() {
		cancel()
		if err := <-engineDone; err != nil {
			t.Errorf("engine stopped with %v", err)
		}
	})
	if err := f.applier.NoteResult(t.Context(), conflict("E1", "userPrincipalName", revision)); err != nil {
		t.Fatal(err)
	}
	if got := len(f.directory.messages()); got != 0 {
		t.Fatalf("%d messages published before the replay, want none", got)
	}

	followDone := make(chan error, 1)
	go func() { followDone <- f.applier.Follow(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-followDone; err != nil {
			t.Errorf("Follow stopped with %v", err)
		}
	})
	eventually(t, "the kept conflict applied after the reconcile", func() bool {
		return f.published.Last(path).GetCause().GetReason() == apply.HeldReason
	})
	if got := f.published.Last(path).GetUser().GetUserPrincipalName(); got != "renee.odegard@corp.example.com" {
		t.Errorf("UPN after the kept conflict = %q, want the next candidate", got)
	}
	for _, msg := range f.directory.messages() {
		if msg.object.GetCause().GetReason() == "reconcile at start" {
			t.Errorf("the reconcile published %s again; want nothing, it equals what the earlier run published", msg.subject)
		}
	}
}

// TestTransitionAppliesWhenDue: the Applier is the engine's schedule. Once caught up it names
// the model's next transition (a pre-created hire's start date), and when the clock reaches it
// the engine applies it and the enabled account is published, caused by the transition.
func TestTransitionAppliesWhenDue(t *testing.T) {
	starter := hire("E1", "", "")
	starter.GetWorker().StartDate = &orgsyncv1.Date{Year: 2026, Month: 6, Day: 4}
	f := newFixture(t, []*orgsyncv1.HREvent{starter})
	f.run(t)
	eventually(t, "caught up with the replay", f.applier.CaughtUp)
	path := userPath(t, "E1")
	if user := f.published.Last(path).GetUser(); user == nil || user.GetAccountEnabled() {
		t.Fatalf("E1 before the start date = %v, want pre-created disabled", user)
	}
	startDay := time.Date(2026, 6, 4, 0, 0, 0, 0, time.UTC)
	if due := f.applier.NextDue(); due.IsZero() || due.After(startDay) {
		t.Fatalf("NextDue = %v, want the start date %v at the latest", due, startDay)
	}

	f.clock.Set(startDay.Add(time.Hour))
	eventually(t, "E1 enabled on the start date", func() bool { return f.published.Last(path).GetUser().GetAccountEnabled() })
	if reason := f.published.Last(path).GetCause().GetReason(); reason != "lifecycle transition due" {
		t.Errorf("E1 enabled with reason %q, want \"lifecycle transition due\"", reason)
	}
}
