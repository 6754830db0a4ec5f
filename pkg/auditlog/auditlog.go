// Package auditlog fills in what a writer's audit record (orgsync.v1.WriterResult on stream
// AUDIT) must say beyond the write itself: the cause of the desired state it applied (the HR event
// id and sequence), the trace of the change, the approval that released it, and the attributes it
// changed with their values before and after — values of personal attributes only when the PII
// policy allows them (ORGSYNC_TELEMETRY_PII=allow; see package pii).
//
// It is meant for orgsync's own services, not for outside use. Its functions are safe for
// concurrent use.
package auditlog

import (
	"context"
	"os"
	"sort"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/orgsync/orgsync/pkg/pii"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Stamp records in result why it was made: obj's cause, the approval batch when the cause is an
// approval, and the trace of the change — taken from msg's trace context (the desired state's
// producer span, so a write made under a batch span still names the change's own trace), else
// from ctx.
func Stamp(ctx context.Context, result *orgsyncv1.WriterResult, obj *orgsyncv1.DesiredObject, msg jetstream.Msg) {
	result.Cause = obj.GetCause()
	result.ApprovalBatchId = obj.GetCause().GetApprovalBatchId()
	sc := trace.SpanContextFromContext(ctx)
	if msg != nil {
		if producer := trace.SpanContextFromContext(otel.GetTextMapPropagator().Extract(context.Background(), stream.HeaderCarrier(msg.Headers()))); producer.IsValid() {
			sc = producer
		}
	}
	if sc.IsValid() {
		result.TraceId = sc.TraceID().String()
	}
}

// Changes lists the attributes that differ between before and after (by attribute name, e.g.
// Graph's "jobTitle"), sorted by name, with values per the PII policy read from the environment.
// An attribute missing from a map is "".
func Changes(before, after map[string]string) []*orgsyncv1.AttributeChange {
	return ChangesWithPolicy(before, after, allowPII())
}

// ChangesWithPolicy is Changes with the PII policy given: with allow false, the values of
// personal attributes (names, mail, UPN, phones) are withheld and the change marked redacted.
func ChangesWithPolicy(before, after map[string]string, allow bool) []*orgsyncv1.AttributeChange {
	names := map[string]bool{}
	for name := range before {
		names[name] = true
	}
	for name := range after {
		names[name] = true
	}
	sorted := make([]string, 0, len(names))
	for name := range names {
		if before[name] != after[name] {
			sorted = append(sorted, name)
		}
	}
	sort.Strings(sorted)
	changes := make([]*orgsyncv1.AttributeChange, len(sorted))
	for i, name := range sorted {
		change := &orgsyncv1.AttributeChange{Name: name, Before: before[name], After: after[name]}
		if !allow && pii.PersonalKey(name) {
			change.Before, change.After, change.Redacted = "", "", true
		}
		changes[i] = change
	}
	return changes
}

var (
	policyOnce sync.Once
	policy     bool
)

func allowPII() bool {
	policyOnce.Do(func() { policy, _ = pii.Allowed(os.LookupEnv) })
	return policy
}
