package ingest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/problem"
)

// TestDryRunEveryKind: for a source of every kind, the dry run answers the events its body
// would publish, named as the real route names them, publishes nothing, and refuses a bad body
// with the very problem the real route answers. (Its authentication is pkg/auth's, tested in
// the service package.)
func TestDryRunEveryKind(t *testing.T) {
	f := newFixture(t, realPublisher, nil)
	h := newHandler(t, testSources(), realPublisher(f.js), Options{MaxBodyBytes: 1 << 20, Now: func() time.Time { return now }, History: NewJetStreamHistory(f.js)})
	mux := newMux(h)
	mux.Handle(DryRunPattern, h.DryRun())
	doOn := func(mux *http.ServeMux, req *http.Request) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	bambooBody := string(readFile(t, "../bamboohr/testdata/field-based-updated.json"))
	scimBody := string(readFile(t, "../scim/testdata/entra-bulk-enterprise.json"))
	csvBody := string(readFile(t, "../snapshot/testdata/export.csv"))
	nowUnix := strconv.FormatInt(now.Unix(), 10)

	tests := []struct {
		name, source, contentType string
		body, badBody             string
		header                    map[string]string
		// real is the source's own route, authenticated, for the bad body's problem.
		real    func(body string) *http.Request
		wantIDs []string
	}{
		{name: "canonical", source: "workday", contentType: "application/json", body: `[` + hire + `,` + hire + `]`,
			badBody: strings.Replace(hire, `"sales"`, `"not valid"`, 1), header: map[string]string{"webhook-id": "msg_7"},
			real: func(body string) *http.Request {
				return request(http.MethodPost, "/v1/sources/workday/events", "application/json", body, signed(secret, "msg_8", now))
			},
			wantIDs: []string{"msg_7.0", "msg_7.1"}},
		{name: "bamboohr", source: "bamboo", contentType: "application/json", body: bambooBody,
			badBody: strings.Replace(bambooBody, `"2019-04-15"`, `"15/04/2019"`, 1),
			real: func(body string) *http.Request {
				return request(http.MethodPost, "/v1/sources/bamboo/events", "application/json", body, bambooSigned(bambooKey, nowUnix))
			}},
		{name: "scim", source: "entra", contentType: "application/scim+json", body: scimBody,
			badBody: strings.Replace(scimBody, `"externalId": "701985"`, `"externalId": ""`, 1),
			real: func(body string) *http.Request {
				return request(http.MethodPost, "/v1/sources/entra/scim/Bulk", "application/scim+json", body, bearerToken(scimToken))
			}},
		{name: "csv", source: "export", contentType: "text/csv", body: csvBody, header: map[string]string{IdempotencyKeyHeader: "nightly-1"},
			badBody: strings.Replace(csvBody, "E1002,Grace", "E 1002,Grace", 1),
			real: func(body string) *http.Request {
				return request(http.MethodPost, "/v1/sources/export/snapshots", "text/csv", body, bearerToken(exportToken))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dry := func(body string) *http.Request {
				return request(http.MethodPost, "/v1/dry-run/"+tt.source, tt.contentType, body, func(r *http.Request) {
					for k, v := range tt.header {
						r.Header.Set(k, v)
					}
				})
			}
			rec := doOn(mux, dry(tt.body))
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("dry run = %d %s %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
			var result DryRunResult
			if err := json.Unmarshal(rec.Body.Bytes(), &result); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, raw := range result.Events {
				var event orgsyncv1.HREvent
				if err := protojson.Unmarshal(raw, &event); err != nil {
					t.Fatalf("%v in %s", err, raw)
				}
				if event.GetSource() != tt.source || event.GetEventId() == "" || !event.GetReceivedAt().AsTime().Equal(now) {
					t.Errorf("event %v: want source %s, an id and the receive time", &event, tt.source)
				}
				ids = append(ids, event.GetEventId())
			}
			if tt.wantIDs != nil {
				if diff := cmp.Diff(tt.wantIDs, ids); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
			}
			if tt.name == "csv" {
				if len(ids) != 5 || !strings.HasSuffix(ids[0], ".begin") || !strings.HasSuffix(ids[4], ".end") {
					t.Errorf("snapshot ids %v: want BEGIN, 3 workers, END", ids)
				}
			}
			if stored := f.storedEvents(t); len(stored) != 0 {
				t.Fatalf("the dry run published %d events", len(stored))
			}

			dryBad, realBad := doOn(mux, dry(tt.badBody)), doOn(mux, tt.real(tt.badBody))
			if dryBad.Code != http.StatusBadRequest || dryBad.Code != realBad.Code {
				t.Fatalf("bad body: dry run %d %s, real route %d %s", dryBad.Code, dryBad.Body, realBad.Code, realBad.Body)
			}
			var dryProblem, realProblem problem.Details
			if err := json.Unmarshal(dryBad.Body.Bytes(), &dryProblem); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(realBad.Body.Bytes(), &realProblem); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(realProblem, dryProblem); diff != "" || len(dryProblem.Errors) == 0 {
				t.Errorf("dry run's problem (-real route +dry run):\n%s", diff)
			}
		})
	}
}
