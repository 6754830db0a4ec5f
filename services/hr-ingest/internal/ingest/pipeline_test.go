package ingest

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/pkg/ratelimit"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/hibob"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/problem"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

// TestEveryKindGoesThroughOnePipeline sends the same four kinds of request to a source of every
// kind, through the real routes and an embedded JetStream: bad credentials, a bad body, a good
// body and one over the limit. Each source may make 2 requests an hour. A flood of requests with
// bad credentials comes first, from the same address as the real sender: were the budget spent
// before authentication, the flood would use it up and the sender's own requests would be
// refused 429.
func TestEveryKindGoesThroughOnePipeline(t *testing.T) {
	wrongSecret, err := webhook.ParseSecret("whsec_d3Jvbmctc2VjcmV0LWZvci10ZXN0cy0wMTI=")
	if err != nil {
		t.Fatal(err)
	}
	limited := func(cfg source.Config) source.Config {
		cfg.RateRequests, cfg.RatePeriod, cfg.RateBurst = 2, time.Hour, 2
		return cfg
	}
	configs := []source.Config{
		limited(source.Config{Name: "c", Kind: source.KindCanonical, Secrets: []webhook.Secret{secret}}),
		limited(source.Config{Name: "b", Kind: source.KindBambooHR, Keys: [][]byte{bambooKey}}),
		limited(source.Config{Name: "s", Kind: source.KindSCIM, Tokens: []string{scimToken}}),
		limited(source.Config{Name: "x", Kind: source.KindCSV, Tokens: []string{exportToken}, CSVColumns: exportMapping}),
		limited(source.Config{Name: "h", Kind: source.KindHiBob, Keys: [][]byte{[]byte(hibobSecretText)},
			API: source.API{BaseURL: "https://api.hibob.com/v1", User: hibobUser, Token: hibobToken}}),
		limited(source.Config{Name: "p", Kind: source.KindPersonio, Keys: [][]byte{[]byte(personioHook)},
			API: source.API{BaseURL: "https://api.personio.de", User: personioClient, Token: personioSecret}}),
	}
	bambooBody := string(readFile(t, "../bamboohr/testdata/field-based-updated.json"))
	scimBody := string(readFile(t, "../scim/testdata/entra-bulk-enterprise.json"))
	csvBody := string(readFile(t, "../snapshot/testdata/export.csv"))
	personioBody := `{"company_id":"4711","event_name":"person.updated","occurred_at":"2026-03-01T08:59:00Z","payload":{"id":"12345"}}`
	hibobBody := `{"companyId":601234,"type":"employee.updated","triggeredBy":"1","triggeredAt":"2026-03-01T08:59:00Z","version":"v2","data":{"employeeId":"3332883884017713238"}}`
	nowUnix := strconv.FormatInt(now.Unix(), 10)
	deliveries := 0
	canonicalSigned := func(s webhook.Secret) func(*http.Request) {
		deliveries++
		return signed(s, fmt.Sprintf("msg_%d", deliveries), now)
	}

	kinds := []struct {
		kind source.Kind
		// request builds a request with body, authenticated (good) or not.
		request    func(body string, good bool) *http.Request
		goodBody   string
		badBody    string
		badPointer string
		// events is how many events the good body publishes.
		events int
	}{
		{
			kind: source.KindCanonical,
			request: func(body string, good bool) *http.Request {
				sign := canonicalSigned(secret)
				if !good {
					sign = canonicalSigned(wrongSecret)
				}
				return request(http.MethodPost, "/v1/sources/c/events", "application/json", body, sign)
			},
			goodBody:   hire,
			badBody:    strings.Replace(hire, `"orgUnitId":"sales"`, `"orgUnitId":"not valid"`, 1),
			badPointer: "/data/orgUnitId",
			events:     1,
		},
		{
			kind: source.KindBambooHR,
			request: func(body string, good bool) *http.Request {
				key := bambooKey
				if !good {
					key = []byte("another-key-0123456789")
				}
				return request(http.MethodPost, "/v1/sources/b/events", "application/json", body, bambooSigned(key, nowUnix))
			},
			goodBody:   bambooBody,
			badBody:    strings.Replace(bambooBody, `"2019-04-15"`, `"15/04/2019"`, 1),
			badPointer: "/employees/0/fields/Hire Date",
			events:     1,
		},
		{
			kind: source.KindSCIM,
			request: func(body string, good bool) *http.Request {
				token := scimToken
				if !good {
					token = exportToken // a real token, of another source
				}
				return request(http.MethodPost, "/v1/sources/s/scim/Bulk", "application/scim+json", body, bearerToken(token))
			},
			goodBody:   scimBody,
			badBody:    strings.Replace(scimBody, `"externalId": "701985"`, `"externalId": ""`, 1),
			badPointer: "/Operations/1/data/externalId",
			events:     2,
		},
		{
			kind: source.KindCSV,
			request: func(body string, good bool) *http.Request {
				token := exportToken
				if !good {
					token = "not-a-token-of-anyone-0123"
				}
				return request(http.MethodPost, "/v1/sources/x/snapshots", "text/csv", body, bearerToken(token))
			},
			goodBody:   csvBody,
			badBody:    strings.Replace(csvBody, "E1002,Grace", "E 1002,Grace", 1),
			badPointer: "/rows/5/Employee ID",
			events:     3 + 2, // three workers (the export has a blank line), BEGIN and END
		},
		{
			kind: source.KindHiBob,
			request: func(body string, good bool) *http.Request {
				secret := []byte(hibobSecretText)
				if !good {
					secret = bambooKey // a real key, of another source
				}
				return request(http.MethodPost, "/v1/sources/h/events", "application/json", body, func(r *http.Request) {
					r.Header.Set(hibob.HeaderSignature, hibob.Sign(secret, []byte(body)))
				})
			},
			goodBody:   hibobBody,
			badBody:    strings.Replace(hibobBody, `"employeeId":"3332883884017713238"`, `"employeeId":""`, 1),
			badPointer: "/data/employeeId",
			events:     0, // a notification: the employee is fetched later (pull_test.go)
		},
		{
			kind: source.KindPersonio,
			request: func(body string, good bool) *http.Request {
				token := personioHook
				if !good {
					token = "Bearer " + scimToken // a real token, of another source
				}
				return request(http.MethodPost, "/v1/sources/p/events", "application/json", body, bearerHeader(token))
			},
			goodBody:   personioBody,
			badBody:    strings.Replace(personioBody, `"id":"12345"`, `"id":""`, 1),
			badPointer: "/payload/id",
			events:     0, // a notification: the person is fetched later (pull_test.go)
		},
	}
	// A poll source takes no requests: hr-ingest reads it, and its records go through the
	// pipeline's last steps (name, publish) in poll_test.go.
	received := slices.DeleteFunc(slices.Clone(source.Kinds), func(k source.Kind) bool { return k == source.KindPoll })
	if len(kinds) != len(received) {
		t.Fatalf("the table covers %d kinds; there are %d", len(kinds), len(received))
	}

	f := newFixtureWith(t, realPublisher, Options{MaxBodyBytes: 1 << 20, Now: func() time.Time { return now },
		Limiter: ratelimit.New(nil, "", slog.New(slog.DiscardHandler)), UnauthenticatedLimit: ratelimit.Limit{Events: 100, Period: time.Minute}}, configs...)
	for i, k := range kinds {
		name := configs[i].Name
		// Every kind's requests come from one address of their own.
		from := func(req *http.Request) *http.Request {
			req.RemoteAddr = fmt.Sprintf("192.0.2.%d:4000", i+1)
			return req
		}
		published := func(t *testing.T) int {
			t.Helper()
			n := 0
			for _, event := range f.storedEvents(t) {
				if event.GetSource() == name {
					n++
				}
			}
			return n
		}
		wantProblem := func(t *testing.T, rec *httptest.ResponseRecorder, status int) problem.Details {
			t.Helper()
			if rec.Code != status || rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("answer = %d %s %s, want a %d problem", rec.Code, rec.Header().Get("Content-Type"), rec.Body, status)
			}
			return decode[problem.Details](t, rec)
		}
		t.Run(string(k.kind), func(t *testing.T) {
			t.Run("bad auth", func(t *testing.T) {
				for range 5 {
					rec := f.do(t, from(k.request(k.goodBody, false)))
					wantProblem(t, rec, http.StatusUnauthorized)
					if rec.Header().Get("Retry-After") != "" {
						t.Errorf("a 401 carries Retry-After %q", rec.Header().Get("Retry-After"))
					}
				}
				if n := published(t); n != 0 {
					t.Errorf("%d events published", n)
				}
			})
			t.Run("bad body", func(t *testing.T) {
				got := wantProblem(t, f.do(t, from(k.request(k.badBody, true))), http.StatusBadRequest)
				var pointers []string
				for _, e := range got.Errors {
					pointers = append(pointers, e.Pointer)
				}
				if diff := cmp.Diff([]string{k.badPointer}, pointers); diff != "" {
					t.Errorf("fields named (-want +got):\n%s", diff)
				}
				if n := published(t); n != 0 {
					t.Errorf("%d events published", n)
				}
			})
			t.Run("good body", func(t *testing.T) {
				if rec := f.do(t, from(k.request(k.goodBody, true))); rec.Code != http.StatusAccepted {
					t.Fatalf("status = %d %s: the flood of bad credentials spent the sender's budget?", rec.Code, rec.Body)
				}
				if n := published(t); n != k.events {
					t.Errorf("%d events published, want %d", n, k.events)
				}
			})
			t.Run("over the limit", func(t *testing.T) {
				rec := f.do(t, from(k.request(k.goodBody, true)))
				wantProblem(t, rec, http.StatusTooManyRequests)
				if seconds, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || seconds < 1 {
					t.Errorf("Retry-After = %q, want whole seconds", rec.Header().Get("Retry-After"))
				}
				// Only an authenticated caller learns that the budget is spent.
				unauthenticated := f.do(t, from(k.request(k.goodBody, false)))
				wantProblem(t, unauthenticated, http.StatusUnauthorized)
				if n := published(t); n != k.events {
					t.Errorf("%d events published, want still %d", n, k.events)
				}
			})
		})
	}
}

// bearerHeader sets Authorization to exactly value (Personio sends its webhook token as
// configured, prefix included).
func bearerHeader(value string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", value) }
}
