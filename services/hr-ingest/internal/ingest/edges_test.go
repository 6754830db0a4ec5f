package ingest

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/ratelimit"
	"github.com/orgsync/orgsync/pkg/redistest"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/problem"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

// clientFrom returns an HTTP client whose connections come from the loopback address ip, so
// that a test can play several clients on one machine.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	transport := &http.Transport{DialContext: dialer.DialContext}
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{Transport: transport}
}

// send posts body over HTTP from client and returns the status and the problem type, if any.
func send(t *testing.T, client *http.Client, url, contentType, body string, mutate func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if mutate != nil {
		mutate(req)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var details problem.Details
	if resp.StatusCode >= 400 {
		details = decodeBody[problem.Details](t, resp)
	}
	return resp.StatusCode, strings.TrimPrefix(details.Type, problem.TypeBase)
}

// TestUnauthenticatedFloodCannotSpendSourceBudget floods a rate-limited source with unsigned
// or wrongly signed requests from one address, then sends the HR system's correctly signed
// request from another: the flood is answered 401, then 429 once its address has spent its
// budget of failures, and never touches the source's budget, so the HR system is served.
func TestUnauthenticatedFloodCannotSpendSourceBudget(t *testing.T) {
	const flood = 30
	failures := ratelimit.Limit{Events: 5, Period: time.Hour} // 5 failures, then 429
	redisURL := redistest.Start(t)
	limiters := []struct {
		name string
		url  string
	}{{name: "shared in Redis", url: redisURL}, {name: "in this replica"}}
	kinds := []struct {
		name    string
		path    string
		content string
		body    string
		bad     func(*http.Request)
		good    func(*http.Request)
	}{
		{name: "canonical", path: "/v1/sources/limited/events", content: "application/json", body: hire,
			bad: func(r *http.Request) {
				webhook.SetHeaders(r.Header, nextSecret, "msg_forged", time.Now(), []byte(hire))
				r.Header.Set(webhook.HeaderSignature, "v1,Zm9yZ2Vk")
			},
			good: func(r *http.Request) { webhook.SetHeaders(r.Header, secret, "msg_hr", now, []byte(hire)) }},
		{name: "scim", path: "/v1/sources/limited-scim/scim/Bulk", content: "application/scim+json", body: scimBulk(scimUser("E5", "Doe", true, "Engineer")),
			bad:  func(r *http.Request) { r.Header.Set("Authorization", "Bearer guessed-token-0123456789") },
			good: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+limitedSCIMToken) }},
	}
	for _, lim := range limiters {
		for _, kind := range kinds {
			t.Run(lim.name+"/"+kind.name, func(t *testing.T) {
				rdb, err := ratelimit.Connect(lim.url)
				if err != nil {
					t.Fatal(err)
				}
				if rdb != nil {
					t.Cleanup(func() { rdb.Close() })
					if err := rdb.FlushAll(t.Context()).Err(); err != nil {
						t.Fatal(err)
					}
				}
				f := newFixtureWith(t, realPublisher, Options{MaxBodyBytes: 4096, Now: func() time.Time { return now },
					Limiter: ratelimit.New(rdb, "orgsync:hr-ingest:", slog.New(slog.DiscardHandler)), UnauthenticatedLimit: failures})
				srv := httptest.NewServer(f.handler)
				t.Cleanup(srv.Close)

				attacker, hr := clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.3")
				got := map[string]int{}
				for range flood {
					status, kindOf := send(t, attacker, srv.URL+kind.path, kind.content, kind.body, kind.bad)
					got[strconv.Itoa(status)+" "+kindOf]++
				}
				want := map[string]int{"401 unauthenticated": 5, "429 rate-limited": flood - 5}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("answers to the flood (-want +got):\n%s", diff)
				}
				if status, kindOf := send(t, hr, srv.URL+kind.path, kind.content, kind.body, kind.good); status != http.StatusAccepted {
					t.Errorf("the HR system's signed request: %d %s, want 202", status, kindOf)
				}
				// The source's own budget (one an hour) was spent by the HR system, not the flood.
				if status, kindOf := send(t, hr, srv.URL+kind.path, kind.content, kind.body, kind.good); status != http.StatusTooManyRequests || kindOf != "rate-limited" {
					t.Errorf("the HR system's second request: %d %s, want 429 from the source's budget", status, kindOf)
				}
				if n := len(f.storedEvents(t)); n != 1 {
					t.Errorf("stored %d events, want only the HR system's", n)
				}
			})
		}
	}
}

// blockingPublisher holds every publish until release is closed, telling entered when one
// starts, so that a test can keep requests in flight without timing anything.
type blockingPublisher struct {
	inner   Publisher
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (p *blockingPublisher) Publish(ctx context.Context, subject, msgID string, m proto.Message) (*jetstream.PubAck, error) {
	p.once.Do(func() { close(p.entered) })
	select {
	case <-p.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.inner.Publish(ctx, subject, msgID, m)
}

// TestInFlightCap keeps one request in flight with a cap of one: the next is answered 503 with
// Retry-After before anything of it is read, and is served once the first has finished.
func TestInFlightCap(t *testing.T) {
	blocking := &blockingPublisher{entered: make(chan struct{}), release: make(chan struct{})}
	f := newFixtureWith(t, func(js jetstream.JetStream) Publisher {
		blocking.inner = realPublisher(js)
		return blocking
	}, Options{MaxBodyBytes: 4096, Now: func() time.Time { return now }, MaxInFlight: 1, PublishTimeout: time.Minute})
	first := make(chan int, 1)
	go func() { first <- f.post(t, "workday", "msg_first", hire, nil).Code }()
	<-blocking.entered
	rec := f.post(t, "workday", "msg_second", hire, nil)
	if got := decode[problem.Details](t, rec); rec.Code != http.StatusServiceUnavailable || got.Type != problem.TypeBase+"overloaded" || rec.Header().Get("Retry-After") != "5" {
		t.Errorf("over the cap: status %d, type %q, Retry-After %q", rec.Code, got.Type, rec.Header().Get("Retry-After"))
	}
	close(blocking.release)
	if code := <-first; code != http.StatusAccepted {
		t.Errorf("the request in flight: status %d", code)
	}
	if rec := f.post(t, "workday", "msg_second", hire, nil); rec.Code != http.StatusAccepted {
		t.Errorf("after the first finished: status %d, body %s", rec.Code, rec.Body)
	}
}

func TestClientAddressBehindTrustedProxies(t *testing.T) {
	h := newHandler(t, nil, nil, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	tests := []struct {
		name         string
		remote       string
		forwardedFor []string
		wantClientIP string
	}{
		{name: "direct client", remote: "192.0.2.7:5000", wantClientIP: "192.0.2.7"},
		{name: "a direct client cannot choose its address", remote: "192.0.2.7:5000", forwardedFor: []string{"198.51.100.1"}, wantClientIP: "192.0.2.7"},
		{name: "through the ingress", remote: "10.1.2.3:443", forwardedFor: []string{"198.51.100.1"}, wantClientIP: "198.51.100.1"},
		{name: "the nearest untrusted hop, not what the client wrote first", remote: "10.1.2.3:443", forwardedFor: []string{"203.0.113.9, 198.51.100.1, 10.4.5.6"}, wantClientIP: "198.51.100.1"},
		{name: "IPv4 in IPv6", remote: "[::ffff:192.0.2.8]:5000", wantClientIP: "192.0.2.8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", nil)
			req.RemoteAddr = tt.remote
			for _, v := range tt.forwardedFor {
				req.Header.Add("X-Forwarded-For", v)
			}
			if got := h.client(req); got != tt.wantClientIP {
				t.Errorf("client = %q, want %q", got, tt.wantClientIP)
			}
		})
	}
}

func decodeBody[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decoding the answer (%d): %v", resp.StatusCode, err)
	}
	return v
}
