package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/converge"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap/ldaptest"
)

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantRetry bool
	}{
		{name: "DC unreachable", err: &ldap.Error{Op: "dial", Code: 200, Class: ldap.ClassUnavailable}, wantRetry: true},
		{name: "busy", err: &ldap.Error{Op: "add", Code: 51, Class: ldap.ClassUnavailable}, wantRetry: true},
		{name: "other end pending", err: fmt.Errorf("m: %w", errPending), wantRetry: true},
		{name: "constraint violation", err: &ldap.Error{Op: "modify", Code: 19, Class: ldap.ClassInvalid}, wantRetry: false},
		{name: "not orgsync's", err: fmt.Errorf("u: %w", errNotOwned), wantRetry: false},
		{name: "permanent", err: fmt.Errorf("x: %w", stream.ErrPermanent), wantRetry: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, retry := retryDelay(tt.err, 1)
			if diff := cmp.Diff(tt.wantRetry, retry); diff != "" {
				t.Errorf("retry (-want +got):\n%s", diff)
			}
		})
	}
}

// answering is a Directory whose member modifies answer with a fixed LDAP result code.
type answering struct {
	Directory
	code uint16
}

func (a answering) Modify(context.Context, string, []ldap.Change) error {
	if a.code == 0 {
		return nil
	}
	return &ldap.Error{Op: "modify", Code: a.code}
}

type noSender struct{}

func (noSender) Publish(context.Context, string, string, proto.Message) (*jetstream.PubAck, error) {
	return nil, errors.New("not used")
}

// TestMemberAnswers: an existing member on add, and a missing one on remove, are successes,
// recognised by result code (Samba answers 68 and 53 where AD answers 20 and 16).
func TestMemberAnswers(t *testing.T) {
	tests := []struct {
		name    string
		code    uint16
		remove  bool
		wantErr bool
	}{
		{name: "added", code: 0},
		{name: "already a member (AD)", code: ldap.ResultValueExists},
		{name: "already a member (Samba)", code: ldap.ResultEntryExists},
		{name: "not a member (AD)", code: ldap.ResultNoSuchAttribute, remove: true},
		{name: "not a member (Samba)", code: ldap.ResultUnwillingToPerfom, remove: true},
		{name: "unwilling on add is an error", code: ldap.ResultUnwillingToPerfom, wantErr: true},
		{name: "no such member object", code: ldap.ResultNoSuchObject, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(answering{code: tt.code}, noSender{}, slog.New(slog.DiscardHandler), Options{})
			err := w.changeMembers(t.Context(), "CN=g,OU=Groups,DC=x", []string{"CN=u,OU=Users,DC=x"}, tt.remove)
			if (err != nil) != tt.wantErr {
				t.Errorf("changeMembers: %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestDesiredUserAttrs(t *testing.T) {
	u := &orgsyncv1.DesiredUser{
		WorkerId: "E1", MailNickname: "averyveryverylongnickname", DisplayName: "A", JobTitle: "Engineer",
		Attributes: map[string]string{"title": "AD title", "parentDistinguishedName": "OU=x,DC=y", "extensionAttribute1": "e1"},
	}
	got := desiredUserAttrs(u, "CN=M,DC=y")
	want := map[string]string{"sAMAccountName": "averyveryverylongnic", "title": "AD title", "employeeID": "E1", "manager": "CN=M,DC=y", "extensionAttribute1": "e1", "parentDistinguishedName": ""}
	pick := map[string]string{}
	for name := range want {
		pick[name] = got[name]
	}
	if diff := cmp.Diff(want, pick); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// acceptingSender stores nothing and acknowledges every publish.
type acceptingSender struct{}

func (acceptingSender) Publish(context.Context, string, string, proto.Message) (*jetstream.PubAck, error) {
	return &jetstream.PubAck{}, nil
}

// desiredMsg is a delivery of a desired object from DIRECTORY: the first, unless attempt says.
type desiredMsg struct {
	jetstream.Msg
	subject string
	data    []byte
	attempt int
	header  nats.Header
}

func (m desiredMsg) Subject() string { return m.subject }
func (m desiredMsg) Data() []byte    { return m.data }
func (m desiredMsg) Headers() nats.Header {
	if m.header == nil {
		return nats.Header{}
	}
	return m.header
}
func (m desiredMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: uint64(max(m.attempt, 1))}, nil
}

func messages(t *testing.T, objs ...*orgsyncv1.DesiredObject) []jetstream.Msg {
	t.Helper()
	var msgs []jetstream.Msg
	for _, obj := range objs {
		obj.Target = orgsyncv1.Target_TARGET_AD
		subject, err := subject.DirectorySubject(obj)
		if err != nil {
			t.Fatal(err)
		}
		data, err := proto.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, desiredMsg{subject: subject, data: data})
	}
	return msgs
}

// TestReconcileLeavesNewerRevisionsOfOtherReplicas: two replicas share the work, so after this
// replica applied revision 1 of a user and of a membership, the other one may apply revision 2
// (a new title, the member removed). This replica learns it from RESULTS (Seed); its drift
// reconcile then sees the objects changed and must not put revision 1 back — found by the chaos
// run (deploy/scale), where users went back to an older title, OU and enabled state. Drift on an
// object whose newest revision this replica applied is still corrected.
func TestReconcileLeavesNewerRevisionsOfOtherReplicas(t *testing.T) {
	dir, w := replicaWithSales(t, nil)
	if _, err := w.Reconcile(t.Context()); err != nil { // the baseline pass
		t.Fatal(err)
	}

	// The other replica applies revision 2 of E1 and of E1's membership, and reports it; E2 is
	// edited by hand.
	edits := map[string][]ldap.Change{
		e1DN:    {{Op: ldap.Replace, Attr: "title", Values: []string{"Manager"}}},
		groupDN: {{Op: ldap.Delete, Attr: "member", Values: []string{e1DN}}},
		e2DN:    {{Op: ldap.Replace, Attr: "title", Values: []string{"Edited by hand"}}},
	}
	for dn, changes := range edits {
		if err := dir.Modify(t.Context(), dn, changes); err != nil {
			t.Fatal(err)
		}
	}
	seedApplied(t, w, testUser("E1", "Manager", 2), testMember("E1", 2, true))
	if _, err := w.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}

	members, err := dir.Members(t.Context(), groupDN)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{"E1 title": dir.Entry(e1DN).Get("title"), "E2 title": dir.Entry(e2DN).Get("title"), "members": members}
	want := map[string]any{"E1 title": "Manager", "E2 title": "Engineer", "members": []string{e2DN}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after the reconcile (-want +got):\n%s", diff)
	}
}

const (
	testBase   = "DC=corp,DC=example,DC=test"
	testUsers  = "OU=Users," + testBase
	testGroups = "OU=Groups," + testBase
	groupDN    = "CN=Org - Sales," + testGroups
	e1DN       = "CN=Worker E1," + testUsers
	e2DN       = "CN=Worker E2," + testUsers
	testMoved  = "OU=Moved," + testUsers
)

func testUser(id, title string, revision uint64) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{Key: id, Revision: revision, Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{
		WorkerId: id, EmployeeId: id, AccountEnabled: true, DisplayName: "Worker " + id, JobTitle: title, MailNickname: strings.ToLower(id),
	}}}
}

func testMember(id string, revision uint64, tombstone bool) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{Key: "sales/" + id, Revision: revision, Tombstone: tombstone, Object: &orgsyncv1.DesiredObject_Membership{
		Membership: &orgsyncv1.DesiredMembership{GroupKey: "sales", MemberKind: orgsyncv1.MemberKind_MEMBER_KIND_USER, MemberKey: id},
	}}
}

// replicaWithSales is a writer over an in-memory directory that has applied revision 1 of group
// sales, users E1 and E2 (title Engineer) and their memberships.
func replicaWithSales(t *testing.T, latest converge.Latest) (*ldaptest.Fake, *Writer) {
	t.Helper()
	dir := ldaptest.NewFake(testUsers, testGroups)
	opts := Options{BaseDN: testBase, UsersOU: testUsers, GroupsOU: testGroups, Latest: latest}
	w := New(dir, acceptingSender{}, slog.New(slog.DiscardHandler), opts)
	first := []*orgsyncv1.DesiredObject{
		{Key: "sales", Revision: 1, Object: &orgsyncv1.DesiredObject_Group{Group: &orgsyncv1.DesiredGroup{GroupKey: "sales", DisplayName: "Org - Sales"}}},
		testUser("E1", "Engineer", 1), testUser("E2", "Engineer", 1), testMember("E1", 1, false), testMember("E2", 1, false),
	}
	for i, err := range w.HandleBatch(t.Context(), messages(t, first...)) {
		if err != nil {
			t.Fatalf("applying %s: %v", first[i].GetKey(), err)
		}
	}
	return dir, w
}

// seedApplied tells w, as RESULTS would, that another replica applied objs.
func seedApplied(t *testing.T, w *Writer, objs ...*orgsyncv1.DesiredObject) {
	t.Helper()
	for _, obj := range objs {
		obj.Target = orgsyncv1.Target_TARGET_AD
		path, err := subject.ObjectPath(obj)
		if err != nil {
			t.Fatal(err)
		}
		w.Seed(&orgsyncv1.WriterResult{Target: obj.GetTarget(), Key: obj.GetKey(), Revision: obj.GetRevision(), Outcome: orgsyncv1.Outcome_OUTCOME_APPLIED}, path)
	}
}

// TestStaleRedeliveryAppliesTheNewestRevision: a replica that takes over after the active one
// was killed gets the killed one's unacknowledged deliveries again. One of them is revision 1 of
// E2, whose revision 2 (Director) the killed replica reported applied (RESULTS, Seed) and then
// an operator undid by hand. The old state is not written, nor is the message just dropped: the
// newest desired state on DIRECTORY is applied.
func TestStaleRedeliveryAppliesTheNewestRevision(t *testing.T) {
	newest := testUser("E2", "Director", 2)
	dir, w := replicaWithSales(t, func(_ context.Context, path string) (*orgsyncv1.DesiredObject, error) {
		if path == "ad.user.E2" {
			return newest, nil
		}
		return nil, nil
	})
	seedApplied(t, w, testUser("E2", "Director", 2))
	stale := testUser("E2", "Lead", 1)
	if errs := w.HandleBatch(t.Context(), messages(t, stale)); errs[0] != nil {
		t.Fatalf("applying the redelivery: %v", errs[0])
	}
	if got := dir.Entry(e2DN).Get("title"); got != "Director" {
		t.Errorf("E2's title = %q, want Director (revision 2, the newest)", got)
	}
}

// TestRemovesAMemberMovedByAnotherReplica: this replica cached a member's DN; another replica
// moved the member since. A removal by the cached DN is answered "not a member" (Samba: 53) and
// must not count as done — found by the chaos run (deploy/scale), where leavers and movers kept
// their old group.
func TestRemovesAMemberMovedByAnotherReplica(t *testing.T) {
	tests := []struct {
		name   string
		remove []string
	}{
		{name: "a single removal", remove: []string{"E1"}},
		{name: "removals checked against the group's members", remove: []string{"E1", "E2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, w := replicaWithSales(t, nil)
			if err := dir.AddEntry(t.Context(), testMoved, map[string][]string{"objectClass": {"organizationalUnit"}}); err != nil {
				t.Fatal(err)
			}
			if err := dir.ModifyDN(t.Context(), e1DN, "CN=Worker E1", testMoved); err != nil {
				t.Fatal(err)
			}
			var batch []*orgsyncv1.DesiredObject
			for _, id := range tt.remove {
				batch = append(batch, testMember(id, 2, true))
			}
			for i, err := range w.HandleBatch(t.Context(), messages(t, batch...)) {
				if err != nil {
					t.Fatalf("applying %s: %v", batch[i].GetKey(), err)
				}
			}
			members, err := dir.Members(t.Context(), groupDN)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			if len(tt.remove) == 1 {
				want = []string{e2DN}
			}
			if diff := cmp.Diff(want, members, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
		})
	}
}

// recordingSender keeps the results published, by subject.
type recordingSender struct {
	results map[string]*orgsyncv1.WriterResult
}

func (r recordingSender) Publish(_ context.Context, subject, _ string, m proto.Message) (*jetstream.PubAck, error) {
	if result, ok := m.(*orgsyncv1.WriterResult); ok && strings.HasPrefix(subject, "results.") {
		r.results[subject] = result
	}
	return &jetstream.PubAck{}, nil
}

// TestUserWaitsForItsManager: a user whose manager has no account yet waits a few attempts, is
// then written without the manager and reported (so that it exists and its memberships can be
// applied), and its message keeps coming back until the manager's account exists, when the link
// is written — found by the chaos run (deploy/scale), where users created while their manager's
// create waited behind a killed replica's batch were left without a manager for good.
func TestUserWaitsForItsManager(t *testing.T) {
	dir := ldaptest.NewFake(testUsers, testGroups)
	sender := recordingSender{results: map[string]*orgsyncv1.WriterResult{}}
	w := New(dir, sender, slog.New(slog.DiscardHandler), Options{BaseDN: testBase, UsersOU: testUsers, GroupsOU: testGroups})
	report := testUser("E3", "Engineer", 1)
	report.GetUser().ManagerWorkerId = "E9"
	deliver := func(obj *orgsyncv1.DesiredObject, attempt int) error {
		t.Helper()
		msg := messages(t, obj)[0].(desiredMsg)
		msg.attempt = attempt
		return w.HandleBatch(t.Context(), []jetstream.Msg{msg})[0]
	}
	e3DN, e9DN := "CN=Worker E3,"+testUsers, "CN=Worker E9,"+testUsers
	type state struct {
		Pending, ManagerPending, Exists bool
		Manager                         string
		Reported, ReportedLinkPending   bool
		// Paused is whether the writer took the wait for the DC's silence (issue 15).
		Paused bool
	}
	observe := func(err error) state {
		got := state{
			Pending: errors.Is(err, errPending), ManagerPending: errors.Is(err, errManagerPending),
			Reported:            sender.results["results.ad.user.E3"].GetObjectId() != "",
			ReportedLinkPending: sender.results["results.ad.user.E3"].GetManagerLinkPending(),
			Paused:              paused(w),
		}
		if e := dir.Entry(e3DN); e != nil {
			got.Exists, got.Manager = true, e.Get("manager")
		}
		return got
	}
	steps := []struct {
		name string
		do   func() error
		want state
	}{
		{name: "waits while the manager has no account", do: func() error { return deliver(report, managerGiveUpAfter-1) },
			want: state{Pending: true}},
		{name: "then is written and reported without the manager, still waiting", do: func() error { return deliver(report, managerGiveUpAfter) },
			want: state{ManagerPending: true, Exists: true, Reported: true, ReportedLinkPending: true}},
		{name: "the manager's account is created", do: func() error { return deliver(testUser("E9", "Head", 1), 1) },
			want: state{Exists: true, Reported: true, ReportedLinkPending: true}},
		{name: "the next delivery writes the link", do: func() error { return deliver(report, managerGiveUpAfter+1) },
			want: state{Exists: true, Manager: e9DN, Reported: true}},
		{name: "HR removes the manager: the link goes", do: func() error {
			unmanaged := testUser("E3", "Engineer", 2)
			return deliver(unmanaged, 1)
		}, want: state{Exists: true, Reported: true}},
	}
	for _, step := range steps {
		if diff := cmp.Diff(step.want, observe(step.do())); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", step.name, diff)
		}
	}

	// A manager that never gets an account ends the wait: the user is written, enabled and
	// reported with the link pending, not FAILED (the account is fine), and the message is done.
	orphan := testUser("E4", "Engineer", 1)
	orphan.GetUser().ManagerWorkerId = "E99"
	err := deliver(orphan, managerWaitAttempts)
	got := sender.results["results.ad.user.E4"]
	if err != nil || got.GetOutcome() != orgsyncv1.Outcome_OUTCOME_APPLIED || !got.GetManagerLinkPending() {
		t.Errorf("after %d attempts: %v, result %v; want done, APPLIED with the manager link pending", managerWaitAttempts, err, got)
	}
	if paused, reason := w.Pause().Paused(); paused {
		t.Errorf("writer paused by a user waiting for its manager: %v", reason)
	}
}

func paused(w *Writer) bool {
	paused, _ := w.Pause().Paused()
	return paused
}

// TestSpansForEveryWrite: each user and group is applied under a span continuing the trace of the
// change that produced it; a chunk of memberships sent in one modify gets one span, linked to the
// trace of every change it carries.
func TestSpansForEveryWrite(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	prevProvider, prevPropagator := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevProvider); otel.SetTextMapPropagator(prevPropagator) })

	objs := []*orgsyncv1.DesiredObject{
		{Key: "sales", Revision: 1, Object: &orgsyncv1.DesiredObject_Group{Group: &orgsyncv1.DesiredGroup{GroupKey: "sales", DisplayName: "Org - Sales"}}},
		testUser("E1", "Engineer", 1), testUser("E2", "Engineer", 1), testMember("E1", 1, false), testMember("E2", 1, false),
	}
	msgs := messages(t, objs...)
	producers := map[string]trace.TraceID{} // by subject
	for i, msg := range msgs {
		ctx, span := provider.Tracer("hr").Start(t.Context(), "change")
		header := nats.Header{}
		otel.GetTextMapPropagator().Inject(ctx, stream.HeaderCarrier(header))
		span.End()
		m := msg.(desiredMsg)
		m.header = header
		msgs[i] = m
		producers[m.subject] = span.SpanContext().TraceID()
	}
	w := New(ldaptest.NewFake(testUsers, testGroups), acceptingSender{}, slog.New(slog.DiscardHandler), Options{BaseDN: testBase, UsersOU: testUsers, GroupsOU: testGroups})
	for i, err := range w.HandleBatch(t.Context(), msgs) {
		if err != nil {
			t.Fatalf("applying %s: %v", objs[i].GetKey(), err)
		}
	}
	type span struct {
		Trace trace.TraceID
		Links []trace.TraceID
	}
	got := map[string][]span{}
	for _, s := range recorder.Ended() {
		if s.Name() == "change" {
			continue
		}
		var links []trace.TraceID
		for _, l := range s.Links() {
			links = append(links, l.SpanContext.TraceID())
		}
		got[s.Name()] = append(got[s.Name()], span{Trace: s.SpanContext().TraceID(), Links: links})
	}
	want := map[string][]span{
		"process dir.ad.group": {{Trace: producers["dir.ad.group.sales"], Links: []trace.TraceID{producers["dir.ad.group.sales"]}}},
		"process dir.ad.user": {
			{Trace: producers["dir.ad.user.E1"], Links: []trace.TraceID{producers["dir.ad.user.E1"]}},
			{Trace: producers["dir.ad.user.E2"], Links: []trace.TraceID{producers["dir.ad.user.E2"]}},
		},
		"add members": {{Links: []trace.TraceID{producers["dir.ad.member.sales.E1"], producers["dir.ad.member.sales.E2"]}}},
	}
	// The modify's own trace is new; only its links tie it to the changes.
	for i := range got["add members"] {
		got["add members"][i].Trace = trace.TraceID{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
}

// TestOnlyTheDCsSilencePauses: a batch whose check of DIRECTORY fails (NATS restarting) is
// retried, but the writer does not pause — the DC answers; pausing would stop the writer for a
// probe interval each time (found by the chaos run). A DC that does not answer pauses it.
func TestOnlyTheDCsSilencePauses(t *testing.T) {
	dir := ldaptest.NewFake(testUsers, testGroups)
	opts := Options{BaseDN: testBase, UsersOU: testUsers, GroupsOU: testGroups}
	opts.Latest = func(context.Context, string) (*orgsyncv1.DesiredObject, error) {
		return nil, fmt.Errorf("nats: %w", context.DeadlineExceeded)
	}
	w := New(dir, acceptingSender{}, slog.New(slog.DiscardHandler), opts)
	// A redelivery of a revision older than the one applied: the writer reads the newest.
	seedApplied(t, w, testUser("E1", "Lead", 2))
	errs := w.HandleBatch(t.Context(), messages(t, testUser("E1", "Lead", 1)))
	if errs[0] == nil {
		t.Fatal("a failed check of DIRECTORY was not retried")
	}
	if paused(w) {
		t.Errorf("paused by a failed read of DIRECTORY: %v", errs[0])
	}

	dir.FailAll = &ldap.Error{Op: "dial", Code: 200, Class: ldap.ClassUnavailable}
	w = New(dir, acceptingSender{}, slog.New(slog.DiscardHandler), Options{BaseDN: testBase, UsersOU: testUsers, GroupsOU: testGroups})
	if errs := w.HandleBatch(t.Context(), messages(t, testUser("E2", "Lead", 1))); errs[0] == nil || !paused(w) {
		t.Errorf("DC unreachable: error %v, paused %v; want a retry and a pause", errs[0], paused(w))
	}
}

// TestMissingOUDoesNotPauseTheWriter: a user moved into an OU that does not exist (a policy
// naming an OU nobody created) is refused by Samba with 80, "parent does not exist". That is the
// desired state's fault, not a DC that cannot serve: the writer must not pause (which would stop
// every other object and retry for ever); the move is retried a few times, since the OU may be
// created meanwhile, and then reported NOT_FOUND and parked.
func TestMissingOUDoesNotPauseTheWriter(t *testing.T) {
	dir, w := replicaWithSales(t, nil)
	moved := testUser("E1", "Engineer", 2)
	moved.GetUser().Attributes = map[string]string{"parentDistinguishedName": "OU=Missing," + testUsers}
	errs := w.HandleBatch(t.Context(), messages(t, moved))
	if errs[0] == nil {
		t.Fatal("the move under a missing OU succeeded")
	}
	if paused(w) {
		t.Errorf("paused by a missing OU: %v", errs[0])
	}
	if ldap.ClassOf(errs[0]) != ldap.ClassNotFound {
		t.Errorf("class of %v = %d, want not found", errs[0], ldap.ClassOf(errs[0]))
	}
	if _, retry := retryDelay(errs[0], 1); !retry {
		t.Error("not retried: the OU may be created meanwhile")
	}
	if _, retry := retryDelay(errs[0], 6); retry {
		t.Error("retried for ever")
	}
	// The next object is written as usual.
	if errs := w.HandleBatch(t.Context(), messages(t, testUser("E2", "Lead", 2))); errs[0] != nil {
		t.Errorf("the next user: %v", errs[0])
	}
	if got := dir.Entry(e2DN).Get("title"); got != "Lead" {
		t.Errorf("E2's title = %q, want Lead", got)
	}
}

// TestManagerMovedOutsideOrgsyncIsLookedUpAgain: the writer records the manager's DN when it
// sees it. An administrator then moves the manager; AD rewrites the link of the manager's
// reports, but the writer's next write of a report still carries the recorded DN, which Samba
// refuses with 19 ("Referenced object not found"). That must not park the report as invalid:
// the manager is looked up again by objectGUID and the next attempt writes the current DN.
func TestManagerMovedOutsideOrgsyncIsLookedUpAgain(t *testing.T) {
	dir, w := replicaWithSales(t, nil)
	report := func(title string, revision uint64) *orgsyncv1.DesiredObject {
		obj := testUser("E3", title, revision)
		obj.GetUser().ManagerWorkerId = "E1"
		return obj
	}
	if errs := w.HandleBatch(t.Context(), messages(t, report("Engineer", 1))); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if err := dir.AddEntry(t.Context(), testMoved, map[string][]string{"objectClass": {"organizationalUnit"}}); err != nil {
		t.Fatal(err)
	}
	if err := dir.ModifyDN(t.Context(), e1DN, "CN=Worker E1", testMoved); err != nil {
		t.Fatal(err)
	}
	e3DN := "CN=Worker E3," + testUsers
	msg := messages(t, report("Lead", 2))[0].(desiredMsg)
	err := w.HandleBatch(t.Context(), []jetstream.Msg{msg})[0]
	if err == nil {
		t.Fatal("the write with the recorded manager DN succeeded; the test did not reproduce the refusal")
	}
	if _, retry := retryDelay(err, 1); !retry {
		t.Fatalf("%v is not retried; want a retry with the manager looked up again", err)
	}
	msg.attempt = 2
	if err := w.HandleBatch(t.Context(), []jetstream.Msg{msg})[0]; err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	got := map[string]string{"title": dir.Entry(e3DN).Get("title"), "manager": dir.Entry(e3DN).Get("manager")}
	want := map[string]string{"title": "Lead", "manager": "CN=Worker E1," + testMoved}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("E3 (-want +got):\n%s", diff)
	}
}
