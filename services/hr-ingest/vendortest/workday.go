package vendortest

import (
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"testing"
)

// Workday is a fake of a Workday custom report exposed as a web service (Report-as-a-Service),
// from Workday's documentation: GET /ccx/service/customreport2/{tenant}/{owner}/{report}
// ?format=json&<prompt>=<value>, HTTP basic auth of an integration system user (user@tenant),
// answered {"Report_Entry":[…]} in one answer (RaaS does not page). A wrong user or password is
// 401, a report that is not the fake's 404, a prompt the report does not have 400 with
// {"error":…}. The report's one date-time prompt keeps the entries whose updated field is at or
// after it.
type Workday struct {
	*server
	tenant, owner, report string
	user, password        string
	prompt, updatedField  string

	mu      sync.Mutex
	entries map[string]map[string]any
	idField string
}

// NewWorkday starts a fake report tenant/owner/report for user and password, whose entries are
// identified by idField and filtered by the prompt on updatedField; it stops when the test ends.
func NewWorkday(t testing.TB, tenant, owner, report, user, password, idField, prompt, updatedField string) *Workday {
	t.Helper()
	w := &Workday{tenant: tenant, owner: owner, report: report, user: user, password: password, prompt: prompt,
		updatedField: updatedField, idField: idField, entries: map[string]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ccx/service/customreport2/{tenant}/{owner}/{report}", w.get)
	w.server = startServer(t, mux)
	return w
}

// ReportURL is what a source's poll.url is set to.
func (w *Workday) ReportURL() string {
	return w.URL() + "/ccx/service/customreport2/" + w.tenant + "/" + w.owner + "/" + w.report
}

// Put stores or replaces a report entry.
func (w *Workday) Put(entry map[string]any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.entries[entry[w.idField].(string)] = entry
}

func (w *Workday) get(rw http.ResponseWriter, r *http.Request) {
	w.hit()
	user, password, ok := r.BasicAuth()
	if !ok || user != w.user || password != w.password {
		rw.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.PathValue("tenant") != w.tenant || r.PathValue("owner") != w.owner || r.PathValue("report") != w.report {
		rw.WriteHeader(http.StatusNotFound)
		return
	}
	if fault, ok := w.fault(); ok {
		writeFault(rw, fault)
		return
	}
	q := r.URL.Query()
	for name := range q {
		if name != "format" && name != w.prompt {
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(rw).Encode(map[string]string{"error": "Invalid request: " + name + " is not a prompt of the report"})
			return
		}
	}
	if q.Get("format") != "json" {
		rw.Header().Set("Content-Type", "text/xml")
		_, _ = rw.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><wd:Report_Data xmlns:wd="urn:com.workday.report/` + w.report + `"/>`))
		return
	}
	from, filtered := afasTime(q.Get(w.prompt))
	if q.Get(w.prompt) != "" && !filtered {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(rw).Encode(map[string]string{"error": "Invalid request: " + w.prompt + " is not a date-time"})
		return
	}
	w.mu.Lock()
	entries := []map[string]any{}
	for _, e := range w.entries {
		updated, _ := afasTime(e[w.updatedField].(string))
		if !filtered || !updated.Before(from) {
			entries = append(entries, e)
		}
	}
	w.mu.Unlock()
	sort.Slice(entries, func(i, j int) bool { return entries[i][w.idField].(string) < entries[j][w.idField].(string) })
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(map[string]any{"Report_Entry": entries})
}
