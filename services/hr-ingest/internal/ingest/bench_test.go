package ingest

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/ratelimit"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/scim"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

// benchJetStream starts JetStream on file storage (the default stream config) and returns a
// publisher over a fresh connection.
func benchJetStream(b *testing.B) (*stream.Publisher, jetstream.JetStream) {
	b.Helper()
	srv := streamtest.StartBare(b)
	js := srv.JS
	cfg := stream.DefaultConfig()
	if cfg.Storage != jetstream.FileStorage {
		b.Fatal("the benchmark measures file storage")
	}
	if err := stream.EnsureStreams(b.Context(), js, cfg); err != nil {
		b.Fatal(err)
	}
	return stream.NewPublisher(js), js
}

func reportRate(b *testing.B, events int64) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPublish measures events per second to a JetStream acknowledgement on file storage:
// raw (stream.Publisher, the floor hr-ingest builds on) next to hr-ingest's HTTP endpoints over
// loopback (verify, parse, normalise, publish, answer 202). Each iteration is one request; the
// parallel variants keep 8 senders per core in flight.
func BenchmarkPublish(b *testing.B) {
	worker := func(i int64) *orgsyncv1.HREvent {
		return &orgsyncv1.HREvent{EventId: fmt.Sprintf("bench-%d", i), Source: "workday", Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{
			WorkerId: fmt.Sprintf("E%d", i%5000), Name: &orgsyncv1.PersonName{GivenName: "Jane", FamilyName: "Doe"}, OrgUnitId: "sales",
		}}}
	}
	b.Run("raw-jetstream/sequential", func(b *testing.B) {
		publisher, _ := benchJetStream(b)
		var n int64
		for b.Loop() {
			n++
			event := worker(n)
			if _, err := publisher.Publish(b.Context(), subject.HRWorkerSubject("workday", event.GetWorker().GetWorkerId()), "workday:"+event.GetEventId(), event); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, n)
	})
	b.Run("raw-jetstream/parallel", func(b *testing.B) {
		publisher, _ := benchJetStream(b)
		var n atomic.Int64
		b.SetParallelism(8) // 16 concurrent senders on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				event := worker(n.Add(1))
				if _, err := publisher.Publish(b.Context(), subject.HRWorkerSubject("workday", event.GetWorker().GetWorkerId()), "workday:"+event.GetEventId(), event); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, n.Load())
	})

	newIngest := func(b *testing.B) *httptest.Server {
		publisher, js := benchJetStream(b)
		// The real clock (Options.Now unset): signatures are made as the benchmark runs.
		h := newHandler(b, []source.Config{
			{Name: "workday", Secrets: []webhook.Secret{secret}},
			{Name: "entra", Kind: source.KindSCIM, Tokens: []string{scimToken}},
			{Name: "export", Kind: source.KindCSV, Tokens: []string{exportToken}},
		}, publisher, Options{MaxBodyBytes: 4 << 20, Limiter: ratelimit.New(nil, "", slog.New(slog.DiscardHandler)), History: NewJetStreamHistory(js)})
		srv := httptest.NewServer(newMux(h))
		b.Cleanup(srv.Close)
		// Keep a connection per sender rather than dialling anew (the default keeps 2 idle).
		srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64
		return srv
	}
	post := func(b *testing.B, client *http.Client, url, contentType, body string, sign func(*http.Request)) {
		req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		sign(req)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	canonicalEvent := func(i int64) string {
		return fmt.Sprintf(`{"type":"worker.updated","data":{"workerId":"E%d","name":{"givenName":"Jane","familyName":"Doe"},"orgUnitId":"sales","workEmail":"jane.doe@example.com"}}`, i%5000)
	}
	sign := func(id, body string) func(*http.Request) {
		return func(r *http.Request) { webhook.SetHeaders(r.Header, secret, id, time.Now(), []byte(body)) }
	}
	b.Run("hr-ingest/canonical-1-event/sequential", func(b *testing.B) {
		srv := newIngest(b)
		var n int64
		for b.Loop() {
			n++
			body := canonicalEvent(n)
			post(b, srv.Client(), srv.URL+"/v1/sources/workday/events", "application/json", body, sign(fmt.Sprintf("msg_%d", n), body))
		}
		reportRate(b, n)
	})
	b.Run("hr-ingest/canonical-1-event/parallel", func(b *testing.B) {
		srv := newIngest(b)
		var n atomic.Int64
		b.SetParallelism(8) // 16 concurrent senders on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				body := canonicalEvent(i)
				post(b, srv.Client(), srv.URL+"/v1/sources/workday/events", "application/json", body, sign(fmt.Sprintf("msg_%d", i), body))
			}
		})
		reportRate(b, n.Load())
	})
	b.Run("hr-ingest/canonical-batch-100/sequential", func(b *testing.B) {
		srv := newIngest(b)
		var n, events int64
		for b.Loop() {
			n++
			parts := make([]string, 100)
			for i := range parts {
				parts[i] = canonicalEvent(n*100 + int64(i))
			}
			body := "[" + strings.Join(parts, ",") + "]"
			post(b, srv.Client(), srv.URL+"/v1/sources/workday/events", "application/json", body, sign(fmt.Sprintf("batch_%d", n), body))
			events += 100
		}
		reportRate(b, events)
	})
	b.Run("hr-ingest/scim-bulk-50/sequential", func(b *testing.B) {
		srv := newIngest(b)
		var n, events int64
		for b.Loop() {
			n++
			ops := make([]string, 50)
			for i := range ops {
				ops[i] = fmt.Sprintf(`{"method":"POST","bulkId":"%d","path":"/Users","data":{"externalId":"E%d","name":{"givenName":"Jane","familyName":"Doe %d"},"active":true,`+
					`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","manager":{"value":"M1"}}}}`, i, i, n)
			}
			body := `{"schemas":["` + scim.BulkRequestSchema + `"],"Operations":[` + strings.Join(ops, ",") + `]}`
			post(b, srv.Client(), srv.URL+entraPath, "application/scim+json", body, bearerToken(scimToken))
			events += 50
		}
		reportRate(b, events)
	})
	b.Run("hr-ingest/csv-snapshot-1000-rows", func(b *testing.B) {
		srv := newIngest(b)
		var n, events int64
		for b.Loop() {
			n++
			var csv strings.Builder
			csv.WriteString("workerId,givenName,familyName,workEmail,orgUnitId\n")
			for i := range 1000 {
				fmt.Fprintf(&csv, "E%d,Jane,Doe %d,jane.%d@example.com,sales\n", i, n, i)
			}
			post(b, srv.Client(), srv.URL+"/v1/sources/export/snapshots", "text/csv", csv.String(), bearerToken(exportToken))
			events += 1002 // the markers are events too
		}
		reportRate(b, events)
	})
}
