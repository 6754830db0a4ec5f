package ingest

import (
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/problem"
)

// TestSecondSnapshotOfSourceRefused holds one upload of source "export" in flight: a second
// upload of "export" is refused with 409 and nothing of it is stored, an upload of another
// source ("payroll") is not held up, and once the first has ended "export" takes uploads again.
func TestSecondSnapshotOfSourceRefused(t *testing.T) {
	blocking := &blockingPublisher{entered: make(chan struct{}), release: make(chan struct{})}
	var js jetstream.JetStream
	f := newFixtureWith(t, func(stream jetstream.JetStream) Publisher {
		js = stream
		blocking.inner = realPublisher(stream)
		return blocking
	}, Options{MaxBodyBytes: 4096, Now: func() time.Time { return now }, PublishTimeout: time.Minute})
	upload := func(source, token, body string) *http.Request {
		return request(http.MethodPost, "/v1/sources/"+source+"/snapshots", "text/csv", body, bearerToken(token))
	}
	first := make(chan int, 1)
	go func() {
		first <- f.do(t, upload("export", exportToken, csvExport(csvRow{id: "E1", family: "Doe"}))).Code
	}()
	<-blocking.entered

	rec := f.do(t, upload("export", exportToken, csvExport(csvRow{id: "E2", family: "Roe"})))
	got := decode[problem.Details](t, rec)
	want := problem.Details{Type: problem.TypeBase + "snapshot-open", Title: "Conflict", Status: http.StatusConflict,
		Detail: `a snapshot of source "export" is being published; upload again once it has ended`}
	if diff := cmp.Diff(want, got); rec.Code != http.StatusConflict || diff != "" || rec.Header().Get("Retry-After") == "" {
		t.Errorf("second upload of the source: status %d, Retry-After %q, problem (-want +got):\n%s", rec.Code, rec.Header().Get("Retry-After"), diff)
	}

	other := make(chan int, 1)
	go func() {
		other <- f.do(t, upload("payroll", payrollToken, csvExport(csvRow{id: "P1", family: "Poe"}))).Code
	}()
	close(blocking.release)
	if code := <-first; code != http.StatusAccepted {
		t.Errorf("first upload: status %d", code)
	}
	if code := <-other; code != http.StatusAccepted {
		t.Errorf("another source's upload while the first was open: status %d", code)
	}
	if rec := f.do(t, upload("export", exportToken, csvExport(csvRow{id: "E2", family: "Roe"}))); rec.Code != http.StatusAccepted {
		t.Errorf("upload after the first ended: status %d, body %s", rec.Code, rec.Body)
	}
	for _, e := range streamtest.HREvents(t, js) {
		if e.GetSnapshotId() == "" && e.GetSnapshot() == nil {
			t.Errorf("stored a snapshot row without its snapshot id: %v", e)
		}
	}
}

// TestSnapshotLocksAcrossReplicas takes the lock through one replica's locks and tries it
// through another's on the same JetStream.
func TestSnapshotLocksAcrossReplicas(t *testing.T) {
	f := newFixture(t, realPublisher, nil)
	other, err := NewJetStreamSnapshotLocks(t.Context(), f.js, time.Minute, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	release, err := f.locks.Open(t.Context(), "export", "snap-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open(t.Context(), "export", "snap-b"); !errors.Is(err, ErrSnapshotOpen) {
		t.Errorf("second replica, same source: err = %v, want ErrSnapshotOpen", err)
	}
	releasePayroll, err := other.Open(t.Context(), "payroll", "snap-c")
	if err != nil {
		t.Errorf("second replica, another source: %v", err)
	} else {
		releasePayroll()
	}
	release()
	release() // a second call does nothing
	releaseB, err := other.Open(t.Context(), "export", "snap-b")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	releaseB()
}
