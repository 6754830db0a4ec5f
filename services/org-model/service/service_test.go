package service

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

type harness struct {
	url string
	js  jetstream.JetStream
	pub *stream.Publisher
	// issuer and tokens authenticate the test's calls: a static token per role, and OIDC tokens.
	issuer *authtest.Issuer
	auth   auth.Config
	tokens map[auth.Role]string
}

func newHarness(t *testing.T) harness {
	t.Helper()
	srv := streamtest.Start(t)
	js := srv.JS
	issuer := authtest.NewIssuer(t)
	authCfg, tokens := authtest.RoleTokens(t)
	authCfg.Issuer, authCfg.Audience = issuer.URL(), authtest.Audience
	return harness{url: srv.ClientURL(), js: js, pub: stream.NewPublisher(js), issuer: issuer, auth: authCfg, tokens: tokens}
}

func (h harness) hr(t *testing.T, id string, event *orgsyncv1.HREvent) {
	t.Helper()
	event.EventId, event.Source = id, "workday"
	hrSubject, err := subject.HRSubject(event)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.pub.Publish(t.Context(), hrSubject, "workday:"+id, event); err != nil {
		t.Fatal(err)
	}
}

// start runs an org-model until the test ends or stop is called, and waits until it is ready.
func (h harness) start(t *testing.T, options ...func(*Config)) (*Service, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cfg := Config{
		NATSURL: h.url,
		Server:  server.Config{Name: Name, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ReadinessInterval: 10 * time.Millisecond, Auth: h.auth},
		Streams: stream.DefaultConfig(),
		Policy:  Policy{UPNDomain: "corp.example.com", GroupNamePrefix: "Org - "},
	}
	for _, option := range options {
		option(&cfg)
	}
	svc, err := New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := svc.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	stop := sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stop)
	eventually(t, func() bool { return svc.server.Ready(t.Context()) == nil })
	return svc, stop
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Error("condition not met within 10s")
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// directory reads the newest message of every DIRECTORY subject.
func (h harness) directory(t *testing.T) map[string]*orgsyncv1.DesiredObject {
	t.Helper()
	objects := map[string]*orgsyncv1.DesiredObject{}
	err := stream.ReadLatest(t.Context(), h.js, stream.Directory, "dir.>", func(msg jetstream.Msg) error {
		var obj orgsyncv1.DesiredObject
		if err := stream.Decode(msg, &obj); err != nil {
			return err
		}
		objects[msg.Subject()] = &obj
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return objects
}

func (h harness) directoryLastSeq(t *testing.T) uint64 {
	t.Helper()
	s, err := h.js.Stream(t.Context(), stream.Directory)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

func worker(id, unit string, statusValue orgsyncv1.EmploymentStatus, at time.Time) *orgsyncv1.HREvent {
	return &orgsyncv1.HREvent{OccurredAt: timestamppb.New(at), Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{
		WorkerId: id, OrgUnitId: unit, EmploymentStatus: statusValue,
		Name: &orgsyncv1.PersonName{GivenName: "Jane", FamilyName: "Doe " + id},
	}}}
}

func unit(id, name, parent string) *orgsyncv1.HREvent {
	return &orgsyncv1.HREvent{Payload: &orgsyncv1.HREvent_OrgUnit{OrgUnit: &orgsyncv1.OrgUnit{OrgUnitId: id, Name: name, ParentOrgUnitId: parent}}}
}

func revisions(objects map[string]*orgsyncv1.DesiredObject) map[string]uint64 {
	out := map[string]uint64{}
	for subject, obj := range objects {
		out[subject] = obj.GetRevision()
		if obj.GetTombstone() {
			out[subject+" (tombstone)"] = obj.GetRevision()
			delete(out, subject)
		}
	}
	return out
}

func TestPublishesDesiredStateAndOnlyChanges(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	active := orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE
	h.hr(t, "u1", unit("commercial", "Commercial", ""))
	h.hr(t, "u2", unit("sales", "Sales", "commercial"))
	h.hr(t, "u3", unit("finance", "Finance", ""))
	// Replayed history: E1 moved from finance to sales before org-model ever ran.
	h.hr(t, "w1", worker("E1", "finance", active, t0))
	h.hr(t, "w2", worker("E1", "sales", active, t0.Add(time.Hour)))

	_, stop := h.start(t)
	want := map[string]uint64{
		"dir.entra.group.unit-commercial": 1,
		"dir.entra.group.unit-sales":      1,
		"dir.entra.group.unit-finance":    1,
		"dir.entra.user.E1":               1,
		"dir.entra.member.unit-sales.E1":  1,
	}
	if diff := cmp.Diff(want, revisions(h.directory(t))); diff != "" {
		t.Fatalf("after replay, no intermediate state may be published (-want +got):\n%s", diff)
	}

	// Live: a move publishes the user's new state, the new membership and a tombstone of the old.
	h.hr(t, "w3", worker("E1", "finance", active, t0.Add(2*time.Hour)))
	want["dir.entra.member.unit-finance.E1"] = 1
	want["dir.entra.user.E1"] = 2 // department follows the unit
	want["dir.entra.member.unit-sales.E1 (tombstone)"] = 2
	delete(want, "dir.entra.member.unit-sales.E1")
	eventually(t, func() bool { return cmp.Equal(want, revisions(h.directory(t))) })
	if diff := cmp.Diff(want, revisions(h.directory(t))); diff != "" {
		t.Fatalf("after a move (-want +got):\n%s", diff)
	}
	moved := h.directory(t)["dir.entra.member.unit-finance.E1"]
	if moved.GetCause().GetHrEventId() != "w3" || moved.GetCause().GetHrSequence() != 6 {
		t.Errorf("cause = %v, want HR event w3 at sequence 6", moved.GetCause())
	}
	// The same facts again (a new event id, same content) change nothing.
	h.hr(t, "w4", worker("E1", "finance", active, t0.Add(3*time.Hour)))
	lastSeq := h.directoryLastSeq(t)
	stop()

	// A restart replays everything and publishes nothing new.
	h.start(t)
	if got := h.directoryLastSeq(t); got != lastSeq {
		t.Errorf("restart published %d messages; want none", got-lastSeq)
	}
	if diff := cmp.Diff(want, revisions(h.directory(t))); diff != "" {
		t.Errorf("after restart (-want +got):\n%s", diff)
	}
}

func TestQueries(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	h.hr(t, "u1", unit("sales", "Sales", ""))
	for i, id := range []string{"E3", "E1", "E2"} {
		h.hr(t, "w"+id, worker(id, "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, t0.Add(time.Duration(i)*time.Minute)))
	}
	h.hr(t, "wE4", worker("E4", "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED, t0))
	svc, _ := h.start(t)
	// A writer's result is shown with the account.
	if _, err := h.pub.Publish(t.Context(), "results.entra.user.E1", "r1", &orgsyncv1.WriterResult{
		Target: orgsyncv1.Target_TARGET_ENTRA, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_USER, Key: "E1", Revision: 1,
		Outcome: orgsyncv1.Outcome_OUTCOME_APPLIED, ObjectId: "0000-1",
	}); err != nil {
		t.Fatal(err)
	}

	client := h.client(t, svc)

	var got *orgsyncv1.GetWorkerResponse
	var err error
	eventually(t, func() bool {
		got, err = client.GetWorker(t.Context(), &orgsyncv1.GetWorkerRequest{WorkerId: "E1"})
		return err == nil && got.GetAccounts()[0].GetLastResult().GetObjectId() == "0000-1"
	})
	account := got.GetAccounts()[0]
	if account.GetDesired().GetUserPrincipalName() != "jane.doee1@corp.example.com" || account.GetRevision() != 1 ||
		!cmp.Equal(account.GetGroupKeys(), []string{"unit-sales"}) {
		t.Errorf("account = %v", account)
	}
	if _, err := client.GetWorker(t.Context(), &orgsyncv1.GetWorkerRequest{WorkerId: "nobody"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown worker: %v", err)
	}
	if _, err := client.GetWorker(t.Context(), &orgsyncv1.GetWorkerRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty worker id: %v", err)
	}

	var pages [][]string
	token := ""
	for {
		resp, err := client.ListGroupMembers(t.Context(), &orgsyncv1.ListGroupMembersRequest{
			Target: orgsyncv1.Target_TARGET_ENTRA, GroupKey: "unit-sales", PageSize: 2, PageToken: token,
		})
		if err != nil {
			t.Fatal(err)
		}
		var page []string
		for _, m := range resp.GetMembers() {
			page = append(page, m.GetMemberKey())
		}
		pages = append(pages, page)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if diff := cmp.Diff([][]string{{"E1", "E2"}, {"E3"}}, pages); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
	if _, err := client.ListGroupMembers(t.Context(), &orgsyncv1.ListGroupMembersRequest{Target: orgsyncv1.Target_TARGET_ENTRA, GroupKey: "unit-none"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown group: %v", err)
	}
}
