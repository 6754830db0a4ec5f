package ingest

import (
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// latestWorkerEvent reads the newest event stream HR holds for a worker of a source.
func (f fixture) latestWorkerEvent(t *testing.T, source, workerID string) *orgsyncv1.HREvent {
	t.Helper()
	s, err := f.js.Stream(t.Context(), stream.HR)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(t.Context(), subject.HRWorkerSubject(source, workerID))
	if err != nil {
		t.Fatal(err)
	}
	var event orgsyncv1.HREvent
	if err := proto.Unmarshal(msg.Data, &event); err != nil {
		t.Fatal(err)
	}
	return &event
}

// TestRepeatedStateIsApplied sends, for every kind of source, a leave (A), its rescission (B)
// and the same leave again (A, a byte-identical request, as HR systems resend a state): the
// third request is stored and is the worker's latest event, so the worker ends as A says. A
// retry of that third request is stored once.
func TestRepeatedStateIsApplied(t *testing.T) {
	nowUnix := strconv.FormatInt(now.Unix(), 10)
	leave := func(status string) string {
		return `{"type":"worker.updated","data":{"workerId":"E7","name":{"givenName":"Jane","familyName":"Doe"},"employmentStatus":"` + status + `"}}`
	}
	bamboo := func(status string) string {
		return `{"employees":[{"id":"E7","action":"Updated","fields":{"First Name":"Jane","Last Name":"Doe","Status":"` + status + `"}}]}`
	}
	tests := []struct {
		name     string
		source   string
		send     func(state string, delivery int) *http.Request
		retry    func(state string, delivery int) *http.Request
		leaving  string
		staying  string
		wantLeft orgsyncv1.EmploymentStatus
	}{
		{name: "canonical", source: "workday",
			// Each delivery has its own webhook-id; a retry repeats the delivery's id.
			send: func(state string, delivery int) *http.Request {
				return request(http.MethodPost, "/v1/sources/workday/events", "application/json", leave(state), signed(secret, "msg_"+strconv.Itoa(delivery), now))
			},
			leaving: "terminated", staying: "active", wantLeft: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED},
		{name: "scim", source: "entra",
			send: func(state string, _ int) *http.Request {
				return request(http.MethodPost, "/v1/sources/entra/scim/Bulk", "application/scim+json", scimBulk(scimUser("E7", "Doe", state == "true", "Engineer")), bearerToken(scimToken))
			},
			leaving: "false", staying: "true", wantLeft: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED},
		{name: "scim at the Entra bulkUpload path", source: "entra",
			send: func(state string, _ int) *http.Request {
				return request(http.MethodPost, entraPath, "application/scim+json", scimBulk(scimUser("E7", "Doe", state == "true", "Engineer")), bearerToken(scimToken))
			},
			leaving: "false", staying: "true", wantLeft: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED},
		{name: "bamboohr", source: "bamboo",
			send: func(state string, _ int) *http.Request {
				return request(http.MethodPost, "/v1/sources/bamboo/events", "application/json", bamboo(state), bambooSigned(bambooKey, nowUnix))
			},
			leaving: "Inactive", staying: "Active", wantLeft: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED},
		{name: "csv", source: "export",
			// Each upload is a snapshot of its own; a client's retry repeats its Idempotency-Key.
			send: func(state string, delivery int) *http.Request {
				return request(http.MethodPost, "/v1/sources/export/snapshots", "text/csv", csvExport(csvRow{id: "E7", family: "Doe", endDate: state}), func(r *http.Request) {
					r.Header.Set("Authorization", "Bearer "+exportToken)
					r.Header.Set(IdempotencyKeyHeader, "upload-"+strconv.Itoa(delivery))
				})
			},
			leaving: "2026-02-28", staying: "", wantLeft: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, realPublisher, nil)
			var answers []Accepted
			for delivery, state := range []string{tt.leaving, tt.staying, tt.leaving} {
				rec := f.do(t, tt.send(state, delivery))
				if rec.Code != http.StatusAccepted {
					t.Fatalf("request %d: status %d, body %s", delivery+1, rec.Code, rec.Body)
				}
				if tt.source != "entra" {
					answers = append(answers, decode[Accepted](t, rec))
				}
			}
			stored := f.storedEvents(t)
			latest := f.latestWorkerEvent(t, tt.source, "E7")
			wantEndDate := (*orgsyncv1.Date)(nil)
			if tt.source == "export" {
				wantEndDate = &orgsyncv1.Date{Year: 2026, Month: 2, Day: 28}
			}
			if latest.GetWorker().GetEmploymentStatus() != tt.wantLeft || !proto.Equal(latest.GetWorker().GetEndDate(), wantEndDate) {
				t.Errorf("latest event for the worker = %v, want the first state again", latest)
			}
			if answers != nil && latest.GetEventId() != answers[2].EventIDs[len(answers[2].EventIDs)/2] {
				t.Errorf("latest event %q is not the third request's (%v)", latest.GetEventId(), answers[2].EventIDs)
			}
			// The sender retries the third request: nothing new is stored.
			rec := f.do(t, tt.send(tt.leaving, 2))
			if rec.Code != http.StatusAccepted {
				t.Fatalf("retry: status %d, body %s", rec.Code, rec.Body)
			}
			if again := f.storedEvents(t); len(again) != len(stored) {
				t.Errorf("retry stored %d more events", len(again)-len(stored))
			}
			if answers != nil {
				if got := decode[Accepted](t, rec); got.Duplicates != len(got.EventIDs) {
					t.Errorf("retry answer %+v: every event should be a duplicate", got)
				}
			}
		})
	}
}

// TestConcurrentRetriesStoredOnce sends one SCIM request (no delivery id) from several senders
// at once, as a client that timed out and retried while the first attempt was still running:
// whatever the interleaving, the state is stored once.
func TestConcurrentRetriesStoredOnce(t *testing.T) {
	f := newFixture(t, realPublisher, nil)
	body := scimBulk(scimUser("E8", "Doe", false, "Engineer"), scimUser("E9", "Roe", true, "Analyst"))
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() {
			codes[i] = f.do(t, request(http.MethodPost, entraPath, "application/scim+json", body, bearerToken(scimToken))).Code
		})
	}
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusAccepted {
			t.Errorf("sender %d: status %d", i, code)
		}
	}
	count := map[string]int{}
	for _, e := range f.storedEvents(t) {
		count[e.GetWorker().GetWorkerId()]++
	}
	if diff := cmp.Diff(map[string]int{"E8": 1, "E9": 1}, count); diff != "" {
		t.Errorf("events stored per worker (-want +got):\n%s", diff)
	}
}

// TestRetryWithTwoStatesOfOneWorker retries a SCIM request that moves one worker through two
// states (A then B): the worker's newest stored event already holds B, the state the request
// leaves it in, so the retry stores nothing; a request that sends A alone afterwards is a change
// and is stored.
func TestRetryWithTwoStatesOfOneWorker(t *testing.T) {
	f := newFixture(t, realPublisher, nil)
	twoStates := scimBulk(scimUser("E10", "Doe", false, "Engineer"), scimUser("E10", "Doe", true, "Engineer"))
	for attempt := range 2 {
		if rec := f.do(t, request(http.MethodPost, entraPath, "application/scim+json", twoStates, bearerToken(scimToken))); rec.Code != http.StatusAccepted {
			t.Fatalf("attempt %d: status %d, body %s", attempt+1, rec.Code, rec.Body)
		}
		if n := len(f.storedEvents(t)); n != 2 {
			t.Fatalf("after attempt %d: %d events stored, want 2", attempt+1, n)
		}
	}
	if rec := f.do(t, request(http.MethodPost, entraPath, "application/scim+json", scimBulk(scimUser("E10", "Doe", false, "Engineer")), bearerToken(scimToken))); rec.Code != http.StatusAccepted {
		t.Fatalf("A alone: status %d", rec.Code)
	}
	if got := f.latestWorkerEvent(t, "entra", "E10").GetWorker().GetEmploymentStatus(); got != orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED {
		t.Errorf("latest status after A alone = %v, want terminated", got)
	}
}
