package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/natsembed"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
)

// stopAfter is a Publisher that shuts the JetStream server down once it has published `after`
// events, so the outage falls in the middle of a request at a known point.
type stopAfter struct {
	inner Publisher
	after int
	stop  func()

	mu        sync.Mutex
	published int
}

func (p *stopAfter) Publish(ctx context.Context, subject, msgID string, m proto.Message) (*jetstream.PubAck, error) {
	p.mu.Lock()
	p.published++
	if p.published == p.after+1 && p.stop != nil {
		p.stop()
		p.stop = nil
	}
	p.mu.Unlock()
	return p.inner.Publish(ctx, subject, msgID, m)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestJetStreamStopsMidRequest stops JetStream after 3 of a batch's 10 events were stored: the
// sender gets 503 with Retry-After; after JetStream is back on the same port and store, the same
// request is retried and every event is on stream HR exactly once.
func TestJetStreamStopsMidRequest(t *testing.T) {
	port, storeDir := freePort(t), t.TempDir()
	start := func() *server.Server {
		srv, err := natsembed.Start(natsembed.Options{Port: port, StoreDir: storeDir})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	logger := slog.New(slog.DiscardHandler)
	nc, js, err := stream.Connect(t.Context(), srv.ClientURL(), "hr-ingest-test", stream.DefaultConfig(), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	publisher := &stopAfter{inner: stream.NewPublisher(js), after: 3, stop: func() { srv.Shutdown(); srv.WaitForShutdown() }}
	h, err := NewHandler(testSources(), publisher, Options{PublishTimeout: 500 * time.Millisecond, RetryAfter: 2 * time.Second, Now: func() time.Time { return now }, History: NewJetStreamHistory(js)}, logger)
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{handler: newMux(h)}

	var events []string
	for i := range 10 {
		events = append(events, fmt.Sprintf(`{"type":"worker.updated","data":{"workerId":"E%d","name":{"givenName":"W","familyName":"%d"}}}`, i, i))
	}
	batch := "[" + strings.Join(events, ",") + "]"
	send := func() *http.Request {
		return request(http.MethodPost, "/v1/sources/workday/events", "application/json", batch, signed(secret, "msg_outage", now))
	}

	rec := f.do(t, send())
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("during the outage: status %d, Retry-After %q, body %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}

	srv = start()
	// The sender waits and retries, as Retry-After asks; the client reconnects meanwhile.
	deadline := time.Now().Add(30 * time.Second)
	for nc.Status() != nats.CONNECTED && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	var retry Accepted
	for attempt := 1; ; attempt++ {
		rec = f.do(t, send())
		if rec.Code == http.StatusAccepted {
			retry = decode[Accepted](t, rec)
			break
		}
		if rec.Code != http.StatusServiceUnavailable || attempt == 20 {
			t.Fatalf("retry %d: status %d, body %s", attempt, rec.Code, rec.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if retry.Duplicates < 3 {
		t.Errorf("retry found %d events already stored, want at least the 3 stored before the outage", retry.Duplicates)
	}

	count := map[string]int{}
	for _, e := range streamtest.HREvents(t, js) {
		count[e.GetEventId()]++
	}
	want := map[string]int{}
	for i := range 10 {
		want["msg_outage."+strconv.Itoa(i)] = 1
	}
	if diff := cmp.Diff(want, count); diff != "" {
		t.Errorf("copies of each event on stream HR (-want +got):\n%s", diff)
	}
}
