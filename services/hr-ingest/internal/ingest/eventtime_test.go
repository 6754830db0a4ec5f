package ingest

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestEventTime checks, for every kind of source, that every stored event (snapshot markers and
// rows included) carries the time hr-ingest received it, and an occurrence time only where the
// sender gave one: canonical "timestamp", a BambooHR entry's "timestamp", SCIM
// meta.lastModified. None is invented.
func TestEventTime(t *testing.T) {
	nowUnix := strconv.FormatInt(now.Unix(), 10)
	withLastModified := strings.Replace(scimUser("E3", "Doe", true, "Engineer"), `"externalId"`, `"meta":{"resourceType":"User","lastModified":"2026-02-27T16:30:00+01:00"},"externalId"`, 1)
	tests := []struct {
		name         string
		req          *http.Request
		wantOccurred []string // per stored event in any order, RFC 3339 or "" for none
	}{
		{name: "canonical with timestamp",
			req: request(http.MethodPost, "/v1/sources/workday/events", "application/json",
				`{"type":"worker.updated","timestamp":"2026-02-28T08:00:00Z","data":{"workerId":"E1","name":{"givenName":"A","familyName":"B"}}}`, signed(secret, "msg_t1", now)),
			wantOccurred: []string{"2026-02-28T08:00:00Z"}},
		{name: "canonical without timestamp", req: request(http.MethodPost, "/v1/sources/workday/events", "application/json", hire, signed(secret, "msg_t2", now)),
			wantOccurred: []string{""}},
		{name: "bamboohr entry timestamp",
			req: request(http.MethodPost, "/v1/sources/bamboo/events", "application/json",
				`{"employees":[{"id":"E2","action":"Updated","timestamp":"2026-02-28T09:15:00Z","fields":{"First Name":"A","Last Name":"B"}}]}`, bambooSigned(bambooKey, nowUnix)),
			wantOccurred: []string{"2026-02-28T09:15:00Z"}},
		{name: "scim meta.lastModified and none",
			req:          request(http.MethodPost, entraPath, "application/scim+json", scimBulk(withLastModified, scimUser("E4", "Roe", true, "Analyst")), bearerToken(scimToken)),
			wantOccurred: []string{"2026-02-27T15:30:00Z", ""}},
		{name: "csv snapshot markers and rows",
			req:          request(http.MethodPost, "/v1/sources/export/snapshots", "text/csv", csvExport(csvRow{id: "E5", family: "Poe"}), bearerToken(exportToken)),
			wantOccurred: []string{"", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, realPublisher, nil)
			if rec := f.do(t, tt.req); rec.Code != http.StatusAccepted {
				t.Fatalf("status %d, body %s", rec.Code, rec.Body)
			}
			var occurred []string
			for _, e := range f.storedEvents(t) {
				if e.GetReceivedAt() == nil || !e.GetReceivedAt().AsTime().Equal(now) {
					t.Errorf("event %s received_at = %v, want %v", e.GetEventId(), e.GetReceivedAt(), now)
				}
				at := ""
				if e.GetOccurredAt() != nil {
					at = e.GetOccurredAt().AsTime().Format(time.RFC3339)
				}
				occurred = append(occurred, at)
			}
			// Different workers' events are stored concurrently, in no fixed order.
			slices.Sort(occurred)
			slices.Sort(tt.wantOccurred)
			if diff := cmp.Diff(tt.wantOccurred, occurred); diff != "" {
				t.Errorf("occurred_at per stored event (-want +got):\n%s", diff)
			}
		})
	}
}
