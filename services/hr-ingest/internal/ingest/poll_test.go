package ingest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/problem"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

// TestPollSourceDryRunAndNoRoute: a poll source takes no request on the senders' routes (404),
// and the dry run reads one page of its endpoint as the poller does — events named by worker id
// and modified time, the same on a second read — or answers 400 naming the invalid fields.
func TestPollSourceDryRunAndNoRoute(t *testing.T) {
	afas := source.Config{Name: "afas", Kind: source.KindPoll, Poll: source.Poll{Preset: source.PresetAFAS,
		URL: "https://12345.rest.afas.online/ProfitRestServices/connectors/Orgsync_Employees", ModifiedField: "Gewijzigd",
		Auth:   source.PollAuth{Secret: "<token><version>1</version><data>ABC</data></token>"},
		Fields: map[string]string{"workerId": "Medewerker", "givenName": "Roepnaam", "familyName": "Achternaam", "workEmail": "EmailWerk"}}}
	srv := streamtest.Start(t)
	h := newHandler(t, []source.Config{afas}, realPublisher(srv.JS), Options{Now: func() time.Time { return now }, History: NewJetStreamHistory(srv.JS)})
	mux := newMux(h)
	mux.Handle(DryRunPattern, h.DryRun())
	do := func(req *http.Request) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	page := `{"skip":0,"take":100,"rows":[{"Medewerker":"1001","Roepnaam":"Ann","Achternaam":"Ash","EmailWerk":"ann@example.com","Gewijzigd":"2026-03-01T09:00:00Z"}]}`
	if rec := do(request(http.MethodPost, "/v1/sources/afas/events", "application/json", page, nil)); rec.Code != http.StatusNotFound {
		t.Errorf("a webhook to a poll source: %d", rec.Code)
	}
	ids := func() []string {
		rec := do(request(http.MethodPost, "/v1/dry-run/afas", "application/json", page, nil))
		var answer struct{ Events []json.RawMessage }
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &answer) != nil || len(answer.Events) != 1 {
			t.Fatalf("dry run: %d %s", rec.Code, rec.Body)
		}
		var event struct{ EventID, OccurredAt string }
		_ = json.Unmarshal(answer.Events[0], &event)
		if event.OccurredAt != "2026-03-01T09:00:00Z" {
			t.Errorf("occurredAt = %q", event.OccurredAt)
		}
		return []string{event.EventID}
	}
	first, second := ids(), ids()
	if first[0] != second[0] || !strings.HasPrefix(first[0], "poll-") {
		t.Errorf("event ids %v then %v; want the same poll- id", first, second)
	}
	bad := strings.Replace(page, "ann@example.com", "ann at example", 1)
	rec := do(request(http.MethodPost, "/v1/dry-run/afas", "application/json", bad, nil))
	got := decode[problem.Details](t, rec)
	if rec.Code != http.StatusBadRequest || len(got.Errors) != 1 || got.Errors[0].Pointer != "/rows/0/EmailWerk" {
		t.Errorf("dry run of a bad page: %d %+v", rec.Code, got)
	}
	if events := streamtest.HREvents(t, srv.JS); len(events) != 0 {
		t.Errorf("the dry run published %d events", len(events))
	}
}
