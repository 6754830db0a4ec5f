package ingest

import (
	"encoding/json"
	"net/http"

	"google.golang.org/protobuf/encoding/protojson"
)

// DryRunPattern is the dry-run route: a body exactly as a source would send it goes through the
// pipeline up to and including event ids, and the events are answered instead of published.
// It is for orgsync's own clients (the console's Plan page), so it is authenticated with
// orgsync's tokens (role viewer or above), not with the source's credentials.
const DryRunPattern = "POST /v1/dry-run/{source}"

// DryRunDeliveryIDHeader names a dry run's delivery id for sources whose senders give one
// (canonical: webhook-id); without it the id is "dry-run".
const DryRunDeliveryIDHeader = "webhook-id"

// DryRunResult is the body of a dry run's 200 answer: each event as protojson.
type DryRunResult struct {
	Events []json.RawMessage `json:"events"`
}

// DryRun serves DryRunPattern. Register it behind pkg/auth's middleware
// (server.HandleAuthenticated): in place of the pipeline's authenticate and limit steps, the
// caller was authenticated by orgsync's own tokens, and no source's rate budget is spent; in
// place of publish and answer, the events are answered. Its refusals are not counted as a
// source's rejected events: nothing was sent by the source.
func (h *Handler) DryRun() http.Handler {
	return h.capInFlight(func(w http.ResponseWriter, r *http.Request) {
		src, ok := h.byPath("")(w, r)
		if !ok {
			return
		}
		body, ok := h.read(w, r, src)
		if !ok {
			return
		}
		deliveryID := r.Header.Get(DryRunDeliveryIDHeader)
		if deliveryID == "" {
			deliveryID = "dry-run"
		}
		batch, ok := h.prepare(w, r, src, body, deliveryID)
		if !ok {
			return
		}
		result := DryRunResult{Events: make([]json.RawMessage, len(batch.Events))}
		for i, event := range batch.Events {
			data, err := protojson.Marshal(event)
			if err != nil {
				h.unavailable(w, r, src, err)
				return
			}
			result.Events[i] = data
		}
		writeJSON(w, http.StatusOK, "application/json", result)
	})
}
