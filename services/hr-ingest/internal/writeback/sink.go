package writeback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/auditlog"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

// Bucket is hr-ingest's key-value bucket of what it wrote back (written.<source>.<attribute>.
// <workerId>: a hash of the value) and of parked write-backs (parked.<source>.<workerId>).
const Bucket = "hr_ingest_writeback"

// ConsumerName is the Sink's durable consumer on RESULTS.
const ConsumerName = "hr-ingest-writeback"

// Error classes, as reported in Status and on parked write-backs.
const (
	ClassUnauthorized = "unauthorized"
	ClassRejected     = "rejected"
	ClassThrottled    = "throttled"
	ClassUnavailable  = "unavailable"
)

// Source is one source's write-back: what it asked for and the Writer that writes to it.
type Source struct {
	Config source.WriteBack
	Writer Writer
}

// Options tune a Sink.
type Options struct {
	// MinBackoff is the delay before the second try of a failing write, doubling each try up to
	// MaxBackoff; defaults 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	// AckWait is how long a write may take before JetStream delivers its result again; default 1m.
	AckWait time.Duration
	// Replicas of the bucket; default 1.
	Replicas int
	// AllowPII puts the written values into the audit record's changes (ORGSYNC_TELEMETRY_PII);
	// nil reads the policy from the environment.
	AllowPII *bool
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Sink follows RESULTS and writes accounts back to their sources. Run blocks and is owned by its
// caller; Status and Replay are safe for concurrent use with it.
type Sink struct {
	js      jetstream.JetStream
	sources map[string]Source
	opts    Options
	logger  *slog.Logger
	audit   *stream.Publisher

	kv       jetstream.KeyValue
	consumer jetstream.Consumer
	results  jetstream.Stream

	mu        sync.Mutex
	lastError map[string]lastError
}

type lastError struct {
	class string
	at    time.Time
}

// New returns a Sink for sources, by source name; only sources whose write-back is enabled are
// followed.
func New(js jetstream.JetStream, sources map[string]Source, opts Options, logger *slog.Logger) *Sink {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.AckWait <= 0 {
		opts.AckWait = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	enabled := map[string]Source{}
	for name, s := range sources {
		if s.Config.Enabled() && s.Writer != nil {
			enabled[name] = s
		}
	}
	return &Sink{js: js, sources: enabled, opts: opts, logger: logger, audit: stream.NewPublisher(js), lastError: map[string]lastError{}}
}

// Filters are the RESULTS subjects the Sink follows: the users of every directory a source
// writes back from.
func (s *Sink) Filters() []string {
	targets := map[string]bool{}
	for _, src := range s.sources {
		targets[src.Config.Target()] = true
	}
	filters := make([]string, 0, len(targets))
	for target := range targets {
		filters = append(filters, "results."+target+".user.>")
	}
	sort.Strings(filters)
	return filters
}

// Start creates the bucket and the durable consumer (first delivering the newest result of
// every user, so accounts made before write-back was enabled are written back too) and returns
// run, which consumes until its ctx ends, blocking; the caller owns its goroutine.
func (s *Sink) Start(ctx context.Context) (run func(ctx context.Context) error, err error) {
	s.kv, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "What hr-ingest wrote back to each HR source (hashes of values, never values), and parked write-backs.",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(s.opts.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", Bucket, err)
	}
	if s.results, err = s.js.Stream(ctx, stream.Results); err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream.Results, err)
	}
	s.consumer, err = s.js.CreateOrUpdateConsumer(ctx, stream.Results, jetstream.ConsumerConfig{
		Durable:        ConsumerName,
		Description:    "hr-ingest writes accounts' UPN and mail back to their HR sources",
		FilterSubjects: s.Filters(),
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        s.opts.AckWait,
		MaxDeliver:     -1, // a failing write stays pending; what cannot succeed is parked
		MaxAckPending:  64,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", ConsumerName, stream.Results, err)
	}
	return func(ctx context.Context) error {
		return stream.Consume(ctx, s.consumer, s.handle, stream.ConsumeOptions{OnError: func(msg jetstream.Msg, err error) {
			s.logger.Warn("write-back of an account failed", "subject", msg.Subject(), "error", err)
		}})
	}, nil
}

// handle writes back one result; its error decides what happens to the message (see
// stream.Consume).
func (s *Sink) handle(ctx context.Context, msg jetstream.Msg) error {
	var result orgsyncv1.WriterResult
	if err := stream.Decode(msg, &result); err != nil {
		return err
	}
	if stale, err := s.superseded(ctx, msg); err != nil {
		return stream.Retry(s.backoff(stream.Attempt(msg)), err)
	} else if stale {
		// A newer result of the user is on RESULTS (another replica may be handling it): writing
		// this one could land after it and write an old value back.
		return nil
	}
	return s.writeBack(ctx, msg.Subject(), &result, stream.Attempt(msg))
}

// superseded says whether RESULTS holds a newer result on msg's subject than msg.
func (s *Sink) superseded(ctx context.Context, msg jetstream.Msg) (bool, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return false, nil
	}
	newest, err := s.results.GetLastMsgForSubject(ctx, msg.Subject())
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("newest result of %s: %w", msg.Subject(), err)
	}
	return newest.Sequence > meta.Sequence.Stream, nil
}

// writeBack writes what changed of result's account to its source, if the source asked for it.
func (s *Sink) writeBack(ctx context.Context, resultSubject string, result *orgsyncv1.WriterResult, attempt int) error {
	if result.GetKind() != orgsyncv1.ObjectKind_OBJECT_KIND_USER {
		return nil
	}
	switch result.GetOutcome() {
	case orgsyncv1.Outcome_OUTCOME_APPLIED, orgsyncv1.Outcome_OUTCOME_UNCHANGED:
	default:
		return nil // no account to tell HR about
	}
	name := result.GetHrSource()
	src, ok := s.sources[name]
	if !ok || subject.TargetName(result.GetTarget()) != src.Config.Target() {
		return nil
	}
	workerID := result.GetKey()
	current := Values{UPN: result.GetUserPrincipalName(), Mail: result.GetMail()}
	var pending Values
	var attributes []source.Attribute
	for _, attribute := range src.Config.Attributes {
		value := current.Get(attribute)
		if value == "" {
			continue
		}
		entry, err := s.kv.Get(ctx, writtenKey(name, attribute, workerID))
		switch {
		case err == nil && string(entry.Value()) == fingerprint(value):
			continue // already written: a redelivery, a restart, or a result that changed something else
		case err != nil && !errors.Is(err, jetstream.ErrKeyNotFound):
			return stream.Retry(s.backoff(attempt), fmt.Errorf("reading what was written back: %w", err))
		}
		pending.Set(attribute, value)
		attributes = append(attributes, attribute)
	}
	if pending.Empty() {
		return nil
	}
	err := src.Writer.Write(ctx, workerID, pending)
	var throttled *notify.ThrottledError
	switch {
	case err == nil:
	case errors.Is(err, ErrUnauthorized):
		return s.park(ctx, name, workerID, resultSubject, attributes, ClassUnauthorized, err)
	case errors.Is(err, ErrRejected):
		return s.park(ctx, name, workerID, resultSubject, attributes, ClassRejected, err)
	case errors.As(err, &throttled):
		s.failed(name, ClassThrottled)
		after := throttled.RetryAfter
		if after <= 0 {
			after = s.backoff(attempt)
		}
		return stream.Retry(after, err)
	default:
		s.failed(name, ClassUnavailable)
		return stream.Retry(s.backoff(attempt), err)
	}
	for _, attribute := range attributes {
		if _, err := s.kv.Put(ctx, writtenKey(name, attribute, workerID), []byte(fingerprint(pending.Get(attribute)))); err != nil {
			// Written but not recorded: the next delivery writes the same value again, which
			// the vendor takes as a no-op.
			return stream.Retry(s.backoff(attempt), fmt.Errorf("recording the write-back: %w", err))
		}
	}
	if err := s.kv.Delete(ctx, parkedKey(name, workerID)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.logger.Warn("parked write-back not cleared", "source", name, "worker", workerID, "error", err)
	}
	if err := s.auditWrite(ctx, name, workerID, result, pending, attributes); err != nil {
		// The write happened and is recorded; the audit record is retried with the message,
		// which writes nothing again.
		return stream.Retry(s.backoff(attempt), err)
	}
	s.logger.InfoContext(ctx, "account written back to its HR source", "source", name, "worker", workerID, "attributes", attributeNames(attributes))
	return nil
}

// auditWrite records the write-back on AUDIT: which attributes, which source, which worker,
// the values only as the PII policy allows.
func (s *Sink) auditWrite(ctx context.Context, sourceName, workerID string, result *orgsyncv1.WriterResult, written Values, attributes []source.Attribute) error {
	after := map[string]string{}
	operations := make([]string, len(attributes))
	for i, attribute := range attributes {
		after[directoryName(attribute)] = written.Get(attribute)
		operations[i] = "hr.writeback." + string(attribute)
	}
	changes := auditlog.Changes(nil, after)
	if s.opts.AllowPII != nil {
		changes = auditlog.ChangesWithPolicy(nil, after, *s.opts.AllowPII)
	}
	record := &orgsyncv1.WriterResult{
		Kind: orgsyncv1.ObjectKind_OBJECT_KIND_USER, Key: workerID, Revision: result.GetRevision(),
		Outcome: orgsyncv1.Outcome_OUTCOME_APPLIED, ObjectId: result.GetObjectId(), Operations: operations,
		ObservedAt: timestamppb.New(s.opts.Now()), Cause: result.GetCause(), TraceId: result.GetTraceId(),
		Changes: changes, HrSource: sourceName,
	}
	fingerprints := make([]string, len(attributes))
	for i, attribute := range attributes {
		fingerprints[i] = fingerprint(written.Get(attribute))[:16]
	}
	msgID := "writeback:" + sourceName + ":" + workerID + ":" + strings.Join(fingerprints, ".")
	if _, err := s.audit.Publish(ctx, AuditSubject(workerID), msgID, record); err != nil {
		return fmt.Errorf("auditing the write-back: %w", err)
	}
	return nil
}

// AuditSubject is where a write-back to an HR source is audited: AUDIT's audit.<target>.user.
// <workerId> with "hr" as the target, so a worker's audit trail shows it next to the writes.
func AuditSubject(workerID string) string {
	return subject.AuditSubject("hr.user." + subject.Token(workerID))
}

// directoryName is the directory's name of an attribute, as the writers' audit records name it.
func directoryName(attribute source.Attribute) string {
	if attribute == source.AttributeUPN {
		return "userPrincipalName"
	}
	return "mail"
}

func attributeNames(attributes []source.Attribute) string {
	names := make([]string, len(attributes))
	for i, a := range attributes {
		names[i] = string(a)
	}
	return strings.Join(names, ",")
}

// Parked is a write-back that retrying cannot fix, kept until an operator replays it.
type Parked struct {
	Source   string `json:"source"`
	WorkerID string `json:"workerId"`
	// ResultSubject is the RESULTS subject whose newest result a replay writes back.
	ResultSubject string             `json:"resultSubject"`
	Attributes    []source.Attribute `json:"attributes"`
	Class         string             `json:"class"`
	// Reason is the error's text, which names the vendor and status, never a value.
	Reason   string    `json:"reason"`
	ParkedAt time.Time `json:"parkedAt"`
}

// park records the write-back as parked with its reason and terminates the message; if it
// cannot be recorded the message is retried.
func (s *Sink) park(ctx context.Context, sourceName, workerID, resultSubject string, attributes []source.Attribute, class string, cause error) error {
	s.failed(sourceName, class)
	data, err := json.Marshal(Parked{Source: sourceName, WorkerID: workerID, ResultSubject: resultSubject, Attributes: attributes,
		Class: class, Reason: cause.Error(), ParkedAt: s.opts.Now().UTC()})
	if err != nil {
		return fmt.Errorf("encoding a parked write-back: %w", err)
	}
	if _, err := s.kv.Put(ctx, parkedKey(sourceName, workerID), data); err != nil {
		return stream.Retry(s.opts.MinBackoff, fmt.Errorf("parking after %s: %w", class, err))
	}
	s.logger.Error("write-back parked: retrying cannot fix it", "source", sourceName, "worker", workerID, "class", class, "error", cause)
	return fmt.Errorf("%s: %w: %w", class, cause, stream.ErrPermanent)
}

func writtenKey(sourceName string, attribute source.Attribute, workerID string) string {
	return "written." + subject.Token(sourceName) + "." + string(attribute) + "." + subject.Token(workerID)
}

func parkedKey(sourceName, workerID string) string {
	return "parked." + subject.Token(sourceName) + "." + subject.Token(workerID)
}

func (s *Sink) backoff(attempt int) time.Duration {
	delay := s.opts.MinBackoff
	for i := 1; i < attempt && delay < s.opts.MaxBackoff; i++ {
		delay *= 2
	}
	return min(delay, s.opts.MaxBackoff)
}

func (s *Sink) failed(sourceName, class string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastError[sourceName] = lastError{class: class, at: s.opts.Now()}
}
