package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestLogCarriesTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	logger := New(&buf, "org-model", slog.LevelInfo)
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	ctx, span := tp.Tracer("test").Start(t.Context(), "work")
	logger.With("worker_id", "E1").InfoContext(ctx, "applied")
	span.End()
	logger.Debug("hidden")

	var record map[string]any
	if err := json.Unmarshal(buf.Bytes(), &record); err != nil {
		t.Fatalf("want exactly one JSON line, got %q: %v", buf.String(), err)
	}
	for key, want := range map[string]string{
		"msg":       "applied",
		"service":   "org-model",
		"worker_id": "E1",
		"trace_id":  span.SpanContext().TraceID().String(),
		"span_id":   span.SpanContext().SpanID().String(),
	} {
		if record[key] != want {
			t.Errorf("%s = %v, want %q", key, record[key], want)
		}
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    slog.Level
		wantErr bool
	}{
		{name: "empty is info", in: "", want: slog.LevelInfo},
		{name: "debug", in: "debug", want: slog.LevelDebug},
		{name: "upper case", in: "WARN", want: slog.LevelWarn},
		{name: "unknown", in: "loud", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLevel(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPersonalDataIsRedactedByDefault(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     Options
		wantSeen bool
	}{
		{name: "default redacts", opts: Options{}, wantSeen: false},
		{name: "allow lets it through", opts: Options{AllowPII: true}, wantSeen: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := NewWithOptions(&buf, "entra-writer", slog.LevelInfo, tc.opts)
			logger.With("given_name", "Jane").Info("user jane.doe@corp.example.com created",
				"worker_id", "E1001", "upn", "jane.doe@corp.example.com", "displayName", "Jane Doe",
				"error", errors.New(`POST /users/jane.doe%40corp.example.com: conflict`))
			logger.Warn("drift corrected", "dn", "CN=Jane Doe,OU=Sales Team,DC=corp,DC=example", "group", "CN=Org - Sales Team,OU=Groups,DC=corp,DC=example",
				"error", errors.New(`ldap modify "CN=Jane Doe,OU=Sales Team,DC=corp,DC=example": result 19`))
			line := buf.String()
			for _, personal := range []string{"Jane", "jane.doe", "corp.example.com", "Sales Team"} {
				if seen := strings.Contains(line, personal); seen != tc.wantSeen {
					t.Errorf("%q in the log line: %v, want %v\n%s", personal, seen, tc.wantSeen, line)
				}
			}
			if !strings.Contains(line, `"worker_id":"E1001"`) {
				t.Errorf("ids must stay: %s", line)
			}
		})
	}
}
