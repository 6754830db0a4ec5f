// Package logging builds orgsync's structured logs: JSON lines through log/slog, each record made
// within a span carrying that span's trace_id and span_id, so a log line leads to its trace.
//
// Personal data stays out of the logs unless ORGSYNC_TELEMETRY_PII=allow (package pii): an
// attribute whose key names personal data (given_name, upn, displayName, …) is withheld, and the
// message and every other string or error value is scrubbed of e-mail addresses and UPNs.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/orgsync/orgsync/pkg/pii"
)

// New returns a JSON logger writing to w at level, tagging every record with the service name.
// Personal data is redacted unless the environment sets ORGSYNC_TELEMETRY_PII=allow.
func New(w io.Writer, service string, level slog.Leveler) *slog.Logger {
	allow, _ := pii.Allowed(os.LookupEnv)
	return NewWithOptions(w, service, level, Options{AllowPII: allow})
}

// Options tune a logger.
type Options struct {
	// AllowPII lets personal data into the log lines; by default it is redacted.
	AllowPII bool
}

// NewWithOptions is New with the PII policy given rather than read from the environment.
func NewWithOptions(w io.Writer, service string, level slog.Leveler, opts Options) *slog.Logger {
	handlerOpts := &slog.HandlerOptions{Level: level}
	if !opts.AllowPII {
		handlerOpts.ReplaceAttr = redact
	}
	return slog.New(traceHandler{slog.NewJSONHandler(w, handlerOpts)}).With(slog.String("service", service))
}

// redact applies the PII policy to one attribute (the message included).
func redact(_ []string, a slog.Attr) slog.Attr {
	if pii.PersonalKey(a.Key) {
		return slog.String(a.Key, pii.Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		value, _ := pii.Value(a.Key, a.Value.String())
		return slog.String(a.Key, value)
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			return slog.String(a.Key, pii.Scrub(v.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, pii.Scrub(v.String()))
		}
	}
	return a
}

// ParseLevel reads a level name (debug, info, warn, error); empty means info.
func ParseLevel(name string) (slog.Level, error) {
	var level slog.Level
	if strings.TrimSpace(name) == "" {
		return slog.LevelInfo, nil
	}
	if err := level.UnmarshalText([]byte(name)); err != nil {
		return slog.LevelInfo, fmt.Errorf("%q is not a log level (debug, info, warn, error)", name)
	}
	return level, nil
}

// traceHandler adds the current span's ids to each record.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, record slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		record.AddAttrs(
			slog.String("trace_id", sc.TraceID().String()),
			slog.String("span_id", sc.SpanID().String()),
		)
	}
	return h.Handler.Handle(ctx, record)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
