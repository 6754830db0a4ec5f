package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
)

// maxBatchRequests is Graph's limit of requests in one $batch.
const maxBatchRequests = 20

type batchStep struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      json.RawMessage   `json:"body,omitempty"`
	DependsOn []string          `json:"dependsOn,omitempty"`
}

type batchAnswer struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// batch handles POST /$batch: up to 20 requests with relative URLs, each answered on its own —
// including a 429 for one item while the others succeed, which is why clients must read every
// item's status. A request whose dependsOn names a failed one is answered 424.
func (s *Server) batch(c *call) error {
	body, err := readJSONObject(c.request)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(body["requests"])
	var steps []batchStep
	if err := json.Unmarshal(raw, &steps); err != nil || len(steps) == 0 {
		return newAPIError(http.StatusBadRequest, CodeBadRequest, "The batch request must carry a non-empty 'requests' array.")
	}
	if len(steps) > maxBatchRequests {
		return newAPIError(http.StatusBadRequest, CodeBadRequest,
			"Number of batch request steps exceeds the maximum of %d.", maxBatchRequests)
	}
	statusByID := map[string]int{}
	answers := make([]batchAnswer, 0, len(steps))
	for _, step := range steps {
		answer := batchAnswer{ID: step.ID}
		if failed := failedDependency(step, statusByID); failed != "" {
			answer.Status = http.StatusFailedDependency
			answer.Body, _ = json.Marshal(errorEnvelope{Error: errorBody{Code: "FailedDependency",
				Message: "The request depends on request '" + failed + "', which failed."}})
		} else {
			answer = s.runStep(c, step)
		}
		statusByID[step.ID] = answer.Status
		answers = append(answers, answer)
	}
	return s.writeJSON(c, http.StatusOK, map[string]any{"responses": answers})
}

func failedDependency(step batchStep, statusByID map[string]int) string {
	for _, dependency := range step.DependsOn {
		if status, ok := statusByID[dependency]; !ok || status >= 400 {
			return dependency
		}
	}
	return ""
}

// runStep serves one batch item as its own request, through the same routes, faults and counters.
func (s *Server) runStep(c *call, step batchStep) batchAnswer {
	target := "/" + apiVersion + "/" + strings.TrimPrefix(step.URL, "/")
	var body []byte
	if len(step.Body) > 0 && string(step.Body) != "null" {
		body = step.Body
	}
	req := httptest.NewRequestWithContext(c.request.Context(), strings.ToUpper(step.Method), target, bytes.NewReader(body))
	for name, value := range step.Headers {
		req.Header.Set(name, value)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	recorder := httptest.NewRecorder()
	s.serve(recorder, req, true)
	answer := batchAnswer{ID: step.ID, Status: recorder.Code, Headers: map[string]string{}}
	for _, name := range []string{"Content-Type", "Retry-After", "Location"} {
		if value := recorder.Header().Get(name); value != "" {
			answer.Headers[name] = value
		}
	}
	if recorder.Body.Len() > 0 {
		answer.Body = json.RawMessage(bytes.TrimSpace(recorder.Body.Bytes()))
	}
	return answer
}
