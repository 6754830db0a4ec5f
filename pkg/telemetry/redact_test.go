package telemetry

import (
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestRedactingExporterKeepsPersonalDataOut(t *testing.T) {
	memory := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(RedactingExporter(memory)))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	_, span := tp.Tracer("test").Start(t.Context(), "graph GET",
		trace.WithAttributes(
			attribute.String("url.full", "https://graph.microsoft.com/v1.0/users/jane.doe@corp.example.com?$select=id"),
			attribute.String("given_name", "Jane"),
			attribute.StringSlice("user.emails", []string{"jane@corp.example.com"}),
			attribute.String("orgsync.worker_id", "E1001"),
		))
	span.RecordError(errors.New("userPrincipalName jane.doe@corp.example.com already exists"))
	span.SetStatus(codes.Error, "conflict on jane.doe@corp.example.com")
	span.End()

	spans := memory.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("exported %d spans, want 1", len(spans))
	}
	var seen []string
	for _, kv := range spans[0].Attributes {
		seen = append(seen, string(kv.Key)+"="+kv.Value.String())
	}
	for _, event := range spans[0].Events {
		for _, kv := range event.Attributes {
			seen = append(seen, string(kv.Key)+"="+kv.Value.String())
		}
	}
	seen = append(seen, spans[0].Status.Description, spans[0].Name)
	all := strings.Join(seen, "\n")
	for _, personal := range []string{"Jane", "jane", "corp.example.com"} {
		if strings.Contains(all, personal) {
			t.Errorf("exported span holds %q:\n%s", personal, all)
		}
	}
	for _, want := range []string{"orgsync.worker_id=E1001", "url.full=https://graph.microsoft.com/v1.0/users/[redacted]?[redacted]"} {
		if !strings.Contains(all, want) {
			t.Errorf("exported span lacks %q:\n%s", want, all)
		}
	}
}
