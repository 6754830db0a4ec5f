package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/orgsync/orgsync/pkg/pii"
)

// RedactingExporter wraps exp so that every span it exports follows the PII policy of package
// pii: attributes naming personal data are dropped, URLs lose their query strings and the path
// segments holding an '@', and every other string (attribute values, event attributes such as
// exception.message, status descriptions, span names) is scrubbed of e-mail addresses and UPNs.
// Setup wraps its exporter in it unless ORGSYNC_TELEMETRY_PII=allow. It is safe for concurrent
// use as exp is.
func RedactingExporter(exp sdktrace.SpanExporter) sdktrace.SpanExporter {
	return redactingExporter{exp}
}

type redactingExporter struct{ sdktrace.SpanExporter }

func (e redactingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	redacted := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, span := range spans {
		redacted[i] = RedactSpan(span)
	}
	return e.SpanExporter.ExportSpans(ctx, redacted)
}

// RedactSpan returns span as the redact policy lets it be exported.
func RedactSpan(span sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	events := span.Events()
	redactedEvents := make([]sdktrace.Event, len(events))
	for i, event := range events {
		event.Attributes = RedactAttributes(event.Attributes)
		event.Name = pii.Scrub(event.Name)
		redactedEvents[i] = event
	}
	status := span.Status()
	status.Description = pii.Scrub(status.Description)
	return redactedSpan{
		ReadOnlySpan: span,
		name:         pii.Scrub(span.Name()),
		attributes:   RedactAttributes(span.Attributes()),
		events:       redactedEvents,
		status:       status,
	}
}

// RedactAttributes applies the redact policy to attributes: personal ones are dropped, string
// values scrubbed.
func RedactAttributes(attrs []attribute.KeyValue) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, len(attrs))
	for _, kv := range attrs {
		key := string(kv.Key)
		switch kv.Value.Type() {
		case attribute.STRING:
			value, keep := pii.Value(key, kv.Value.AsString())
			if keep {
				out = append(out, attribute.String(key, value))
			}
		case attribute.STRINGSLICE:
			if pii.PersonalKey(key) {
				continue
			}
			values := kv.Value.AsStringSlice()
			for i, v := range values {
				values[i], _ = pii.Value(key, v)
			}
			out = append(out, attribute.StringSlice(key, values))
		default:
			if !pii.PersonalKey(key) {
				out = append(out, kv)
			}
		}
	}
	return out
}

// redactedSpan is a span as exported: the original with redacted name, attributes, events and
// status.
type redactedSpan struct {
	sdktrace.ReadOnlySpan
	name       string
	attributes []attribute.KeyValue
	events     []sdktrace.Event
	status     sdktrace.Status
}

func (s redactedSpan) Name() string                     { return s.name }
func (s redactedSpan) Attributes() []attribute.KeyValue { return s.attributes }
func (s redactedSpan) Events() []sdktrace.Event         { return s.events }
func (s redactedSpan) Status() sdktrace.Status          { return s.status }
