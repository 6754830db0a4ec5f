package emulator

import (
	"encoding/json"
	"maps"
	"net/http"
	"sync"
)

// Stats counts the requests a Server has answered since it was created.
type Stats struct {
	// Requests counts every request, whatever its outcome.
	Requests int `json:"requests"`
	// WriteRequests counts attempted writes: every POST, PATCH, PUT and DELETE, including refused
	// ones. Graph's throttling budget charges attempts the same way.
	WriteRequests int `json:"writeRequests"`
	// SuccessfulWrites counts the writes answered with a 2xx status.
	SuccessfulWrites int `json:"successfulWrites"`
	// Operations counts requests by operation (OpUserCreate, OpMemberAdd, ...), including
	// refused ones; requests that matched no route count as OpUnknown.
	Operations map[string]int `json:"operations"`
	// ErrorCodes counts error answers by Graph error code (CodeRequestBadRequest, ...).
	ErrorCodes map[string]int `json:"errorCodes"`
	// CallsInRetryAfterWindow counts calls (a $batch is one) that arrived while the Retry-After of
	// an earlier 429 or 503 was still running: calls a client that honours Retry-After across all
	// its requests and replicas does not make.
	CallsInRetryAfterWindow int `json:"callsInRetryAfterWindow"`
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	stats := s.stats.snapshot()
	stats.CallsInRetryAfterWindow = s.faults.callsInRetryAfterWindow()
	return stats
}

type statsRecorder struct {
	mu     sync.Mutex
	counts Stats
}

func newStatsRecorder() *statsRecorder {
	return &statsRecorder{counts: Stats{Operations: make(map[string]int), ErrorCodes: make(map[string]int)}}
}

func (r *statsRecorder) record(method, operation string, status int, errorCode string, batchItem bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !batchItem {
		r.counts.Requests++
	}
	r.counts.Operations[operation]++
	if errorCode != "" {
		r.counts.ErrorCodes[errorCode]++
	}
	// The $batch envelope is not a write; Graph charges each of its items.
	if operation != OpBatch && (method == http.MethodPost || method == http.MethodPatch || method == http.MethodPut || method == http.MethodDelete) {
		r.counts.WriteRequests++
		if status >= 200 && status < 300 {
			r.counts.SuccessfulWrites++
		}
	}
}

func (r *statsRecorder) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	snapshot := r.counts
	snapshot.Operations = maps.Clone(r.counts.Operations)
	snapshot.ErrorCodes = maps.Clone(r.counts.ErrorCodes)
	return snapshot
}

// StatsPath is where the standalone emulator and the local stack serve the counters as JSON.
const StatsPath = "/_emulator/stats"

// StatsHandler serves Stats as indented JSON, for people and scripts watching a running emulator.
func (s *Server) StatsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		encoder := json.NewEncoder(w)
		encoder.SetIndent("", "  ")
		_ = encoder.Encode(s.Stats())
	})
}
