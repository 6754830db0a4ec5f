package writeback_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/bamboohr"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/hibob"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/personio"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/writeback"
	"github.com/orgsync/orgsync/services/hr-ingest/vendortest"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

const (
	bambooKey     = "bamboo-api-key-0123456789"
	bobUser       = "SERVICE-1234"
	bobToken      = "bob-service-token-0123456789"
	bobWorker     = "3332883884017713238"
	callbackWhsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// receiver is an HR system's endpoint for write-back webhooks: it verifies each with the
// Standard Webhooks reference library and keeps the verified payloads.
type receiver struct {
	mu       sync.Mutex
	verified []writeback.CallbackPayload
	ids      []string
	refused  int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hook, err := standardwebhooks.NewWebhook(callbackWhsec)
	if err != nil {
		http.Error(w, "", http.StatusInternalServerError)
		return
	}
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := hook.Verify(body, r.Header); err != nil {
		rc.refused++
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	var payload writeback.CallbackPayload
	if err := json.Unmarshal(body, &payload); err != nil {
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	rc.verified = append(rc.verified, payload)
	rc.ids = append(rc.ids, r.Header.Get(webhook.HeaderID))
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) payloads() []writeback.CallbackPayload {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]writeback.CallbackPayload(nil), rc.verified...)
}

type harness struct {
	js       jetstream.JetStream
	bamboo   *vendortest.BambooHR
	bob      *vendortest.HiBob
	papi     *vendortest.Personio
	receiver *receiver
	sources  map[string]writeback.Source
	revision uint64
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	srv := streamtest.Start(t)
	h := &harness{js: srv.JS, receiver: &receiver{}}
	h.bamboo = vendortest.NewBambooHR(t, "acme", bambooKey)
	h.bamboo.AddCustomField("customUsername")
	h.bamboo.Put("7", map[string]string{"firstName": "Jane", "lastName": "Doe"})
	h.bob = vendortest.NewHiBob(t, bobUser, bobToken)
	h.bob.Put(bobWorker, `{"id":"`+bobWorker+`","firstName":"Ann","surname":"Lee","email":"ann.lee@old.example","work":{"title":"Engineer"}}`)
	h.papi = vendortest.NewPersonio(t, "papi-client-0123", "papi-secret-0123456789")
	h.papi.AddCustomAttribute("dynamic_1234")
	h.papi.Put("5005", map[string]any{"first_name": "Pia", "last_name": "Ott", "email": "pia.ott@old.example"})
	callbackServer := httptest.NewServer(h.receiver)
	t.Cleanup(callbackServer.Close)
	secret, err := webhook.ParseSecret(callbackWhsec)
	if err != nil {
		t.Fatal(err)
	}
	both := []source.Attribute{source.AttributeUPN, source.AttributeMail}
	h.sources = map[string]writeback.Source{
		"bamboo": {Config: source.WriteBack{Attributes: both, UsernameField: "customUsername"},
			Writer: bamboohr.NewWriter(h.bamboo.BaseURL(), bambooKey, "customUsername", nil)},
		"bob": {Config: source.WriteBack{Attributes: both, UsernameField: "work.custom.field_1690000000000"},
			Writer: hibob.NewWriter(h.bob.BaseURL(), bobUser, bobToken, "work.custom.field_1690000000000", nil)},
		"papi": {Config: source.WriteBack{Attributes: both, UsernameField: "dynamic_1234"},
			Writer: personio.NewWriter(personio.NewClient(h.papi.BaseURL(), "papi-client-0123", "papi-secret-0123456789", nil, nil), "dynamic_1234")},
		"export": {Config: source.WriteBack{Attributes: []source.Attribute{source.AttributeUPN}, Callback: source.Callback{URL: callbackServer.URL, Secret: secret}},
			Writer: writeback.NewCallback(callbackServer.URL, "export", secret, nil, nil)},
		// A source that did not ask for write-back: configured, but with no attributes.
		"quiet": {Config: source.WriteBack{}, Writer: bamboohr.NewWriter(h.bamboo.BaseURL(), bambooKey, "customUsername", nil)},
	}
	return h
}

// start runs a Sink until the test ends.
func (h *harness) start(t *testing.T) *writeback.Sink {
	t.Helper()
	allow := false
	sink := writeback.New(h.js, h.sources, writeback.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, AllowPII: &allow},
		slog.New(slog.DiscardHandler))
	run, err := sink.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return sink
}

// report publishes a writer's result for a user, as entra-writer (or ad-writer) does.
func (h *harness) report(t *testing.T, target orgsyncv1.Target, hrSource, workerID, upn, mail string) {
	t.Helper()
	h.revision++
	result := &orgsyncv1.WriterResult{Target: target, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_USER, Key: workerID,
		Revision: h.revision, Outcome: orgsyncv1.Outcome_OUTCOME_APPLIED, ObjectId: "obj-" + workerID,
		UserPrincipalName: upn, Mail: mail, HrSource: hrSource, Operations: []string{"user.create"}}
	path := subject.UserPath(target, workerID)
	if _, err := stream.NewPublisher(h.js).Publish(t.Context(), subject.ResultSubject(path), path+":"+time.Now().String(), result); err != nil {
		t.Fatal(err)
	}
}

// settled waits until the Sink has handled everything published (nothing pending, nothing
// waiting for an acknowledgement or a redelivery).
func settled(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	consumer, err := js.Consumer(t.Context(), stream.Results, writeback.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the write-back consumer to settle", func() bool {
		info, err := consumer.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHireIsWrittenBackToEachSource(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.report(t, orgsyncv1.Target_TARGET_ENTRA, "bamboo", "7", "jane.doe@corp.example.com", "jane.doe@example.com")
	h.report(t, orgsyncv1.Target_TARGET_ENTRA, "bob", bobWorker, "ann.lee@corp.example.com", "ann.lee@example.com")
	h.report(t, orgsyncv1.Target_TARGET_ENTRA, "export", "E9", "max.roe@corp.example.com", "max.roe@example.com")
	h.report(t, orgsyncv1.Target_TARGET_ENTRA, "papi", "5005", "pia.ott@corp.example.com", "pia.ott@example.com")
	h.report(t, orgsyncv1.Target_TARGET_ENTRA, "quiet", "8", "no.body@corp.example.com", "no.body@example.com")
	// ad-writer's result for the same worker: the source writes back entra's account only.
	h.report(t, orgsyncv1.Target_TARGET_AD, "bamboo", "7", "jdoe@corp.local", "jane.doe@example.com")
	eventually(t, "the callback", func() bool { return len(h.receiver.payloads()) == 1 })
	settled(t, h.js)

	t.Run("bamboohr: workEmail and the username field in one update", func(t *testing.T) {
		want := []vendortest.Update{{EmployeeID: "7", Fields: map[string]string{"workEmail": "jane.doe@example.com", "customUsername": "jane.doe@corp.example.com"}}}
		if diff := cmp.Diff(want, h.bamboo.Updates()); diff != "" {
			t.Errorf("BambooHR updates (-want +got):\n%s", diff)
		}
	})
	t.Run("hibob: the e-mail endpoint, then the username field", func(t *testing.T) {
		want := []vendortest.HiBobUpdate{
			{EmployeeID: bobWorker, Path: "email", Body: map[string]any{"email": "ann.lee@example.com"}},
			{EmployeeID: bobWorker, Path: "", Body: map[string]any{"work": map[string]any{"custom": map[string]any{"field_1690000000000": "ann.lee@corp.example.com"}}}},
		}
		if diff := cmp.Diff(want, h.bob.Updates()); diff != "" {
			t.Errorf("Bob updates (-want +got):\n%s", diff)
		}
	})
	t.Run("personio: email and the custom attribute in one PATCH", func(t *testing.T) {
		want := []vendortest.PersonioUpdate{{PersonID: "5005", Body: map[string]any{"email": "pia.ott@example.com",
			"custom_attributes": []any{map[string]any{"id": "dynamic_1234", "value": "pia.ott@corp.example.com"}}}}}
		if diff := cmp.Diff(want, h.papi.Updates()); diff != "" {
			t.Errorf("Personio updates (-want +got):\n%s", diff)
		}
	})
	t.Run("webhook: signed, verified by the reference library, only the attributes asked for", func(t *testing.T) {
		got := h.receiver.payloads()[0]
		want := writeback.CallbackData{Source: "export", WorkerID: "E9", UserPrincipalName: "max.roe@corp.example.com"}
		if diff := cmp.Diff(want, got.Data); diff != "" || got.Type != writeback.CallbackType {
			t.Errorf("callback type %q, data (-want +got):\n%s", got.Type, diff)
		}
		if h.receiver.refused != 0 {
			t.Errorf("%d callbacks failed verification", h.receiver.refused)
		}
	})
	t.Run("audited without values", func(t *testing.T) {
		for _, worker := range []string{"7", bobWorker, "E9", "5005"} {
			s, err := h.js.Stream(t.Context(), stream.Audit)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := s.GetLastMsgForSubject(t.Context(), writeback.AuditSubject(worker))
			if err != nil {
				t.Fatalf("no audit record of worker %s's write-back: %v", worker, err)
			}
			var record orgsyncv1.WriterResult
			if err := proto.Unmarshal(msg.Data, &record); err != nil {
				t.Fatal(err)
			}
			if record.GetHrSource() == "" || len(record.GetOperations()) == 0 {
				t.Errorf("worker %s: audit record names no source or operation: %v", worker, &record)
			}
			for _, change := range record.GetChanges() {
				if !change.GetRedacted() || change.GetAfter() != "" {
					t.Errorf("worker %s: audit change %s carries a value", worker, change.GetName())
				}
			}
		}
		if _, err := func() (*jetstream.RawStreamMsg, error) {
			s, _ := h.js.Stream(t.Context(), stream.Audit)
			return s.GetLastMsgForSubject(t.Context(), writeback.AuditSubject("8"))
		}(); err == nil {
			t.Error("a write-back of source quiet, which did not ask for it, was audited")
		}
	})
}

func TestWriteBackIsIdempotentAndFollowsChanges(t *testing.T) {
	h := newHarness(t)
	h.start(t)

	// The vendor fails the first try: the write is retried and made once.
	h.bamboo.Fail(vendortest.Fault{Status: http.StatusInternalServerError}, vendortest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "0"})
	h.report(t, orgsyncv1.Target_TARGET_ENTRA, "bamboo", "7", "jane.doe@corp.example.com", "jane.doe@example.com")
	eventually(t, "the update after the 5xx", func() bool { return len(h.bamboo.Updates()) == 1 })
	settled(t, h.js)
	if got := h.bamboo.Requests(); got != 3 {
		t.Errorf("BambooHR saw %d requests, want 3 (two refused, one accepted)", got)
	}

	// The same account reported again (a later revision that changed something else): nothing written.
	h.report(t, orgsyncv1.Target_TARGET_ENTRA, "bamboo", "7", "jane.doe@corp.example.com", "jane.doe@example.com")
	settled(t, h.js)
	if got := len(h.bamboo.Updates()); got != 1 {
		t.Fatalf("an unchanged account was written again: %d updates", got)
	}

	// A restart whose consumer replays every user's newest result writes nothing again: what was
	// written is recorded in the bucket, not in the consumer.
	if err := h.js.DeleteConsumer(t.Context(), stream.Results, writeback.ConsumerName); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	settled(t, h.js)
	if got := len(h.bamboo.Updates()); got != 1 {
		t.Fatalf("a restart wrote again: %d updates", got)
	}

	// A changed UPN is written, and only the UPN.
	h.report(t, orgsyncv1.Target_TARGET_ENTRA, "bamboo", "7", "jane.smith@corp.example.com", "jane.doe@example.com")
	eventually(t, "the changed UPN", func() bool { return len(h.bamboo.Updates()) == 2 })
	settled(t, h.js)
	want := vendortest.Update{EmployeeID: "7", Fields: map[string]string{"customUsername": "jane.smith@corp.example.com"}}
	if diff := cmp.Diff(want, h.bamboo.Updates()[1]); diff != "" {
		t.Errorf("second update (-want +got):\n%s", diff)
	}
}

func TestRefusedWriteIsParkedVisibleAndReplayed(t *testing.T) {
	h := newHarness(t)
	sink := h.start(t)
	// Bob does not know the employee (yet): 404, which retrying cannot fix.
	h.report(t, orgsyncv1.Target_TARGET_ENTRA, "bob", "4444444444444444444", "new.hire@corp.example.com", "new.hire@example.com")
	settled(t, h.js)
	requests := h.bob.Requests()

	status, err := sink.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var bob writeback.SourceStatus
	for _, s := range status.Sources {
		if s.Source == "bob" {
			bob = s
		}
	}
	if bob.Parked != 1 || bob.LastErrorClass != writeback.ClassRejected {
		t.Fatalf("bob's status = %+v, want 1 parked, last error rejected", bob)
	}
	registration, err := sink.ObserveMetrics()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = registration.Unregister() })
	if got, ok := gauge(t, "hr_ingest.writeback.parked", "bob"); !ok || got != 1 {
		t.Errorf("hr_ingest.writeback.parked{source=bob} = %d (reported %v), want 1", got, ok)
	}
	if got, ok := gauge(t, "hr_ingest.writeback.pending", ""); !ok || got != 0 {
		t.Errorf("hr_ingest.writeback.pending = %d (reported %v), want 0", got, ok)
	}
	parked, err := sink.Parked(t.Context(), "bob")
	if err != nil || len(parked) != 1 {
		t.Fatalf("parked = %v, %v", parked, err)
	}
	for _, value := range []string{"new.hire@corp.example.com", "new.hire@example.com"} {
		if strings.Contains(parked[0].Reason, value) {
			t.Errorf("the parked reason %q quotes a value", parked[0].Reason)
		}
	}
	time.Sleep(300 * time.Millisecond) // several backoffs: a parked write is not retried
	if got := h.bob.Requests(); got != requests {
		t.Errorf("a parked write-back was retried: %d requests, then %d", requests, got)
	}

	// The operator fixes the cause (the employee exists now) and replays.
	h.bob.Put("4444444444444444444", `{"id":"4444444444444444444","firstName":"New","surname":"Hire","email":"x@old.example"}`)
	replay, err := sink.Replay(t.Context(), "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if replay.Written != 1 || len(replay.StillParked) != 0 {
		t.Fatalf("replay = %+v, want 1 written", replay)
	}
	if got := len(h.bob.Updates()); got != 2 {
		t.Errorf("Bob accepted %d updates after the replay, want 2 (e-mail, username)", got)
	}
	if parked, err := sink.Parked(t.Context(), "bob"); err != nil || len(parked) != 0 {
		t.Errorf("still parked after the replay: %v, %v", parked, err)
	}
}
