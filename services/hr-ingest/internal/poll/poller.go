package poll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orgsync/orgsync/pkg/ratelimit"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

// Sink is the ingest pipeline after the fetch: it stamps events with their source and receive
// time, names them and publishes them to stream HR, returning once JetStream acknowledged
// every one.
type Sink interface {
	// PublishChanges stores changed records' worker events; versions[i] names events[i] with
	// its worker id (a re-poll of the same version is stored once).
	PublishChanges(ctx context.Context, source string, events []*orgsyncv1.HREvent, versions []string) error
	// PublishSnapshot stores a full pull as a snapshot of the source (BEGIN, the workers, END)
	// and returns its snapshot id.
	PublishSnapshot(ctx context.Context, source string, workers []*orgsyncv1.Worker, occurredAt []time.Time) (string, error)
}

// Lease is one replica's hold on polling a source.
type Lease interface {
	// Lost is closed when the lease was lost (taken over or expired).
	Lost() <-chan struct{}
	Release()
}

// ErrHeld says another replica holds the lease.
var ErrHeld = errors.New("lease held by another replica")

// HoldFunc takes the lease named key for holder, or returns ErrHeld.
type HoldFunc func(ctx context.Context, key, holder string) (Lease, error)

// Limiter is a per-source request budget (pkg/ratelimit's Limiter, shared in Redis).
type Limiter interface {
	Wait(ctx context.Context, key string, limit ratelimit.Limit, n int) error
}

var _ Limiter = (*ratelimit.Limiter)(nil)

// Options tune a Poller.
type Options struct {
	// Instance names this replica as a lease holder.
	Instance string
	// MinBackoff is the wait before retrying a failed poll, doubling with each consecutive
	// failure up to MaxBackoff; defaults 1s and 5m. A 429's Retry-After is waited instead when
	// it is longer.
	MinBackoff, MaxBackoff time.Duration
	// Standby is how often a replica without the lease tries to take it; default the source's
	// interval.
	Standby time.Duration
	// Clients are the endpoints' clients by source name; a source without one gets NewClient's.
	Clients map[string]*Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Poller polls every poll source, each on its own goroutine, while this replica holds its
// lease. Run blocks and owns those goroutines; Status is safe for concurrent use with it.
type Poller struct {
	sources []*sourcePoller
	store   *Store
}

// sourcePoller polls one source.
type sourcePoller struct {
	cfg     source.Config
	client  *Client
	store   *Store
	sink    Sink
	hold    HoldFunc
	limiter Limiter
	opts    Options
	logger  *slog.Logger
	// active says this replica holds the source's lease.
	active atomic.Bool
}

// New returns a Poller of the sources of kind poll among configs (none: a Poller that does
// nothing).
func New(configs []source.Config, store *Store, sink Sink, hold HoldFunc, limiter Limiter, opts Options, logger *slog.Logger) (*Poller, error) {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Poller{store: store}
	for _, cfg := range configs {
		cfg = cfg.WithDefaults()
		if cfg.Kind != source.KindPoll {
			continue
		}
		client := opts.Clients[cfg.Name]
		if client == nil {
			var err error
			if client, err = NewClient(cfg, nil); err != nil {
				return nil, err
			}
		}
		p.sources = append(p.sources, &sourcePoller{cfg: cfg, client: client, store: store, sink: sink, hold: hold,
			limiter: limiter, opts: opts, logger: logger.With("source", cfg.Name)})
	}
	return p, nil
}

// Sources says how many sources the Poller polls.
func (p *Poller) Sources() int { return len(p.sources) }

// Run polls until ctx ends, blocking; it returns once every source's goroutine has ended.
func (p *Poller) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range p.sources {
		wg.Go(func() { s.run(ctx) })
	}
	wg.Wait()
}

// Status is how one poll source stands, for GET /v1/pull/status.
type Status struct {
	Source string `json:"source"`
	// Active says this replica polls the source (holds its lease); the others stand by.
	Active bool `json:"active"`
	State
}

// Status reports every poll source's state (read from the bucket, so any replica answers for
// all), sorted by source.
func (p *Poller) Status(ctx context.Context) ([]Status, error) {
	statuses := make([]Status, 0, len(p.sources))
	for _, s := range p.sources {
		state, _, err := p.store.Load(ctx, s.cfg.Name)
		if err != nil {
			return nil, err
		}
		state.Recent = nil // it names workers
		statuses = append(statuses, Status{Source: s.cfg.Name, Active: s.active.Load(), State: state})
	}
	sort.Slice(statuses, func(i, j int) bool { return statuses[i].Source < statuses[j].Source })
	return statuses, nil
}

// LeaseKey is the lease of polling source in the lock bucket.
func LeaseKey(source string) string { return "poll." + subject.Token(source) }

// run takes the source's lease whenever it can and polls while it holds it.
func (s *sourcePoller) run(ctx context.Context) {
	standby := s.opts.Standby
	if standby <= 0 {
		standby = s.cfg.Poll.Interval
	}
	for ctx.Err() == nil {
		lease, err := s.hold(ctx, LeaseKey(s.cfg.Name), s.opts.Instance)
		if err != nil {
			if !errors.Is(err, ErrHeld) {
				s.logger.Warn("poll lease not taken", "error", err)
			}
			sleep(ctx, standby)
			continue
		}
		leaseCtx, cancel := context.WithCancel(ctx)
		var watcher sync.WaitGroup
		watcher.Go(func() {
			select {
			case <-lease.Lost():
				s.logger.Warn("poll lease lost; another replica may poll now")
				cancel()
			case <-leaseCtx.Done():
			}
		})
		s.active.Store(true)
		s.lead(leaseCtx)
		s.active.Store(false)
		cancel()
		watcher.Wait()
		lease.Release()
	}
}

// lead polls on schedule until ctx ends or the cursor is written by another replica.
func (s *sourcePoller) lead(ctx context.Context) {
	for ctx.Err() == nil {
		state, revision, err := s.store.Load(ctx, s.cfg.Name)
		if err != nil {
			s.logger.Warn("poll state not read", "error", err)
			sleep(ctx, s.opts.MinBackoff)
			continue
		}
		if wait := s.nextPoll(state); wait > 0 {
			sleep(ctx, wait)
			continue
		}
		p := &pass{sourcePoller: s, state: state, revision: revision}
		err = p.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrLostCursor) {
			s.logger.Warn("another replica wrote the poll state; standing by")
			return
		}
		if err := p.finish(ctx, err); errors.Is(err, ErrLostCursor) {
			return
		}
		if p.state.Parked {
			<-ctx.Done() // parked: reported once, retried only after a restart
			return
		}
		if err != nil || p.err != nil {
			sleep(ctx, s.backoff(p.state.ConsecutiveFailures, p.err))
		}
	}
}

// nextPoll is how long until the next poll is due (≤ 0: now).
func (s *sourcePoller) nextPoll(state State) time.Duration {
	if state.LastPoll.IsZero() || state.ConsecutiveFailures > 0 {
		return 0
	}
	return state.LastPoll.Add(s.cfg.Poll.Interval).Sub(s.opts.Now())
}

func (s *sourcePoller) backoff(failures int, err error) time.Duration {
	delay := s.opts.MinBackoff
	for i := 1; i < failures && delay < s.opts.MaxBackoff; i++ {
		delay *= 2
	}
	delay = min(delay, s.opts.MaxBackoff)
	if throttled, ok := errors.AsType[*notify.ThrottledError](err); ok && throttled.RetryAfter > delay {
		delay = throttled.RetryAfter
	}
	return delay
}

// pass is one poll of a source: an incremental read from the cursor, or a full pull.
type pass struct {
	*sourcePoller
	state    State
	revision uint64
	// err is the poll's own error, kept for the backoff after finish.
	err error
}

// poll reads the changes since the cursor, or the whole source when a full pull is due.
func (p *pass) poll(ctx context.Context) error {
	now := p.opts.Now()
	p.state.LastPoll = now
	lastFull := p.state.LastFullSync
	if p.state.LastFullRefused.After(lastFull) {
		lastFull = p.state.LastFullRefused
	}
	full := !p.cfg.Poll.Incremental() || p.state.Since.IsZero() || !now.Before(lastFull.Add(p.cfg.Poll.FullSyncEvery))
	if full {
		return p.fullPull(ctx)
	}
	return p.changes(ctx)
}

// finish records how the poll went (err nil: a success) in the state.
func (p *pass) finish(ctx context.Context, err error) error {
	p.err = err
	if err == nil {
		p.state.LastSuccess = p.opts.Now()
		p.state.ConsecutiveFailures, p.state.Parked = 0, false
	} else {
		p.state.ConsecutiveFailures++
		p.state.LastError, p.state.LastErrorClass, p.state.LastErrorAt = err.Error(), errorClass(err), p.opts.Now()
		if Permanent(err) {
			p.state.Parked = true
			p.logger.Error("polling parked: retrying cannot fix this; fix the source's settings and restart", "class", p.state.LastErrorClass, "error", err)
		} else {
			p.logger.Warn("poll failed; retrying with backoff", "class", p.state.LastErrorClass, "failures", p.state.ConsecutiveFailures, "error", err)
		}
	}
	return p.save(ctx)
}

func (p *pass) save(ctx context.Context) error {
	revision, err := p.store.Save(ctx, p.cfg.Name, p.state, p.revision)
	if err != nil {
		return err
	}
	p.revision = revision
	return nil
}

// errorClass names an error's kind for the status.
func errorClass(err error) string {
	switch {
	case errors.Is(err, notify.ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, notify.ErrNotFound):
		return "not-found"
	case errors.Is(err, ErrRefused), errors.Is(err, ErrForeignNext):
		return "refused"
	case errors.Is(err, ErrIncomplete):
		return "invalid-records"
	}
	if _, ok := errors.AsType[*notify.ThrottledError](err); ok {
		return "throttled"
	}
	if errors.Is(err, errPublish) {
		return "publish"
	}
	return "unavailable"
}

// errPublish marks an error of the pipeline's publish step.
var errPublish = errors.New("publishing to stream HR")

// fetch asks for one page within the source's rate budget.
func (p *pass) fetch(ctx context.Context, req Request) (Page, error) {
	if p.limiter != nil && p.cfg.RateRequests > 0 {
		limit := ratelimit.Limit{Events: p.cfg.RateRequests, Period: p.cfg.RatePeriod, Burst: p.cfg.RateBurst}
		if err := p.limiter.Wait(ctx, "poll:"+p.cfg.Name, limit, 1); err != nil {
			return Page{}, err
		}
	}
	return p.client.Fetch(ctx, req)
}

// changes reads the records changed since the cursor (less the overlap), page by page, each
// page published and then the cursor saved, so a crash in between reads that page again (its
// events are named by version: nothing is stored twice).
func (p *pass) changes(ctx context.Context) error {
	overlap := p.cfg.Poll.ChangedSince.Overlap
	req := Request{Since: p.state.Since.Add(-overlap)}
	size := p.cfg.Poll.Paging.Size
	for pages := 1; ; pages++ {
		if pages > p.cfg.Poll.MaxRecords/size+1 {
			return fmt.Errorf("more than %d pages in one poll: does the endpoint honour %s? %w", pages-1, p.cfg.Poll.Paging.OffsetParam, ErrRefused)
		}
		page, err := p.fetch(ctx, req)
		if err != nil {
			return err
		}
		var events []*orgsyncv1.HREvent
		var versions []string
		for _, rec := range page.Records {
			if rec.Invalid != nil {
				p.invalid(rec)
				continue
			}
			if p.state.Recent[rec.WorkerID] == rec.Version() {
				continue // read again within the overlap, already published
			}
			events = append(events, rec.Event)
			versions = append(versions, rec.Version())
		}
		if len(events) > 0 {
			if err := p.sink.PublishChanges(ctx, p.cfg.Name, events, versions); err != nil {
				return fmt.Errorf("%w: %w", errPublish, err)
			}
			p.state.Published += int64(len(events))
		}
		// Only now, every event of the page acknowledged, does the cursor move.
		last := p.advance(page.Records)
		if err := p.save(ctx); err != nil {
			return err
		}
		switch p.cfg.Poll.Paging.Mode {
		case source.PagingNext:
			if page.Next == "" {
				return nil
			}
			req = Request{Next: page.Next}
			continue
		case source.PagingOffset:
			if len(page.Records) < size {
				return nil
			}
		default:
			return nil
		}
		// Page on from the newest modified time read (the endpoint orders by it), skipping the
		// records read at exactly that time; a page all at one time pages on by offset.
		atLast := 0
		for _, rec := range page.Records {
			if rec.Modified.Equal(last) {
				atLast++
			}
		}
		if last.After(req.Since) {
			req = Request{Since: last, Offset: atLast}
		} else {
			req.Offset += len(page.Records)
		}
	}
}

// advance moves the cursor over a published page and returns the page's newest modified time.
func (p *pass) advance(records []Record) time.Time {
	if p.state.Recent == nil {
		p.state.Recent = map[string]string{}
	}
	var last time.Time
	for _, rec := range records {
		if rec.Modified.After(last) {
			last = rec.Modified
		}
		if rec.WorkerID != "" && !rec.Modified.IsZero() {
			p.state.Recent[rec.WorkerID] = rec.Version()
		}
	}
	if last.After(p.state.Since) {
		p.state.Since = last
	}
	horizon := p.state.Since.Add(-p.cfg.Poll.ChangedSince.Overlap)
	for id, version := range p.state.Recent {
		if modified, err := time.Parse(time.RFC3339Nano, version); err != nil || modified.Before(horizon) {
			delete(p.state.Recent, id)
		}
	}
	return last
}

// invalid reports a record that cannot be mapped, once per version: it is skipped (parked in
// the state's count), the rest of the page is published.
func (p *pass) invalid(rec Record) {
	if rec.WorkerID != "" && p.state.Recent[rec.WorkerID] == rec.Version() {
		return
	}
	p.state.InvalidRecords++
	p.state.LastInvalid = describeInvalid(rec)
	p.logger.Error("polled record skipped: it cannot be mapped; fix it at the source", "worker", rec.WorkerID, "reason", rec.Invalid)
}

// describeInvalid names an unmappable record by its worker id (when it has one) and its invalid
// fields' pointers, never their values.
func describeInvalid(rec Record) string {
	if rec.WorkerID == "" {
		return rec.Invalid.Error()
	}
	return "worker " + rec.WorkerID + ": " + rec.Invalid.Error()
}

// ErrIncomplete says a full pull was not published: some of its records cannot be mapped, and
// publishing the rest would mark those workers gone.
var ErrIncomplete = errors.New("full pull not published: records that cannot be mapped would count as gone")

// fullPull reads every record and publishes them as a snapshot of the source; when there was
// no cursor yet, it becomes the newest modified time read.
func (p *pass) fullPull(ctx context.Context) error {
	var records []Record
	req := Request{}
	for {
		page, err := p.fetch(ctx, req)
		if err != nil {
			return err
		}
		records = append(records, page.Records...)
		if len(records) > p.cfg.Poll.MaxRecords {
			return fmt.Errorf("full pull of more than %d records (poll.maxRecords): %w", p.cfg.Poll.MaxRecords, ErrRefused)
		}
		if p.cfg.Poll.Paging.Mode == source.PagingNext && page.Next != "" {
			req = Request{Next: page.Next}
			continue
		}
		if p.cfg.Poll.Paging.Mode != source.PagingOffset || len(page.Records) < p.cfg.Poll.Paging.Size {
			break
		}
		req.Offset += len(page.Records)
	}
	workers := make([]*orgsyncv1.Worker, 0, len(records))
	occurred := make([]time.Time, 0, len(records))
	var invalid []string
	seen := map[string]bool{}
	for _, rec := range records {
		if rec.Invalid != nil {
			invalid = append(invalid, describeInvalid(rec))
			continue
		}
		if seen[rec.WorkerID] {
			continue // paging read it twice (a record added while paging)
		}
		seen[rec.WorkerID] = true
		workers = append(workers, rec.Event.GetWorker())
		occurred = append(occurred, rec.Modified)
	}
	if len(invalid) > 0 {
		p.state.InvalidRecords += int64(len(invalid))
		p.state.LastInvalid = invalid[0]
		// Not tried again before the next scheduled full pull: the source's data must change.
		p.state.LastFullRefused = p.opts.Now()
		return fmt.Errorf("%w: %d record(s), the first: %s", ErrIncomplete, len(invalid), invalid[0])
	}
	if len(workers) == 0 {
		return fmt.Errorf("full pull read no records: an empty snapshot would mean everyone left: %w", ErrIncomplete)
	}
	snapshotID, err := p.sink.PublishSnapshot(ctx, p.cfg.Name, workers, occurred)
	if err != nil {
		return fmt.Errorf("%w: %w", errPublish, err)
	}
	p.state.Published += int64(len(workers)) + 2
	p.state.LastFullSync, p.state.LastSnapshotID = p.opts.Now(), snapshotID
	if p.state.Since.IsZero() && p.cfg.Poll.Incremental() {
		p.advance(records)
	}
	p.logger.Info("full pull published as a snapshot", "snapshot", snapshotID, "workers", len(workers))
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}
