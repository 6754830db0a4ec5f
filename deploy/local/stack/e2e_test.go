package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/orgsync/orgsync/deploy/local/stack"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

func event(typ string, data map[string]any) []byte {
	body, err := json.Marshal(map[string]any{"type": typ, "timestamp": "2026-02-20T09:00:00Z", "data": data})
	if err != nil {
		panic(err)
	}
	return body
}

var hire = event("worker.created", map[string]any{
	"workerId": "E1001", "name": map[string]any{"givenName": "Jane", "familyName": "Doe"},
	"jobTitle": "Account Executive", "orgUnitId": "sales", "employmentType": "employee",
	"hireDate": "2026-03-01", "startDate": "2026-03-01",
})

func TestHireFlowsFromWebhookToEntraGroup(t *testing.T) {
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	ctx, cancel := context.WithCancel(t.Context())
	s, err := stack.Start(ctx, stack.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("stack: %v", err)
		}
	})
	client := &http.Client{Transport: otelHTTPTransport(), Timeout: 10 * time.Second}
	post := func(ctx context.Context, id string, body []byte) (int, string) {
		t.Helper()
		resp, respBody, err := stack.Post(ctx, client, s.WebhookURL(), id, body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(respBody)
	}

	for i, unit := range []map[string]any{
		{"orgUnitId": "commercial", "name": "Commercial"},
		{"orgUnitId": "sales", "name": "Sales", "parentOrgUnitId": "commercial"},
	} {
		if code, body := post(ctx, "unit-"+string(rune('a'+i)), event("org_unit.created", unit)); code != http.StatusAccepted {
			t.Fatalf("unit webhook: %d %s", code, body)
		}
	}

	// The hire is posted within a span of the test, whose trace must reach the Graph call.
	hireCtx, hireSpan := tp.Tracer("e2e").Start(ctx, "HR system sends hire")
	code, body := post(hireCtx, "msg_hire_1", hire)
	hireSpan.End()
	if code != http.StatusAccepted {
		t.Fatalf("hire webhook: %d %s", code, body)
	}
	traceID := hireSpan.SpanContext().TraceID()

	var userID, groupID string
	eventually(t, func() bool {
		user, ok := s.Emulator.UserByEmployeeID("E1001")
		group, groupOK := s.Emulator.GroupByMailNickname("orgsync-unit-sales")
		if !ok || !groupOK {
			return false
		}
		userID, groupID = user["id"].(string), group["id"].(string)
		return contains(s.Emulator.Members(groupID), userID)
	})
	user, _ := s.Emulator.UserByEmployeeID("E1001")
	group, _ := s.Emulator.GroupByMailNickname("orgsync-unit-sales")
	for prop, want := range map[string]any{
		"displayName": "Jane Doe", "userPrincipalName": "jane.doe@corp.example.com", "accountEnabled": true,
		"jobTitle": "Account Executive", "department": "Sales", "employeeType": "Employee",
	} {
		if got := user[prop]; got != want {
			t.Errorf("user %s = %v, want %v", prop, got, want)
		}
	}
	for prop, want := range map[string]any{"displayName": "Org - Sales", "securityEnabled": true, "mailEnabled": false} {
		if got := group[prop]; got != want {
			t.Errorf("group %s = %v, want %v", prop, got, want)
		}
	}

	// One trace spans the webhook, org-model and the Graph call that created the user.
	spans := exporter.GetSpans().Snapshots()
	for _, want := range []struct{ what, name string }{
		{"hr-ingest webhook", "POST /v1/sources/{source}/events"},
		{"hr-ingest publish to HR", "send hr.local.worker"},
		{"org-model processing", "process hr.local.worker"},
		{"org-model publish to DIRECTORY", "send dir.entra.user"},
		{"entra-writer processing", "process dir.entra.user"},
		{"Graph call", "graph POST"},
		{"emulator", "graph-emulator POST"},
	} {
		if !hasSpan(spans, traceID, want.name) {
			t.Errorf("no %s span %q in the hire's trace %s; spans: %s", want.what, want.name, traceID, names(spans, traceID))
		}
	}

	// The same delivery again is stored once and changes nothing in the directory.
	hrBefore := streamMsgs(t, s, stream.HR)
	writesBefore := s.Emulator.Stats().WriteRequests
	code, body = post(ctx, "msg_hire_1", hire)
	if code != http.StatusAccepted || !strings.Contains(body, `"duplicates":1`) {
		t.Errorf("redelivery: %d %s", code, body)
	}
	// A bad signature is refused and nothing is published.
	code, body = postRaw(t, client, s.WebhookURL(), hire, func(h http.Header) { h.Set("webhook-signature", "v1,Zm9yZ2Vk") })
	if code != http.StatusUnauthorized {
		t.Errorf("bad signature: %d %s", code, body)
	}
	// Invalid JSON gets a 400 naming the problem.
	code, body = post(ctx, "msg_bad_json", []byte(`{"type": "worker.created", "data": {"workerId": "E1002",`))
	if code != http.StatusBadRequest || !strings.Contains(body, "body is not valid JSON: unexpected EOF") {
		t.Errorf("invalid JSON: %d %s", code, body)
	}
	if got := streamMsgs(t, s, stream.HR); got != hrBefore {
		t.Errorf("HR stream has %d messages, had %d: a refused or repeated request was published", got, hrBefore)
	}
	// Let anything the redelivery might have caused reach the writer before comparing.
	time.Sleep(500 * time.Millisecond)
	if got := s.Emulator.Stats().WriteRequests; got != writesBefore {
		t.Errorf("Graph writes went from %d to %d after a repeated delivery", writesBefore, got)
	}
	if members := s.Emulator.Members(groupID); len(members) != 1 {
		t.Errorf("Sales group members = %v", members)
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contains(list []string, want string) bool {
	for _, v := range list {
		if v == want {
			return true
		}
	}
	return false
}

func hasSpan(spans []sdktrace.ReadOnlySpan, traceID trace.TraceID, name string) bool {
	for _, s := range spans {
		if s.SpanContext().TraceID() == traceID && s.Name() == name {
			return true
		}
	}
	return false
}

func names(spans []sdktrace.ReadOnlySpan, traceID trace.TraceID) string {
	var out []string
	for _, s := range spans {
		if s.SpanContext().TraceID() == traceID {
			out = append(out, s.Name())
		}
	}
	return strings.Join(out, ", ")
}

func streamMsgs(t *testing.T, s *stack.Stack, name string) uint64 {
	t.Helper()
	nc, err := nats.Connect(s.NATS.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	str, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return str.CachedInfo().State.Msgs
}

func otelHTTPTransport() http.RoundTripper { return otelhttp.NewTransport(http.DefaultTransport) }

// postRaw signs body as a webhook, lets mutate tamper with the headers, and posts it.
func postRaw(t *testing.T, client *http.Client, url string, body []byte, mutate func(http.Header)) (int, string) {
	t.Helper()
	secret, err := webhook.ParseSecret(stack.DevSecret)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	webhook.SetHeaders(req.Header, secret, "msg_forged", time.Now(), body)
	mutate(req.Header)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(respBody)
}
