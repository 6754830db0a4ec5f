package poll_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/orgsync/orgsync/pkg/ratelimit"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/ingest"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/poll"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/vendortest"
)

const (
	connectorID = "Orgsync_Employees"
	tokenData   = "54740093832496081845474ABCDEF0123456789"
)

var afasFields = []string{"Medewerker", "Roepnaam", "Achternaam", "EmailWerk", "Functie", "Gewijzigd"}

// afasSource is a poll source with the AFAS preset against fake; pages of two records, polled
// every second.
func afasSource(name string, fake *vendortest.AFAS, token string) source.Config {
	return source.Config{Name: name, Kind: source.KindPoll, Poll: source.Poll{
		Preset: source.PresetAFAS, URL: fake.ConnectorURL(), ModifiedField: "Gewijzigd",
		Auth:   source.PollAuth{Secret: token},
		Fields: map[string]string{"workerId": "Medewerker", "givenName": "Roepnaam", "familyName": "Achternaam", "workEmail": "EmailWerk", "jobTitle": "Functie"},
		Paging: source.Paging{Size: 2}, Interval: time.Second, FullSyncEvery: time.Hour,
		ChangedSince: source.ChangedSince{Overlap: 30 * time.Second},
	}}
}

// employee is an AFAS row of the fake connector.
func employee(id, given, family, modified string) map[string]any {
	return map[string]any{"Medewerker": id, "Roepnaam": given, "Achternaam": family,
		"EmailWerk": strings.ToLower(given) + "@example.com", "Functie": "Engineer", "Gewijzigd": modified}
}

// cluster is hr-ingest's pipeline over an embedded JetStream, with pollers started and stopped
// by the test like replicas.
type cluster struct {
	t       *testing.T
	js      jetstream.JetStream
	configs []source.Config
	handler *ingest.Handler
	locks   *ingest.JetStreamSnapshotLocks
	store   *poll.Store
	sink    poll.Sink
	limiter poll.Limiter
}

func newCluster(t *testing.T, configs ...source.Config) *cluster {
	t.Helper()
	srv := streamtest.Start(t)
	logger := slog.New(slog.DiscardHandler)
	locks, err := ingest.NewJetStreamSnapshotLocks(t.Context(), srv.JS, time.Second, 1, logger)
	if err != nil {
		t.Fatal(err)
	}
	handler, err := ingest.NewHandler(configs, stream.NewPublisher(srv.JS), ingest.Options{
		History: ingest.NewJetStreamHistory(srv.JS), SnapshotLocks: locks}, logger)
	if err != nil {
		t.Fatal(err)
	}
	store, err := poll.NewStore(t.Context(), srv.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, js: srv.JS, configs: configs, handler: handler, locks: locks, store: store, sink: handler}
}

// replica is one running poller; stop ends it as a replica's shutdown (or crash) would.
type replica struct {
	poller *poll.Poller
	stop   func()
}

func (c *cluster) start(instance string) *replica {
	c.t.Helper()
	poller, err := poll.New(c.configs, c.store, c.sink, c.locks.HoldPoll, c.limiter,
		poll.Options{Instance: instance, MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, Standby: 200 * time.Millisecond},
		slog.New(slog.DiscardHandler))
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { poller.Run(ctx) })
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	c.t.Cleanup(stop)
	return &replica{poller: poller, stop: stop}
}

// workers returns, sorted, "<id>:<family name>" of every worker event of source that is not a
// snapshot row (the workers of one page are published concurrently), and the snapshots (their
// rows' ids, sorted, in stream order).
func (c *cluster) workers(sourceName string) (changes []string, snapshots [][]string) {
	c.t.Helper()
	index := map[string]int{}
	for _, e := range streamtest.HREvents(c.t, c.js) {
		if e.GetSource() != sourceName {
			continue
		}
		if m := e.GetSnapshot(); m != nil {
			if m.GetPhase() == orgsyncv1.SnapshotMarker_PHASE_BEGIN {
				index[m.GetSnapshotId()] = len(snapshots)
				snapshots = append(snapshots, []string{})
			}
			continue
		}
		w := e.GetWorker()
		if id := e.GetSnapshotId(); id != "" {
			snapshots[index[id]] = append(snapshots[index[id]], w.GetWorkerId())
			continue
		}
		changes = append(changes, w.GetWorkerId()+":"+w.GetName().GetFamilyName())
	}
	for _, rows := range snapshots {
		sort.Strings(rows) // a snapshot's rows are published concurrently
	}
	sort.Strings(changes)
	return changes, snapshots
}

func (c *cluster) status(p *poll.Poller) poll.Status {
	c.t.Helper()
	return c.statusOf(p, c.configs[0].Name)
}

func (c *cluster) statusOf(p *poll.Poller, sourceName string) poll.Status {
	c.t.Helper()
	statuses, err := p.Status(c.t.Context())
	if err != nil {
		c.t.Fatal(err)
	}
	for _, s := range statuses {
		if s.Source == sourceName {
			return s
		}
	}
	c.t.Fatalf("no status of %s in %v", sourceName, statuses)
	return poll.Status{}
}

// eventually waits up to 20s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestChangesSinceCursorArriveOnce: the first poll reads the connector whole (a snapshot); the
// next ones ask AFAS for the rows changed since the cursor (less the overlap), page by page;
// each change arrives once, and polls that read the same rows again publish nothing.
func TestChangesSinceCursorArriveOnce(t *testing.T) {
	fake := vendortest.NewAFAS(t, connectorID, vendortest.AFASToken(tokenData), afasFields...)
	for _, row := range []map[string]any{
		employee("1001", "Ann", "Ash", "2026-03-01T08:00:00Z"), employee("1002", "Bob", "Birch", "2026-03-01T09:00:00Z"),
		employee("1003", "Cat", "Cedar", "2026-03-01T10:00:00Z"),
	} {
		fake.Put(row)
	}
	c := newCluster(t, afasSource("afas", fake, tokenData))
	r := c.start("r1")
	eventually(t, "the first full pull", func() bool { _, snaps := c.workers("afas"); return len(snaps) == 1 })

	// Three changes, two on one modified time, more than a page.
	fake.Put(employee("1002", "Bob", "Beech", "2026-03-02T09:00:00Z"))
	fake.Put(employee("1004", "Dan", "Date", "2026-03-02T09:00:00Z"))
	fake.Put(employee("1001", "Ann", "Alder", "2026-03-02T11:00:00Z"))
	want := []string{"1001:Alder", "1002:Beech", "1004:Date"}
	eventually(t, "the changes", func() bool { changes, _ := c.workers("afas"); return len(changes) >= 3 })
	// Three more polls read the overlap again; nothing new is stored.
	polls := len(fake.Queries())
	eventually(t, "three more polls", func() bool { return len(fake.Queries()) >= polls+3 })
	changes, snapshots := c.workers("afas")
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Errorf("changes stored (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"1001", "1002", "1003"}}, snapshots); diff != "" {
		t.Errorf("snapshots (-want +got):\n%s", diff)
	}
	status := c.status(r.poller)
	if !status.Active || !status.Since.Equal(time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)) || status.ConsecutiveFailures != 0 || status.LastFullSync.IsZero() {
		t.Errorf("status = %+v", status)
	}

	// What AFAS was asked: the full pull ordered by employee, the polls filtered on the cursor
	// less the overlap, ordered by modified time then employee.
	queries := fake.Queries()
	if q := queries[0]; q.Get("filterfieldids") != "" || q.Get("orderbyfieldids") != "Medewerker" || q.Get("skip") != "0" || q.Get("take") != "2" {
		t.Errorf("full pull query = %v", q)
	}
	last := queries[len(queries)-1]
	if last.Get("filterfieldids") != "Gewijzigd" || last.Get("operatortypes") != "2" || last.Get("filtervalues") != "2026-03-02T10:59:30" ||
		last.Get("orderbyfieldids") != "Gewijzigd,Medewerker" {
		t.Errorf("poll query = %v", last)
	}
	for _, e := range streamtest.HREvents(t, c.js) {
		if e.GetWorker() != nil && (e.GetOccurredAt() == nil || e.GetReceivedAt() == nil || e.GetEventId() == "") {
			t.Errorf("event %v lacks its times or id", e)
		}
	}
}

// crashingSink publishes a page and then fails, once: the replica died after JetStream
// acknowledged the events but before the cursor was saved.
type crashingSink struct {
	poll.Sink
	once sync.Once
}

func (s *crashingSink) PublishChanges(ctx context.Context, src string, events []*orgsyncv1.HREvent, versions []string) error {
	err := s.Sink.PublishChanges(ctx, src, events, versions)
	crashed := false
	s.once.Do(func() { crashed = true })
	if err == nil && crashed {
		return errors.New("replica died before saving the cursor")
	}
	return err
}

// TestRestartResumesFromCursor stops a poller and starts another: the changes made meanwhile
// arrive, once, and nothing before the cursor is read as new. A crash between publishing a page
// and saving the cursor reads the page again, and stream HR stores nothing twice.
func TestRestartResumesFromCursor(t *testing.T) {
	fake := vendortest.NewAFAS(t, connectorID, vendortest.AFASToken(tokenData), afasFields...)
	fake.Put(employee("1001", "Ann", "Ash", "2026-03-01T08:00:00Z"))
	fake.Put(employee("1002", "Bob", "Birch", "2026-03-01T09:00:00Z"))
	c := newCluster(t, afasSource("afas", fake, tokenData))
	first := c.start("r1")
	eventually(t, "the first full pull", func() bool { _, snaps := c.workers("afas"); return len(snaps) == 1 })
	fake.Put(employee("1001", "Ann", "Alder", "2026-03-02T08:00:00Z"))
	eventually(t, "the first change", func() bool { changes, _ := c.workers("afas"); return len(changes) == 1 })
	first.stop()

	fake.Put(employee("1002", "Bob", "Beech", "2026-03-03T08:00:00Z"))
	fake.Put(employee("1003", "Cat", "Cedar", "2026-03-03T09:00:00Z"))
	c.sink = &crashingSink{Sink: c.handler}
	second := c.start("r2")
	eventually(t, "the changes made while no poller ran", func() bool { changes, _ := c.workers("afas"); return len(changes) >= 3 })
	polls := len(fake.Queries())
	eventually(t, "two more polls", func() bool { return len(fake.Queries()) >= polls+2 })
	changes, snapshots := c.workers("afas")
	if diff := cmp.Diff([]string{"1001:Alder", "1002:Beech", "1003:Cedar"}, changes); diff != "" {
		t.Errorf("changes stored (-want +got):\n%s", diff)
	}
	if len(snapshots) != 1 {
		t.Errorf("the restart pulled the source whole again: %d snapshots", len(snapshots))
	}
	if status := c.status(second.poller); status.ConsecutiveFailures != 0 || status.LastErrorClass != "publish" {
		t.Errorf("status after the crash and the recovery = %+v", status)
	}
}

// TestTwoReplicasPollOnce runs two pollers on one JetStream: one polls, the other stands by;
// every change is stored once; when the polling one stops, the other takes over.
func TestTwoReplicasPollOnce(t *testing.T) {
	fake := vendortest.NewAFAS(t, connectorID, vendortest.AFASToken(tokenData), afasFields...)
	fake.Put(employee("1001", "Ann", "Ash", "2026-03-01T08:00:00Z"))
	c := newCluster(t, afasSource("afas", fake, tokenData))
	a, b := c.start("r1"), c.start("r2")
	eventually(t, "the first full pull", func() bool { _, snaps := c.workers("afas"); return len(snaps) == 1 })
	active := func() []bool { return []bool{c.status(a.poller).Active, c.status(b.poller).Active} }
	for range 10 {
		if got := active(); got[0] == got[1] {
			t.Fatalf("active replicas = %v; want exactly one", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 3 {
		fake.Put(employee("1001", "Ann", "Ash"+strings.Repeat("e", i+1), "2026-03-02T0"+string(rune('1'+i))+":00:00Z"))
		eventually(t, "a change", func() bool { changes, _ := c.workers("afas"); return len(changes) == i+1 })
	}
	// Requests: one full pull and about one a second since; two replicas polling would make
	// twice as many.
	started := time.Now()
	before := len(fake.Queries())
	time.Sleep(3 * time.Second)
	if n := len(fake.Queries()) - before; n > int(time.Since(started)/time.Second)+1 {
		t.Errorf("%d requests in %v: more than one replica polls", n, time.Since(started))
	}

	leader, standby := a, b
	if !active()[0] {
		leader, standby = b, a
	}
	leader.stop()
	fake.Put(employee("1002", "Bob", "Birch", "2026-03-03T08:00:00Z"))
	eventually(t, "the standby to take over and poll", func() bool { changes, _ := c.workers("afas"); return len(changes) == 4 })
	if !c.status(standby.poller).Active {
		t.Error("the standby polled without holding the lease")
	}
	changes, _ := c.workers("afas")
	if diff := cmp.Diff([]string{"1001:Ashe", "1001:Ashee", "1001:Asheee", "1002:Birch"}, changes); diff != "" {
		t.Errorf("changes stored (-want +got):\n%s", diff)
	}
}

// TestVendorFailuresRetried: AFAS answering 429 with Retry-After, 503 (maintenance) and 500 is
// retried with backoff, visible in the status meanwhile, and the change still arrives once.
func TestVendorFailuresRetried(t *testing.T) {
	fake := vendortest.NewAFAS(t, connectorID, vendortest.AFASToken(tokenData), afasFields...)
	fake.Put(employee("1001", "Ann", "Ash", "2026-03-01T08:00:00Z"))
	c := newCluster(t, afasSource("afas", fake, tokenData))
	fake.Fail(vendortest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"}, vendortest.Fault{Status: http.StatusServiceUnavailable},
		vendortest.Fault{Status: http.StatusInternalServerError})
	r := c.start("r1")
	eventually(t, "the failures to show in the status", func() bool { return c.status(r.poller).ConsecutiveFailures >= 2 })
	eventually(t, "the full pull despite the failures", func() bool { _, snaps := c.workers("afas"); return len(snaps) == 1 })
	fake.Fail(vendortest.Fault{Status: http.StatusBadGateway})
	fake.Put(employee("1001", "Ann", "Alder", "2026-03-02T08:00:00Z"))
	eventually(t, "the change", func() bool { changes, _ := c.workers("afas"); return len(changes) == 1 })
	status := c.status(r.poller)
	if status.ConsecutiveFailures != 0 || status.LastErrorClass != "unavailable" || status.LastErrorAt.IsZero() || status.Parked {
		t.Errorf("status after recovering = %+v", status)
	}
	if changes, _ := c.workers("afas"); !slices.Equal(changes, []string{"1001:Alder"}) {
		t.Errorf("changes = %v", changes)
	}
}

// TestRefusedTokenParks: a token AFAS refuses (401) is reported once and parks the source's
// polling: no request follows until a restart.
func TestRefusedTokenParks(t *testing.T) {
	fake := vendortest.NewAFAS(t, connectorID, vendortest.AFASToken(tokenData), afasFields...)
	fake.Put(employee("1001", "Ann", "Ash", "2026-03-01T08:00:00Z"))
	c := newCluster(t, afasSource("afas", fake, "revoked-token-0123456789"))
	r := c.start("r1")
	eventually(t, "the source to be parked", func() bool { return c.status(r.poller).Parked })
	requests := fake.Requests()
	time.Sleep(2500 * time.Millisecond)
	status := c.status(r.poller)
	if fake.Requests() != requests || status.LastErrorClass != "unauthorized" || status.ConsecutiveFailures != 1 {
		t.Errorf("after parking: %d more requests, status %+v", fake.Requests()-requests, status)
	}
	if strings.Contains(status.LastError, "revoked") || strings.Contains(status.LastError, "AfasToken") {
		t.Errorf("the error shows the credentials: %q", status.LastError)
	}
	if changes, snaps := c.workers("afas"); len(changes)+len(snaps) != 0 {
		t.Errorf("stored %v %v", changes, snaps)
	}

	// The metrics say so too.
	reader := sdkmetric.NewManualReader()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	t.Cleanup(func() { otel.SetMeterProvider(noop.NewMeterProvider()) })
	registration, err := r.poller.ObserveMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = registration.Unregister() }()
	var collected metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &collected); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, scope := range collected.ScopeMetrics {
		for _, m := range scope.Metrics {
			if gauge, ok := m.Data.(metricdata.Gauge[int64]); ok {
				for _, point := range gauge.DataPoints {
					if source, _ := point.Attributes.Value("source"); source.AsString() == "afas" {
						got[m.Name] = point.Value
					}
				}
			}
		}
	}
	if diff := cmp.Diff(map[string]int64{"hr_ingest.poll.parked": 1, "hr_ingest.poll.consecutive_failures": 1, "hr_ingest.poll.invalid_records": 0}, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

// TestFullPullMarksMissingGone: a scheduled full pull is a snapshot of the source: its rows are
// every worker AFAS still has, so a worker removed in AFAS is not among them (org-model marks
// the source's workers missing from a snapshot gone, guarded like CSV snapshots:
// TestSnapshotMarksMissingWorkersAsLeft, TestSnapshotJudgesOnlyItsOwnSource). Another
// source's events are untouched. A record that cannot be mapped stops the full pull (it would
// count as gone) but not the changes.
func TestFullPullMarksMissingGone(t *testing.T) {
	fake := vendortest.NewAFAS(t, connectorID, vendortest.AFASToken(tokenData), afasFields...)
	fake.Put(employee("1001", "Ann", "Ash", "2026-03-01T08:00:00Z"))
	fake.Put(employee("1002", "Bob", "Birch", "2026-03-01T09:00:00Z"))
	fake.Put(employee("1003", "Cat", "Cedar", "2026-03-01T10:00:00Z"))
	other := vendortest.NewAFAS(t, connectorID, vendortest.AFASToken(tokenData), afasFields...)
	other.Put(employee("2001", "Eve", "Elm", "2026-03-01T08:00:00Z"))
	cfg := afasSource("afas", fake, tokenData)
	cfg.Poll.FullSyncEvery = 2 * time.Second
	c := newCluster(t, cfg, afasSource("payroll", other, tokenData))
	c.start("r1")
	eventually(t, "the first full pulls", func() bool {
		_, a := c.workers("afas")
		_, p := c.workers("payroll")
		return len(a) == 1 && len(p) == 1
	})
	fake.Delete("1002")
	eventually(t, "the scheduled full pull", func() bool { _, snaps := c.workers("afas"); return len(snaps) == 2 })
	_, snapshots := c.workers("afas")
	if diff := cmp.Diff([][]string{{"1001", "1002", "1003"}, {"1001", "1003"}}, snapshots); diff != "" {
		t.Errorf("snapshots (-want +got):\n%s", diff)
	}
	var ends []int64
	for _, e := range streamtest.HREvents(t, c.js) {
		if m := e.GetSnapshot(); m != nil && m.GetPhase() == orgsyncv1.SnapshotMarker_PHASE_END && e.GetSource() == "afas" {
			ends = append(ends, m.GetRecordCount())
		}
	}
	if !slices.Equal(ends, []int64{3, 2}) {
		t.Errorf("END record counts = %v", ends)
	}
	if _, p := c.workers("payroll"); len(p) != 1 || !slices.Equal(p[0], []string{"2001"}) {
		t.Errorf("payroll snapshots = %v", p)
	}

	// A row AFAS answers with an e-mail orgsync cannot use: the full pull is not published.
	bad := employee("1005", "Fay", "Fir", "2026-03-04T08:00:00Z")
	bad["EmailWerk"] = "not an address"
	fake.Put(bad)
	fake.Put(employee("1006", "Gus", "Gum", "2026-03-04T09:00:00Z"))
	eventually(t, "the good change", func() bool {
		changes, _ := c.workers("afas")
		return slices.Contains(changes, "1006:Gum")
	})
	time.Sleep(2500 * time.Millisecond) // a full pull is due meanwhile
	status := c.statusOf(c.start("reader").poller, "afas")
	if _, snaps := c.workers("afas"); len(snaps) != 2 || status.InvalidRecords == 0 || !strings.Contains(status.LastInvalid, "/rows/") ||
		strings.Contains(status.LastInvalid, "not an address") {
		t.Errorf("after an unmappable row: %d snapshots, status %+v", len(snaps), status)
	}
}

// TestEventIDsFollowVersions: a record's event is named by its worker id and modified time;
// the same version read by another replica (another process) gets the same id.
func TestEventIDsFollowVersions(t *testing.T) {
	fake := vendortest.NewAFAS(t, connectorID, vendortest.AFASToken(tokenData), afasFields...)
	c := newCluster(t, afasSource("afas", fake, tokenData))
	event := func() *orgsyncv1.HREvent {
		return &orgsyncv1.HREvent{Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{WorkerId: "1001",
			Name: &orgsyncv1.PersonName{GivenName: "Ann", FamilyName: "Ash"}}}}
	}
	for _, version := range []string{"2026-03-01T08:00:00Z", "2026-03-01T08:00:00Z", "2026-03-02T08:00:00Z"} {
		if err := c.handler.PublishChanges(t.Context(), "afas", []*orgsyncv1.HREvent{event()}, []string{version}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for _, e := range streamtest.HREvents(t, c.js) {
		ids = append(ids, e.GetEventId())
	}
	sort.Strings(ids)
	if len(ids) != 2 || ids[0] == ids[1] || !strings.HasPrefix(ids[0], "poll-") {
		t.Errorf("event ids = %v; want two, one per version", ids)
	}
	if err := c.handler.PublishChanges(t.Context(), "nope", []*orgsyncv1.HREvent{event()}, []string{"v"}); err == nil {
		t.Error("published for a source that is not configured")
	}
}

// TestWorkdayReport polls a Workday RaaS report (preset workday: format=json, basic auth of an
// integration system user, one answer without paging) with its changed-since prompt: the whole
// report first, then only what changed, once.
func TestWorkdayReport(t *testing.T) {
	fake := vendortest.NewWorkday(t, "acme", "ISU_orgsync", "Orgsync_Workers", "ISU_orgsync@acme", "isu-password-0123",
		"Employee_ID", "Updated_From", "Last_Updated")
	fake.Put(map[string]any{"Employee_ID": "21001", "First_Name": "Logan", "Last_Name": "McNeil", "Last_Updated": "2026-03-01T09:00:00.000-08:00"})
	fake.Put(map[string]any{"Employee_ID": "21002", "First_Name": "Maya", "Last_Name": "Ng", "Last_Updated": "2026-03-01T10:00:00.000-08:00"})
	cfg := source.Config{Name: "workday", Kind: source.KindPoll, Location: time.UTC, Poll: source.Poll{
		Preset: source.PresetWorkday, URL: fake.ReportURL(), ModifiedField: "Last_Updated",
		Auth:         source.PollAuth{User: "ISU_orgsync@acme", Secret: "isu-password-0123"},
		ChangedSince: source.ChangedSince{Param: "Updated_From"},
		Fields:       map[string]string{"workerId": "Employee_ID", "givenName": "First_Name", "familyName": "Last_Name"},
		Interval:     time.Second, FullSyncEvery: time.Hour,
	}}
	c := newCluster(t, cfg)
	r := c.start("r1")
	eventually(t, "the first full pull", func() bool { _, snaps := c.workers("workday"); return len(snaps) == 1 })
	fake.Put(map[string]any{"Employee_ID": "21002", "First_Name": "Maya", "Last_Name": "Ngata", "Last_Updated": "2026-03-02T10:00:00.000-08:00"})
	eventually(t, "the change", func() bool { changes, _ := c.workers("workday"); return len(changes) == 1 })
	requests := fake.Requests()
	eventually(t, "two more polls", func() bool { return fake.Requests() >= requests+2 })
	changes, snapshots := c.workers("workday")
	if !slices.Equal(changes, []string{"21002:Ngata"}) || len(snapshots) != 1 || !slices.Equal(snapshots[0], []string{"21001", "21002"}) {
		t.Errorf("changes %v, snapshots %v", changes, snapshots)
	}
	if status := c.status(r.poller); !status.Since.Equal(time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC)) || status.ConsecutiveFailures != 0 {
		t.Errorf("status = %+v", status)
	}
}

// countingLimiter is pkg/ratelimit's limiter (kept in the process), counting what is spent.
type countingLimiter struct {
	*ratelimit.Limiter
	mu    sync.Mutex
	spent map[string]int
	limit ratelimit.Limit
}

func (l *countingLimiter) Wait(ctx context.Context, key string, limit ratelimit.Limit, n int) error {
	err := l.Limiter.Wait(ctx, key, limit, n)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spent[key] += n
	l.limit = limit
	return err
}

// TestRequestsSpendTheSourceBudget: every request to the endpoint first spends the source's
// rateLimit budget (key poll:<source>, pkg/ratelimit, shared in Redis in production).
func TestRequestsSpendTheSourceBudget(t *testing.T) {
	fake := vendortest.NewAFAS(t, connectorID, vendortest.AFASToken(tokenData), afasFields...)
	for _, id := range []string{"1001", "1002", "1003"} {
		fake.Put(employee(id, "Ann", "Ash", "2026-03-01T08:00:00Z"))
	}
	cfg := afasSource("afas", fake, tokenData)
	cfg.RateRequests, cfg.RatePeriod, cfg.RateBurst = 2, time.Second, 1
	c := newCluster(t, cfg)
	limiter := &countingLimiter{Limiter: ratelimit.New(nil, "", slog.New(slog.DiscardHandler)), spent: map[string]int{}}
	c.limiter = limiter
	r := c.start("r1")
	eventually(t, "a few polls", func() bool { return fake.Requests() >= 4 })
	r.stop()
	limiter.mu.Lock()
	defer limiter.mu.Unlock()
	if limiter.spent["poll:afas"] != fake.Requests() || limiter.limit != (ratelimit.Limit{Events: 2, Period: time.Second, Burst: 1}) {
		t.Errorf("spent %v (limit %+v) for %d requests", limiter.spent, limiter.limit, fake.Requests())
	}
}

// TestEndpointIgnoringPagingIsRefused: an endpoint that answers the same full page whatever
// the offset would be read for ever; both a full pull and a poll of changes stop and park the
// source, naming the problem, instead of looping.
func TestEndpointIgnoringPagingIsRefused(t *testing.T) {
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"skip":0,"take":2,"rows":[
			{"Medewerker":"1001","Roepnaam":"Ann","Achternaam":"Ash","Gewijzigd":"2026-03-01T08:00:00Z"},
			{"Medewerker":"1002","Roepnaam":"Bob","Achternaam":"Birch","Gewijzigd":"2026-03-01T08:00:00Z"}]}`))
	}))
	t.Cleanup(endpoint.Close)
	for _, tc := range []struct {
		name   string
		cursor bool
		want   string
	}{{"full pull", false, "poll.maxRecords"}, {"changes", true, "does the endpoint honour skip?"}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := source.Config{Name: "afas", Kind: source.KindPoll, Poll: source.Poll{Preset: source.PresetAFAS,
				URL: endpoint.URL + "/ProfitRestServices/connectors/" + connectorID, ModifiedField: "Gewijzigd",
				Auth: source.PollAuth{Secret: tokenData}, Paging: source.Paging{Size: 2}, MaxRecords: 10,
				Fields:   map[string]string{"workerId": "Medewerker", "givenName": "Roepnaam", "familyName": "Achternaam"},
				Interval: time.Second, FullSyncEvery: time.Hour}}
			c := newCluster(t, cfg)
			if tc.cursor {
				if _, err := c.store.Save(t.Context(), "afas", poll.State{Since: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), LastFullSync: time.Now()}, 0); err != nil {
					t.Fatal(err)
				}
			}
			r := c.start("r1")
			eventually(t, "the source to be parked", func() bool { return c.status(r.poller).Parked })
			status := c.status(r.poller)
			if status.LastErrorClass != "refused" || !strings.Contains(status.LastError, tc.want) {
				t.Errorf("status = %+v", status)
			}
		})
	}
}

// TestInvalidRecordReportedOnce: a changed row that cannot be mapped is skipped and counted
// once, however many polls read it again; the other changes of its page are published.
func TestInvalidRecordReportedOnce(t *testing.T) {
	fake := vendortest.NewAFAS(t, connectorID, vendortest.AFASToken(tokenData), afasFields...)
	fake.Put(employee("1001", "Ann", "Ash", "2026-03-01T08:00:00Z"))
	c := newCluster(t, afasSource("afas", fake, tokenData))
	r := c.start("r1")
	eventually(t, "the first full pull", func() bool { _, snaps := c.workers("afas"); return len(snaps) == 1 })
	bad := employee("1002", "Bob", "Birch", "2026-03-02T08:00:00Z")
	bad["EmailWerk"] = "bob at example"
	fake.Put(bad)
	fake.Put(employee("1003", "Cat", "Cedar", "2026-03-02T08:00:00Z"))
	eventually(t, "the good change", func() bool { changes, _ := c.workers("afas"); return len(changes) == 1 })
	polls := len(fake.Queries())
	eventually(t, "three more polls", func() bool { return len(fake.Queries()) >= polls+3 })
	status := c.status(r.poller)
	if changes, _ := c.workers("afas"); !slices.Equal(changes, []string{"1003:Cedar"}) || status.InvalidRecords != 1 ||
		status.LastInvalid != "worker 1002: invalid fields: /rows/1/EmailWerk" || status.ConsecutiveFailures != 0 {
		t.Errorf("changes %v, status %+v", changes, status)
	}
}
