// Package audit answers "what did orgsync write, and why" from stream AUDIT, where the writers
// record every directory write: it lists the writes to a worker's account and memberships, or to
// a group and its memberships, within a time range, each joined to the HR event and the trace
// that caused it.
//
// The join uses the cause a writer copies into its record (WriterResult.cause, trace_id); for
// records without one it falls back to what org-model remembers of its own publishes (Causes),
// keyed by object path and revision, and last to the trace context of the audit message.
package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// keptRevisions is how many revisions' causes Causes keeps per object: enough for the writes a
// writer may still be catching up on.
const keptRevisions = 32

// Cause is why org-model published one revision of an object.
type Cause struct {
	Cause           *orgsyncv1.Cause
	TraceID         string
	ApprovalBatchID string
}

// Causes remembers the cause of each revision org-model published, per object path. It is safe
// for concurrent use.
type Causes struct {
	mu     sync.RWMutex
	byPath map[string]map[uint64]Cause
}

// NewCauses returns an empty memory.
func NewCauses() *Causes { return &Causes{byPath: map[string]map[uint64]Cause{}} }

// Record remembers why revision of the object at path was published.
func (c *Causes) Record(path string, revision uint64, cause Cause) {
	c.mu.Lock()
	defer c.mu.Unlock()
	revisions := c.byPath[path]
	if revisions == nil {
		revisions = map[uint64]Cause{}
		c.byPath[path] = revisions
	}
	revisions[revision] = cause
	if revision > keptRevisions {
		delete(revisions, revision-keptRevisions)
	}
}

// Lookup returns why revision of the object at path was published, if remembered.
func (c *Causes) Lookup(path string, revision uint64) (Cause, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cause, ok := c.byPath[path][revision]
	return cause, ok
}

// TraceID is the hex trace id of ctx's span, or "".
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// Reader lists audit records. It is safe for concurrent use.
type Reader struct {
	js     jetstream.JetStream
	causes *Causes
}

// NewReader reads stream AUDIT through js, joining records to causes.
func NewReader(js jetstream.JetStream, causes *Causes) *Reader {
	return &Reader{js: js, causes: causes}
}

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// Filters returns the AUDIT subject filters of a request: a worker's account and memberships, a
// group and its memberships, or everything, in one target or all.
func Filters(req *orgsyncv1.ListAuditRequest) ([]string, error) {
	target := "*"
	if req.GetTarget() != orgsyncv1.Target_TARGET_UNSPECIFIED {
		target = subject.TargetName(req.GetTarget())
	}
	prefix := "audit." + target + "."
	switch {
	case req.GetWorkerId() != "" && req.GetGroupKey() != "":
		return nil, errors.New("give worker_id or group_key, not both")
	case req.GetWorkerId() != "":
		worker := subject.Token(req.GetWorkerId())
		return []string{prefix + "user." + worker, prefix + "member.*." + worker}, nil
	case req.GetGroupKey() != "":
		group := subject.Token(req.GetGroupKey())
		return []string{prefix + "group." + group, prefix + "member." + group + ".*"}, nil
	default:
		return []string{prefix + ">"}, nil
	}
}

// List returns one page of the audit records matching req, oldest first. The page token is the
// stream sequence to continue from.
func (r *Reader) List(ctx context.Context, req *orgsyncv1.ListAuditRequest) (*orgsyncv1.ListAuditResponse, error) {
	filters, err := Filters(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	size := int(req.GetPageSize())
	if size < 0 || size > maxPageSize {
		return nil, status.Errorf(codes.InvalidArgument, "page_size must be between 0 and %d", maxPageSize)
	}
	if size == 0 {
		size = defaultPageSize
	}
	config := jetstream.ConsumerConfig{
		FilterSubjects:    filters,
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
	}
	switch {
	case req.GetPageToken() != "":
		next, err := strconv.ParseUint(req.GetPageToken(), 10, 64)
		if err != nil || next == 0 {
			return nil, status.Error(codes.InvalidArgument, "page_token is not one this API returned")
		}
		config.DeliverPolicy, config.OptStartSeq = jetstream.DeliverByStartSequencePolicy, next
	case req.GetSince() != nil:
		since := req.GetSince().AsTime()
		config.DeliverPolicy, config.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	var since, until time.Time
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		until = req.GetUntil().AsTime()
	}

	auditStream, err := r.js.Stream(ctx, stream.Audit)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "stream %s: %v", stream.Audit, err)
	}
	consumer, err := auditStream.CreateConsumer(ctx, config)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "reading %s: %v", stream.Audit, err)
	}
	defer func() { _ = auditStream.DeleteConsumer(context.WithoutCancel(ctx), consumer.CachedInfo().Name) }()
	resp := &orgsyncv1.ListAuditResponse{}
	if consumer.CachedInfo().NumPending == 0 {
		return resp, nil
	}
	it, err := consumer.Messages()
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "reading %s: %v", stream.Audit, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "reading %s: %v", stream.Audit, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "reading %s: %v", stream.Audit, err)
		}
		if !until.IsZero() && !meta.Timestamp.Before(until) {
			return resp, nil
		}
		if len(resp.Records) == size {
			resp.NextPageToken = strconv.FormatUint(meta.Sequence.Stream, 10)
			return resp, nil
		}
		// The start time only positions the consumer; a start after the last record is checked here.
		if !meta.Timestamp.Before(since) {
			record, err := r.record(msg, meta)
			if err != nil {
				return nil, status.Error(codes.Internal, err.Error())
			}
			resp.Records = append(resp.Records, record)
		}
		if meta.NumPending == 0 {
			return resp, nil
		}
	}
}

// record joins one AUDIT message to its cause.
func (r *Reader) record(msg jetstream.Msg, meta *jetstream.MsgMetadata) (*orgsyncv1.AuditRecord, error) {
	var result orgsyncv1.WriterResult
	if err := stream.Decode(msg, &result); err != nil {
		return nil, fmt.Errorf("audit record %d: %w", meta.Sequence.Stream, err)
	}
	path := msg.Subject()[len("audit."):]
	record := &orgsyncv1.AuditRecord{
		Sequence: meta.Sequence.Stream, RecordedAt: timestamppb.New(meta.Timestamp), Path: path, Result: &result,
		Cause: result.GetCause(), TraceId: result.GetTraceId(), ApprovalBatchId: result.GetApprovalBatchId(),
	}
	if remembered, ok := r.causes.Lookup(path, result.GetRevision()); ok {
		if record.Cause == nil {
			record.Cause = remembered.Cause
		}
		if record.TraceId == "" {
			record.TraceId = remembered.TraceID
		}
		if record.ApprovalBatchId == "" {
			record.ApprovalBatchId = remembered.ApprovalBatchID
		}
	}
	if record.ApprovalBatchId == "" {
		record.ApprovalBatchId = record.GetCause().GetApprovalBatchId()
	}
	record.ApprovedBy = record.GetCause().GetApprovedBy()
	if record.TraceId == "" {
		record.TraceId = TraceID(otel.GetTextMapPropagator().Extract(context.Background(), stream.HeaderCarrier(msg.Headers())))
	}
	return record, nil
}
