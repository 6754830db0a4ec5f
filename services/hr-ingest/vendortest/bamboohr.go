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
	// customFields are the company's custom fields an update may set, besides standardFields.
	customFields map[string]bool
	updates      []Update
}

// Update is one employee update BambooHR accepted.
type Update struct {
	EmployeeID string
	Fields     map[string]string
}

// standardFields are the BambooHR fields this fake's update accepts (a subset of BambooHR's
// field names; custom ones are added with AddCustomField).
var standardFields = map[string]bool{
	"firstName": true, "lastName": true, "middleName": true, "preferredName": true, "displayName": true,
	"workEmail": true, "homeEmail": true, "jobTitle": true, "department": true, "division": true,
	"location": true, "supervisorEId": true, "workPhone": true, "hireDate": true, "terminationDate": true,
	"status": true, "employeeNumber": true,
}

// NewBambooHR starts a fake for company with apiKey; it stops when the test ends.
func NewBambooHR(t testing.TB, company, apiKey string) *BambooHR {
	t.Helper()
	b := &BambooHR{company: company, apiKey: apiKey, employees: map[string]map[string]string{}, customFields: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/gateway.php/{company}/v1/employees/{id}", b.employee)
	mux.HandleFunc("POST /api/gateway.php/{company}/v1/employees/{id}", b.update)
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

// AddCustomField declares a company custom field (by its API name, e.g. customUsername) that
// updates may set.
func (b *BambooHR) AddCustomField(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.customFields[name] = true
}

// Updates returns the employee updates accepted so far, in order (copies).
func (b *BambooHR) Updates() []Update {
	b.mu.Lock()
	defer b.mu.Unlock()
	updates := make([]Update, len(b.updates))
	for i, u := range b.updates {
		updates[i] = Update{EmployeeID: u.EmployeeID, Fields: maps.Clone(u.Fields)}
	}
	return updates
}

// update is BambooHR's "Update Employee": POST …/employees/{id} with a JSON object of field
// names and values; 200 when stored, 400 (with X-BambooHR-Error-Message) for a body that is not
// such an object or names a field the company does not have, 404 for an unknown employee.
func (b *BambooHR) update(w http.ResponseWriter, r *http.Request) {
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
	var fields map[string]string
	if mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mediaType != "application/json" || json.NewDecoder(r.Body).Decode(&fields) != nil || len(fields) == 0 {
		w.Header().Set("X-BambooHR-Error-Message", "Malformed request body")
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for name := range fields {
		if !standardFields[name] && !b.customFields[name] {
			w.Header().Set("X-BambooHR-Error-Message", "Unknown field: "+name)
			http.Error(w, "", http.StatusBadRequest)
			return
		}
	}
	record, found := b.employees[r.PathValue("id")]
	if !found {
		http.Error(w, "", http.StatusNotFound)
		return
	}
	maps.Copy(record, fields)
	b.updates = append(b.updates, Update{EmployeeID: r.PathValue("id"), Fields: maps.Clone(fields)})
	w.WriteHeader(http.StatusOK)
}
