package stack_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/orgsync/orgsync/deploy/local/stack"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/telemetry"
)

// otlpReceiver is an OTLP trace collector: the real gRPC service an OpenTelemetry Collector
// serves, keeping every span it is sent.
type otlpReceiver struct {
	collectortracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (r *otlpReceiver) Export(_ context.Context, req *collectortracepb.ExportTraceServiceRequest) (*collectortracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, resourceSpans := range req.GetResourceSpans() {
		for _, scopeSpans := range resourceSpans.GetScopeSpans() {
			r.spans = append(r.spans, scopeSpans.GetSpans()...)
		}
	}
	return &collectortracepb.ExportTraceServiceResponse{}, nil
}

func (r *otlpReceiver) received() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// startOTLPReceiver serves an otlpReceiver on a free loopback port and points the standard OTEL_*
// variables at it, then sets telemetry up exactly as a service does (telemetry.Setup).
func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	receiver := &otlpReceiver{}
	srv := grpc.NewServer()
	collectortracepb.RegisterTraceServiceServer(srv, receiver)
	go func() { _ = srv.Serve(listener) }()
	t.Cleanup(srv.Stop)

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+listener.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	t.Setenv("ORGSYNC_TELEMETRY_PII", "")
	shutdown, err := telemetry.Setup(t.Context(), "orgsync-e2e", "test", os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	return receiver
}

// syncBuffer collects the services' log lines from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Two hires of named people into one unit, their changes queued on DIRECTORY while entra-writer
// is held, so that the writer adds both memberships with one bind request.
var (
	hireZephyrine = event("worker.created", map[string]any{
		"workerId": "E1001", "name": map[string]any{"givenName": "Zephyrine", "familyName": "Quillfeather"},
		"workEmail": "zephyrine.quillfeather@corp.example.com", "jobTitle": "Account Executive", "orgUnitId": "sales",
		"employmentType": "employee", "hireDate": "2026-03-01", "startDate": "2026-03-01",
	})
	hireBartholomew = event("worker.created", map[string]any{
		"workerId": "E1002", "name": map[string]any{"givenName": "Bartholomew", "familyName": "Oakenshield"},
		"workEmail": "bartholomew.oakenshield@corp.example.com", "jobTitle": "Sales Engineer", "orgUnitId": "sales",
		"employmentType": "employee", "hireDate": "2026-03-01", "startDate": "2026-03-01",
	})
	// personalData is what the two hires say about the people; none of it may be exported.
	personalData = []string{"zephyrine", "quillfeather", "bartholomew", "oakenshield"}
)

// TestHireTraceReachesGraphThroughOTLP follows a hire from the HR system's request to the Graph
// calls in the spans an OTLP collector receives: one trace from hr-ingest's HTTP server span
// through the JetStream publish, org-model's processing and each desired-object publish to the
// writer's processing and the Graph client span; the bind request serving both hires links to
// each hire's membership message. No exported span and no log line holds personal data.
func TestHireTraceReachesGraphThroughOTLP(t *testing.T) {
	receiver := startOTLPReceiver(t)
	logs := &syncBuffer{}
	hold := make(chan struct{})
	released := false
	ctx, cancel := context.WithCancel(t.Context())
	s, err := stack.Start(ctx, stack.Options{StoreDir: t.TempDir(), HoldWriter: hold, LogWriter: logs, LogLevel: -4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !released {
			close(hold)
		}
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("stack: %v", err)
		}
	})
	client := &http.Client{Transport: otelHTTPTransport(), Timeout: 10 * time.Second}
	post := func(ctx context.Context, id string, body []byte) {
		t.Helper()
		resp, respBody, err := stack.Post(ctx, client, s.WebhookURL(), id, body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook %s: %d %s", id, resp.StatusCode, respBody)
		}
	}
	post(ctx, "unit-commercial", event("org_unit.created", map[string]any{"orgUnitId": "commercial", "name": "Commercial"}))
	post(ctx, "unit-sales", event("org_unit.created", map[string]any{"orgUnitId": "sales", "name": "Sales", "parentOrgUnitId": "commercial"}))

	tracer := otel.Tracer("e2e")
	var roots [2][]byte
	for i, hire := range [][]byte{hireZephyrine, hireBartholomew} {
		hireCtx, span := tracer.Start(ctx, "HR system sends hire")
		post(hireCtx, fmt.Sprintf("msg_hire_%d", i), hire)
		span.End()
		id := span.SpanContext().SpanID()
		roots[i] = id[:]
	}
	// Both memberships wait on DIRECTORY before the writer starts.
	eventually(t, func() bool {
		return directorySubjects(t, s, "dir.entra.member.*.E1001") == 1 && directorySubjects(t, s, "dir.entra.member.*.E1002") == 1
	})
	close(hold)
	released = true

	var lastProblem error
	deadline := time.Now().Add(30 * time.Second)
	for {
		if lastProblem = checkHireTree(receiver.received(), roots); lastProblem == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("span tree: %v\nspans received:\n%s", lastProblem, describe(receiver.received()))
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Run("metrics are scrapeable as Prometheus text", func(t *testing.T) {
		resp, err := http.Get("http://" + s.HRIngest.HTTPAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, want := range []string{
			`orgsync_hr_events_total{orgsync_outcome="accepted",orgsync_source="local"} 4`,
			`orgsync_stream_consumer_lag{messaging_consumer_group_name="entra-writer",messaging_destination_name="DIRECTORY"}`,
			`orgsync_guard_pending 0`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %q:\n%s", want, body)
			}
		}
	})
	t.Run("no personal data in spans", func(t *testing.T) {
		for _, span := range receiver.received() {
			text := strings.ToLower(spanText(span))
			for _, personal := range personalData {
				if strings.Contains(text, personal) {
					t.Errorf("span %q holds %q:\n%s", span.GetName(), personal, spanText(span))
				}
			}
		}
	})
	t.Run("no personal data in logs", func(t *testing.T) {
		lines := logs.String()
		if !strings.Contains(lines, `"trace_id"`) {
			t.Fatalf("no log line with a trace id was written; the check would prove nothing:\n%s", lines)
		}
		for _, line := range strings.Split(lines, "\n") {
			for _, personal := range personalData {
				if strings.Contains(strings.ToLower(line), personal) {
					t.Errorf("log line holds %q: %s", personal, line)
				}
			}
		}
	})
}

// spanTree indexes received spans by span id.
type spanTree struct {
	spans []*tracepb.Span
	byID  map[string]*tracepb.Span
}

func newSpanTree(spans []*tracepb.Span) spanTree {
	tree := spanTree{spans: spans, byID: map[string]*tracepb.Span{}}
	for _, span := range spans {
		tree.byID[string(span.GetSpanId())] = span
	}
	return tree
}

// descends reports whether span is below ancestor in ancestor's trace.
func (t spanTree) descends(span, ancestor *tracepb.Span) bool {
	for parent := t.byID[string(span.GetParentSpanId())]; parent != nil; parent = t.byID[string(parent.GetParentSpanId())] {
		if parent == ancestor {
			return true
		}
	}
	return false
}

// below finds every span named name (any name when empty) of kind below ancestor.
func (t spanTree) below(ancestor *tracepb.Span, name string, kind tracepb.Span_SpanKind) []*tracepb.Span {
	var found []*tracepb.Span
	for _, span := range t.spans {
		if (name == "" || span.GetName() == name) && span.GetKind() == kind && t.descends(span, ancestor) {
			found = append(found, span)
		}
	}
	return found
}

// child finds the span named name of kind whose parent is parent.
func (t spanTree) child(parent *tracepb.Span, name string, kind tracepb.Span_SpanKind) *tracepb.Span {
	for _, span := range t.spans {
		if span.GetName() == name && span.GetKind() == kind && bytes.Equal(span.GetParentSpanId(), parent.GetSpanId()) {
			return span
		}
	}
	return nil
}

// step finds one span below ancestor whose string attribute key has value (any value when empty).
func (t spanTree) step(ancestor *tracepb.Span, name string, kind tracepb.Span_SpanKind, key, value string) (*tracepb.Span, error) {
	for _, span := range t.below(ancestor, name, kind) {
		if key == "" || attr(span, key) == value {
			return span, nil
		}
	}
	return nil, fmt.Errorf("no %s span %q with %s=%q below %q", kind, name, key, value, ancestor.GetName())
}

func linksTo(span, target *tracepb.Span) bool {
	for _, link := range span.GetLinks() {
		if bytes.Equal(link.GetSpanId(), target.GetSpanId()) && bytes.Equal(link.GetTraceId(), target.GetTraceId()) {
			return true
		}
	}
	return false
}

func attr(span *tracepb.Span, key string) string {
	for _, kv := range span.GetAttributes() {
		if kv.GetKey() == key {
			return anyValue(kv.GetValue())
		}
	}
	return ""
}

func anyValue(v *commonpb.AnyValue) string {
	switch value := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return value.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(value.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(value.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(value.DoubleValue)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, item := range value.ArrayValue.GetValues() {
			parts = append(parts, anyValue(item))
		}
		return strings.Join(parts, ",")
	default:
		return v.String()
	}
}

// checkHireTree checks the span tree of both hires: for each, the chain from the HR system's
// request to the Graph create of the user, and the membership message; then the one bind
// request that added both members, linked to both membership messages.
func checkHireTree(spans []*tracepb.Span, roots [2][]byte) error {
	tree := newSpanTree(spans)
	var memberSends [2]*tracepb.Span
	for i, rootID := range roots {
		workerID := fmt.Sprintf("E100%d", i+1)
		root := tree.byID[string(rootID)]
		if root == nil {
			return fmt.Errorf("hire %s: the test's root span was not received", workerID)
		}
		httpClient, err := tree.step(root, "", tracepb.Span_SPAN_KIND_CLIENT, "http.request.method", "POST")
		if err != nil {
			return err
		}
		webhook := tree.child(httpClient, "POST /v1/sources/{source}/events", tracepb.Span_SPAN_KIND_SERVER)
		if webhook == nil {
			return fmt.Errorf("hire %s: no hr-ingest server span under the HR system's request", workerID)
		}
		sendHR, err := tree.step(webhook, "send hr.local.worker", tracepb.Span_SPAN_KIND_PRODUCER, "messaging.destination.name", "hr.local.worker."+workerID)
		if err != nil {
			return err
		}
		if attr(sendHR, "messaging.system") != "nats" || attr(sendHR, "messaging.operation.type") != "send" {
			return fmt.Errorf("hire %s: publish span lacks messaging attributes: %v", workerID, sendHR.GetAttributes())
		}
		processHR := tree.child(sendHR, "process hr.local.worker", tracepb.Span_SPAN_KIND_CONSUMER)
		if processHR == nil || !linksTo(processHR, sendHR) {
			return fmt.Errorf("hire %s: no org-model consumer span child of and linked to the HR publish", workerID)
		}
		if attr(processHR, "orgsync.worker_id") != workerID || attr(processHR, "orgsync.hr.event_id") != fmt.Sprintf("msg_hire_%d", i) {
			return fmt.Errorf("hire %s: org-model span lacks the worker and event ids: %v", workerID, processHR.GetAttributes())
		}
		sendUser, err := tree.step(processHR, "send dir.entra.user", tracepb.Span_SPAN_KIND_PRODUCER, "messaging.destination.name", "dir.entra.user."+workerID)
		if err != nil {
			return err
		}
		processUser := tree.child(sendUser, "process dir.entra.user", tracepb.Span_SPAN_KIND_CONSUMER)
		if processUser == nil || !linksTo(processUser, sendUser) {
			return fmt.Errorf("hire %s: no entra-writer consumer span child of and linked to the user's publish", workerID)
		}
		if processUser.GetAttributes() == nil || attr(processUser, "messaging.consumer.group.name") != "entra-writer" {
			return fmt.Errorf("hire %s: writer span lacks messaging.consumer.group.name: %v", workerID, processUser.GetAttributes())
		}
		create, err := tree.step(processUser, "graph POST", tracepb.Span_SPAN_KIND_CLIENT, "http.response.status_code", "201")
		if err != nil {
			return fmt.Errorf("hire %s: the user's create: %w", workerID, err)
		}
		if _, err := tree.step(create, "graph-emulator POST", tracepb.Span_SPAN_KIND_SERVER, "", ""); err != nil {
			return err
		}
		if memberSends[i], err = tree.step(processHR, "send dir.entra.member", tracepb.Span_SPAN_KIND_PRODUCER, "", ""); err != nil {
			return err
		}
	}
	for _, span := range spans {
		if span.GetName() != "bind members" || !linksTo(span, memberSends[0]) || !linksTo(span, memberSends[1]) {
			continue
		}
		patch, err := tree.step(span, "graph PATCH", tracepb.Span_SPAN_KIND_CLIENT, "http.request.method", "PATCH")
		if err != nil {
			return fmt.Errorf("the batched bind: %w", err)
		}
		if attr(patch, "http.response.status_code") != "204" {
			return fmt.Errorf("the batched bind answered %s", attr(patch, "http.response.status_code"))
		}
		return nil
	}
	return errors.New(`no "bind members" span linked to both hires' membership messages`)
}

// spanText is everything a span exports as text: name, attributes, events, status, links.
func spanText(span *tracepb.Span) string {
	var b strings.Builder
	b.WriteString(span.GetName())
	for _, kv := range span.GetAttributes() {
		fmt.Fprintf(&b, "\n%s=%s", kv.GetKey(), anyValue(kv.GetValue()))
	}
	for _, event := range span.GetEvents() {
		fmt.Fprintf(&b, "\nevent %s", event.GetName())
		for _, kv := range event.GetAttributes() {
			fmt.Fprintf(&b, "\n  %s=%s", kv.GetKey(), anyValue(kv.GetValue()))
		}
	}
	for _, link := range span.GetLinks() {
		for _, kv := range link.GetAttributes() {
			fmt.Fprintf(&b, "\nlink %s=%s", kv.GetKey(), anyValue(kv.GetValue()))
		}
	}
	fmt.Fprintf(&b, "\nstatus %s", span.GetStatus().GetMessage())
	return b.String()
}

func describe(spans []*tracepb.Span) string {
	var lines []string
	for _, span := range spans {
		lines = append(lines, fmt.Sprintf("%s %s span=%s parent=%s %s links=%d",
			hex.EncodeToString(span.GetTraceId())[:8], span.GetKind(), hex.EncodeToString(span.GetSpanId()),
			hex.EncodeToString(span.GetParentSpanId()), span.GetName(), len(span.GetLinks())))
	}
	return strings.Join(lines, "\n")
}

// directorySubjects counts the DIRECTORY subjects matching filter.
func directorySubjects(t *testing.T, s *stack.Stack, filter string) int {
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
	str, err := js.Stream(t.Context(), stream.Directory)
	if err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(t.Context(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	return len(info.State.Subjects)
}
