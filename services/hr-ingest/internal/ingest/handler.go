// Package ingest is hr-ingest's HTTP door: for every kind of HR source it verifies the sender,
// limits its request rate, validates and normalises the payload, publishes the HR events to
// JetStream and answers 202 only after JetStream has acknowledged every one of them.
package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
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
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/metrics"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/bamboohr"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/canonical"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/problem"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/ratelimit"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/scim"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/snapshot"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

// Publisher stores one message durably and returns once the stream has acknowledged it.
type Publisher interface {
	Publish(ctx context.Context, subject, msgID string, m proto.Message) (*jetstream.PubAck, error)
}

var _ Publisher = (*stream.Publisher)(nil)

// RateLimiter keeps two kinds of budget apart: a source's requests, spent only once the sender
// proved who it is, and a client address's failed authentications, so that nobody can spend a
// source's budget without its secret.
type RateLimiter interface {
	// Allow takes one request from a source's budget, answering how long to wait when it is spent.
	Allow(ctx context.Context, source string, limit ratelimit.Limit) (bool, time.Duration)
	// ClientFailed records a failed authentication from a client address; false when the
	// address has spent its budget of failures.
	ClientFailed(ctx context.Context, client string, limit ratelimit.Limit) (bool, time.Duration)
	// ClientBlocked says, spending nothing, whether an address has spent that budget.
	ClientBlocked(ctx context.Context, client string, limit ratelimit.Limit) (bool, time.Duration)
}

var _ RateLimiter = (*ratelimit.Limiter)(nil)

// Kind is how a source talks to orgsync.
type Kind string

// The source kinds.
const (
	KindCanonical Kind = "canonical"
	KindSCIM      Kind = "scim"
	KindBambooHR  Kind = "bamboohr"
	KindCSV       Kind = "csv"
)

// Source is one configured HR source.
type Source struct {
	Name string
	// Kind defaults to canonical.
	Kind Kind
	// Verifier checks Standard Webhooks signatures (canonical sources).
	Verifier *webhook.Verifier
	// BambooHR checks BambooHR signatures (bamboohr sources).
	BambooHR *bamboohr.Verifier
	// Tokens are the accepted bearer tokens (scim and csv sources).
	Tokens []string
	// Location is the source's time zone for dates and times without an offset; default UTC.
	Location *time.Location
	// RateLimit is the source's request budget, shared across replicas; zero is unlimited.
	RateLimit ratelimit.Limit
	// MaxBodyBytes overrides Options.MaxBodyBytes for this source; a csv source's default is
	// DefaultSnapshotMaxBytes.
	MaxBodyBytes int64
	// CSV says how a csv source's export is read.
	CSV snapshot.Options
}

// Options tune the handler.
type Options struct {
	// MaxBodyBytes limits a request body; larger ones get 413.
	MaxBodyBytes int64
	// PublishTimeout bounds the wait for JetStream's acknowledgement of each event before
	// answering 503.
	PublishTimeout time.Duration
	// RetryAfter is what a 503 tells the sender to wait.
	RetryAfter time.Duration
	// PublishConcurrency is how many snapshot rows are awaiting an acknowledgement at once.
	PublishConcurrency int
	// Limiter limits request rates; nil means no limit.
	Limiter RateLimiter
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
	Now           func() time.Time
}

// DefaultSnapshotMaxBytes is a csv source's body limit unless it sets its own: a full export is
// larger than any webhook.
const DefaultSnapshotMaxBytes = 64 << 20

// Handler serves every HR source's endpoints. It is safe for concurrent use.
type Handler struct {
	sources   map[string]*Source
	scim      []*Source
	publisher Publisher
	opts      Options
	logger    *slog.Logger
	// inFlight holds one token per request being served (Options.MaxInFlight).
	inFlight chan struct{}
}

// NewHandler returns a Handler for the given sources.
func NewHandler(sources []Source, publisher Publisher, opts Options, logger *slog.Logger) *Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
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
	if opts.UnauthenticatedLimit.Requests <= 0 {
		opts.UnauthenticatedLimit = ratelimit.Limit{Requests: 10, Period: time.Minute, Burst: 20}
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 256
	}
	h := &Handler{sources: make(map[string]*Source, len(sources)), publisher: publisher, opts: opts, logger: logger,
		inFlight: make(chan struct{}, opts.MaxInFlight)}
	for _, s := range sources {
		if s.Kind == "" {
			s.Kind = KindCanonical
		}
		if s.Location == nil {
			s.Location = time.UTC
		}
		if s.CSV.Location == nil {
			s.CSV.Location = s.Location
		}
		if s.Kind == KindCSV && s.MaxBodyBytes <= 0 {
			s.MaxBodyBytes = DefaultSnapshotMaxBytes
		}
		h.sources[s.Name] = &s
		if s.Kind == KindSCIM {
			h.scim = append(h.scim, &s)
		}
	}
	return h
}

// IdempotencyKeyHeader names a snapshot upload's retries: uploads with the same key are one
// snapshot, stored once.
const IdempotencyKeyHeader = "Idempotency-Key"

// Route patterns.
const (
	EventsPattern   = "POST /v1/sources/{source}/events"
	SCIMPattern     = "POST /v1/sources/{source}/scim/Bulk"
	EntraPattern    = "POST /servicePrincipals/{servicePrincipalId}/synchronization/jobs/{jobId}/bulkUpload"
	SnapshotPattern = "POST /v1/sources/{source}/snapshots"
)

// Routes returns every route the handler serves, by ServeMux pattern.
func (h *Handler) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		EventsPattern:   countRejections(h.capInFlight(h.serveEvents)),
		SCIMPattern:     countRejections(h.capInFlight(h.serveSCIM)),
		EntraPattern:    countRejections(h.capInFlight(h.serveEntraBulkUpload)),
		SnapshotPattern: countRejections(h.capInFlight(h.serveSnapshot)),
	}
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
	if blocked, wait := h.opts.Limiter.ClientBlocked(r.Context(), h.client(r), h.opts.UnauthenticatedLimit); blocked {
		h.clientLimited(w, wait)
		return true
	}
	return false
}

func (h *Handler) clientLimited(w http.ResponseWriter, wait time.Duration) {
	problem.Write(w, problem.Details{Type: problem.TypeBase + "rate-limited", Status: http.StatusTooManyRequests,
		Detail: "too many requests from this address failed authentication; retry after the Retry-After delay"}, max(wait, time.Second))
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

func (h *Handler) source(w http.ResponseWriter, r *http.Request, kinds ...Kind) (*Source, bool) {
	name := r.PathValue("source")
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("orgsync.source", name))
	source, ok := h.sources[name]
	if !ok {
		problem.Write(w, problem.Details{Type: problem.TypeBase + "unknown-source", Status: http.StatusNotFound,
			Detail: fmt.Sprintf("no HR source named %q is configured", name)}, 0)
		return nil, false
	}
	for _, k := range kinds {
		if source.Kind == k {
			return source, true
		}
	}
	problem.Write(w, problem.Details{Type: problem.TypeBase + "unknown-source", Status: http.StatusNotFound,
		Detail: fmt.Sprintf("HR source %q is of kind %s and does not take requests here", name, source.Kind)}, 0)
	return nil, false
}

// allow takes one request from the source's budget, answering 429 when it is spent. It is
// called only after the sender proved who it is.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, source *Source) bool {
	if h.opts.Limiter == nil {
		return true
	}
	if ok, wait := h.opts.Limiter.Allow(r.Context(), source.Name, source.RateLimit); !ok {
		problem.Write(w, problem.Details{Type: problem.TypeBase + "rate-limited", Status: http.StatusTooManyRequests,
			Detail: fmt.Sprintf("source %q is over its request rate; retry after the Retry-After delay", source.Name)}, max(wait, time.Second))
		return false
	}
	return true
}

// read applies the media type and the body size limit, and returns the body.
func (h *Handler) read(w http.ResponseWriter, r *http.Request, source *Source, mediaTypes ...string) ([]byte, bool) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !slices.Contains(mediaTypes, mediaType) {
		problem.Write(w, problem.Details{Type: problem.TypeBase + "unsupported-media-type", Status: http.StatusUnsupportedMediaType,
			Detail: "Content-Type must be " + strings.Join(mediaTypes, " or ")}, 0)
		return nil, false
	}
	limit := h.opts.MaxBodyBytes
	if source.MaxBodyBytes > 0 {
		limit = source.MaxBodyBytes
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

// unauthenticated answers 401, or 429 once the client's address has spent its budget of failed
// authentications (see Options.UnauthenticatedLimit).
func (h *Handler) unauthenticated(w http.ResponseWriter, r *http.Request, source string, reason error) {
	h.logger.WarnContext(r.Context(), "request rejected", "source", source, "reason", reason)
	if h.opts.Limiter != nil {
		if ok, wait := h.opts.Limiter.ClientFailed(r.Context(), h.client(r), h.opts.UnauthenticatedLimit); !ok {
			h.clientLimited(w, wait)
			return
		}
	}
	problem.Write(w, problem.Details{Type: problem.TypeBase + "unauthenticated", Status: http.StatusUnauthorized,
		Detail: "verification failed: " + reason.Error()}, 0)
}

// serveEvents takes canonical events (one or a batch, Standard Webhooks) and BambooHR webhooks.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	source, ok := h.source(w, r, KindCanonical, KindBambooHR)
	if !ok {
		return
	}
	// A signature covers the body, so the body is read before the sender is known: an address
	// that keeps failing is refused before that, and only a verified request spends the
	// source's budget.
	if h.clientBlocked(w, r) {
		return
	}
	body, ok := h.read(w, r, source, "application/json")
	if !ok {
		return
	}
	var events []*orgsyncv1.HREvent
	switch source.Kind {
	case KindBambooHR:
		// Verify before parsing: nothing in an unsigned body is looked at.
		if _, err := source.BambooHR.Verify(r.Header, body); err != nil {
			h.unauthenticated(w, r, source.Name, err)
			return
		}
		if !h.allow(w, r, source) {
			return
		}
		var err error
		if events, err = bamboohr.Parse(body, source.Location); err != nil {
			writeInvalid(w, err)
			return
		}
	default:
		webhookID, _, err := source.Verifier.Verify(r.Header, body)
		if err != nil {
			h.unauthenticated(w, r, source.Name, err)
			return
		}
		if !h.allow(w, r, source) {
			return
		}
		if events, err = canonical.ParseBatch(body); err != nil {
			writeInvalid(w, err)
			return
		}
		batch := bytes.HasPrefix(bytes.TrimSpace(body), []byte("["))
		for i, event := range events {
			event.EventId = webhookID
			if batch {
				event.EventId = webhookID + "." + strconv.Itoa(i)
			}
		}
	}
	keying := bySender
	if source.Kind == KindBambooHR {
		keying = byHistory
	}
	accepted, ok := h.publish(w, r, source, events, keying)
	if ok {
		writeJSON(w, "application/json", accepted)
	}
}

// bearer checks the Authorization header against tokens in constant time (of the token hashes).
func bearer(r *http.Request, tokens []string) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for _, t := range tokens {
		want := sha256.Sum256([]byte(t))
		match |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	return match == 1
}

var errBadToken = errors.New("missing or unknown bearer token")

func (h *Handler) serveSCIM(w http.ResponseWriter, r *http.Request) {
	source, ok := h.source(w, r, KindSCIM)
	if !ok {
		return
	}
	if !bearer(r, source.Tokens) {
		h.unauthenticated(w, r, source.Name, errBadToken)
		return
	}
	h.serveBulk(w, r, source)
}

// serveEntraBulkUpload takes a bulk request at Entra's own path, so that a client written for
// Entra's API-driven provisioning only changes its host; the bearer token names the source.
func (h *Handler) serveEntraBulkUpload(w http.ResponseWriter, r *http.Request) {
	trace.SpanFromContext(r.Context()).SetAttributes(
		attribute.String("orgsync.entra.service_principal_id", r.PathValue("servicePrincipalId")),
		attribute.String("orgsync.entra.job_id", r.PathValue("jobId")))
	var source *Source
	for _, s := range h.scim {
		if bearer(r, s.Tokens) {
			source = s
		}
	}
	if source == nil {
		h.unauthenticated(w, r, "", errBadToken)
		return
	}
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("orgsync.source", source.Name))
	h.serveBulk(w, r, source)
}

// serveBulk serves a SCIM bulk request whose bearer token has been checked.
func (h *Handler) serveBulk(w http.ResponseWriter, r *http.Request, source *Source) {
	if !h.allow(w, r, source) {
		return
	}
	body, ok := h.read(w, r, source, "application/scim+json", "application/json")
	if !ok {
		return
	}
	ops, err := scim.Parse(body, source.Location)
	if err != nil {
		writeInvalid(w, err)
		return
	}
	// SCIM carries no delivery id: each event is keyed by what stream HR already holds for its
	// worker (see publishByHistory).
	events := make([]*orgsyncv1.HREvent, len(ops))
	for i, op := range ops {
		events[i] = op.Event
	}
	if _, ok := h.publish(w, r, source, events, byHistory); !ok {
		return
	}
	resp := scim.BulkResponse{Schemas: []string{scim.BulkResponseSchema}, Operations: make([]scim.OperationResponse, len(ops))}
	for i, op := range ops {
		resp.Operations[i] = scim.OperationResponse{Method: op.Method, BulkID: op.BulkID, Status: strconv.Itoa(http.StatusAccepted),
			Location: "urn:orgsync:hr:" + source.Name + ":worker:" + op.Event.GetWorker().GetWorkerId()}
	}
	writeJSON(w, "application/scim+json", resp)
}

func (h *Handler) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	source, ok := h.source(w, r, KindCSV)
	if !ok {
		return
	}
	if !bearer(r, source.Tokens) {
		h.unauthenticated(w, r, source.Name, errBadToken)
		return
	}
	if !h.allow(w, r, source) {
		return
	}
	body, ok := h.read(w, r, source, "text/csv")
	if !ok {
		return
	}
	workers, err := snapshot.Parse(body, source.CSV)
	if err != nil {
		writeInvalid(w, err)
		return
	}
	snapshotID, err := snapshot.NewID(source.Name, r.Header.Get(IdempotencyKeyHeader))
	if errors.Is(err, snapshot.ErrBadIdempotencyKey) {
		problem.Write(w, problem.Details{Type: problem.TypeBase + "invalid-payload", Status: http.StatusBadRequest,
			Title: "Invalid payload", Detail: "1 invalid field(s)", Errors: []problem.FieldError{{Pointer: "header:" + IdempotencyKeyHeader, Detail: err.Error()}}}, 0)
		return
	}
	if err != nil {
		h.unavailable(w, r, source, err)
		return
	}
	if h.opts.SnapshotLocks != nil {
		release, err := h.opts.SnapshotLocks.Open(r.Context(), source.Name, snapshotID)
		if errors.Is(err, ErrSnapshotOpen) {
			problem.Write(w, problem.Details{Type: problem.TypeBase + "snapshot-open", Status: http.StatusConflict,
				Detail: fmt.Sprintf("a snapshot of source %q is being published; upload again once it has ended", source.Name)}, h.opts.RetryAfter)
			return
		}
		if err != nil {
			h.unavailable(w, r, source, err)
			return
		}
		defer release()
	}
	accepted, ok := h.publish(w, r, source, snapshot.Events(snapshotID, workers), asSnapshot)
	if !ok {
		return
	}
	accepted.SnapshotID, accepted.RecordCount = snapshotID, len(workers)
	writeJSON(w, "application/json", accepted)
}

func writeJSON(w http.ResponseWriter, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(v)
}

// errNoHistory says the handler was built without Options.History, which sources without a
// delivery id need.
var errNoHistory = errors.New("no HR history to tell retries from repeated states (Options.History)")

// keying says where a request's events get the ids that make a retry a duplicate.
type keying int

const (
	// bySender: the sender's own delivery id (a canonical webhook-id) names the events.
	bySender keying = iota
	// byHistory: the sender has no delivery id; each event is named by its content and the
	// event it follows on its subject (see publishByHistory).
	byHistory
	// asSnapshot: the events are a snapshot (BEGIN, rows, END) under one snapshot id per upload.
	asSnapshot
)

// publish stores every event, each under the Nats-Msg-Id "<source>:<eventId>", so a retried
// request stores nothing twice, and answers 503 when JetStream does not acknowledge. Events are
// published in order; a snapshot's workers (between its BEGIN and END markers, on distinct
// subjects) are published concurrently, and END only after every worker was acknowledged, so an
// END marker is never stored for an incomplete snapshot. received_at is stamped here, once, on
// every event of every kind.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request, source *Source, events []*orgsyncv1.HREvent, keying keying) (Accepted, bool) {
	receivedAt := timestamppb.New(h.opts.Now())
	for _, event := range events {
		event.Source = source.Name
		event.ReceivedAt = receivedAt
	}
	accepted := Accepted{EventIDs: make([]string, len(events))}
	var duplicates atomic.Int64
	var err error
	if keying == byHistory {
		err = h.publishByHistory(r.Context(), source, events, &duplicates)
	} else if keying == asSnapshot && len(events) > 2 {
		err = h.publishOne(r.Context(), events[0], &duplicates)
		if err == nil {
			err = h.publishConcurrently(r.Context(), events[1:len(events)-1], &duplicates)
		}
		if err == nil {
			err = h.publishOne(r.Context(), events[len(events)-1], &duplicates)
		}
	} else {
		for _, event := range events {
			if err = h.publishOne(r.Context(), event, &duplicates); err != nil {
				break
			}
		}
	}
	accepted.Duplicates = int(duplicates.Load())
	if err != nil {
		h.unavailable(w, r, source, err)
		return accepted, false
	}
	for i, event := range events {
		accepted.EventIDs[i] = event.GetEventId()
	}
	metrics.Default().HREvent(r.Context(), source.Name, "accepted", "", len(events)-accepted.Duplicates)
	if accepted.Duplicates > 0 {
		metrics.Default().HREvent(r.Context(), source.Name, "duplicate", "", accepted.Duplicates)
	}
	return accepted, true
}

// unavailable answers 503: the events could not all be stored, the sender should retry.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, source *Source, err error) {
	h.logger.ErrorContext(r.Context(), "events not stored; asking the sender to retry", "source", source.Name, "error", err)
	problem.Write(w, problem.Details{Type: problem.TypeBase + "unavailable", Status: http.StatusServiceUnavailable,
		Detail: "the event store did not acknowledge the events; retry the same request later"}, h.opts.RetryAfter)
}

// publishOne stores one event, counting it in duplicates when JetStream already had it.
func (h *Handler) publishOne(ctx context.Context, event *orgsyncv1.HREvent, duplicates *atomic.Int64) error {
	_, err := h.publishAck(ctx, event, duplicates)
	return err
}

// publishAck stores one event and returns its stream sequence (the stored original's, when
// JetStream already had it).
func (h *Handler) publishAck(ctx context.Context, event *orgsyncv1.HREvent, duplicates *atomic.Int64) (uint64, error) {
	subject, err := stream.HRSubject(event)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.PublishTimeout)
	defer cancel()
	ack, err := h.publisher.Publish(ctx, subject, event.GetSource()+":"+event.GetEventId(), event)
	if err != nil {
		return 0, err
	}
	if ack.Duplicate {
		duplicates.Add(1)
	}
	return ack.Sequence, nil
}

// publishByHistory stores the events of a request that has no delivery id. Before the first
// event of each subject (one worker) it reads the newest event stream HR holds there: when that
// already carries the state this request leaves the worker in (its last event for the subject;
// receive time and event id aside), the request is a retry and nothing of that subject is
// stored again. Otherwise every event is stored under an id made of its content and the
// sequence of the event it follows, so concurrent retries of one request collapse in
// JetStream's duplicate window, while a state that comes back after another one (A → B → A) is
// stored. A subject's events are stored in order; different subjects (workers) concurrently,
// up to PublishConcurrency, as a snapshot's rows are.
func (h *Handler) publishByHistory(ctx context.Context, source *Source, events []*orgsyncv1.HREvent, duplicates *atomic.Int64) error {
	if h.opts.History == nil {
		return errNoHistory
	}
	var subjects []string
	bySubject := map[string][]*orgsyncv1.HREvent{}
	for _, event := range events {
		subject, err := stream.HRSubject(event)
		if err != nil {
			return err
		}
		if _, seen := bySubject[subject]; !seen {
			subjects = append(subjects, subject)
		}
		bySubject[subject] = append(bySubject[subject], event)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	slots := make(chan struct{}, h.opts.PublishConcurrency)
	var wg sync.WaitGroup
	for _, subject := range subjects {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := h.publishSubject(ctx, string(source.Kind)+"-", subject, bySubject[subject], duplicates); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// publishSubject stores, in order, a request's events on one subject (see publishByHistory).
func (h *Handler) publishSubject(ctx context.Context, prefix, subject string, events []*orgsyncv1.HREvent, duplicates *atomic.Int64) error {
	retry, err := h.nameByHistory(ctx, prefix, subject, events)
	if err != nil {
		return err
	}
	if retry {
		duplicates.Add(int64(len(events)))
		return nil
	}
	for _, event := range events {
		if _, err := h.publishAck(ctx, event, duplicates); err != nil {
			return err
		}
	}
	return nil
}

// nameByHistory sets the ids of a request's events on one subject from what stream HR holds
// there (see publishByHistory); it reads and stores nothing else. It reports whether the request
// is a retry for the subject: the newest stored event already carries the state the request
// leaves the worker in, and every event is then named after it.
func (h *Handler) nameByHistory(ctx context.Context, prefix, subject string, events []*orgsyncv1.HREvent) (retry bool, err error) {
	if h.opts.History == nil {
		return false, errNoHistory
	}
	latest, after, err := h.opts.History.Latest(ctx, subject)
	if err != nil {
		return false, err
	}
	if latest != nil && sameContent(latest, events[len(events)-1]) {
		for _, event := range events {
			event.EventId = latest.GetEventId()
		}
		return true, nil
	}
	for i, event := range events {
		if event.EventId, err = historyEventID(prefix, event, after, i); err != nil {
			return false, err
		}
	}
	return false, nil
}

// historyIDs names a request's events the way publishByHistory does, subject after subject,
// without storing anything: a dry run's ids are the ones a real request would get now.
func (h *Handler) historyIDs(ctx context.Context, source *Source, events []*orgsyncv1.HREvent) error {
	var subjects []string
	bySubject := map[string][]*orgsyncv1.HREvent{}
	for _, event := range events {
		subject, err := stream.HRSubject(event)
		if err != nil {
			return err
		}
		if _, seen := bySubject[subject]; !seen {
			subjects = append(subjects, subject)
		}
		bySubject[subject] = append(bySubject[subject], event)
	}
	for _, subject := range subjects {
		if _, err := h.nameByHistory(ctx, string(source.Kind)+"-", subject, bySubject[subject]); err != nil {
			return err
		}
	}
	return nil
}

// publishConcurrently keeps up to PublishConcurrency events awaiting their acknowledgement and
// returns the first error after every started publish has finished.
func (h *Handler) publishConcurrently(ctx context.Context, events []*orgsyncv1.HREvent, duplicates *atomic.Int64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	slots := make(chan struct{}, h.opts.PublishConcurrency)
	var wg sync.WaitGroup
	for _, event := range events {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := h.publishOne(ctx, event, duplicates); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

func writeInvalid(w http.ResponseWriter, err error) {
	var fields []problem.FieldError
	var canonicalInvalid *canonical.InvalidError
	var invalid *normalize.InvalidError
	switch {
	case errors.As(err, &canonicalInvalid):
		for _, f := range canonicalInvalid.Fields {
			fields = append(fields, problem.FieldError{Pointer: f.Pointer, Detail: f.Detail, Limit: f.Limit})
		}
	case errors.As(err, &invalid):
		for _, f := range invalid.Fields {
			fields = append(fields, problem.FieldError{Pointer: f.Pointer, Detail: f.Detail, Limit: f.Limit})
		}
	default:
		title := "Malformed JSON"
		if _, ok := errors.AsType[*snapshot.SyntaxError](err); ok {
			title = "Malformed CSV"
		}
		problem.Write(w, problem.Details{Type: problem.TypeBase + "malformed-" + strings.ToLower(strings.TrimPrefix(title, "Malformed ")), Status: http.StatusBadRequest,
			Title: title, Detail: err.Error()}, 0)
		return
	}
	// A request whose only fault is length is well-formed but cannot be written to the
	// directories: 422 with the limits, so the sender knows shortening is the fix. Anything
	// else wrong makes it a 400 listing every field, the lengths included.
	if !slices.ContainsFunc(fields, func(f problem.FieldError) bool { return f.Limit == 0 }) {
		problem.Write(w, problem.Details{Type: problem.TypeBase + "field-too-long", Status: http.StatusUnprocessableEntity,
			Title: "Field too long", Detail: strconv.Itoa(len(fields)) + " field(s) longer than the directories allow", Errors: fields}, 0)
		return
	}
	problem.Write(w, problem.Details{Type: problem.TypeBase + "invalid-payload", Status: http.StatusBadRequest,
		Title: "Invalid payload", Detail: strconv.Itoa(len(fields)) + " invalid field(s)", Errors: fields}, 0)
}
