// Package ingest is hr-ingest's HTTP door. Every request of every kind of HR source goes through
// one pipeline (Handler.serve): authenticate → limit → read → parse and normalise → assign event
// ids → publish → answer. What differs between kinds is a Source (source.go): how the sender
// proves itself, which content types it sends, how its body becomes events and how its events
// are named. 202 is answered only after JetStream has acknowledged every event.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/metrics"
	"github.com/orgsync/orgsync/pkg/ratelimit"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/problem"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

// Publisher stores one message durably and returns once the stream has acknowledged it.
type Publisher interface {
	Publish(ctx context.Context, subject, msgID string, m proto.Message) (*jetstream.PubAck, error)
}

var _ Publisher = (*stream.Publisher)(nil)

// Limiter takes from budgets by key (pkg/ratelimit's Limiter: shared in Redis, kept in the
// process without it). The pipeline keeps two kinds of budget apart: a source's requests (key
// "source:<name>"), spent only once the sender proved who it is, and a client address's failed
// authentications ("client:<address>"), so that nobody can spend a source's budget without its
// secret.
type Limiter interface {
	// Take spends n of key's budget (0 only looks), answering how long to wait when it cannot.
	Take(ctx context.Context, key string, limit ratelimit.Limit, n int) (bool, time.Duration)
}

var _ Limiter = (*ratelimit.Limiter)(nil)

// Options tune the handler.
type Options struct {
	// MaxBodyBytes limits a request body unless its source sets its own; larger ones get 413.
	MaxBodyBytes int64
	// TimestampTolerance is how far a signed request's timestamp may be from now; default 5m.
	TimestampTolerance time.Duration
	// PublishTimeout bounds the wait for JetStream's acknowledgement of each event before
	// answering 503.
	PublishTimeout time.Duration
	// RetryAfter is what a 503 tells the sender to wait.
	RetryAfter time.Duration
	// PublishConcurrency is how many events (snapshot rows, workers of a bulk request) are
	// awaiting an acknowledgement or being named at once.
	PublishConcurrency int
	// Limiter limits request rates; nil means no limit.
	Limiter Limiter
	// UnauthenticatedLimit is each client address's budget of failed authentications; past it
	// the address is answered 429 before its body is read. Default 10 per minute, bursts of 20.
	UnauthenticatedLimit ratelimit.Limit
	// MaxInFlight caps the requests being served at once; more are answered 503 with
	// Retry-After. Default 256.
	MaxInFlight int
	// TrustedProxies are the addresses of reverse proxies (an ingress) whose X-Forwarded-For
	// names the client; without them the connection's address is the client.
	TrustedProxies []netip.Prefix
	// History tells a retried request from a repeated state for sources that send no delivery
	// id (SCIM, BambooHR). Required.
	History History
	// SnapshotLocks keep one snapshot per source open at a time; nil leaves snapshots unlocked
	// (a single replica whose senders never overlap).
	SnapshotLocks SnapshotLocks
	// Now is the clock of receive times and signature timestamps; default time.Now.
	Now func() time.Time
	// Notifier keeps the notifications of sources whose webhooks name an employee to fetch
	// (HiBob, BambooHR event-based); nil answers them 503.
	Notifier Notifier
}

// Handler serves every HR source's endpoints and the dry run. It is safe for concurrent use.
type Handler struct {
	sources   map[string]Source
	publisher Publisher
	opts      Options
	logger    *slog.Logger
	// inFlight holds one token per request being served (Options.MaxInFlight).
	inFlight chan struct{}
}

// NewHandler returns a Handler for the given sources (see source.ValidateAll).
func NewHandler(configs []source.Config, publisher Publisher, opts Options, logger *slog.Logger) (*Handler, error) {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.TimestampTolerance <= 0 {
		opts.TimestampTolerance = 5 * time.Minute
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = 5 * time.Second
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 5 * time.Second
	}
	if opts.PublishConcurrency <= 0 {
		opts.PublishConcurrency = 64
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.UnauthenticatedLimit.Events <= 0 {
		opts.UnauthenticatedLimit = ratelimit.Limit{Events: 10, Period: time.Minute, Burst: 20}
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 256
	}
	if err := source.ValidateAll(configs); err != nil {
		return nil, err
	}
	h := &Handler{sources: make(map[string]Source, len(configs)), publisher: publisher, opts: opts, logger: logger,
		inFlight: make(chan struct{}, opts.MaxInFlight)}
	for _, cfg := range configs {
		src, err := newSource(cfg, opts.TimestampTolerance, opts.Now)
		if err != nil {
			return nil, err
		}
		h.sources[cfg.Name] = src
	}
	return h, nil
}

// Routes returns every route senders post to, by ServeMux pattern. The dry run is apart
// (DryRun): it is for orgsync's own clients and authenticated by them.
func (h *Handler) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		EventsPattern:   h.route(h.byPath(EventsPattern)),
		SCIMPattern:     h.route(h.byPath(SCIMPattern)),
		EntraPattern:    h.route(h.byToken(SCIMPattern)),
		SnapshotPattern: h.route(h.byPath(SnapshotPattern)),
	}
}

// finder finds the source a request is for, or answers the request itself.
type finder func(w http.ResponseWriter, r *http.Request) (Source, bool)

// route serves a route's requests through the pipeline, within the in-flight cap, counting
// every refusal.
func (h *Handler) route(find finder) http.Handler {
	return countRejections(h.capInFlight(func(w http.ResponseWriter, r *http.Request) {
		if src, ok := find(w, r); ok {
			h.serve(w, r, src)
		}
	}))
}

// byPath finds the source named by the path among those whose senders post to endpoint; an
// empty endpoint takes a source of any kind.
func (h *Handler) byPath(endpoint string) finder {
	return func(w http.ResponseWriter, r *http.Request) (Source, bool) {
		name := r.PathValue("source")
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("orgsync.source", name))
		src, ok := h.sources[name]
		if !ok {
			problem.Write(w, problem.Details{Type: problem.TypeBase + "unknown-source", Status: http.StatusNotFound,
				Detail: fmt.Sprintf("no HR source named %q is configured", name)}, 0)
			return nil, false
		}
		if endpoint != "" && src.Endpoint() != endpoint {
			problem.Write(w, problem.Details{Type: problem.TypeBase + "unknown-source", Status: http.StatusNotFound,
				Detail: fmt.Sprintf("HR source %q is of kind %s and does not take requests here", name, src.Config().Kind)}, 0)
			return nil, false
		}
		return src, true
	}
}

// byToken finds, among the sources posting to endpoint, the one whose bearer token the request
// carries: at Entra's own path the token, not the path, names the source, so that a client
// written for Entra's API-driven provisioning only changes its host.
func (h *Handler) byToken(endpoint string) finder {
	return func(w http.ResponseWriter, r *http.Request) (Source, bool) {
		trace.SpanFromContext(r.Context()).SetAttributes(
			attribute.String("orgsync.entra.service_principal_id", r.PathValue("servicePrincipalId")),
			attribute.String("orgsync.entra.job_id", r.PathValue("jobId")))
		for _, src := range h.sources {
			if src.Endpoint() != endpoint || src.Credentials() != BearerToken {
				continue
			}
			if _, err := src.Authenticate(r.Header, nil); err == nil {
				trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("orgsync.source", src.Config().Name))
				return src, true
			}
		}
		h.unauthenticated(w, r, "", errBadToken)
		return nil, false
	}
}

// serve is the pipeline every request of every source goes through.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, src Source) {
	name := src.Config().Name
	// Authenticate. A signature covers the body, so its body is read (within the size limit)
	// first; an address that keeps failing is refused before that.
	var body []byte
	read := false
	if src.Credentials() == SignedBody {
		if h.clientBlocked(w, r) {
			return
		}
		if body, read = h.read(w, r, src); !read {
			return
		}
	}
	deliveryID, err := src.Authenticate(r.Header, body)
	if err != nil {
		h.unauthenticated(w, r, name, err)
		return
	}
	// Limit: only a sender that proved who it is spends its source's budget.
	if !h.allow(w, r, src) {
		return
	}
	// Read.
	if !read {
		if body, read = h.read(w, r, src); !read {
			return
		}
	}
	// Parse, normalise and name.
	batch, ok := h.prepare(w, r, src, body, deliveryID)
	if !ok {
		return
	}
	// A notification is stored for the fetcher (pull.go), answered without fetching.
	if batch.Notifications != nil {
		h.notify(w, r, src, batch)
		return
	}
	// Publish.
	accepted, ok := h.publish(w, r, src, batch)
	if !ok {
		return
	}
	// Answer.
	contentType, answer := "application/json", any(accepted)
	if batch.Answer != nil {
		contentType, answer = batch.Answer(accepted)
	}
	writeJSON(w, http.StatusAccepted, contentType, answer)
}

// prepare parses and normalises a body (Source.Parse), stamps its events with their source and
// receive time, and names them; it answers the request itself when it cannot.
func (h *Handler) prepare(w http.ResponseWriter, r *http.Request, src Source, body []byte, deliveryID string) (Batch, bool) {
	batch, err := src.Parse(r.Header, body)
	if err != nil {
		if !writeInvalid(w, err) {
			h.unavailable(w, r, src, err)
		}
		return Batch{}, false
	}
	// received_at is stamped here, once, on every event of every kind.
	receivedAt := timestamppb.New(h.opts.Now())
	for _, event := range batch.Events {
		event.Source, event.ReceivedAt = src.Config().Name, receivedAt
	}
	if err := h.name(r.Context(), src, &batch, deliveryID); err != nil {
		h.unavailable(w, r, src, err)
		return Batch{}, false
	}
	return batch, true
}

// name gives every event of batch its id, the one place event ids are assigned: a retry of
// the same request gets the same ids, which stream HR stores once (Nats-Msg-Id
// "<source>:<eventId>").
func (h *Handler) name(ctx context.Context, src Source, batch *Batch, deliveryID string) error {
	switch batch.Naming {
	case BySender:
		for i, event := range batch.Events {
			event.EventId = deliveryID
			if batch.Numbered {
				event.EventId = deliveryID + "." + strconv.Itoa(i)
			}
		}
	case AsSnapshot:
		last := len(batch.Events) - 1
		for i, event := range batch.Events {
			switch i {
			case 0:
				event.EventId = batch.SnapshotID + ".begin"
			case last:
				event.EventId = batch.SnapshotID + ".end"
			default:
				event.EventId = batch.SnapshotID + "." + strconv.Itoa(i)
			}
		}
	case ByVersion:
		for i, event := range batch.Events {
			event.EventId = versionID(string(src.Config().Kind), event.GetWorker().GetWorkerId(), batch.Versions[i])
		}
	case ByHistory:
		subjects, err := bySubject(batch.Events)
		if err != nil {
			return err
		}
		prefix := string(src.Config().Kind) + "-"
		var mu sync.Mutex
		batch.retried = map[string]bool{}
		return h.eachSubject(ctx, subjects, func(ctx context.Context, s subjectEvents) error {
			retry, err := h.nameByHistory(ctx, prefix, s.subject, s.events)
			if retry {
				mu.Lock()
				batch.retried[s.subject] = true
				mu.Unlock()
			}
			return err
		})
	}
	return nil
}

// read applies the source's media types and body size limit, and returns the body.
func (h *Handler) read(w http.ResponseWriter, r *http.Request, src Source) ([]byte, bool) {
	mediaTypes := src.MediaTypes()
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !slices.Contains(mediaTypes, mediaType) {
		problem.Write(w, problem.Details{Type: problem.TypeBase + "unsupported-media-type", Status: http.StatusUnsupportedMediaType,
			Detail: "Content-Type must be " + strings.Join(mediaTypes, " or ")}, 0)
		return nil, false
	}
	limit := h.opts.MaxBodyBytes
	if max := src.Config().MaxBodyBytes; max > 0 {
		limit = max
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			problem.Write(w, problem.Details{Type: problem.TypeBase + "too-large", Status: http.StatusRequestEntityTooLarge,
				Detail: fmt.Sprintf("the body is larger than %d bytes", limit)}, 0)
			return nil, false
		}
		problem.Write(w, problem.Details{Type: problem.TypeBase + "unreadable", Status: http.StatusBadRequest,
			Detail: "the body could not be read"}, 0)
		return nil, false
	}
	return body, true
}

// allow takes one request from the source's budget, answering 429 when it is spent. It is
// called only after the sender proved who it is.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, src Source) bool {
	if h.opts.Limiter == nil {
		return true
	}
	cfg := src.Config()
	limit := ratelimit.Limit{Events: cfg.RateRequests, Period: cfg.RatePeriod, Burst: cfg.RateBurst}
	if ok, wait := h.opts.Limiter.Take(r.Context(), "source:"+cfg.Name, limit, 1); !ok {
		problem.Write(w, problem.Details{Type: problem.TypeBase + "rate-limited", Status: http.StatusTooManyRequests,
			Detail: fmt.Sprintf("source %q is over its request rate; retry after the Retry-After delay", cfg.Name)}, max(wait, time.Second))
		return false
	}
	return true
}

// client is the address a request comes from: the connection's, or, when that is a trusted
// proxy, the nearest address in X-Forwarded-For that is not one.
func (h *Handler) client(r *http.Request) string {
	addr, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	client := addr.Addr().Unmap()
	if !h.trusted(client) {
		return client.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a forged or garbled entry: the last proxy's view is all that can be trusted
		}
		client = hop.Unmap()
		if !h.trusted(client) {
			break
		}
	}
	return client.String()
}

func (h *Handler) trusted(addr netip.Addr) bool {
	for _, p := range h.opts.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientBlocked answers 429 when the request's address has spent its budget of failed
// authentications; it spends nothing.
func (h *Handler) clientBlocked(w http.ResponseWriter, r *http.Request) bool {
	if h.opts.Limiter == nil {
		return false
	}
	if allowed, wait := h.opts.Limiter.Take(r.Context(), "client:"+h.client(r), h.opts.UnauthenticatedLimit, 0); !allowed {
		h.clientLimited(w, wait)
		return true
	}
	return false
}

func (h *Handler) clientLimited(w http.ResponseWriter, wait time.Duration) {
	problem.Write(w, problem.Details{Type: problem.TypeBase + "rate-limited", Status: http.StatusTooManyRequests,
		Detail: "too many requests from this address failed authentication; retry after the Retry-After delay"}, max(wait, time.Second))
}

// capInFlight answers 503 with Retry-After when Options.MaxInFlight requests are already being
// served, before anything of the request is read: a flood queues nowhere and holds no memory.
func (h *Handler) capInFlight(serve http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
			serve(w, r)
		default:
			problem.Write(w, problem.Details{Type: problem.TypeBase + "overloaded", Status: http.StatusServiceUnavailable,
				Detail: fmt.Sprintf("%d requests are being served; retry after the Retry-After delay", cap(h.inFlight))}, h.opts.RetryAfter)
		}
	}
}

// countRejections counts every refused request in metrics.HREvents (outcome "rejected", with
// the reason its status stands for); accepted events are counted where they are published.
func countRejections(serve http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		recorder := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		serve(recorder, r)
		if recorder.status < 400 {
			return
		}
		source := r.PathValue("source")
		if source == "" {
			source = "unknown"
		}
		metrics.Default().HREvent(r.Context(), source, "rejected", rejectionReason(recorder.status), 1)
	})
}

// rejectionReason names why a request with status was refused, for metrics.
func rejectionReason(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return "invalid"
	case http.StatusUnauthorized, http.StatusForbidden:
		return "unauthenticated"
	case http.StatusNotFound:
		return "unknown_source"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusConflict:
		return "snapshot_open"
	default:
		return strconv.Itoa(status)
	}
}

// statusRecorder remembers the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Accepted is the body of a 202 answer (except SCIM's, which is a BulkResponse).
type Accepted struct {
	// EventIDs are the ids of the accepted events, in order.
	EventIDs []string `json:"eventIds"`
	// Duplicates counts events JetStream already had (a redelivered request).
	Duplicates int `json:"duplicates"`
	// SnapshotID names an uploaded snapshot.
	SnapshotID string `json:"snapshotId,omitempty"`
	// RecordCount is the number of workers in an uploaded snapshot.
	RecordCount int `json:"recordCount,omitempty"`
}

// unauthenticated answers 401, or 429 once the client's address has spent its budget of failed
// authentications (see Options.UnauthenticatedLimit).
func (h *Handler) unauthenticated(w http.ResponseWriter, r *http.Request, source string, reason error) {
	h.logger.WarnContext(r.Context(), "request rejected", "source", source, "reason", reason)
	if h.opts.Limiter != nil {
		if ok, wait := h.opts.Limiter.Take(r.Context(), "client:"+h.client(r), h.opts.UnauthenticatedLimit, 1); !ok {
			h.clientLimited(w, wait)
			return
		}
	}
	problem.Write(w, problem.Details{Type: problem.TypeBase + "unauthenticated", Status: http.StatusUnauthorized,
		Detail: "verification failed: " + reason.Error()}, 0)
}

// unavailable answers 503: the events could not all be stored, the sender should retry.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, src Source, err error) {
	h.logger.ErrorContext(r.Context(), "events not stored; asking the sender to retry", "source", src.Config().Name, "error", err)
	problem.Write(w, problem.Details{Type: problem.TypeBase + "unavailable", Status: http.StatusServiceUnavailable,
		Detail: "the event store did not acknowledge the events; retry the same request later"}, h.opts.RetryAfter)
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeInvalid answers a refused body: the problem names every invalid field, or says the body
// is not in its format at all. It reports false, answering nothing, for an error that is not
// the sender's.
func writeInvalid(w http.ResponseWriter, err error) bool {
	if syntaxErr, ok := errors.AsType[*normalize.SyntaxError](err); ok {
		problem.Write(w, problem.Details{Type: problem.TypeBase + "malformed-" + strings.ToLower(syntaxErr.Format), Status: http.StatusBadRequest,
			Title: "Malformed " + syntaxErr.Format, Detail: syntaxErr.Error()}, 0)
		return true
	}
	invalid, ok := errors.AsType[*normalize.InvalidError](err)
	if !ok {
		return false
	}
	fields := make([]problem.FieldError, len(invalid.Fields))
	for i, f := range invalid.Fields {
		fields[i] = problem.FieldError{Pointer: f.Pointer, Detail: f.Detail, Limit: f.Limit}
	}
	// A request whose only fault is length is well-formed but cannot be written to the
	// directories: 422 with the limits, so the sender knows shortening is the fix. Anything
	// else wrong makes it a 400 listing every field, the lengths included.
	if !slices.ContainsFunc(fields, func(f problem.FieldError) bool { return f.Limit == 0 }) {
		problem.Write(w, problem.Details{Type: problem.TypeBase + "field-too-long", Status: http.StatusUnprocessableEntity,
			Title: "Field too long", Detail: strconv.Itoa(len(fields)) + " field(s) longer than the directories allow", Errors: fields}, 0)
		return true
	}
	problem.Write(w, problem.Details{Type: problem.TypeBase + "invalid-payload", Status: http.StatusBadRequest,
		Title: "Invalid payload", Detail: strconv.Itoa(len(fields)) + " invalid field(s)", Errors: fields}, 0)
	return true
}
