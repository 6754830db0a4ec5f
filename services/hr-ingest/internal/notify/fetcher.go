package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
)

// What a vendor client's Fetch returns besides a record. Errors of the other kinds (5xx,
// network) are retried with backoff.
var (
	// ErrUnauthorized: the vendor refused the source's API credentials (401/403). Retrying
	// cannot fix it: the notification is parked until an operator fixes the credentials.
	ErrUnauthorized = errors.New("vendor API refused the credentials")
	// ErrNotFound: the vendor has no such employee (404).
	ErrNotFound = errors.New("employee not found at the vendor")
)

// ThrottledError is a 429: retry after RetryAfter (the vendor's Retry-After, or the fetcher's
// backoff when it sent none).
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("vendor API throttled the request (retry after %v)", e.RetryAfter)
}

// Client reads one employee from a vendor's API. Implementations are safe for concurrent use
// and keep credentials and PII out of their errors.
type Client interface {
	// Fetch returns the employee's current record as a worker event without id, source or
	// receive time; an error wraps ErrUnauthorized, ErrNotFound, a *ThrottledError, a
	// *normalize.InvalidError (a record orgsync cannot map) or is transient.
	Fetch(ctx context.Context, employeeID string) (*orgsyncv1.HREvent, error)
}

// IDMapper is implemented by a Client whose worker ids are not the vendor's employee ids (read
// from a field of the record); MapsIDs says whether that is so.
type IDMapper interface {
	MapsIDs() bool
}

func mapsIDs(client Client) bool {
	mapper, ok := client.(IDMapper)
	return ok && mapper.MapsIDs()
}

// PublishFunc stores an HR event in stream HR and returns once JetStream acknowledged it (the
// ingest pipeline's publish step).
type PublishFunc func(ctx context.Context, event *orgsyncv1.HREvent) error

// Error classes, as reported in Status and on parked notifications.
const (
	ClassUnauthorized = "unauthorized"
	ClassNotFound     = "not-found"
	ClassInvalid      = "invalid-record"
	ClassThrottled    = "throttled"
	ClassUnavailable  = "unavailable"
	ClassPublish      = "publish"
)

// FetcherOptions tune a Fetcher.
type FetcherOptions struct {
	// MinBackoff is the delay before the second try of a failing fetch, doubling each try up to
	// MaxBackoff; defaults 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	// AckWait is how long a fetch may take before JetStream delivers its notification again;
	// default 1m.
	AckWait time.Duration
}

// Fetcher consumes each notification source's pending notifications with a durable consumer
// (hr-ingest-notify-<source>), fetches the employee, publishes the HR event, and only then
// acknowledges. Run blocks and owns one goroutine per source; Status is safe for concurrent
// use with it.
type Fetcher struct {
	js      jetstream.JetStream
	clients map[string]Client
	publish PublishFunc
	opts    FetcherOptions
	logger  *slog.Logger

	mu        sync.Mutex
	lastError map[string]lastError
}

type lastError struct {
	class string
	at    time.Time
}

// NewFetcher returns a Fetcher for clients, by source name.
func NewFetcher(js jetstream.JetStream, clients map[string]Client, publish PublishFunc, opts FetcherOptions, logger *slog.Logger) *Fetcher {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.AckWait <= 0 {
		opts.AckWait = time.Minute
	}
	return &Fetcher{js: js, clients: clients, publish: publish, opts: opts, logger: logger, lastError: map[string]lastError{}}
}

// ConsumerName is the durable consumer of source's pending notifications.
func ConsumerName(source string) string { return "hr-ingest-notify-" + subject.Token(source) }

// Start creates every source's durable consumer and returns run, which consumes them until its
// ctx ends, blocking; the caller owns the goroutine it runs on. Creating the consumers first
// lets a service fail at start rather than later.
func (f *Fetcher) Start(ctx context.Context) (run func(ctx context.Context) error, err error) {
	consumers := map[string]jetstream.Consumer{}
	for name := range f.clients {
		c, err := f.js.CreateOrUpdateConsumer(ctx, Stream, jetstream.ConsumerConfig{
			Durable:       ConsumerName(name),
			Description:   "hr-ingest fetches the employees of source " + name + "'s notifications",
			FilterSubject: pendingFilter(name),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       f.opts.AckWait,
			MaxDeliver:    -1, // a failing fetch stays pending; what cannot succeed is parked
			MaxAckPending: 64,
		})
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", ConsumerName(name), err)
		}
		consumers[name] = c
	}
	return func(ctx context.Context) error {
		var wg sync.WaitGroup
		errs := make([]error, 0, len(consumers))
		var mu sync.Mutex
		for name, c := range consumers {
			wg.Go(func() {
				err := stream.Consume(ctx, c, func(ctx context.Context, msg jetstream.Msg) error {
					return f.handle(ctx, name, msg)
				}, stream.ConsumeOptions{OnError: func(msg jetstream.Msg, err error) {
					f.logger.Warn("fetch of a notified employee failed", "source", name, "subject", msg.Subject(), "error", err)
				}})
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("source %s: %w", name, err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}, nil
}

// handle fetches one notification's employee; its error decides what happens to the message
// (see stream.Consume): nil acknowledges, a stream.RetryError redelivers after its delay,
// stream.ErrPermanent terminates (after parking).
func (f *Fetcher) handle(ctx context.Context, source string, msg jetstream.Msg) error {
	var n Notification
	if err := json.Unmarshal(msg.Data(), &n); err != nil {
		return f.park(ctx, source, msg, Notification{Source: source}, ClassInvalid, fmt.Errorf("notification is not JSON: %w", err))
	}
	client := f.clients[source]
	event, err := client.Fetch(ctx, n.EmployeeID)
	var throttled *ThrottledError
	var invalid *normalize.InvalidError
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound) && n.Type == Left && mapsIDs(client):
		// The worker's id came from the vendor's record, which is gone: it cannot be named.
		return f.park(ctx, source, msg, n, ClassNotFound, fmt.Errorf("%w: the worker id is read from the record, which the vendor deleted; terminate the worker by another source or a snapshot", err))
	case errors.Is(err, ErrNotFound) && n.Type == Left:
		// The vendor deleted the record of an employee who left: the worker is terminated.
		event = &orgsyncv1.HREvent{Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{
			WorkerId: n.EmployeeID, EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED}}}
	case errors.Is(err, ErrNotFound):
		return f.park(ctx, source, msg, n, ClassNotFound, err)
	case errors.Is(err, ErrUnauthorized):
		return f.park(ctx, source, msg, n, ClassUnauthorized, err)
	case errors.As(err, &invalid):
		// The details may quote the record's values (an e-mail address): only the pointers
		// go into the reason and the logs.
		return f.park(ctx, source, msg, n, ClassInvalid, invalidFields(invalid))
	case errors.As(err, &throttled):
		f.failed(source, ClassThrottled)
		after := throttled.RetryAfter
		if after <= 0 {
			after = f.backoff(msg)
		}
		return stream.Retry(after, err)
	default:
		f.failed(source, ClassUnavailable)
		return stream.Retry(f.backoff(msg), err)
	}
	event.Source = n.Source
	event.EventId = "notify-" + n.DeliveryID
	event.ReceivedAt = timestamppb.New(n.ReceivedAt)
	if event.OccurredAt == nil && !n.OccurredAt.IsZero() {
		event.OccurredAt = timestamppb.New(n.OccurredAt)
	}
	if err := f.publish(ctx, event); err != nil {
		f.failed(source, ClassPublish)
		return stream.Retry(f.backoff(msg), err)
	}
	return nil
}

// park keeps n on its parked subject with the reason, then terminates the pending message; if
// parking fails the message stays pending and is tried again.
func (f *Fetcher) park(ctx context.Context, source string, msg jetstream.Msg, n Notification, class string, cause error) error {
	f.failed(source, class)
	employee := n.EmployeeID
	if employee == "" {
		employee = "%"
	}
	parked := &nats.Msg{Subject: ParkedSubject(source, employee), Data: msg.Data(), Header: nats.Header{}}
	parked.Header.Set(ReasonHeader, class+": "+cause.Error())
	if _, err := f.js.PublishMsg(ctx, parked); err != nil {
		return stream.Retry(f.backoff(msg), fmt.Errorf("parking after %s: %w", class, err))
	}
	f.logger.Error("notification parked: retrying cannot fix its fetch", "source", source, "class", class, "error", cause)
	return fmt.Errorf("%s: %w: %w", class, cause, stream.ErrPermanent)
}

// invalidFields describes a record orgsync cannot map by the pointers of its invalid fields,
// without their values or details, which may be PII.
func invalidFields(invalid *normalize.InvalidError) error {
	pointers := make([]string, len(invalid.Fields))
	for i, field := range invalid.Fields {
		pointers[i] = field.Pointer
	}
	return fmt.Errorf("the vendor's record has invalid fields: %s", strings.Join(pointers, ", "))
}

func (f *Fetcher) backoff(msg jetstream.Msg) time.Duration {
	delay := f.opts.MinBackoff
	for i := 1; i < stream.Attempt(msg) && delay < f.opts.MaxBackoff; i++ {
		delay *= 2
	}
	return min(delay, f.opts.MaxBackoff)
}

func (f *Fetcher) failed(source, class string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastError[source] = lastError{class: class, at: time.Now()}
}

// SourceStatus is how one notification source's fetches stand.
type SourceStatus struct {
	Source string `json:"source"`
	// Pending counts the notifications waiting for a successful fetch.
	Pending int64 `json:"pending"`
	// OldestPending is when the oldest of them was stored; zero without any.
	OldestPending time.Time `json:"oldestPending,omitzero"`
	// Parked counts notifications parked for a reason retrying cannot fix.
	Parked int64 `json:"parked"`
	// LastErrorClass is the class of this replica's last failed fetch (e.g. "unauthorized",
	// "throttled", "unavailable"), and LastErrorAt when it happened.
	LastErrorClass string    `json:"lastErrorClass,omitempty"`
	LastErrorAt    time.Time `json:"lastErrorAt,omitzero"`
}

// Status reports every source's pending and parked notifications, read from HR_NOTIFY, sorted
// by source.
func (f *Fetcher) Status(ctx context.Context) ([]SourceStatus, error) {
	s, err := f.js.Stream(ctx, Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", Stream, err)
	}
	statuses := make([]SourceStatus, 0, len(f.clients))
	for name := range f.clients {
		status := SourceStatus{Source: name}
		if status.Pending, err = countSubjects(ctx, s, pendingFilter(name)); err != nil {
			return nil, err
		}
		if status.Parked, err = countSubjects(ctx, s, parkedFilter(name)); err != nil {
			return nil, err
		}
		if status.Pending > 0 {
			// The stream keeps pending notifications until acknowledged (work-queue retention),
			// so the first on the subject is the oldest waiting.
			oldest, err := s.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(pendingFilter(name)))
			if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil, fmt.Errorf("oldest notification of %s: %w", name, err)
			}
			if oldest != nil {
				status.OldestPending = oldest.Time
			}
		}
		f.mu.Lock()
		last := f.lastError[name]
		f.mu.Unlock()
		status.LastErrorClass, status.LastErrorAt = last.class, last.at
		statuses = append(statuses, status)
	}
	sort.Slice(statuses, func(i, j int) bool { return statuses[i].Source < statuses[j].Source })
	return statuses, nil
}

func countSubjects(ctx context.Context, s jetstream.Stream, filter string) (int64, error) {
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, fmt.Errorf("stream %s, subjects %s: %w", Stream, filter, err)
	}
	var n uint64
	for _, count := range info.State.Subjects {
		n += count
	}
	return int64(n), nil
}

// ObserveMetrics reports, per source, hr_ingest.notify.pending, hr_ingest.notify.parked and
// hr_ingest.notify.oldest_pending_age (seconds) whenever metrics are collected, until the
// registration is unregistered.
func (f *Fetcher) ObserveMetrics() (metric.Registration, error) {
	meter := otel.Meter("github.com/orgsync/orgsync/services/hr-ingest/internal/notify")
	pending, err := meter.Int64ObservableGauge("hr_ingest.notify.pending", metric.WithUnit("{notification}"),
		metric.WithDescription("Vendor notifications waiting for a successful fetch of the employee"))
	if err != nil {
		return nil, err
	}
	parked, err := meter.Int64ObservableGauge("hr_ingest.notify.parked", metric.WithUnit("{notification}"),
		metric.WithDescription("Vendor notifications parked: their fetch failed for a reason retrying cannot fix"))
	if err != nil {
		return nil, err
	}
	oldest, err := meter.Float64ObservableGauge("hr_ingest.notify.oldest_pending_age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest vendor notification waiting for its fetch"))
	if err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(ctx context.Context, observer metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		statuses, err := f.Status(ctx)
		if err != nil {
			return nil // the stream is not reachable: nothing to report this time
		}
		for _, s := range statuses {
			attrs := metric.WithAttributes(attribute.String("source", s.Source))
			observer.ObserveInt64(pending, s.Pending, attrs)
			observer.ObserveInt64(parked, s.Parked, attrs)
			age := 0.0
			if !s.OldestPending.IsZero() {
				age = time.Since(s.OldestPending).Seconds()
			}
			observer.ObserveFloat64(oldest, age, attrs)
		}
		return nil
	}, pending, parked, oldest)
}

// ResponseError classifies a vendor API's answer by its status: nil for 2xx, ErrUnauthorized
// for 401 and 403, ErrNotFound for 404, a *ThrottledError for 429 (with its Retry-After, in
// seconds or as an HTTP date), a transient error otherwise. The response body is never quoted:
// it may hold PII.
func ResponseError(vendor string, resp *http.Response) error {
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%s API answered %d: %w", vendor, code, ErrUnauthorized)
	case code == http.StatusNotFound:
		return fmt.Errorf("%s API answered 404: %w", vendor, ErrNotFound)
	case code == http.StatusTooManyRequests:
		return &ThrottledError{RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	default:
		return fmt.Errorf("%s API answered %d", vendor, code)
	}
}

func retryAfter(value string) time.Duration {
	if value == "" {
		return 0
	}
	if seconds, err := strconv.Atoi(strings.TrimSpace(value)); err == nil && seconds >= 0 {
		return time.Duration(seconds) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil {
		return max(time.Until(at), 0)
	}
	return 0
}
