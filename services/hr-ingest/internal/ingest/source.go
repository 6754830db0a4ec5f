package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/bamboohr"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/canonical"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/hibob"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/personio"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/scim"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/snapshot"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

// Source is what differs between kinds of HR source; the pipeline (see Handler) does everything
// else the same way for all of them. A kind is one implementation, built by newSource from the
// source's configuration. Implementations are safe for concurrent use.
//
// A kind that is notified rather than sent the record (HiBob, Personio, BambooHR event-based)
// would verify the vendor's signature in Authenticate and, in Parse, turn the notification into
// events naming what to fetch; answering fast and fetching later is then the job of whatever
// consumes those events, not of the request.
type Source interface {
	// Config is the source's configuration, with its defaults filled in.
	Config() source.Config
	// Endpoint is the route pattern the source's senders post to.
	Endpoint() string
	// Credentials says what the sender proves itself with, and so whether the body is read
	// before Authenticate.
	Credentials() Credentials
	// Authenticate checks that a request comes from the source's sender: header only for a
	// bearer token (body is nil), header and raw body for a signature. It returns the sender's
	// delivery id, "" when it gives none. Errors never carry a secret.
	Authenticate(header http.Header, body []byte) (deliveryID string, err error)
	// MediaTypes are the Content-Types the source's bodies come in.
	MediaTypes() []string
	// Parse reads a body into normalised events without ids (dates and times in the source's
	// time zone). A refused body is a *normalize.InvalidError or a *normalize.SyntaxError; any
	// other error is the service's, not the sender's.
	Parse(header http.Header, body []byte) (Batch, error)
}

// Credentials is what a sender proves itself with.
type Credentials int

const (
	// BearerToken is checked before the body is read.
	BearerToken Credentials = iota
	// SignedBody is a signature over the body, which is read (within its size limit) first.
	SignedBody
)

// Naming says how a batch's events get the ids that make a sender's retry a duplicate.
type Naming int

const (
	// BySender: the sender's delivery id names the events ("<id>" or, numbered, "<id>.<n>").
	BySender Naming = iota
	// ByHistory: the sender has no delivery id; each event is named by its content and the event
	// it follows on its subject in stream HR (see nameByHistory).
	ByHistory
	// AsSnapshot: BEGIN, the workers and END of one snapshot, named after its snapshot id.
	AsSnapshot
	// ByVersion: each event is a polled record, named by its worker id and its version (the
	// record's modified time, Batch.Versions): reading the record again names it the same.
	ByVersion
)

// Batch is what Parse made of one request.
type Batch struct {
	Events []*orgsyncv1.HREvent
	Naming Naming
	// Numbered names BySender events "<delivery id>.<position>": the body was a batch.
	Numbered bool
	// SnapshotID names an AsSnapshot batch, whose events are BEGIN, the workers and END.
	SnapshotID string
	// Answer gives a 202's content type and body from what was accepted; nil answers Accepted
	// as application/json.
	Answer func(Accepted) (contentType string, body any)

	// Versions name a ByVersion batch's events, one per event.
	Versions []string

	// Notifications, when set, are what the request says changed at the vendor: they are
	// stored for the fetcher (Options.Notifier) instead of Events being published.
	Notifications []notify.Notification

	// retried holds the subjects of a ByHistory batch whose newest stored event already holds
	// the request's state (set when the batch is named): nothing of them is stored again.
	retried map[string]bool
}

// Route patterns.
const (
	EventsPattern   = "POST /v1/sources/{source}/events"
	SCIMPattern     = "POST /v1/sources/{source}/scim/Bulk"
	EntraPattern    = "POST /servicePrincipals/{servicePrincipalId}/synchronization/jobs/{jobId}/bulkUpload"
	SnapshotPattern = "POST /v1/sources/{source}/snapshots"
)

// IdempotencyKeyHeader names a snapshot upload's retries: uploads with the same key are one
// snapshot, stored once.
const IdempotencyKeyHeader = "Idempotency-Key"

// newSource builds the Source of cfg's kind; tolerance and now are for signature timestamps.
func newSource(cfg source.Config, tolerance time.Duration, now func() time.Time) (Source, error) {
	cfg = cfg.WithDefaults()
	switch cfg.Kind {
	case source.KindCanonical:
		return &canonicalSource{config: cfg, verifier: webhook.NewVerifier(cfg.Secrets, tolerance, now)}, nil
	case source.KindBambooHR:
		return &bambooHRSource{config: cfg, verifier: bamboohr.NewVerifier(cfg.Keys, tolerance, now)}, nil
	case source.KindHiBob:
		return &hibobSource{config: cfg, verifier: hibob.NewVerifier(cfg.Keys)}, nil
	case source.KindPersonio:
		return &personioSource{config: cfg, verifier: personio.NewVerifier(cfg.Keys)}, nil
	case source.KindSCIM:
		return &scimSource{config: cfg, tokens: hashTokens(cfg.Tokens)}, nil
	case source.KindCSV:
		return &csvSource{config: cfg, tokens: hashTokens(cfg.Tokens)}, nil
	case source.KindPoll:
		return &pollSource{config: cfg}, nil
	}
	return nil, fmt.Errorf("source %q: kind %q has no implementation", cfg.Name, cfg.Kind)
}

// canonicalSource takes orgsync's own events, signed per Standard Webhooks.
type canonicalSource struct {
	config   source.Config
	verifier *webhook.Verifier
}

func (s *canonicalSource) Config() source.Config    { return s.config }
func (s *canonicalSource) Endpoint() string         { return EventsPattern }
func (s *canonicalSource) Credentials() Credentials { return SignedBody }
func (s *canonicalSource) MediaTypes() []string     { return []string{"application/json"} }

func (s *canonicalSource) Authenticate(header http.Header, body []byte) (string, error) {
	webhookID, _, err := s.verifier.Verify(header, body)
	return webhookID, err
}

func (s *canonicalSource) Parse(_ http.Header, body []byte) (Batch, error) {
	events, err := canonical.ParseBatch(body, s.config.Location)
	return Batch{Events: events, Naming: BySender, Numbered: canonical.IsBatch(body)}, err
}

// bambooHRSource takes BambooHR's field-based webhooks, signed with the webhook's private key,
// and, when the source has API credentials, its event-based webhooks (see pull.go).
type bambooHRSource struct {
	config   source.Config
	verifier *bamboohr.Verifier
}

func (s *bambooHRSource) Config() source.Config    { return s.config }
func (s *bambooHRSource) Endpoint() string         { return EventsPattern }
func (s *bambooHRSource) Credentials() Credentials { return SignedBody }
func (s *bambooHRSource) MediaTypes() []string     { return []string{"application/json"} }

func (s *bambooHRSource) Authenticate(header http.Header, body []byte) (string, error) {
	_, err := s.verifier.Verify(header, body)
	return "", err
}

func (s *bambooHRSource) Parse(_ http.Header, body []byte) (Batch, error) {
	if s.config.Pulls() && bamboohr.IsEvent(body) {
		return parseBambooHREvent(body)
	}
	events, err := bamboohr.Parse(body, s.config.Location)
	return Batch{Events: events, Naming: ByHistory}, err
}

// scimSource takes SCIM bulk requests with a bearer token, answered with a BulkResponse.
type scimSource struct {
	config source.Config
	tokens [][sha256.Size]byte
}

func (s *scimSource) Config() source.Config    { return s.config }
func (s *scimSource) Endpoint() string         { return SCIMPattern }
func (s *scimSource) Credentials() Credentials { return BearerToken }
func (s *scimSource) MediaTypes() []string {
	return []string{"application/scim+json", "application/json"}
}

func (s *scimSource) Authenticate(header http.Header, _ []byte) (string, error) {
	return "", bearer(header, s.tokens)
}

func (s *scimSource) Parse(_ http.Header, body []byte) (Batch, error) {
	ops, err := scim.Parse(body, s.config.Location)
	if err != nil {
		return Batch{}, err
	}
	events := make([]*orgsyncv1.HREvent, len(ops))
	for i, op := range ops {
		events[i] = op.Event
	}
	answer := func(Accepted) (string, any) {
		resp := scim.BulkResponse{Schemas: []string{scim.BulkResponseSchema}, Operations: make([]scim.OperationResponse, len(ops))}
		for i, op := range ops {
			resp.Operations[i] = scim.OperationResponse{Method: op.Method, BulkID: op.BulkID, Status: strconv.Itoa(http.StatusAccepted),
				Location: "urn:orgsync:hr:" + s.config.Name + ":worker:" + op.Event.GetWorker().GetWorkerId()}
		}
		return "application/scim+json", resp
	}
	return Batch{Events: events, Naming: ByHistory, Answer: answer}, nil
}

// csvSource takes full exports as CSV with a bearer token, published as a snapshot.
type csvSource struct {
	config source.Config
	tokens [][sha256.Size]byte
}

func (s *csvSource) Config() source.Config    { return s.config }
func (s *csvSource) Endpoint() string         { return SnapshotPattern }
func (s *csvSource) Credentials() Credentials { return BearerToken }
func (s *csvSource) MediaTypes() []string     { return []string{"text/csv"} }

func (s *csvSource) Authenticate(header http.Header, _ []byte) (string, error) {
	return "", bearer(header, s.tokens)
}

func (s *csvSource) Parse(header http.Header, body []byte) (Batch, error) {
	workers, err := snapshot.Parse(body, snapshot.Options{Mapping: s.config.CSVColumns, Comma: s.config.CSVComma, Location: s.config.Location})
	if err != nil {
		return Batch{}, err
	}
	snapshotID, err := snapshot.NewID(s.config.Name, header.Get(IdempotencyKeyHeader))
	if errors.Is(err, snapshot.ErrBadIdempotencyKey) {
		return Batch{}, &normalize.InvalidError{Fields: []normalize.FieldError{{Pointer: "header:" + IdempotencyKeyHeader, Detail: err.Error()}}}
	}
	if err != nil {
		return Batch{}, err
	}
	answer := func(accepted Accepted) (string, any) {
		accepted.SnapshotID, accepted.RecordCount = snapshotID, len(workers)
		return "application/json", accepted
	}
	return Batch{Events: snapshot.Events(snapshotID, workers), Naming: AsSnapshot, SnapshotID: snapshotID, Answer: answer}, nil
}

// errBadToken says a request's bearer token is missing or not one of the source's.
var errBadToken = errors.New("missing or unknown bearer token")

func hashTokens(tokens []string) [][sha256.Size]byte {
	hashes := make([][sha256.Size]byte, len(tokens))
	for i, token := range tokens {
		hashes[i] = sha256.Sum256([]byte(token))
	}
	return hashes
}

// bearer checks the Authorization header against token hashes in constant time (of the hashes).
func bearer(header http.Header, tokens [][sha256.Size]byte) error {
	scheme, token, ok := strings.Cut(header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return errBadToken
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for _, want := range tokens {
		match |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	if match != 1 {
		return errBadToken
	}
	return nil
}
