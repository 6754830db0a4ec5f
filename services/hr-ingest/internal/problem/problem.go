// Package problem writes HTTP error responses as RFC 9457 problem details
// (application/problem+json), the form every hr-ingest rejection takes.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// FieldError names one invalid field by JSON pointer.
type FieldError struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
	// Limit is the field's maximum length in characters, when the field is too long.
	Limit int `json:"limit,omitempty"`
}

// Details is an RFC 9457 problem with orgsync's "errors" extension listing invalid fields.
type Details struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}

// TypeBase prefixes orgsync's problem type URIs; the fragment names the problem.
const TypeBase = "https://github.com/orgsync/orgsync/blob/main/docs/problems.md#"

// Write sends p with its status. retryAfter > 0 adds a Retry-After header in whole seconds.
func Write(w http.ResponseWriter, p Details, retryAfter time.Duration) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
