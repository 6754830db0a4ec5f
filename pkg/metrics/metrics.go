// Package metrics names orgsync's OpenTelemetry metrics and records them, so every service
// reports the same instruments with the same attributes: HR events received by source and
// outcome, the end-to-end latency from webhook accept to directory write, consumer lag and
// redeliveries per stream, directory writes by target, kind and outcome, Graph throttling, LDAP
// errors, pending guard items, dead letters, and drift found and corrected.
//
// Instruments come from the global meter provider (telemetry.Setup installs it), so they are
// exported over OTLP and served as Prometheus text at /metrics (PrometheusHandler). Attribute
// values are ids and classes only, never personal data.
//
// It is meant for orgsync's own services, not for outside use. Every function is safe for
// concurrent use.
package metrics

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/metric"
)

const instrumentationName = "github.com/orgsync/orgsync/pkg/metrics"

// Instrument names.
const (
	// HREvents counts HR events by orgsync.source, orgsync.outcome (accepted, duplicate,
	// rejected) and orgsync.reason (why a request was rejected).
	HREvents = "orgsync.hr.events"
	// ChangeLatency is the time from hr-ingest accepting an HR event to a writer's directory
	// write it caused, by orgsync.target and orgsync.object.kind.
	ChangeLatency = "orgsync.change.latency"
	// ConsumerLag is the number of messages a durable consumer has yet to receive, by
	// messaging.destination.name (the stream) and messaging.consumer.group.name.
	ConsumerLag = "orgsync.stream.consumer.lag"
	// Redeliveries counts messages received again (delivery count above one), by stream and consumer.
	Redeliveries = "orgsync.stream.redeliveries"
	// DirectoryWrites counts directory writes by orgsync.target, orgsync.object.kind,
	// orgsync.operation and orgsync.outcome (applied, unchanged, failed, skipped).
	DirectoryWrites = "orgsync.directory.writes"
	// GraphThrottled counts Graph 429 answers, by orgsync.throttle.scope (x-ms-throttle-scope).
	GraphThrottled = "orgsync.graph.throttled"
	// GraphThrottleWait is the time waited because of throttling (Retry-After or the write budget).
	GraphThrottleWait = "orgsync.graph.throttle.wait"
	// GraphBudgetUsed is the share (0 to 1) of the Graph write budget spent in the current window.
	GraphBudgetUsed = "orgsync.graph.budget.used"
	// LDAPErrors counts LDAP errors by ldap.result_code.
	LDAPErrors = "orgsync.ldap.errors"
	// GuardPending is the number of changes the mass-change guard holds.
	GuardPending = "orgsync.guard.pending"
	// DeadLetters is the number of messages on a writer's dead-letter subject, by orgsync.target.
	DeadLetters = "orgsync.deadletter.size"
	// DriftFound and DriftCorrected count objects found differing from the desired state by a
	// reconcile, and those corrected, by orgsync.target and orgsync.object.kind.
	DriftFound     = "orgsync.drift.found"
	DriftCorrected = "orgsync.drift.corrected"
)

// Attribute keys.
const (
	SourceKey    = attribute.Key("orgsync.source")
	OutcomeKey   = attribute.Key("orgsync.outcome")
	ReasonKey    = attribute.Key("orgsync.reason")
	TargetKey    = attribute.Key("orgsync.target")
	KindKey      = attribute.Key("orgsync.object.kind")
	OperationKey = attribute.Key("orgsync.operation")
	StreamKey    = attribute.Key("messaging.destination.name")
	ConsumerKey  = attribute.Key("messaging.consumer.group.name")
	ScopeKey     = attribute.Key("orgsync.throttle.scope")
	LDAPCodeKey  = attribute.Key("ldap.result_code")
)

// Instruments are orgsync's synchronous instruments.
type Instruments struct {
	hrEvents          metric.Int64Counter
	changeLatency     metric.Float64Histogram
	redeliveries      metric.Int64Counter
	directoryWrites   metric.Int64Counter
	graphThrottled    metric.Int64Counter
	graphThrottleWait metric.Float64Histogram
	graphBudgetUsed   metric.Float64Gauge
	ldapErrors        metric.Int64Counter
	deadLetters       metric.Int64Gauge
	driftFound        metric.Int64Counter
	driftCorrected    metric.Int64Counter
}

// latencyBuckets suit a pipeline that applies a change in about a second, and show when it takes
// minutes (throttling, held changes).
var latencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// New creates the instruments on meter. Creating an instrument only fails for an invalid name,
// which the constants here are not; the errors are still returned.
func New(meter metric.Meter) (*Instruments, error) {
	var errs [11]error
	i := &Instruments{}
	i.hrEvents, errs[0] = meter.Int64Counter(HREvents, metric.WithUnit("{event}"), metric.WithDescription("HR events received, by source and outcome"))
	i.changeLatency, errs[1] = meter.Float64Histogram(ChangeLatency, metric.WithUnit("s"),
		metric.WithDescription("Time from accepting an HR event to the directory write it caused"), metric.WithExplicitBucketBoundaries(latencyBuckets...))
	i.redeliveries, errs[2] = meter.Int64Counter(Redeliveries, metric.WithUnit("{message}"), metric.WithDescription("Messages delivered again"))
	i.directoryWrites, errs[3] = meter.Int64Counter(DirectoryWrites, metric.WithUnit("{write}"), metric.WithDescription("Directory writes by target, kind, operation and outcome"))
	i.graphThrottled, errs[4] = meter.Int64Counter(GraphThrottled, metric.WithUnit("{response}"), metric.WithDescription("Graph 429 answers"))
	i.graphThrottleWait, errs[5] = meter.Float64Histogram(GraphThrottleWait, metric.WithUnit("s"), metric.WithDescription("Time waited because of throttling"))
	i.graphBudgetUsed, errs[6] = meter.Float64Gauge(GraphBudgetUsed, metric.WithUnit("1"), metric.WithDescription("Share of the Graph write budget spent in the current window"))
	i.ldapErrors, errs[7] = meter.Int64Counter(LDAPErrors, metric.WithUnit("{error}"), metric.WithDescription("LDAP errors by result code"))
	i.deadLetters, errs[8] = meter.Int64Gauge(DeadLetters, metric.WithUnit("{message}"), metric.WithDescription("Messages on the dead-letter subject"))
	i.driftFound, errs[9] = meter.Int64Counter(DriftFound, metric.WithUnit("{object}"), metric.WithDescription("Objects found differing from the desired state"))
	i.driftCorrected, errs[10] = meter.Int64Counter(DriftCorrected, metric.WithUnit("{object}"), metric.WithDescription("Drifted objects corrected"))
	for _, err := range errs {
		if err != nil {
			return i, err
		}
	}
	return i, nil
}

var (
	defaultOnce        sync.Once
	defaultInstruments *Instruments
)

// Default returns the instruments on the global meter provider. Instruments made before
// telemetry.Setup installs the provider forward to it once installed.
func Default() *Instruments {
	defaultOnce.Do(func() {
		defaultInstruments, _ = New(otel.Meter(instrumentationName))
	})
	return defaultInstruments
}

// HREvent counts n HR events of source with outcome ("accepted", "duplicate", "rejected") and,
// for a rejection, reason.
func (i *Instruments) HREvent(ctx context.Context, source, outcome, reason string, n int) {
	attrs := []attribute.KeyValue{SourceKey.String(source), OutcomeKey.String(outcome)}
	if reason != "" {
		attrs = append(attrs, ReasonKey.String(reason))
	}
	i.hrEvents.Add(ctx, int64(n), metric.WithAttributes(attrs...))
}

// DirectoryWrite counts one write (operation such as "user.create", "member.bind") to an object
// of kind ("user", "group", "membership") in target ("entra", "ad") with outcome ("applied",
// "failed", …), and records the change latency when ctx carries the HR event's accept time.
func (i *Instruments) DirectoryWrite(ctx context.Context, target, kind, operation, outcome string) {
	i.directoryWrites.Add(ctx, 1, metric.WithAttributes(TargetKey.String(target), KindKey.String(kind),
		OperationKey.String(operation), OutcomeKey.String(outcome)))
}

// ChangeApplied records the end-to-end latency of a change written to target, measured from the
// accept time ctx carries (see WithAcceptedAt); it records nothing without one.
func (i *Instruments) ChangeApplied(ctx context.Context, target, kind string, now time.Time) {
	accepted, ok := AcceptedAt(ctx)
	if !ok {
		return
	}
	i.changeLatency.Record(ctx, now.Sub(accepted).Seconds(), metric.WithAttributes(TargetKey.String(target), KindKey.String(kind)))
}

// Redelivered counts a message of streamName delivered again to consumer.
func (i *Instruments) Redelivered(ctx context.Context, streamName, consumer string) {
	i.redeliveries.Add(ctx, 1, metric.WithAttributes(StreamKey.String(streamName), ConsumerKey.String(consumer)))
}

// GraphThrottle counts a Graph 429 of scope (x-ms-throttle-scope, may be empty).
func (i *Instruments) GraphThrottle(ctx context.Context, scope string) {
	i.graphThrottled.Add(ctx, 1, metric.WithAttributes(ScopeKey.String(scope)))
}

// ThrottleWait records time waited because of throttling; reason is "retry-after" or "budget".
func (i *Instruments) ThrottleWait(ctx context.Context, reason string, waited time.Duration) {
	i.graphThrottleWait.Record(ctx, waited.Seconds(), metric.WithAttributes(ReasonKey.String(reason)))
}

// BudgetUsed records the share (0 to 1) of the Graph write budget spent in the current window.
func (i *Instruments) BudgetUsed(ctx context.Context, share float64) {
	i.graphBudgetUsed.Record(ctx, share)
}

// LDAPError counts an LDAP error with its result code.
func (i *Instruments) LDAPError(ctx context.Context, resultCode int) {
	i.ldapErrors.Add(ctx, 1, metric.WithAttributes(LDAPCodeKey.Int(resultCode)))
}

// DeadLetterSize records the number of dead letters of target.
func (i *Instruments) DeadLetterSize(ctx context.Context, target string, n int64) {
	i.deadLetters.Record(ctx, n, metric.WithAttributes(TargetKey.String(target)))
}

// Drift counts an object of target and kind found drifted, and corrected when corrected.
func (i *Instruments) Drift(ctx context.Context, target, kind string, corrected bool) {
	attrs := metric.WithAttributes(TargetKey.String(target), KindKey.String(kind))
	i.driftFound.Add(ctx, 1, attrs)
	if corrected {
		i.driftCorrected.Add(ctx, 1, attrs)
	}
}

// acceptedAtMember is the W3C baggage member carrying when hr-ingest accepted the HR event
// behind a change (Unix milliseconds), so a writer can measure the end-to-end latency. Baggage
// travels in the NATS headers with the trace context.
const acceptedAtMember = "orgsync.accepted_at_ms"

// WithAcceptedAt returns ctx carrying the accept time of the HR event it processes.
func WithAcceptedAt(ctx context.Context, acceptedAt time.Time) context.Context {
	member, err := baggage.NewMember(acceptedAtMember, formatMillis(acceptedAt))
	if err != nil {
		return ctx
	}
	bag, err := baggage.FromContext(ctx).SetMember(member)
	if err != nil {
		return ctx
	}
	return baggage.ContextWithBaggage(ctx, bag)
}

// AcceptedAt returns the accept time ctx carries.
func AcceptedAt(ctx context.Context) (time.Time, bool) {
	value := baggage.FromContext(ctx).Member(acceptedAtMember).Value()
	if value == "" {
		return time.Time{}, false
	}
	return parseMillis(value)
}
