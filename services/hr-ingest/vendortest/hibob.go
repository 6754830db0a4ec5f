package vendortest

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/hibob"
)

// SignHiBob signs a webhook body as HiBob does (Bob-Signature: base64 HMAC-SHA512 of the body
// with the webhook's secret), setting the header on header.
func SignHiBob(header http.Header, secret, body []byte) {
	header.Set(hibob.HeaderSignature, hibob.Sign(secret, body))
}

// HiBob is a fake of Bob's public API: POST /v1/people/{identifier} with a JSON body
// {"fields": [ids…]} and HTTP basic auth of a service user's id and token, answering the
// employee record (nested categories: root fields at the top, work, internal). A wrong service
// user or token is 401, an unknown employee 404, a body that is not JSON 400.
type HiBob struct {
	*server
	serviceUser string
	token       string

	mu        sync.Mutex
	employees map[string]json.RawMessage
}

// NewHiBob starts a fake accepting serviceUser and token; it stops when the test ends.
func NewHiBob(t testing.TB, serviceUser, token string) *HiBob {
	t.Helper()
	h := &HiBob{serviceUser: serviceUser, token: token, employees: map[string]json.RawMessage{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/people/{identifier}", h.employee)
	h.server = startServer(t, mux)
	return h
}

// BaseURL is what a source's api.baseURL is set to.
func (h *HiBob) BaseURL() string { return h.URL() + "/v1" }

// Put stores or replaces an employee's record, as Bob answers it (JSON object with id).
func (h *HiBob) Put(id string, record string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.employees[id] = json.RawMessage(record)
}

// Delete removes an employee: reading it is 404 from then on.
func (h *HiBob) Delete(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.employees, id)
}

func (h *HiBob) employee(w http.ResponseWriter, r *http.Request) {
	h.hit()
	user, token, ok := r.BasicAuth()
	if !ok || user != h.serviceUser || token != h.token {
		writeFault(w, Fault{Status: http.StatusUnauthorized})
		return
	}
	if fault, ok := h.fault(); ok {
		writeFault(w, fault)
		return
	}
	var body struct {
		Fields []string `json:"fields"`
	}
	if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil {
		writeFault(w, Fault{Status: http.StatusBadRequest})
		return
	}
	h.mu.Lock()
	record, found := h.employees[r.PathValue("identifier")]
	h.mu.Unlock()
	if !found {
		writeFault(w, Fault{Status: http.StatusNotFound})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(record)
}
