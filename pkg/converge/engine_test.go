package converge

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv := streamtest.Start(t)
	js := srv.JS
	return js
}

func user(workerID string, revision uint64, title string) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{
		Target: orgsyncv1.Target_TARGET_AD, Key: workerID, Revision: revision,
		Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{WorkerId: workerID, JobTitle: title}},
	}
}

// publish puts objs on DIRECTORY and returns their messages, as a consumer would get them.
func publish(t *testing.T, js jetstream.JetStream, objs ...*orgsyncv1.DesiredObject) []jetstream.Msg {
	t.Helper()
	pub := stream.NewPublisher(js)
	for _, obj := range objs {
		subject, err := subject.DirectorySubject(obj)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(t.Context(), subject, "", obj); err != nil {
			t.Fatal(err)
		}
	}
	// MaxMsgsPerSubject 1 keeps only the newest per object: read the published messages back
	// from a consumer that sees what is left.
	consumer, err := js.OrderedConsumer(t.Context(), stream.Directory, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := consumer.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for msg := range batch.Messages() {
		msgs = append(msgs, msg)
	}
	return msgs
}

// fakeMsg is a DIRECTORY message that was delivered once and is not on the stream any more.
type fakeMsg struct {
	jetstream.Msg
	subject string
	data    []byte
}

func (m fakeMsg) Subject() string      { return m.subject }
func (m fakeMsg) Data() []byte         { return m.data }
func (m fakeMsg) Headers() nats.Header { return nats.Header{} }
func (m fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: 1}, nil
}

func message(t *testing.T, obj *orgsyncv1.DesiredObject) jetstream.Msg {
	t.Helper()
	subject, err := subject.DirectorySubject(obj)
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return fakeMsg{subject: subject, data: data}
}

// TestDecodeKeepsTheNewestRevision: of a batch, one desired state per object is applied — the
// newest; a revision older than one applied is dropped, or replaced by DIRECTORY's newest when
// that is newer than the message (the stale message may be a retry that must still converge).
func TestDecodeKeepsTheNewestRevision(t *testing.T) {
	js := startJetStream(t)
	latest, err := DirectoryLatest(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	e := New(orgsyncv1.Target_TARGET_AD, stream.NewPublisher(js), latest, slog.New(slog.DiscardHandler))
	publish(t, js, user("E3", 5, "Director"))
	e.Seed("ad.user.E2", 4)
	e.Seed("ad.user.E3", 4)

	msgs := []jetstream.Msg{
		message(t, user("E1", 2, "Lead")), message(t, user("E1", 1, "Engineer")), // in-batch: 2 wins
		message(t, user("E2", 3, "Old")),                                 // stale, nothing newer on DIRECTORY: dropped
		message(t, user("E3", 3, "Old")),                                 // stale, DIRECTORY has 5: 5 is applied
		fakeMsg{subject: "dir.ad.user.E4", data: []byte("not protobuf")}, // unreadable
	}
	items, errs := e.Decode(t.Context(), msgs)
	got := map[int]string{}
	for i, it := range items {
		if it.Obj != nil {
			got[i] = it.Path + "@" + it.Obj.GetUser().GetJobTitle()
		}
	}
	want := map[int]string{0: "ad.user.E1@Lead", 3: "ad.user.E3@Director"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("items to apply (-want +got):\n%s", diff)
	}
	for i, err := range errs[:4] {
		if err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	if errs[4] == nil {
		t.Error("an unreadable message has no error")
	}
}

// TestParkReportsOnceAndKeepsTheStateForReplay: a desired state the directory refuses for good is
// reported FAILED with the directory's reason, parked on DEADLETTER and terminated (a permanent
// error); the box lists it with the reason and replays it while it is still the newest state.
func TestParkReportsOnceAndKeepsTheStateForReplay(t *testing.T) {
	js := startJetStream(t)
	latest, err := DirectoryLatest(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	e := New(orgsyncv1.Target_TARGET_AD, stream.NewPublisher(js), latest, slog.New(slog.DiscardHandler))
	msgs := publish(t, js, user("E1", 1, "Lead"), user("E2", 1, "Lead"))
	items, _ := e.Decode(t.Context(), msgs)
	refusal := errors.New("constraint violation: title")
	for _, it := range items {
		err := e.Park(t.Context(), it, refusal, Failure{Class: orgsyncv1.ErrorClass_ERROR_CLASS_INVALID, Code: "19", Property: "title"})
		if !errors.Is(err, stream.ErrPermanent) || !errors.Is(err, refusal) {
			t.Fatalf("Park = %v, want the refusal, permanent", err)
		}
	}
	box := NewBox(js, orgsyncv1.Target_TARGET_AD)
	letters, err := box.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []Letter{
		{Path: "ad.user.E1", Revision: 1, Error: refusal.Error(), Property: "title"},
		{Path: "ad.user.E2", Revision: 1, Error: refusal.Error(), Property: "title"},
	}
	if diff := cmp.Diff(want, letters); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	// E2 changes in HR meanwhile: its parked state is obsolete.
	publish(t, js, user("E2", 2, "Director"))
	outcome, err := box.Replay(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if outcome != (ReplayOutcome{Replayed: 1, Obsolete: 1}) {
		t.Errorf("replay = %+v, want 1 replayed, 1 obsolete", outcome)
	}
	if letters, err := box.List(t.Context()); err != nil || len(letters) != 0 {
		t.Errorf("after the replay: %v, %v; want an empty box", letters, err)
	}
}

// TestConsumerStepsAsideWhilePaused: a paused writer takes no message until its probe passes.
func TestConsumerStepsAsideWhilePaused(t *testing.T) {
	js := startJetStream(t)
	consumer, err := js.CreateOrUpdateConsumer(t.Context(), stream.Directory, jetstream.ConsumerConfig{
		Durable: "test", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "dir.ad.>",
	})
	if err != nil {
		t.Fatal(err)
	}
	pause := NewPause(slog.New(slog.DiscardHandler))
	pause.Enter("the DC does not answer")
	var handled, probes atomic.Int32
	var targetUp atomic.Bool
	c := Consumer{
		Consumer: consumer, BatchSize: 10, Pause: pause, ProbeEvery: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		Handle: func(_ context.Context, msgs []jetstream.Msg) []error {
			handled.Add(int32(len(msgs)))
			return make([]error, len(msgs))
		},
		Probe: func(context.Context) error {
			probes.Add(1)
			if !targetUp.Load() {
				return errors.New("no answer")
			}
			return nil
		},
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	publish(t, js, user("E1", 1, "Lead"))
	for probes.Load() < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	if n := handled.Load(); n != 0 {
		t.Errorf("%d messages handled while paused", n)
	}
	targetUp.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for handled.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if paused, _ := pause.Paused(); paused || handled.Load() != 1 {
		t.Errorf("after the probe passed: paused %v, %d handled; want resumed and 1", paused, handled.Load())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestBackoff is the one retry table of both writers.
func TestBackoff(t *testing.T) {
	got := map[int][2]time.Duration{}
	for _, attempt := range []int{0, 1, 2, 3, 5, 7, 8, 100} {
		got[attempt] = [2]time.Duration{Backoff(attempt), WaitBackoff(attempt)}
	}
	want := map[int][2]time.Duration{
		0: {500 * time.Millisecond, 500 * time.Millisecond}, 1: {500 * time.Millisecond, 500 * time.Millisecond},
		2: {time.Second, time.Second}, 3: {2 * time.Second, 2 * time.Second}, 5: {8 * time.Second, 5 * time.Second},
		7: {30 * time.Second, 5 * time.Second}, 8: {30 * time.Second, 5 * time.Second}, 100: {30 * time.Second, 5 * time.Second},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delays by attempt (-want +got):\n%s", diff)
	}
}

// TestAdminRoutesNeedTheirRoles is in the writers' service tests, through their real listeners;
// here: the JSON answers of the routes themselves.
func TestAdminAnswersJSONAndErrors(t *testing.T) {
	a := Admin{Logger: slog.New(slog.DiscardHandler)}
	ok := httptest.NewRecorder()
	a.json(func(*http.Request) (any, error) { return ReplayOutcome{Replayed: 2}, nil }).ServeHTTP(ok, httptest.NewRequest("POST", "/", nil))
	if ok.Code != 200 || strings.TrimSpace(ok.Body.String()) != `{"replayed":2,"obsolete":0}` || ok.Header().Get("Content-Type") != "application/json" {
		t.Errorf("answer %d %q %q", ok.Code, ok.Body.String(), ok.Header().Get("Content-Type"))
	}
	failed := httptest.NewRecorder()
	a.json(func(*http.Request) (any, error) { return nil, errors.New("stream DEADLETTER not found") }).ServeHTTP(failed, httptest.NewRequest("GET", "/", nil))
	if failed.Code != 500 || !strings.Contains(failed.Body.String(), "DEADLETTER") {
		t.Errorf("failure answered %d %q", failed.Code, failed.Body.String())
	}
}

// TestResultNamesTheWorkersHRSource: a user's result carries its worker's HR source from the
// desired state, so hr-ingest can write the account's UPN and mail back to that source; other
// kinds carry none.
func TestResultNamesTheWorkersHRSource(t *testing.T) {
	e := New(orgsyncv1.Target_TARGET_ENTRA, nil, nil, slog.New(slog.DiscardHandler))
	tests := []struct {
		name string
		obj  *orgsyncv1.DesiredObject
		want string
	}{
		{name: "user", want: "bamboo", obj: &orgsyncv1.DesiredObject{Key: "E1", Object: &orgsyncv1.DesiredObject_User{
			User: &orgsyncv1.DesiredUser{WorkerId: "E1", HrSource: "bamboo"}}}},
		{name: "group", want: "", obj: &orgsyncv1.DesiredObject{Key: "g", Object: &orgsyncv1.DesiredObject_Group{
			Group: &orgsyncv1.DesiredGroup{GroupKey: "g"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.Result(tt.obj).GetHrSource(); got != tt.want {
				t.Errorf("hr_source = %q, want %q", got, tt.want)
			}
		})
	}
}
