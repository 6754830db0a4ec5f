// Package converge is the machine both writers share: it reads DIRECTORY's desired states in
// batches, keeps one revision per object (the newest), reports every outcome to RESULTS, every
// write to AUDIT and every desired state that cannot be applied to DEADLETTER, lists and replays
// those dead letters, pauses while the target refuses or cannot be reached, and answers for the
// writer's status. A writer keeps only what is particular to its directory: how to converge a
// user, a group or a membership there, and what the directory's errors mean.
//
// Kubernetes controllers are the model: a key arrives, the writer reads the newest desired state
// for that key and converges the target to it; the level, not the edge, is what counts.
package converge

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/auditlog"
	"github.com/orgsync/orgsync/pkg/metrics"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Sender stores one message durably.
type Sender interface {
	Publish(ctx context.Context, subject, msgID string, m proto.Message) (*jetstream.PubAck, error)
}

// Latest returns the newest desired state of the object at path (stream DIRECTORY), nil when
// there is none.
type Latest func(ctx context.Context, path string) (*orgsyncv1.DesiredObject, error)

// Engine is one writer's share of the machine: the revisions applied per object, and the
// reporting of outcomes. Its methods are safe for concurrent use.
type Engine struct {
	target orgsyncv1.Target
	sender Sender
	logger *slog.Logger
	latest Latest
	// Now is the clock of results; time.Now unless a test sets it.
	Now func() time.Time

	mu sync.Mutex
	// applied is the newest revision applied per object path, by this replica or another one
	// (RESULTS tells Seed).
	applied map[string]uint64
	// throttled counts, per object path, the deliveries this replica answered with a throttling
	// retry since the object was last applied or parked (see Attempt).
	throttled map[string]int
}

// New returns the engine of a writer for target. latest may be nil (tests): then a stale
// message is dropped without looking for a newer desired state.
func New(target orgsyncv1.Target, sender Sender, latest Latest, logger *slog.Logger) *Engine {
	return &Engine{target: target, sender: sender, logger: logger, latest: latest, Now: time.Now, applied: map[string]uint64{}, throttled: map[string]int{}}
}

// TargetName is the target's name in subjects and metrics: "entra" or "ad".
func (e *Engine) TargetName() string { return subject.TargetName(e.target) }

// Seed records a revision applied before, by this replica or another.
func (e *Engine) Seed(path string, revision uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.applied[path] = max(e.applied[path], revision)
}

// Applied returns the newest revision applied of the object at path (0: none).
func (e *Engine) Applied(path string) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.applied[path]
}

// Stale reports whether a newer revision of the object at path than revision has been applied.
func (e *Engine) Stale(path string, revision uint64) bool { return e.Applied(path) > revision }

// Attempt is how many times the object at path has been tried with msg: its deliveries, less
// those that met the target throttling. A throttled delivery tried nothing — the call was not
// sent (inside a Retry-After window) or the target asked to wait — so it must not spend a
// writer's patience: under heavy throttling a message can be delivered dozens of times, and a
// create waiting for its own account to become visible would otherwise fail for good after a
// handful of real tries (found by the chaos run).
func (e *Engine) Attempt(msg jetstream.Msg, path string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return max(stream.Attempt(msg)-e.throttled[path], 1)
}

// Throttled records that a delivery of the object at path met the target throttling (see
// Attempt).
func (e *Engine) Throttled(path string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.throttled[path]++
}

// settled forgets the throttled deliveries of the object at path.
func (e *Engine) settled(path string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.throttled, path)
}

// Item is one desired state to apply, with the message that brought it.
type Item struct {
	Msg  jetstream.Msg
	Obj  *orgsyncv1.DesiredObject
	Path string
}

// Attempt is how many times the item's message has been delivered (1 the first time).
func (it Item) Attempt() int { return stream.Attempt(it.Msg) }

// Decode reads a batch of DIRECTORY messages. Of two revisions of one object only the newer is
// kept; a revision older than one already applied is not applied — instead, when the object's
// newest desired state on DIRECTORY is newer than the message, that is returned to be applied
// (the stale message may be the retry of a write that had to follow a newer revision, and
// applying the newest again costs little and is always right). Dropped messages have a nil Obj
// and a nil error, so they are acknowledged; a message that cannot be read has its error.
func (e *Engine) Decode(ctx context.Context, msgs []jetstream.Msg) ([]Item, []error) {
	items := make([]Item, len(msgs))
	errs := make([]error, len(msgs))
	newest := map[string]int{}
	for i, msg := range msgs {
		items[i].Msg = msg
		items[i].Obj, items[i].Path, errs[i] = e.decode(ctx, msg)
		if items[i].Obj == nil {
			continue
		}
		if j, seen := newest[items[i].Path]; seen {
			if items[j].Obj.GetRevision() > items[i].Obj.GetRevision() {
				items[i].Obj = nil
				continue
			}
			items[j].Obj = nil
		}
		newest[items[i].Path] = i
	}
	return items, errs
}

func (e *Engine) decode(ctx context.Context, msg jetstream.Msg) (*orgsyncv1.DesiredObject, string, error) {
	var obj orgsyncv1.DesiredObject
	if err := stream.Decode(msg, &obj); err != nil {
		return nil, "", err
	}
	path, err := subject.ObjectPath(&obj)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", err, stream.ErrPermanent)
	}
	applied := e.Applied(path)
	if obj.GetRevision() >= applied {
		return &obj, path, nil
	}
	if e.latest != nil {
		newest, err := e.latest(ctx, path)
		if err != nil {
			return nil, path, stream.Retry(time.Second, fmt.Errorf("reading the newest revision of %s: %w", path, err))
		}
		if newest != nil && newest.GetRevision() > obj.GetRevision() {
			e.logger.DebugContext(ctx, "stale revision: applying the newest instead", "object", path, "revision", obj.GetRevision(), "newest", newest.GetRevision())
			return newest, path, nil
		}
	}
	e.logger.DebugContext(ctx, "stale revision dropped", "object", path, "revision", obj.GetRevision(), "applied", applied)
	return nil, path, nil
}

// Result is obj's result before anything is done: UNCHANGED, observed now.
func (e *Engine) Result(obj *orgsyncv1.DesiredObject) *orgsyncv1.WriterResult {
	return &orgsyncv1.WriterResult{
		Target: obj.GetTarget(), Kind: Kind(obj), Key: obj.GetKey(), Revision: obj.GetRevision(),
		Outcome: orgsyncv1.Outcome_OUTCOME_UNCHANGED, ObservedAt: timestamppb.New(e.Now()),
		HrSource: obj.GetUser().GetHrSource(),
	}
}

// Kind is obj's kind in results.
func Kind(obj *orgsyncv1.DesiredObject) orgsyncv1.ObjectKind {
	switch obj.GetObject().(type) {
	case *orgsyncv1.DesiredObject_User:
		return orgsyncv1.ObjectKind_OBJECT_KIND_USER
	case *orgsyncv1.DesiredObject_Group:
		return orgsyncv1.ObjectKind_OBJECT_KIND_GROUP
	case *orgsyncv1.DesiredObject_Membership:
		return orgsyncv1.ObjectKind_OBJECT_KIND_MEMBERSHIP
	}
	return orgsyncv1.ObjectKind_OBJECT_KIND_UNSPECIFIED
}

// kindLabel is the metric label of obj's kind: user, group or membership.
func kindLabel(obj *orgsyncv1.DesiredObject) string {
	switch obj.GetObject().(type) {
	case *orgsyncv1.DesiredObject_User:
		return "user"
	case *orgsyncv1.DesiredObject_Group:
		return "group"
	default:
		return "membership"
	}
}

// Report publishes the result and, when something was written, an audit record.
func (e *Engine) Report(ctx context.Context, path string, result *orgsyncv1.WriterResult) error {
	msgID := fmt.Sprintf("%s:%d:%s", path, result.GetRevision(), result.GetOutcome())
	if result.GetManagerLinkPending() {
		// Apart from the result that writes the link later, at the same revision.
		msgID += ":manager-pending"
	}
	return e.ReportAs(ctx, path, msgID, result)
}

// ReportAs is Report with the message id given.
func (e *Engine) ReportAs(ctx context.Context, path, msgID string, result *orgsyncv1.WriterResult) error {
	if _, err := e.sender.Publish(ctx, subject.ResultSubject(path), msgID, result); err != nil {
		return stream.Retry(time.Second, err)
	}
	if len(result.GetOperations()) > 0 {
		if _, err := e.sender.Publish(ctx, subject.AuditSubject(path), msgID, result); err != nil {
			return stream.Retry(time.Second, err)
		}
	}
	return nil
}

// Succeed reports what applying it did (result), counts its writes and marks its revision
// applied. The message is acknowledged when it returns nil.
func (e *Engine) Succeed(ctx context.Context, it Item, result *orgsyncv1.WriterResult) error {
	auditlog.Stamp(ctx, result, it.Obj, it.Msg)
	if err := e.Report(ctx, it.Path, result); err != nil {
		return err
	}
	kind := kindLabel(it.Obj)
	for _, op := range result.GetOperations() {
		metrics.Default().DirectoryWrite(ctx, e.TargetName(), kind, op, "applied")
	}
	if len(result.GetOperations()) > 0 && it.Msg != nil {
		metrics.Default().ChangeApplied(stream.MessageContext(ctx, it.Msg), e.TargetName(), kind, e.Now())
	}
	e.Seed(it.Path, it.Obj.GetRevision())
	e.settled(it.Path)
	return nil
}

// Failure is what the directory said about a desired state it refused, for the FAILED result.
type Failure struct {
	Class    orgsyncv1.ErrorClass
	Code     string
	Property string
}

// Park reports the desired state as FAILED with err, parks it on DEADLETTER (to be replayed after
// a fix, see Box) and returns a permanent error, so the message is terminated: an error retrying
// cannot fix is reported once, and never retried for ever.
func (e *Engine) Park(ctx context.Context, it Item, err error, failure Failure) error {
	result := e.Result(it.Obj)
	result.Outcome = orgsyncv1.Outcome_OUTCOME_FAILED
	result.ErrorClass, result.ErrorCode, result.Property = failure.Class, failure.Code, failure.Property
	result.ErrorMessage = err.Error()
	auditlog.Stamp(ctx, result, it.Obj, it.Msg)
	metrics.Default().DirectoryWrite(ctx, e.TargetName(), kindLabel(it.Obj), "apply", "failed")
	e.settled(it.Path)
	e.logger.ErrorContext(ctx, "desired state not applied; parked as a dead letter", "object", it.Path, "revision", it.Obj.GetRevision(), "error", err)
	if pubErr := e.Report(ctx, it.Path, result); pubErr != nil {
		return pubErr
	}
	if _, pubErr := e.sender.Publish(ctx, subject.DeadLetterSubject(it.Path), fmt.Sprintf("%s:%d:dead", it.Path, it.Obj.GetRevision()), it.Obj); pubErr != nil {
		return stream.Retry(time.Second, pubErr)
	}
	return fmt.Errorf("%w: %w", err, stream.ErrPermanent)
}

// Skip reports the desired state as SKIPPED (orgsync must leave the object alone) and marks its
// revision applied: there is nothing to retry.
func (e *Engine) Skip(ctx context.Context, it Item, why string) error {
	result := e.Result(it.Obj)
	result.Outcome, result.ErrorMessage = orgsyncv1.Outcome_OUTCOME_SKIPPED, why
	auditlog.Stamp(ctx, result, it.Obj, it.Msg)
	if err := e.Report(ctx, it.Path, result); err != nil {
		return err
	}
	e.Seed(it.Path, it.Obj.GetRevision())
	return nil
}

// Retry logs why the desired state waits and returns the error that redelivers its message after
// delay.
func (e *Engine) Retry(ctx context.Context, it Item, delay time.Duration, err error) error {
	e.logger.InfoContext(ctx, "will retry", "object", it.Path, "attempt", it.Attempt(), "retry_in", delay, "reason", err)
	return stream.Retry(delay, err)
}

// Backoff is the one retry delay table of both writers: 0.5 s after the first attempt, doubling,
// at most 30 s.
func Backoff(attempt int) time.Duration {
	return min(time.Duration(1<<min(max(attempt, 1), 7))*250*time.Millisecond, 30*time.Second)
}

// WaitBackoff is the delay of a desired state waiting for another object to exist (a member, a
// group, a manager): usually created within seconds, by this replica or another, so it is
// retried at least every 5 s.
func WaitBackoff(attempt int) time.Duration { return min(Backoff(attempt), 5*time.Second) }

// ReportCorrection reports a drift correction of obj — its desired state applied again to undo
// an edit made outside orgsync that reason describes — to RESULTS and AUDIT like any other write,
// with the cause "drift: reason", under a message id of its own (the original write's result may
// still be in the stream's dedup window).
func (e *Engine) ReportCorrection(ctx context.Context, obj *orgsyncv1.DesiredObject, result *orgsyncv1.WriterResult, reason string) error {
	path, err := subject.ObjectPath(obj)
	if err != nil {
		return err
	}
	e.stampDrift(ctx, result, reason)
	for _, op := range result.GetOperations() {
		metrics.Default().DirectoryWrite(ctx, e.TargetName(), kindLabel(obj), op, "applied")
	}
	return e.ReportAs(ctx, path, fmt.Sprintf("%s:%d:drift:%d", path, obj.GetRevision(), e.Now().UnixNano()), result)
}

// AuditStray records on AUDIT the removal of a member a group's desired state does not have
// (added outside orgsync). Only the audit trail: RESULTS answers desired objects, and this
// membership has none.
func (e *Engine) AuditStray(ctx context.Context, groupKey, memberKey, memberID string) (*orgsyncv1.WriterResult, error) {
	result := &orgsyncv1.WriterResult{
		Target: e.target, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_MEMBERSHIP,
		Key: groupKey + "/" + memberKey, Outcome: orgsyncv1.Outcome_OUTCOME_APPLIED,
		ObjectId: memberID, Operations: []string{"member.remove"}, ObservedAt: timestamppb.New(e.Now()),
	}
	e.stampDrift(ctx, result, "a member orgsync did not add")
	metrics.Default().DirectoryWrite(ctx, e.TargetName(), "membership", "member.remove", "applied")
	path := e.TargetName() + ".member." + subject.Token(groupKey) + "." + subject.Token(memberKey)
	msgID := fmt.Sprintf("%s:drift:%d", path, e.Now().UnixNano())
	if _, err := e.sender.Publish(ctx, subject.AuditSubject(path), msgID, result); err != nil {
		return result, fmt.Errorf("auditing the removal of stray member %s of %s: %w", memberKey, groupKey, err)
	}
	return result, nil
}

func (e *Engine) stampDrift(ctx context.Context, result *orgsyncv1.WriterResult, reason string) {
	result.Cause = &orgsyncv1.Cause{Reason: "drift: " + reason, ComputedAt: timestamppb.New(e.Now())}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		result.TraceId = sc.TraceID().String()
	}
}
