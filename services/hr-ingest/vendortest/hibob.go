package vendortest

import (
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
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
	updates   []HiBobUpdate
}

// HiBobUpdate is one update Bob accepted: Path is "email" for the e-mail endpoint, "" for the
// fields update; Body is what was sent.
type HiBobUpdate struct {
	EmployeeID string
	Path       string
	Body       map[string]any
}

// NewHiBob starts a fake accepting serviceUser and token; it stops when the test ends.
func NewHiBob(t testing.TB, serviceUser, token string) *HiBob {
	t.Helper()
	h := &HiBob{serviceUser: serviceUser, token: token, employees: map[string]json.RawMessage{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/people/{identifier}", h.employee)
	mux.HandleFunc("PUT /v1/people/{identifier}", h.updateFields)
	mux.HandleFunc("PUT /v1/people/{identifier}/email", h.updateEmail)
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

// Updates returns the updates accepted so far, in order.
func (h *HiBob) Updates() []HiBobUpdate {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]HiBobUpdate(nil), h.updates...)
}

// updateFields is Bob's "Update company employee": PUT /v1/people/{identifier} with the fields
// to change, nested as a record has them (root fields at the top); the others stay. 200 when
// something changed, 304 when nothing did, 404 for an unknown employee, 400 for a body that is
// not a JSON object.
func (h *HiBob) updateFields(w http.ResponseWriter, r *http.Request) {
	h.write(w, r, "", func(record, body map[string]any) {
		merge(record, body)
	})
}

// updateEmail is Bob's "Update an employee's email address": PUT
// /v1/people/{identifier}/email with {"email": …}; 400 without an address.
func (h *HiBob) updateEmail(w http.ResponseWriter, r *http.Request) {
	h.write(w, r, "email", func(record, body map[string]any) {
		record["email"] = body["email"]
	})
}

func (h *HiBob) write(w http.ResponseWriter, r *http.Request, path string, apply func(record, body map[string]any)) {
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
	var body map[string]any
	if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil || len(body) == 0 {
		writeFault(w, Fault{Status: http.StatusBadRequest})
		return
	}
	if email, ok := body["email"].(string); path == "email" && (!ok || email == "") {
		writeFault(w, Fault{Status: http.StatusBadRequest})
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	raw, found := h.employees[r.PathValue("identifier")]
	if !found {
		writeFault(w, Fault{Status: http.StatusNotFound})
		return
	}
	var record map[string]any
	if json.Unmarshal(raw, &record) != nil {
		writeFault(w, Fault{Status: http.StatusInternalServerError})
		return
	}
	before := deepCopy(record)
	apply(record, body)
	if reflect.DeepEqual(before, record) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	updated, _ := json.Marshal(record)
	h.employees[r.PathValue("identifier")] = updated
	h.updates = append(h.updates, HiBobUpdate{EmployeeID: r.PathValue("identifier"), Path: path, Body: body})
	w.WriteHeader(http.StatusOK)
}

// merge sets into dst every leaf of src, keeping dst's other fields.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sub, ok := v.(map[string]any); ok {
			if existing, ok := dst[k].(map[string]any); ok {
				merge(existing, sub)
				continue
			}
			fresh := map[string]any{}
			merge(fresh, sub)
			dst[k] = fresh
			continue
		}
		dst[k] = v
	}
}

func deepCopy(m map[string]any) map[string]any {
	out := maps.Clone(m)
	for k, v := range out {
		if sub, ok := v.(map[string]any); ok {
			out[k] = deepCopy(sub)
		}
	}
	return out
}
