package vendortest

import (
	"encoding/json"
	"maps"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// BambooHR is a fake of BambooHR's API for one company:
// GET /api/gateway.php/{companyDomain}/v1/employees/{id}?fields=a,b,… with HTTP basic auth of
// the API key as user name (any password), answering the id and the requested fields the
// employee has, as JSON when asked with Accept: application/json. A wrong or missing key is
// 401, another company 404, an unknown employee 404, a request without fields 400.
type BambooHR struct {
	*server
	company string
	apiKey  string

	mu        sync.Mutex
	employees map[string]map[string]string
}

// NewBambooHR starts a fake for company with apiKey; it stops when the test ends.
func NewBambooHR(t testing.TB, company, apiKey string) *BambooHR {
	t.Helper()
	b := &BambooHR{company: company, apiKey: apiKey, employees: map[string]map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/gateway.php/{company}/v1/employees/{id}", b.employee)
	b.server = startServer(t, mux)
	return b
}

// BaseURL is what a source's api.baseURL is set to.
func (b *BambooHR) BaseURL() string { return b.URL() + "/api/gateway.php/" + b.company + "/v1" }

// Put stores or replaces an employee's fields (by BambooHR field alias: firstName, lastName…).
func (b *BambooHR) Put(id string, fields map[string]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.employees[id] = maps.Clone(fields)
}

// Delete removes an employee: reading it is 404 from then on.
func (b *BambooHR) Delete(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.employees, id)
}

func (b *BambooHR) employee(w http.ResponseWriter, r *http.Request) {
	b.hit()
	key, _, ok := r.BasicAuth()
	if !ok || key != b.apiKey {
		w.Header().Set("WWW-Authenticate", `Basic realm="BambooHR"`)
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	if r.PathValue("company") != b.company {
		http.Error(w, "", http.StatusNotFound)
		return
	}
	if fault, ok := b.fault(); ok {
		writeFault(w, fault)
		return
	}
	if mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Accept")); mediaType != "application/json" {
		// BambooHR answers XML unless JSON is asked for; this fake speaks JSON only.
		http.Error(w, "", http.StatusNotAcceptable)
		return
	}
	fields := r.URL.Query().Get("fields")
	if fields == "" {
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	record, found := b.employees[r.PathValue("id")]
	b.mu.Unlock()
	if !found {
		http.Error(w, "", http.StatusNotFound)
		return
	}
	answer := map[string]any{"id": r.PathValue("id")}
	for _, field := range strings.Split(fields, ",") {
		if value, ok := record[field]; ok {
			answer[field] = value
		} else {
			answer[field] = nil
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}
