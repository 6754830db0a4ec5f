package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/orgsync/orgsync/pkg/ratelimit"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/bamboohr"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/hibob"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/personio"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/vendortest"
)

const (
	bambooAPIKey    = "bamboo-api-key-0123456789"
	hibobUser       = "SERVICE-4711"
	hibobToken      = "hibob-token-0123456789abcdef"
	hibobSecretText = "hibob-webhook-secret-0123456789"
	personioClient  = "papi-client-0123456789"
	personioSecret  = "papi-secret-0123456789abcdef"
	personioHook    = "Bearer personio-webhook-token-0123456789"
)

// fakeVendor is one vendor under test: its fake API, a source configured against it (with good
// or bad API credentials), how a signed notification looks, and what the fetched worker becomes.
type fakeVendor struct {
	name string
	// fake is the vendor's fake API.
	fake interface {
		Fail(...vendortest.Fault)
		Stop()
		Start()
		Requests() int
	}
	// source configures a source named name against the fake, with good API credentials or not.
	source func(name string, goodCredentials bool) source.Config
	// notification is a signed (or, wrongly, signed) webhook saying employeeID changed or left.
	notification func(t *testing.T, sourceName, employeeID string, left, goodSignature bool) *http.Request
	// hire stores an employee at the fake; leave removes it (404 from then on).
	hire, leave func(employeeID string)
	// hireWithEmail stores an employee whose work e-mail is email.
	hireWithEmail func(employeeID, email string)
	// emailPointer is where the e-mail is in the vendor's record.
	emailPointer string
	// worker is the worker the fake's record of employeeID becomes.
	worker func(employeeID string) *orgsyncv1.Worker
	// readsWhenRefused is how many employee reads reach the fake when it refuses the source's
	// API credentials: one, or none when a token endpoint refuses them first.
	readsWhenRefused int
}

func vendors(t *testing.T) []fakeVendor {
	bamboo := vendortest.NewBambooHR(t, "acme", bambooAPIKey)
	bob := vendortest.NewHiBob(t, hibobUser, hibobToken)
	papi := vendortest.NewPersonio(t, personioClient, personioSecret)
	return []fakeVendor{
		{
			name:             "bamboohr",
			readsWhenRefused: 1,
			fake:             bamboo,
			source: func(name string, good bool) source.Config {
				key := bambooAPIKey
				if !good {
					key = "revoked-api-key-0123456789"
				}
				return source.Config{Name: name, Kind: source.KindBambooHR, Keys: [][]byte{bambooKey},
					API: source.API{BaseURL: bamboo.BaseURL(), Token: key}}
			},
			notification: func(t *testing.T, sourceName, employeeID string, left, good bool) *http.Request {
				kind := bamboohr.EventUpdated
				if left {
					kind = bamboohr.EventDeleted
				}
				body := fmt.Sprintf(`{"type":%q,"timestamp":"2026-03-01T08:59:00Z","data":{"companyId":"acme","employeeId":%q,"changedFields":["jobTitle"]}}`, kind, employeeID)
				key := bambooKey
				if !good {
					key = []byte("someone-elses-key-0123456789")
				}
				return request(http.MethodPost, "/v1/sources/"+sourceName+"/events", "application/json", body, bambooSigned(key, strconv.FormatInt(now.Unix(), 10)))
			},
			hire: func(id string) {
				bamboo.Put(id, map[string]string{"firstName": "Jane", "lastName": "Doe", "workEmail": "Jane.Doe@Example.com",
					"jobTitle": "Engineer", "department": "Research", "supervisorEId": "42", "status": "Active", "hireDate": "2026-02-01"})
			},
			hireWithEmail: func(id, email string) {
				bamboo.Put(id, map[string]string{"firstName": "Jane", "lastName": "Doe", "workEmail": email})
			},
			emailPointer: "/fields/Work Email",
			leave:        bamboo.Delete,
			worker: func(id string) *orgsyncv1.Worker {
				return &orgsyncv1.Worker{WorkerId: id, Name: &orgsyncv1.PersonName{GivenName: "Jane", FamilyName: "Doe"},
					WorkEmail: "jane.doe@example.com", JobTitle: "Engineer", Department: "Research", ManagerWorkerId: "42",
					HireDate:         &orgsyncv1.Date{Year: 2026, Month: 2, Day: 1},
					EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE}
			},
		},
		{
			name:             "hibob",
			readsWhenRefused: 1,
			fake:             bob,
			source: func(name string, good bool) source.Config {
				token := hibobToken
				if !good {
					token = "revoked-token-0123456789"
				}
				return source.Config{Name: name, Kind: source.KindHiBob, Keys: [][]byte{[]byte(hibobSecretText)},
					API: source.API{BaseURL: bob.BaseURL(), User: hibobUser, Token: token}}
			},
			notification: func(t *testing.T, sourceName, employeeID string, left, good bool) *http.Request {
				kind := hibob.EventUpdated
				if left {
					kind = hibob.EventDeleted
				}
				body := fmt.Sprintf(`{"companyId":601234,"type":%q,"triggeredBy":"3332883884017713238","triggeredAt":"2026-03-01T08:59:00.123Z","version":"v2","data":{"employeeId":%q,"fieldIds":["work.title"]}}`, kind, employeeID)
				secret := []byte(hibobSecretText)
				if !good {
					secret = []byte("not-the-webhook-secret")
				}
				return request(http.MethodPost, "/v1/sources/"+sourceName+"/events", "application/json", body, func(r *http.Request) {
					r.Header.Set(hibob.HeaderSignature, hibob.Sign(secret, []byte(body)))
				})
			},
			hire: func(id string) {
				bob.Put(id, fmt.Sprintf(`{"id":%q,"firstName":"Jane","surname":"Doe","displayName":"Jane Doe","email":"Jane.Doe@Example.com",
					"work":{"title":"Engineer","department":"Research","site":"London","reportsTo":{"id":"42","displayName":"Boss"},"startDate":"2026-02-01"},
					"internal":{"status":"Active"},"/root/id":{"value":%q}}`, id, id))
			},
			hireWithEmail: func(id, email string) {
				bob.Put(id, fmt.Sprintf(`{"id":%q,"firstName":"Jane","surname":"Doe","email":%q}`, id, email))
			},
			emailPointer: "/email",
			leave:        bob.Delete,
			worker: func(id string) *orgsyncv1.Worker {
				return &orgsyncv1.Worker{WorkerId: id, Name: &orgsyncv1.PersonName{GivenName: "Jane", FamilyName: "Doe", DisplayName: "Jane Doe"},
					WorkEmail: "jane.doe@example.com", JobTitle: "Engineer", Department: "Research", Location: "London", ManagerWorkerId: "42",
					StartDate:        &orgsyncv1.Date{Year: 2026, Month: 2, Day: 1},
					EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE}
			},
		},
		{
			name: "personio",
			fake: papi,
			source: func(name string, good bool) source.Config {
				secret := personioSecret
				if !good {
					secret = "revoked-secret-0123456789"
				}
				return source.Config{Name: name, Kind: source.KindPersonio, Keys: [][]byte{[]byte(personioHook)},
					API: source.API{BaseURL: papi.BaseURL(), User: personioClient, Token: secret}}
			},
			notification: func(t *testing.T, sourceName, employeeID string, left, good bool) *http.Request {
				kind := personio.EventPersonUpdated
				if left {
					kind = personio.EventPersonDeleted
				}
				body := fmt.Sprintf(`{"company_id":"4711","event_name":%q,"occurred_at":"2026-03-01T08:59:00Z","payload":{"id":%q},"meta":{}}`, kind, employeeID)
				token := personioHook
				if !good {
					token = "Bearer someone-elses-token"
				}
				return request(http.MethodPost, "/v1/sources/"+sourceName+"/events", "application/json", body, func(r *http.Request) {
					r.Header.Set("Authorization", token)
				})
			},
			hire: func(id string) {
				papi.Put(id, map[string]any{"first_name": "Jane", "last_name": "Doe", "email": "Jane.Doe@Example.com"},
					map[string]any{"id": "emp-2", "status": "ACTIVE", "start_date": "2026-02-01",
						"position": map[string]any{"title": "Engineer"}, "supervisor": map[string]any{"id": "42"}},
					map[string]any{"id": "emp-1", "status": "INACTIVE", "start_date": "2020-01-01",
						"position": map[string]any{"title": "Intern"}})
			},
			hireWithEmail: func(id, email string) {
				papi.Put(id, map[string]any{"first_name": "Jane", "last_name": "Doe", "email": email})
			},
			emailPointer: "/email",
			leave:        papi.Delete,
			worker: func(id string) *orgsyncv1.Worker {
				return &orgsyncv1.Worker{WorkerId: id, Name: &orgsyncv1.PersonName{GivenName: "Jane", FamilyName: "Doe"},
					WorkEmail: "jane.doe@example.com", JobTitle: "Engineer", ManagerWorkerId: "42",
					StartDate:        &orgsyncv1.Date{Year: 2026, Month: 2, Day: 1},
					EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE}
			},
		},
	}
}

// pullFixture is hr-ingest's pipeline with notification sources over a fresh embedded
// JetStream, and the fetcher running until the test ends.
type pullFixture struct {
	fixture
	fetcher *notify.Fetcher
}

func newPullFixture(t *testing.T, configs ...source.Config) pullFixture {
	t.Helper()
	srv := streamtest.Start(t)
	js := srv.JS
	if _, err := notify.EnsureStream(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	h := newHandler(t, configs, stream.NewPublisher(js), Options{Now: func() time.Time { return now },
		Limiter: ratelimit.New(nil, "", logger), History: NewJetStreamHistory(js), Notifier: notify.NewStore(js)})
	fetcher := notify.NewFetcher(js, FetchClients(configs), h.PublishEvent,
		notify.FetcherOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, AckWait: 10 * time.Second}, logger)
	run, err := fetcher.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The fetcher runs until the test's cleanup, which waits for it.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := run(ctx); err != nil {
			t.Errorf("fetcher: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return pullFixture{fixture: fixture{handler: newMux(h), js: js}, fetcher: fetcher}
}

// eventually polls cond until it holds, failing the test after a generous deadline (the test
// waits for work to happen; it asserts no duration).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f pullFixture) workers(t *testing.T) []*orgsyncv1.Worker {
	var workers []*orgsyncv1.Worker
	for _, event := range f.storedEvents(t) {
		workers = append(workers, event.GetWorker())
	}
	return workers
}

func (f pullFixture) status(t *testing.T, sourceName string) notify.SourceStatus {
	t.Helper()
	statuses, err := f.fetcher.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range statuses {
		if s.Source == sourceName {
			return s
		}
	}
	t.Fatalf("no status of source %s in %v", sourceName, statuses)
	return notify.SourceStatus{}
}

func TestNotificationPulls(t *testing.T) {
	for _, vendor := range vendors(t) {
		t.Run(vendor.name, func(t *testing.T) {
			t.Run("a signed notification leads to a fetch and the worker's event", func(t *testing.T) {
				f := newPullFixture(t, vendor.source("hr", true))
				vendor.hire("1001")
				rec := f.do(t, vendor.notification(t, "hr", "1001", false, true))
				if rec.Code != http.StatusAccepted {
					t.Fatalf("status %d, want 202: %s", rec.Code, rec.Body)
				}
				eventually(t, "the worker's event is in stream HR", func() bool { return len(f.storedEvents(t)) == 1 })
				event := f.storedEvents(t)[0]
				if diff := cmp.Diff(vendor.worker("1001"), event.GetWorker(), protocmp.Transform()); diff != "" {
					t.Errorf("worker (-want +got):\n%s", diff)
				}
				if event.GetSource() != "hr" || event.GetReceivedAt().AsTime() != now || event.GetEventId() == "" {
					t.Errorf("event source %q, received %v, id %q; want hr, %v, an id", event.GetSource(), event.GetReceivedAt().AsTime(), event.GetEventId(), now)
				}
				eventually(t, "nothing is pending", func() bool { return f.status(t, "hr").Pending == 0 })
				// The vendor's retry of the same delivery is stored once: no second event.
				if rec := f.do(t, vendor.notification(t, "hr", "1001", false, true)); rec.Code != http.StatusAccepted {
					t.Fatalf("retry: status %d, want 202: %s", rec.Code, rec.Body)
				}
				if got := f.status(t, "hr"); got.Pending != 0 || got.Parked != 0 {
					t.Errorf("after the vendor's retry: %+v, want nothing pending or parked", got)
				}
			})
			t.Run("a wrong signature is 401 and fetches nothing", func(t *testing.T) {
				f := newPullFixture(t, vendor.source("hr", true))
				vendor.hire("1002")
				before := vendor.fake.Requests()
				rec := f.do(t, vendor.notification(t, "hr", "1002", false, false))
				if rec.Code != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401: %s", rec.Code, rec.Body)
				}
				if got := f.status(t, "hr"); got.Pending != 0 || got.Parked != 0 {
					t.Errorf("status %+v, want nothing stored", got)
				}
				if got := vendor.fake.Requests(); got != before {
					t.Errorf("the vendor API was read %d times, want none", got-before)
				}
				if got := f.storedEvents(t); len(got) != 0 {
					t.Errorf("stream HR holds %d events, want none", len(got))
				}
			})
			t.Run("429 with Retry-After and 5xx are retried and the change arrives", func(t *testing.T) {
				f := newPullFixture(t, vendor.source("hr", true))
				vendor.hire("1003")
				before := vendor.fake.Requests()
				vendor.fake.Fail(vendortest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"},
					vendortest.Fault{Status: http.StatusServiceUnavailable}, vendortest.Fault{Status: http.StatusInternalServerError})
				if rec := f.do(t, vendor.notification(t, "hr", "1003", false, true)); rec.Code != http.StatusAccepted {
					t.Fatalf("status %d, want 202: %s", rec.Code, rec.Body)
				}
				eventually(t, "the worker's event is in stream HR", func() bool { return len(f.storedEvents(t)) == 1 })
				if diff := cmp.Diff([]*orgsyncv1.Worker{vendor.worker("1003")}, f.workers(t), protocmp.Transform()); diff != "" {
					t.Errorf("workers (-want +got):\n%s", diff)
				}
				if got := vendor.fake.Requests() - before; got != 4 {
					t.Errorf("the vendor API was read %d times, want 4 (429, 503, 500, 200)", got)
				}
				if got := f.status(t, "hr").LastErrorClass; got != notify.ClassUnavailable {
					t.Errorf("last error class %q, want %q", got, notify.ClassUnavailable)
				}
			})
			t.Run("the vendor API down for a while loses nothing", func(t *testing.T) {
				f := newPullFixture(t, vendor.source("hr", true))
				vendor.hire("1004")
				vendor.fake.Stop()
				if rec := f.do(t, vendor.notification(t, "hr", "1004", false, true)); rec.Code != http.StatusAccepted {
					t.Fatalf("status %d, want 202 while the vendor API is down: %s", rec.Code, rec.Body)
				}
				eventually(t, "the failing fetch shows in the status", func() bool {
					s := f.status(t, "hr")
					return s.Pending == 1 && !s.OldestPending.IsZero() && s.LastErrorClass == notify.ClassUnavailable
				})
				if got := f.storedEvents(t); len(got) != 0 {
					t.Fatalf("stream HR holds %d events while the vendor is down, want none", len(got))
				}
				vendor.fake.Start()
				eventually(t, "the worker's event is in stream HR", func() bool { return len(f.storedEvents(t)) == 1 })
				if diff := cmp.Diff([]*orgsyncv1.Worker{vendor.worker("1004")}, f.workers(t), protocmp.Transform()); diff != "" {
					t.Errorf("workers (-want +got):\n%s", diff)
				}
				eventually(t, "nothing is pending", func() bool { return f.status(t, "hr").Pending == 0 })
			})
			t.Run("bad API credentials are parked and visible, not retried", func(t *testing.T) {
				f := newPullFixture(t, vendor.source("revoked", false))
				vendor.hire("1005")
				before := vendor.fake.Requests()
				if rec := f.do(t, vendor.notification(t, "revoked", "1005", false, true)); rec.Code != http.StatusAccepted {
					t.Fatalf("status %d, want 202: %s", rec.Code, rec.Body)
				}
				// Parking stores the notification on its parked subject before it takes it off
				// the pending one, so for a moment it is both: wait for the end state.
				eventually(t, "the notification is parked and no longer pending", func() bool {
					s := f.status(t, "revoked")
					return s.Parked == 1 && s.Pending == 0
				})
				got := f.status(t, "revoked")
				if got.Pending != 0 || got.LastErrorClass != notify.ClassUnauthorized {
					t.Errorf("status %+v, want nothing pending and last error %q", got, notify.ClassUnauthorized)
				}
				if n := vendor.fake.Requests() - before; n != vendor.readsWhenRefused {
					t.Errorf("the vendor API was asked for the employee %d times, want %d (not retried)", n, vendor.readsWhenRefused)
				}
				if events := f.storedEvents(t); len(events) != 0 {
					t.Errorf("stream HR holds %d events, want none", len(events))
				}
			})
			t.Run("an employee deleted at the vendor is terminated", func(t *testing.T) {
				f := newPullFixture(t, vendor.source("hr", true))
				vendor.hire("1006")
				vendor.leave("1006")
				if rec := f.do(t, vendor.notification(t, "hr", "1006", true, true)); rec.Code != http.StatusAccepted {
					t.Fatalf("status %d, want 202: %s", rec.Code, rec.Body)
				}
				eventually(t, "the worker's event is in stream HR", func() bool { return len(f.storedEvents(t)) == 1 })
				want := []*orgsyncv1.Worker{{WorkerId: "1006", EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED}}
				if diff := cmp.Diff(want, f.workers(t), protocmp.Transform()); diff != "" {
					t.Errorf("workers (-want +got):\n%s", diff)
				}
			})
			t.Run("a record orgsync cannot map is parked, its values kept out of the reason", func(t *testing.T) {
				f := newPullFixture(t, vendor.source("hr", true))
				vendor.hireWithEmail("1007", "not an address")
				if rec := f.do(t, vendor.notification(t, "hr", "1007", false, true)); rec.Code != http.StatusAccepted {
					t.Fatalf("status %d, want 202: %s", rec.Code, rec.Body)
				}
				eventually(t, "the notification is parked", func() bool { return f.status(t, "hr").Parked == 1 })
				s, err := f.js.Stream(t.Context(), notify.Stream)
				if err != nil {
					t.Fatal(err)
				}
				parked, err := s.GetLastMsgForSubject(t.Context(), notify.ParkedSubject("hr", "1007"))
				if err != nil {
					t.Fatal(err)
				}
				reason := parked.Header.Get(notify.ReasonHeader)
				if !strings.HasPrefix(reason, notify.ClassInvalid) || !strings.Contains(reason, vendor.emailPointer) || strings.Contains(reason, "not an address") {
					t.Errorf("parked reason %q, want class %s naming %s without the value", reason, notify.ClassInvalid, vendor.emailPointer)
				}
				if events := f.storedEvents(t); len(events) != 0 {
					t.Errorf("stream HR holds %d events, want none", len(events))
				}
			})
			t.Run("an update of an unknown employee is parked with its reason", func(t *testing.T) {
				f := newPullFixture(t, vendor.source("hr", true))
				if rec := f.do(t, vendor.notification(t, "hr", "9999", false, true)); rec.Code != http.StatusAccepted {
					t.Fatalf("status %d, want 202: %s", rec.Code, rec.Body)
				}
				eventually(t, "the notification is parked", func() bool { return f.status(t, "hr").Parked == 1 })
				s, err := f.js.Stream(t.Context(), notify.Stream)
				if err != nil {
					t.Fatal(err)
				}
				parked, err := s.GetLastMsgForSubject(t.Context(), notify.ParkedSubject("hr", "9999"))
				if err != nil {
					t.Fatal(err)
				}
				if got := parked.Header.Get(notify.ReasonHeader); got == "" || got[:len(notify.ClassNotFound)] != notify.ClassNotFound {
					t.Errorf("parked reason %q, want it to start with %q", got, notify.ClassNotFound)
				}
			})
		})
	}
}
