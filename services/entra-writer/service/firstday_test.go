package service

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/writer"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// senderMailbox is the mailbox first-day passes are sent from in these tests.
const senderMailbox = "onboarding@corp.example.test"

// startCredentialReplica starts one entra-writer replica that sends first-day passes from
// sender, logging at debug level into logs, and returns the function that stops it.
func (p pipeline) startCredentialReplica(tb testing.TB, logs *lockedBuffer, sender string) func() {
	tb.Helper()
	return p.startCredentialReplicaWith(tb, logs, func(cfg *Config) { cfg.FirstDayMailSender = sender })
}

// startCredentialReplicaWith is startCredentialReplica with the channel set by configure.
func (p pipeline) startCredentialReplicaWith(tb testing.TB, logs *lockedBuffer, configure func(*Config)) func() {
	tb.Helper()
	cfg := Config{
		NATSURL: p.natsURL, Streams: stream.DefaultConfig(),
		Server:       server.Config{Name: Name, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		GraphBaseURL: p.graphURL, GraphAuth: "none",
	}
	configure(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := svc.Run(ctx); err != nil {
			tb.Errorf("entra-writer: %v", err)
		}
	})
	stop := func() { cancel(); wg.Wait() }
	tb.Cleanup(stop)
	return stop
}

// recordSpans makes the global tracer provider record every span in memory for the test.
func recordSpans(t *testing.T) *tracetest.InMemoryExporter {
	t.Helper()
	exporter := tracetest.NewInMemoryExporter()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	previous := otel.GetTracerProvider()
	otel.SetTracerProvider(provider)
	t.Cleanup(func() {
		otel.SetTracerProvider(previous)
		_ = provider.Shutdown(context.Background())
	})
	return exporter
}

// spansHolding lists the spans whose name, attributes, events or status hold needle.
func spansHolding(exporter *tracetest.InMemoryExporter, needle string) []string {
	var found []string
	for _, span := range exporter.GetSpans() {
		text := fmt.Sprint(span.Name, span.Attributes, span.Events, span.Status, span.Links, span.Resource)
		if strings.Contains(text, needle) {
			found = append(found, span.Name)
		}
	}
	return found
}

// streamsHolding lists the streams with a message whose subject, headers or data hold needle.
func streamsHolding(t *testing.T, js jetstream.JetStream, needle string) []string {
	t.Helper()
	var found []string
	names := js.StreamNames(t.Context())
	for name := range names.Name() {
		s, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
			raw, err := s.GetMsg(t.Context(), seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(raw.Subject+fmt.Sprint(raw.Header)+string(raw.Data), needle) {
				found = append(found, name+" "+raw.Subject)
			}
		}
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return found
}

// newHire is a desired user starting at firstDay whose first-day pass the policy asks for.
func newHire(workerID, principalName, managerWorkerID string, revision uint64, firstDay time.Time) *orgsyncv1.DesiredObject {
	obj := desiredUser(workerID, principalName, managerWorkerID, revision)
	obj.GetUser().FirstDayCredential = &orgsyncv1.FirstDayCredential{FirstDayAt: timestamppb.New(firstDay), LifetimeMinutes: 240, IsUsableOnce: true}
	obj.Cause = &orgsyncv1.Cause{Reason: "lifecycle transition due", HrEventId: "ev-hire-" + workerID}
	return obj
}

// withMail gives a desired user a mail address (its mailbox, in the emulator).
func withMail(obj *orgsyncv1.DesiredObject, mail string) *orgsyncv1.DesiredObject {
	obj.GetUser().Mail = mail
	return obj
}

// TestFirstDayPassReachesOnlyTheManager runs a new hire through entra-writer and msgraph-sdk-go
// against the emulator: on the first day a Temporary Access Pass is created and sent to the
// manager's mailbox, and nowhere else — the writer's log, every span, and every message on every
// stream (RESULTS, AUDIT, DIRECTORY, DEADLETTER) are searched for it. The delivery is audited
// with its channel and the manager's worker id. A hire whose first day is tomorrow gets no pass,
// and a restarted writer applying a later revision of the hire makes no second one.
func TestFirstDayPassReachesOnlyTheManager(t *testing.T) {
	spans := recordSpans(t)
	p := newPipeline(t, emulator.Faults{})
	logs := &lockedBuffer{}
	stop := p.startCredentialReplica(t, logs, senderMailbox)

	now := time.Now()
	firstDay := now.Add(-time.Hour) // the first day began an hour ago
	p.publish(t, []*orgsyncv1.DesiredObject{
		withMail(desiredUser("S1", senderMailbox, "", 1), senderMailbox),
		withMail(desiredUser("M1", "mary.manager@corp.example.test", "", 1), "mary.manager@corp.example.test"),
	})
	p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		return r["entra.user.S1"].GetRevision() == 1 && r["entra.user.M1"].GetRevision() == 1
	})
	p.publish(t, []*orgsyncv1.DesiredObject{
		newHire("E1", "jane.doe@corp.example.test", "M1", 1, firstDay),
		newHire("E2", "tom.tomorrow@corp.example.test", "M1", 1, now.Add(24*time.Hour)),
	})
	results := p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		return r["entra.user.E1"].GetRevision() == 1 && r["entra.user.E2"].GetRevision() == 1
	})

	hire, ok := p.emulator.UserByEmployeeID("E1")
	if !ok {
		t.Fatal("no account for E1")
	}
	pass, ok := p.emulator.AccessPass(hire.ID())
	if !ok {
		t.Fatalf("no Temporary Access Pass for the new hire; result: %v", results["entra.user.E1"])
	}
	if pass.LifetimeInMinutes != 240 || !pass.IsUsableOnce {
		t.Errorf("the pass lasts %d minutes, usable once %v; want 240, true", pass.LifetimeInMinutes, pass.IsUsableOnce)
	}
	if got, want := results["entra.user.E1"].GetOperations(), []string{"user.create", "manager.set", writer.OpCreateAccessPass, writer.OpDeliverToManager}; !slices.Equal(got, want) {
		t.Errorf("the hire's result: operations %v, want %v", got, want)
	}

	mail := p.emulator.SentMail()
	if len(mail) != 1 {
		t.Fatalf("%d messages sent, want 1 (to the manager): %+v", len(mail), mail)
	}
	if got := mail[0]; !slices.Equal(got.ToRecipients, []string{"mary.manager@corp.example.test"}) || len(got.CcRecipients)+len(got.BccRecipients) != 0 ||
		got.SenderPrincipalName != senderMailbox || got.SaveToSentItems || !strings.Contains(got.Body, pass.Secret) {
		t.Errorf("the message: to %v, cc %v, bcc %v, from %s, kept in Sent Items %v, holds the pass %v; want only the manager, from %s, not kept, holding it",
			got.ToRecipients, got.CcRecipients, got.BccRecipients, got.SenderPrincipalName, got.SaveToSentItems, strings.Contains(got.Body, pass.Secret), senderMailbox)
	}
	if tomorrow, ok := p.emulator.UserByEmployeeID("E2"); !ok {
		t.Error("no account for E2")
	} else if _, made := p.emulator.AccessPass(tomorrow.ID()); made {
		t.Error("a pass was made for a hire whose first day is tomorrow")
	}

	// The delivery is audited: channel and recipient, never the pass.
	var deliveries []*orgsyncv1.WriterResult
	for _, record := range streamtest.AuditRecords(t, p.js, "audit.entra.user.E1") {
		if slices.Contains(record.GetOperations(), writer.OpDeliverToManager) {
			deliveries = append(deliveries, record)
		}
	}
	if len(deliveries) != 1 {
		t.Fatalf("%d audit records of a delivery, want 1", len(deliveries))
	}
	delivery := deliveries[0].GetCredentialDelivery()
	if delivery.GetChannel() != orgsyncv1.CredentialChannel_CREDENTIAL_CHANNEL_MANAGER_MAILBOX || delivery.GetRecipientWorkerId() != "M1" ||
		delivery.GetChannelName() != senderMailbox || !delivery.GetFirstDayAt().AsTime().Equal(firstDay) || deliveries[0].GetCause().GetHrEventId() != "ev-hire-E1" {
		t.Errorf("the delivery's audit record: %v", prototext.Format(deliveries[0]))
	}

	// A restart, and a later revision of the hire: no second pass, no second message.
	stop()
	p.startCredentialReplica(t, logs, senderMailbox)
	later := newHire("E1", "jane.doe@corp.example.test", "M1", 2, firstDay)
	later.GetUser().JobTitle = "Engineer"
	p.publish(t, []*orgsyncv1.DesiredObject{later})
	results = p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool { return r["entra.user.E1"].GetRevision() == 2 })
	if got := results["entra.user.E1"].GetOperations(); slices.Contains(got, writer.OpCreateAccessPass) {
		t.Errorf("the restarted writer made a second pass: %v", got)
	}
	if !results["entra.user.E1"].GetCredentialDelivery().GetFirstDayAt().AsTime().Equal(firstDay) {
		t.Errorf("the result after the restart does not carry the delivery on: %v", results["entra.user.E1"].GetCredentialDelivery())
	}
	if got := p.emulator.Stats().Operations[emulator.OpAccessPassCreate]; got != 1 {
		t.Errorf("%d pass creations, want 1", got)
	}
	if got := len(p.emulator.SentMail()); got != 1 {
		t.Errorf("%d messages sent, want 1", got)
	}

	// Nowhere else: not in the log, not in a span, not on any stream.
	if strings.Contains(logs.String(), pass.Secret) {
		t.Errorf("the writer's log holds the pass")
	}
	if !strings.Contains(logs.String(), "first-day Temporary Access Pass delivered") {
		t.Errorf("the writer's log does not report the delivery (was the log captured?)")
	}
	if found := spansHolding(spans, pass.Secret); len(found) > 0 {
		t.Errorf("spans hold the pass: %v", found)
	}
	if len(spans.GetSpans()) == 0 {
		t.Errorf("no span recorded: the search for the pass in spans proves nothing")
	}
	if found := streamsHolding(t, p.js, pass.Secret); len(found) > 0 {
		t.Errorf("stream messages hold the pass: %v", found)
	}
	if found := streamsHolding(t, p.js, "ev-hire-E1"); len(found) == 0 {
		t.Errorf("no stream message holds the hire's event id: the search of the streams proves nothing")
	}
}

// TestUndeliverableFirstDayPassIsDeletedAndReportedOnce: a sender without a mailbox (Graph's 404
// MailboxNotEnabledForRESTAPI, a configuration error) fails the hire's desired state once, with
// Graph's code, and the pass made for it is deleted — no usable pass that nobody received.
func TestUndeliverableFirstDayPassIsDeletedAndReportedOnce(t *testing.T) {
	p := newPipeline(t, emulator.Faults{})
	logs := &lockedBuffer{}
	p.startCredentialReplica(t, logs, "no.mailbox@corp.example.test")
	p.publish(t, []*orgsyncv1.DesiredObject{
		desiredUser("S1", "no.mailbox@corp.example.test", "", 1),
		withMail(desiredUser("M1", "mary.manager@corp.example.test", "", 1), "mary.manager@corp.example.test"),
	})
	p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		return r["entra.user.S1"].GetRevision() == 1 && r["entra.user.M1"].GetRevision() == 1
	})
	p.publish(t, []*orgsyncv1.DesiredObject{newHire("E1", "jane.doe@corp.example.test", "M1", 1, time.Now().Add(-time.Minute))})
	results := p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		return r["entra.user.E1"].GetOutcome() == orgsyncv1.Outcome_OUTCOME_FAILED
	})
	if got := results["entra.user.E1"]; got.GetErrorClass() != orgsyncv1.ErrorClass_ERROR_CLASS_INVALID || got.GetErrorCode() != "MailboxNotEnabledForRESTAPI" {
		t.Errorf("the hire's result: class %v, code %q; want INVALID, MailboxNotEnabledForRESTAPI", got.GetErrorClass(), got.GetErrorCode())
	}
	hire, ok := p.emulator.UserByEmployeeID("E1")
	if !ok {
		t.Fatal("no account for E1")
	}
	if _, left := p.emulator.AccessPass(hire.ID()); left {
		t.Error("the undelivered pass was left on the account")
	}
	time.Sleep(2 * time.Second) // a retry, if there were one, would make another pass
	if got := p.emulator.Stats().Operations[emulator.OpAccessPassCreate]; got != 1 {
		t.Errorf("%d pass creations, want 1 (the failure is reported once, not retried)", got)
	}
	if got := p.emulator.Stats().Operations[emulator.OpAccessPassDelete]; got != 1 {
		t.Errorf("%d pass deletions, want 1", got)
	}
	if len(p.emulator.SentMail()) != 0 {
		t.Errorf("a message was sent: %+v", p.emulator.SentMail())
	}
}

// ticketing is a ticketing system's webhook endpoint: it keeps the requests that verify with the
// Standard Webhooks library and counts those that do not.
type ticketing struct {
	mu       sync.Mutex
	verifier *standardwebhooks.Webhook
	passes   []string
	refused  int
}

func (e *ticketing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.verifier.Verify(body, r.Header); err != nil {
		e.refused++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var event struct {
		Data struct {
			TemporaryAccessPass string `json:"temporary_access_pass"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &event)
	e.passes = append(e.passes, event.Data.TemporaryAccessPass)
	w.WriteHeader(http.StatusNoContent)
}

func (e *ticketing) received() (passes []string, refused int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.passes), e.refused
}

// TestFirstDayPassToASignedWebhook: with a webhook configured instead of a mailbox, the pass goes
// to the ticketing system in a request signed like Standard Webhooks, no mail is sent, and the
// delivery is audited with the webhook's name — the pass in no log, span or stream.
func TestFirstDayPassToASignedWebhook(t *testing.T) {
	spans := recordSpans(t)
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("ticketing shared key, 32 bytes!!"))
	verifier, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := &ticketing{verifier: verifier}
	receiver := httptest.NewServer(endpoint)
	t.Cleanup(receiver.Close)

	p := newPipeline(t, emulator.Faults{})
	logs := &lockedBuffer{}
	p.startCredentialReplicaWith(t, logs, func(cfg *Config) {
		cfg.FirstDayWebhookURL, cfg.FirstDayWebhookSecret, cfg.FirstDayWebhookName = receiver.URL, secret, "servicedesk"
	})
	p.publish(t, []*orgsyncv1.DesiredObject{newHire("E1", "jane.doe@corp.example.test", "", 1, time.Now().Add(-time.Hour))})
	results := p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool { return r["entra.user.E1"].GetRevision() == 1 })
	if got, want := results["entra.user.E1"].GetOperations(), []string{"user.create", writer.OpCreateAccessPass, writer.OpDeliverToWebhook}; !slices.Equal(got, want) {
		t.Errorf("operations %v, want %v", got, want)
	}
	hire, _ := p.emulator.UserByEmployeeID("E1")
	pass, ok := p.emulator.AccessPass(hire.ID())
	if !ok {
		t.Fatal("no pass for the new hire")
	}
	passes, refused := endpoint.received()
	if !slices.Equal(passes, []string{pass.Secret}) || refused != 0 {
		t.Errorf("the ticketing system received %d verified requests (the pass in them: %v) and refused %d; want the pass once, signed",
			len(passes), slices.Contains(passes, pass.Secret), refused)
	}
	if mail := p.emulator.SentMail(); len(mail) != 0 {
		t.Errorf("%d messages sent, want none", len(mail))
	}
	delivery := results["entra.user.E1"].GetCredentialDelivery()
	if delivery.GetChannel() != orgsyncv1.CredentialChannel_CREDENTIAL_CHANNEL_WEBHOOK || delivery.GetChannelName() != "servicedesk" {
		t.Errorf("delivery %v, want the webhook servicedesk", delivery)
	}
	if strings.Contains(logs.String(), pass.Secret) {
		t.Errorf("the writer's log holds the pass")
	}
	if found := spansHolding(spans, pass.Secret); len(found) > 0 {
		t.Errorf("spans hold the pass: %v", found)
	}
	if found := streamsHolding(t, p.js, pass.Secret); len(found) > 0 {
		t.Errorf("stream messages hold the pass: %v", found)
	}
}
