package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/ratelimit"
	"github.com/orgsync/orgsync/pkg/redistest"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/bamboohr"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/problem"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/scim"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/snapshot"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

const hire = `{"type":"worker.created","data":{"workerId":"E1001","name":{"givenName":"Jane","familyName":"Doe"},"orgUnitId":"sales"}}`

const (
	scimToken   = "scim-token-0123456789abcdef"
	exportToken = "export-token-0123456789abcdef"
	// payrollToken is the token of a second csv source.
	payrollToken = "payroll-token-0123456789abcdef"
	// limitedSCIMToken is the token of a scim source allowed one request an hour.
	limitedSCIMToken = "limited-scim-token-0123456789abcdef"
	entraPath        = "/servicePrincipals/5b8c3f2e-7e4c-4c1a-9a0b-2c8d1e0f4a6b/synchronization/jobs/API2AAD.e1f2/bulkUpload"
)

var (
	secret, _     = webhook.ParseSecret("whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NQ==")
	nextSecret, _ = webhook.ParseSecret("whsec_bmV4dC1zZWNyZXQtZm9yLXRlc3RzLTAxMjM0NQ==")
	bambooKey     = []byte("bamboo-private-key-0123456789")
	now           = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

type fixture struct {
	handler http.Handler
	js      jetstream.JetStream
	locks   *JetStreamSnapshotLocks
}

// testSources configures one source of every kind, plus rate-limited ones. Signatures are
// checked against Options.Now (the tests' fixed clock, now).
func testSources() []source.Config {
	secrets := []webhook.Secret{secret, nextSecret}
	return []source.Config{
		{Name: "workday", Secrets: secrets},
		{Name: "limited", Secrets: secrets, RateRequests: 1, RatePeriod: time.Hour},
		{Name: "bamboo", Kind: source.KindBambooHR, Keys: [][]byte{bambooKey}},
		{Name: "entra", Kind: source.KindSCIM, Tokens: []string{scimToken}},
		{Name: "limited-scim", Kind: source.KindSCIM, Tokens: []string{limitedSCIMToken}, RateRequests: 1, RatePeriod: time.Hour},
		{Name: "export", Kind: source.KindCSV, Tokens: []string{exportToken}, MaxBodyBytes: 1 << 20, CSVColumns: exportMapping},
		{Name: "payroll", Kind: source.KindCSV, Tokens: []string{payrollToken}, CSVColumns: exportMapping},
	}
}

// newHandler is NewHandler failing the test on a configuration error.
func newHandler(t testing.TB, configs []source.Config, publisher Publisher, opts Options) *Handler {
	t.Helper()
	h, err := NewHandler(configs, publisher, opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// exportMapping is the csv sources' column mapping.
var exportMapping = snapshot.Mapping{
	"workerId": "Employee ID", "givenName": "First Name", "familyName": "Last Name", "workEmail": "Email",
	"jobTitle": "Title", "orgUnitId": "Unit", "managerWorkerId": "Manager", "startDate": "Start Date",
	"endDate": "End Date", "phoneNumber": "Phone", "employmentType": "Type",
}

func newMux(h *Handler) *http.ServeMux {
	mux := http.NewServeMux()
	for pattern, route := range h.Routes() {
		mux.Handle(pattern, route)
	}
	return mux
}

func newFixture(t *testing.T, publisher func(jetstream.JetStream) Publisher, limiter Limiter) fixture {
	t.Helper()
	if limiter == nil {
		limiter = ratelimit.New(nil, "", slog.New(slog.DiscardHandler))
	}
	return newFixtureWith(t, publisher, Options{MaxBodyBytes: 4096, Now: func() time.Time { return now }, Limiter: limiter})
}

// newFixtureWith serves configs (testSources when none) with opts over a fresh embedded
// JetStream; opts.History is set to read it.
func newFixtureWith(t *testing.T, publisher func(jetstream.JetStream) Publisher, opts Options, configs ...source.Config) fixture {
	t.Helper()
	srv := streamtest.Start(t)
	js := srv.JS
	opts.History = NewJetStreamHistory(js)
	if opts.Notifier == nil {
		if _, err := notify.EnsureStream(t.Context(), js, 1); err != nil {
			t.Fatal(err)
		}
		opts.Notifier = notify.NewStore(js)
	}
	locks, err := NewJetStreamSnapshotLocks(t.Context(), js, time.Minute, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	opts.SnapshotLocks = locks
	if configs == nil {
		configs = testSources()
	}
	h := newHandler(t, configs, publisher(js), opts)
	return fixture{handler: newMux(h), js: js, locks: locks}
}

func realPublisher(js jetstream.JetStream) Publisher { return stream.NewPublisher(js) }

// request builds a request to path with body and content type; mutate signs or spoils it.
func request(method, path, contentType, body string, mutate func(*http.Request)) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if mutate != nil {
		mutate(req)
	}
	return req
}

func (f fixture) do(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec
}

// signed signs a canonical request with secret s under webhook id id.
func signed(s webhook.Secret, id string, at time.Time) func(*http.Request) {
	return func(r *http.Request) {
		body, _ := readBody(r)
		webhook.SetHeaders(r.Header, s, id, at, body)
	}
}

func bambooSigned(key []byte, timestamp string) func(*http.Request) {
	return func(r *http.Request) {
		body, _ := readBody(r)
		r.Header.Set(bamboohr.HeaderTimestamp, timestamp)
		r.Header.Set(bamboohr.HeaderSignature, bamboohr.Sign(key, body, timestamp))
	}
}

func bearerToken(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

// readBody reads a request's body and puts it back.
func readBody(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return nil, err
	}
	r.Body = httpBody(buf.Bytes())
	return buf.Bytes(), nil
}

func httpBody(b []byte) *readCloser { return &readCloser{Reader: bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func (f fixture) post(t *testing.T, source, id, body string, mutate func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	req := request(http.MethodPost, "/v1/sources/"+source+"/events", "application/json", body, signed(secret, id, now))
	if mutate != nil {
		mutate(req)
	}
	return f.do(t, req)
}

func (f fixture) storedEvents(t *testing.T) []*orgsyncv1.HREvent { return streamtest.HREvents(t, f.js) }

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("%v in %s", err, rec.Body)
	}
	return v
}

func TestAcceptedOnceAfterAck(t *testing.T) {
	f := newFixture(t, realPublisher, nil)
	first := f.post(t, "workday", "msg_1", hire, nil)
	if first.Code != http.StatusAccepted {
		t.Fatalf("status = %d, body %s", first.Code, first.Body)
	}
	second := f.post(t, "workday", "msg_1", hire, nil)
	if diff := cmp.Diff(Accepted{EventIDs: []string{"msg_1"}, Duplicates: 1}, decode[Accepted](t, second)); diff != "" {
		t.Errorf("redelivery answer (-want +got):\n%s", diff)
	}
	events := f.storedEvents(t)
	if len(events) != 1 {
		t.Fatalf("stored %d events, want 1", len(events))
	}
	if e := events[0]; e.GetEventId() != "msg_1" || e.GetSource() != "workday" || e.GetWorker().GetWorkerId() != "E1001" || !e.GetReceivedAt().AsTime().Equal(now) {
		t.Errorf("stored event = %v", e)
	}
}

func TestCanonicalBatchAndRotatedSecret(t *testing.T) {
	f := newFixture(t, realPublisher, nil)
	batch := `[` + hire + `,{"type":"org_unit.updated","data":{"orgUnitId":"sales","name":"Sales"}}]`
	// Signed with the second of the source's two secrets, as during a rotation.
	rec := f.do(t, request(http.MethodPost, "/v1/sources/workday/events", "application/json", batch, signed(nextSecret, "msg_batch", now)))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	if diff := cmp.Diff(Accepted{EventIDs: []string{"msg_batch.0", "msg_batch.1"}}, decode[Accepted](t, rec)); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	events := f.storedEvents(t)
	if len(events) != 2 || events[0].GetWorker().GetWorkerId() != "E1001" || events[1].GetOrgUnit().GetOrgUnitId() != "sales" {
		t.Errorf("stored %v", events)
	}
}

func TestSCIMBulkUpload(t *testing.T) {
	for _, path := range []string{"/v1/sources/entra/scim/Bulk", entraPath} {
		t.Run(path, func(t *testing.T) {
			f := newFixture(t, realPublisher, nil)
			body := string(readFile(t, "../scim/testdata/entra-bulk-enterprise.json"))
			rec := f.do(t, request(http.MethodPost, path, "application/scim+json", body, bearerToken(scimToken)))
			if rec.Code != http.StatusAccepted || rec.Header().Get("Content-Type") != "application/scim+json" {
				t.Fatalf("status = %d, Content-Type %q, body %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
			want := scim.BulkResponse{Schemas: []string{scim.BulkResponseSchema}, Operations: []scim.OperationResponse{
				{Method: "POST", BulkID: "897401c2-2de4-4b87-a97f-c02de3bcfc61", Location: "urn:orgsync:hr:entra:worker:701984", Status: "202"},
				{Method: "POST", BulkID: "27a1a1b0-6b8a-4e0d-bc19-38b1a2e1c5d7", Location: "urn:orgsync:hr:entra:worker:701985", Status: "202"},
			}}
			if diff := cmp.Diff(want, decode[scim.BulkResponse](t, rec)); diff != "" {
				t.Errorf("bulk response (-want +got):\n%s", diff)
			}
			events := f.storedEvents(t)
			var got []string
			for _, e := range events {
				got = append(got, e.GetSource()+"/"+e.GetWorker().GetWorkerId()+"/"+e.GetWorker().GetManagerWorkerId())
			}
			slices.Sort(got) // different workers' events are stored concurrently, in no fixed order
			if diff := cmp.Diff([]string{"entra/701984/89607", "entra/701985/701984"}, got); diff != "" {
				t.Errorf("stored (-want +got):\n%s", diff)
			}
			// Entra's clients retry; the same request is stored once.
			again := f.do(t, request(http.MethodPost, path, "application/scim+json", body, bearerToken(scimToken)))
			if again.Code != http.StatusAccepted || len(f.storedEvents(t)) != 2 {
				t.Errorf("retry: status %d, %d events stored", again.Code, len(f.storedEvents(t)))
			}
		})
	}
}

// TestSCIMOmittedActiveDoesNotDisable is the known trap: Entra's own service has disabled
// managers whose update left out "active". orgsync publishes them active; "active": false is the
// only way to say a worker leaves.
func TestSCIMOmittedActiveDoesNotDisable(t *testing.T) {
	f := newFixture(t, realPublisher, nil)
	body := string(readFile(t, "../scim/testdata/entra-bulk-custom-extension.json"))
	rec := f.do(t, request(http.MethodPost, entraPath, "application/scim+json; charset=utf-8", body, bearerToken(scimToken)))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	status := map[string]orgsyncv1.EmploymentStatus{}
	for _, e := range f.storedEvents(t) {
		status[e.GetWorker().GetWorkerId()] = e.GetWorker().GetEmploymentStatus()
	}
	want := map[string]orgsyncv1.EmploymentStatus{
		"701986": orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED, // "active": false
		"89607":  orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,     // "active" omitted
	}
	if diff := cmp.Diff(want, status); diff != "" {
		t.Errorf("employment status by worker (-want +got):\n%s", diff)
	}
}

func TestBambooHRWebhook(t *testing.T) {
	f := newFixture(t, realPublisher, nil)
	body := string(readFile(t, "../bamboohr/testdata/field-based-updated.json"))
	timestamp := strconv.FormatInt(now.Unix(), 10)
	rec := f.do(t, request(http.MethodPost, "/v1/sources/bamboo/events", "application/json", body, bambooSigned(bambooKey, timestamp)))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	events := f.storedEvents(t)
	if len(events) != 1 {
		t.Fatalf("stored %d events", len(events))
	}
	w := events[0].GetWorker()
	if events[0].GetSource() != "bamboo" || w.GetWorkerId() != "1042" || w.GetWorkEmail() != "bryony.harper@example.com" || w.GetManagerWorkerId() != "1001" {
		t.Errorf("stored %v", events[0])
	}
	// BambooHR retries a delivery it thinks failed: stored once.
	again := f.do(t, request(http.MethodPost, "/v1/sources/bamboo/events", "application/json", body, bambooSigned(bambooKey, timestamp)))
	if got := decode[Accepted](t, again); again.Code != http.StatusAccepted || got.Duplicates != 1 || len(f.storedEvents(t)) != 1 {
		t.Errorf("redelivery: status %d, answer %+v, %d stored", again.Code, got, len(f.storedEvents(t)))
	}
}

func TestSnapshotUpload(t *testing.T) {
	f := newFixture(t, realPublisher, nil)
	body := string(readFile(t, "../snapshot/testdata/export.csv"))
	rec := f.do(t, request(http.MethodPost, "/v1/sources/export/snapshots", "text/csv", body, bearerToken(exportToken)))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	accepted := decode[Accepted](t, rec)
	snapshotID := accepted.SnapshotID
	if !strings.HasPrefix(snapshotID, "snap-") || accepted.RecordCount != 3 || len(accepted.EventIDs) != 5 {
		t.Errorf("answer %+v", accepted)
	}
	type stored struct {
		Subject string
		Phase   orgsyncv1.SnapshotMarker_Phase
		Count   int64
	}
	summarise := func() []stored {
		var got []stored
		for _, e := range f.storedEvents(t) {
			name, _ := subject.HRSubject(e)
			got = append(got, stored{Subject: name, Phase: e.GetSnapshot().GetPhase(), Count: e.GetSnapshot().GetRecordCount()})
		}
		// Workers are published concurrently between the markers; their order is not fixed.
		if len(got) > 2 {
			middle := got[1 : len(got)-1]
			for i := range middle {
				for j := i + 1; j < len(middle); j++ {
					if middle[j].Subject < middle[i].Subject {
						middle[i], middle[j] = middle[j], middle[i]
					}
				}
			}
		}
		return got
	}
	want := []stored{
		{Subject: "hr.export.snapshot." + snapshotID, Phase: orgsyncv1.SnapshotMarker_PHASE_BEGIN},
		{Subject: "hr.export.worker.E1000"}, {Subject: "hr.export.worker.E1001"}, {Subject: "hr.export.worker.E1002"},
		{Subject: "hr.export.snapshot." + snapshotID, Phase: orgsyncv1.SnapshotMarker_PHASE_END, Count: 3},
	}
	if diff := cmp.Diff(want, summarise()); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
	// A client's retry of one upload (the same Idempotency-Key) stores nothing new.
	keyed := func() *http.Request {
		return request(http.MethodPost, "/v1/sources/export/snapshots", "text/csv", body, func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+exportToken)
			r.Header.Set(IdempotencyKeyHeader, "nightly-2026-03-01")
		})
	}
	first := decode[Accepted](t, f.do(t, keyed()))
	retry := f.do(t, keyed())
	if got := decode[Accepted](t, retry); retry.Code != http.StatusAccepted || got.Duplicates != 5 || got.SnapshotID != first.SnapshotID {
		t.Errorf("retry: status %d, answer %+v, first %+v", retry.Code, got, first)
	}
	if n := len(f.storedEvents(t)); n != 10 {
		t.Errorf("stored %d events after an upload and a keyed upload retried, want 10", n)
	}
}

func TestRejections(t *testing.T) {
	enterprise := string(readFile(t, "../scim/testdata/entra-bulk-enterprise.json"))
	bambooBody := string(readFile(t, "../bamboohr/testdata/field-based-updated.json"))
	csvBody := string(readFile(t, "../snapshot/testdata/export.csv"))
	nowUnix := strconv.FormatInt(now.Unix(), 10)
	canonicalReq := func(mutate func(*http.Request)) *http.Request {
		req := request(http.MethodPost, "/v1/sources/workday/events", "application/json", hire, signed(secret, "msg_x", now))
		if mutate != nil {
			mutate(req)
		}
		return req
	}
	tests := []struct {
		name       string
		req        *http.Request
		wantStatus int
		wantType   string
		wantDetail string
		wantErrors []problem.FieldError
	}{
		// Canonical.
		{name: "canonical bad signature", wantStatus: 401, wantType: "unauthenticated", wantDetail: "verification failed: no webhook-signature matches",
			req: canonicalReq(func(r *http.Request) { r.Header.Set(webhook.HeaderSignature, "v1,AAAA") })},
		{name: "canonical no signature", wantStatus: 401, wantType: "unauthenticated", wantDetail: "verification failed: missing webhook header: webhook-signature",
			req: canonicalReq(func(r *http.Request) { r.Header.Del(webhook.HeaderSignature) })},
		{name: "canonical stale timestamp", wantStatus: 401, wantType: "unauthenticated", wantDetail: "verification failed: webhook-timestamp is outside the tolerance of 5m0s",
			req: canonicalReq(signed(secret, "msg_old", now.Add(-time.Hour)))},
		{name: "unknown source", wantStatus: 404, wantType: "unknown-source", wantDetail: `no HR source named "sap" is configured`,
			req: request(http.MethodPost, "/v1/sources/sap/events", "application/json", hire, signed(secret, "m", now))},
		{name: "source of another kind", wantStatus: 404, wantType: "unknown-source", wantDetail: `HR source "entra" is of kind scim and does not take requests here`,
			req: request(http.MethodPost, "/v1/sources/entra/events", "application/json", hire, signed(secret, "m", now))},
		{name: "canonical wrong content type", wantStatus: 415, wantType: "unsupported-media-type", wantDetail: "Content-Type must be application/json",
			req: canonicalReq(func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") })},
		{name: "canonical too large", wantStatus: 413, wantType: "too-large", wantDetail: "the body is larger than 4096 bytes",
			req: request(http.MethodPost, "/v1/sources/workday/events", "application/json", `{"type":"`+strings.Repeat("x", 5000)+`"}`, signed(secret, "m", now))},
		{name: "canonical malformed JSON", wantStatus: 400, wantType: "malformed-json", wantDetail: "body is not valid JSON: unexpected EOF",
			req: request(http.MethodPost, "/v1/sources/workday/events", "application/json", `{"type": "worker.created", "data": {`, signed(secret, "m", now))},
		{name: "canonical invalid fields", wantStatus: 400, wantType: "invalid-payload", wantDetail: "3 invalid field(s)",
			req: request(http.MethodPost, "/v1/sources/workday/events", "application/json",
				`{"type":"worker.created","data":{"workerId":"E1","name":{"givenName":"A","familyName":"B"},"orgUnitId":"not valid","startDate":"March","phoneNumber":"ring ring"}}`, signed(secret, "m", now)),
			wantErrors: []problem.FieldError{
				{Pointer: "/data/orgUnitId", Detail: "must not contain spaces"},
				{Pointer: "/data/startDate", Detail: `"March" is not a date in the form YYYY-MM-DD (or an ISO 8601 date-time)`},
				{Pointer: "/data/phoneNumber", Detail: `"ring ring" is not a phone number`},
			}},
		{name: "canonical batch with one invalid event publishes nothing", wantStatus: 400, wantType: "invalid-payload", wantDetail: "1 invalid field(s)",
			req: request(http.MethodPost, "/v1/sources/workday/events", "application/json",
				`[`+hire+`,{"type":"worker.updated","data":{"workerId":"E2","name":{"givenName":"A","familyName":"B"},"startDate":"2026-03-01","endDate":"2026-01-01"}}]`, signed(secret, "m", now)),
			wantErrors: []problem.FieldError{{Pointer: "/1/data/endDate", Detail: "is before the start date"}}},
		// SCIM.
		{name: "scim no token", wantStatus: 401, wantType: "unauthenticated", wantDetail: "verification failed: missing or unknown bearer token",
			req: request(http.MethodPost, entraPath, "application/scim+json", enterprise, nil)},
		{name: "scim wrong token", wantStatus: 401, wantType: "unauthenticated", wantDetail: "verification failed: missing or unknown bearer token",
			req: request(http.MethodPost, "/v1/sources/entra/scim/Bulk", "application/scim+json", enterprise, bearerToken(exportToken))},
		{name: "scim token of another source at the Entra path", wantStatus: 401, wantType: "unauthenticated", wantDetail: "verification failed: missing or unknown bearer token",
			req: request(http.MethodPost, entraPath, "application/scim+json", enterprise, bearerToken(exportToken))},
		{name: "scim wrong content type", wantStatus: 415, wantType: "unsupported-media-type", wantDetail: "Content-Type must be application/scim+json or application/json",
			req: request(http.MethodPost, entraPath, "application/x-www-form-urlencoded", enterprise, bearerToken(scimToken))},
		{name: "scim invalid operation publishes nothing", wantStatus: 400, wantType: "invalid-payload", wantDetail: "2 invalid field(s)",
			req: request(http.MethodPost, entraPath, "application/scim+json",
				strings.Replace(strings.Replace(enterprise, `"externalId": "701985"`, `"externalId": ""`, 1), `"value": "bjensen@example.com"`, `"value": "bjensen at example.com"`, 1), bearerToken(scimToken)),
			wantErrors: []problem.FieldError{
				{Pointer: "/Operations/0/data/emails", Detail: `"bjensen at example.com" is not a plain e-mail address`},
				{Pointer: "/Operations/1/data/externalId", Detail: "required: the worker id"},
			}},
		// BambooHR.
		{name: "bamboohr bad signature", wantStatus: 401, wantType: "unauthenticated", wantDetail: "verification failed: X-BambooHR-Signature does not match",
			req: request(http.MethodPost, "/v1/sources/bamboo/events", "application/json", bambooBody, bambooSigned([]byte("another-key-0123456789"), nowUnix))},
		{name: "bamboohr no signature", wantStatus: 401, wantType: "unauthenticated", wantDetail: "verification failed: missing X-BambooHR-Signature or X-BambooHR-Timestamp",
			req: request(http.MethodPost, "/v1/sources/bamboo/events", "application/json", bambooBody, nil)},
		{name: "bamboohr stale timestamp", wantStatus: 401, wantType: "unauthenticated", wantDetail: "verification failed: X-BambooHR-Timestamp is outside the tolerance of 5m0s",
			req: request(http.MethodPost, "/v1/sources/bamboo/events", "application/json", bambooBody, bambooSigned(bambooKey, strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)))},
		{name: "bamboohr invalid fields", wantStatus: 400, wantType: "invalid-payload", wantDetail: "1 invalid field(s)",
			req:        request(http.MethodPost, "/v1/sources/bamboo/events", "application/json", strings.Replace(bambooBody, `"2019-04-15"`, `"15/04/2019"`, 1), bambooSigned(bambooKey, nowUnix)),
			wantErrors: []problem.FieldError{{Pointer: "/employees/0/fields/Hire Date", Detail: `"15/04/2019" is not a date in the form YYYY-MM-DD (or an ISO 8601 date-time)`}}},
		// CSV snapshot.
		{name: "csv no token", wantStatus: 401, wantType: "unauthenticated", wantDetail: "verification failed: missing or unknown bearer token",
			req: request(http.MethodPost, "/v1/sources/export/snapshots", "text/csv", csvBody, bearerToken(scimToken))},
		{name: "csv wrong content type", wantStatus: 415, wantType: "unsupported-media-type", wantDetail: "Content-Type must be text/csv",
			req: request(http.MethodPost, "/v1/sources/export/snapshots", "application/json", csvBody, bearerToken(exportToken))},
		{name: "csv over the source's own size limit", wantStatus: 413, wantType: "too-large", wantDetail: "the body is larger than 1048576 bytes",
			req: request(http.MethodPost, "/v1/sources/export/snapshots", "text/csv", csvBody+strings.Repeat("x", 1<<20), bearerToken(exportToken))},
		{name: "csv malformed", wantStatus: 400, wantType: "malformed-csv", wantDetail: `body is not valid CSV: parse error on line 2, column 9: extraneous or missing " in quoted-field`,
			req: request(http.MethodPost, "/v1/sources/export/snapshots", "text/csv", strings.SplitAfter(csvBody, "\n")[0]+"E1,\"Doe\n", bearerToken(exportToken))},
		{name: "csv invalid rows publish nothing", wantStatus: 400, wantType: "invalid-payload", wantDetail: "2 invalid field(s)",
			req: request(http.MethodPost, "/v1/sources/export/snapshots", "text/csv", strings.Replace(strings.Replace(csvBody, "2021-05-01", "May 2021", 1), "E1002,Grace", "E 1002,Grace", 1), bearerToken(exportToken)),
			wantErrors: []problem.FieldError{
				{Pointer: "/rows/5/Employee ID", Detail: "must not contain spaces"},
				{Pointer: "/rows/5/Start Date", Detail: `"May 2021" is not a date in the form YYYY-MM-DD (or an ISO 8601 date-time)`},
			}},
	}
	f := newFixture(t, realPublisher, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(t, tt.req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			got := decode[problem.Details](t, rec)
			want := problem.Details{Type: problem.TypeBase + tt.wantType, Title: got.Title, Status: tt.wantStatus, Detail: tt.wantDetail, Errors: tt.wantErrors}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problem (-want +got):\n%s", diff)
			}
			for _, leak := range []string{scimToken, exportToken, string(bambooKey)} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("the answer repeats a secret: %s", rec.Body)
				}
			}
		})
	}
	if events := f.storedEvents(t); len(events) != 0 {
		t.Errorf("rejected requests published %d events", len(events))
	}
}

func TestRateLimitSharedAcrossReplicas(t *testing.T) {
	url := redistest.Start(t)
	newReplica := func() fixture {
		rdb, err := ratelimit.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		return newFixture(t, realPublisher, ratelimit.New(rdb, "orgsync:hr-ingest:", slog.New(slog.DiscardHandler)))
	}
	replicas := []fixture{newReplica(), newReplica()}
	tests := []struct {
		name           string
		replica        int
		source         string
		wantStatus     int
		wantRetryAfter bool
	}{
		{name: "first request to replica 0", replica: 0, source: "limited", wantStatus: http.StatusAccepted},
		{name: "second request, to replica 1, is over the shared budget", replica: 1, source: "limited", wantStatus: http.StatusTooManyRequests, wantRetryAfter: true},
		{name: "an unlimited source is not affected", replica: 1, source: "workday", wantStatus: http.StatusAccepted},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := replicas[tt.replica].post(t, tt.source, "msg_rate_"+strconv.Itoa(i), hire, nil)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			retryAfter, _ := strconv.Atoi(rec.Header().Get("Retry-After"))
			if tt.wantRetryAfter != (retryAfter > 0) {
				t.Errorf("Retry-After = %q", rec.Header().Get("Retry-After"))
			}
			if tt.wantStatus == http.StatusTooManyRequests {
				if got := decode[problem.Details](t, rec); got.Type != problem.TypeBase+"rate-limited" {
					t.Errorf("problem type = %q", got.Type)
				}
			}
		})
	}
}

type failingPublisher struct{}

func (failingPublisher) Publish(context.Context, string, string, proto.Message) (*jetstream.PubAck, error) {
	return nil, errors.New("nats: no responders available for request")
}

func TestUnavailableStoreAsksForRetry(t *testing.T) {
	f := newFixture(t, func(jetstream.JetStream) Publisher { return failingPublisher{} }, nil)
	tests := []struct {
		name string
		req  *http.Request
	}{
		{name: "canonical", req: request(http.MethodPost, "/v1/sources/workday/events", "application/json", hire, signed(secret, "msg_1", now))},
		{name: "scim", req: request(http.MethodPost, entraPath, "application/scim+json", string(readFile(t, "../scim/testdata/entra-bulk-enterprise.json")), bearerToken(scimToken))},
		{name: "snapshot", req: request(http.MethodPost, "/v1/sources/export/snapshots", "text/csv", string(readFile(t, "../snapshot/testdata/export.csv")), bearerToken(exportToken))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(t, tt.req)
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "5" {
				t.Fatalf("status = %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
			}
			if bytes.Contains(rec.Body.Bytes(), []byte("no responders")) {
				t.Errorf("503 body leaks an internal error: %s", rec.Body)
			}
		})
	}
}
