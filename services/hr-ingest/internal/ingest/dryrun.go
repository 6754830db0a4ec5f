package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/bamboohr"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/canonical"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/problem"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/scim"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/snapshot"
)

// DryRunPattern is the dry-run route: a body exactly as a source would send it goes through the
// pipeline up to and including event ids, and the events are answered instead of published.
// It is for orgsync's own clients (the console's Plan page), so it is authenticated with
// orgsync's tokens (role viewer or above), not with the source's credentials.
const DryRunPattern = "POST /v1/dry-run/{source}"

// DryRunResult is the body of a dry run's 200 answer: each event as protojson.
type DryRunResult struct {
	Events []json.RawMessage `json:"events"`
}

// DryRun serves DryRunPattern. Register it behind pkg/auth's middleware (server.HandleAuthenticated):
// it checks no source credentials of its own and spends no source's rate budget.
func (h *Handler) DryRun() http.Handler {
	return countRejections(h.capInFlight(h.serveDryRun))
}

func (h *Handler) serveDryRun(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("source")
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("orgsync.source", name))
	source, ok := h.sources[name]
	if !ok {
		problem.Write(w, problem.Details{Type: problem.TypeBase + "unknown-source", Status: http.StatusNotFound,
			Detail: fmt.Sprintf("no HR source named %q is configured", name)}, 0)
		return
	}
	var mediaTypes []string
	switch source.Kind {
	case KindSCIM:
		mediaTypes = []string{"application/scim+json", "application/json"}
	case KindCSV:
		mediaTypes = []string{"text/csv"}
	default:
		mediaTypes = []string{"application/json"}
	}
	body, ok := h.read(w, r, source, mediaTypes...)
	if !ok {
		return
	}
	var events []*orgsyncv1.HREvent
	var err error
	switch source.Kind {
	case KindSCIM:
		var ops []scim.Operation
		if ops, err = scim.Parse(body, source.Location); err == nil {
			for _, op := range ops {
				events = append(events, op.Event)
			}
		}
	case KindBambooHR:
		events, err = bamboohr.Parse(body, source.Location)
	case KindCSV:
		var workers []*orgsyncv1.Worker
		if workers, err = snapshot.Parse(body, source.CSV); err == nil {
			var snapshotID string
			if snapshotID, err = snapshot.NewID(source.Name, r.Header.Get(IdempotencyKeyHeader)); err != nil {
				writeInvalid(w, err)
				return
			}
			events = snapshot.Events(snapshotID, workers)
		}
	default:
		if events, err = canonical.ParseBatch(body); err == nil {
			deliveryID := r.Header.Get("webhook-id")
			if deliveryID == "" {
				deliveryID = "dry-run"
			}
			batch := bytes.HasPrefix(bytes.TrimSpace(body), []byte("["))
			for i, event := range events {
				event.EventId = deliveryID
				if batch {
					event.EventId = deliveryID + "." + strconv.Itoa(i)
				}
			}
		}
	}
	if err != nil {
		writeInvalid(w, err)
		return
	}
	receivedAt := timestamppb.New(h.opts.Now())
	for _, event := range events {
		event.Source, event.ReceivedAt = source.Name, receivedAt
	}
	if source.Kind == KindSCIM || source.Kind == KindBambooHR {
		if err := h.historyIDs(r.Context(), source, events); err != nil {
			h.unavailable(w, r, source, err)
			return
		}
	}
	result := DryRunResult{Events: make([]json.RawMessage, len(events))}
	for i, event := range events {
		if result.Events[i], err = protojson.Marshal(event); err != nil {
			h.unavailable(w, r, source, err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(result)
}
