// Package personio verifies Personio's webhooks, reads them into notifications, and reads the
// notified person through Personio's API v2.
//
// Personio's webhooks (API v2) carry no record: {"company_id":…,"event_name":"person.updated",
// "occurred_at":"…","payload":{…},"meta":{…}}. They are not signed: the webhook is created with
// auth_type TOKEN and Personio sends that static token, unchanged, in the Authorization header
// of every delivery (auth_type NONE is refused here). A delivery must be answered 2xx within 3 s;
// Personio retries a 5xx (but 501) or a timeout for up to 3 days.
package personio

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
)

// Verification errors; none carries a token.
var (
	ErrMissingToken = errors.New("missing Authorization")
	ErrNoMatch      = errors.New("the Authorization header matches no webhook token")
)

// Verifier checks the Authorization header against the webhook tokens (several during a
// rotation), in constant time. It is safe for concurrent use.
type Verifier struct {
	tokens [][sha256.Size]byte
}

// NewVerifier returns a Verifier for tokens: each exactly as configured on Personio's webhook
// (with its "Bearer " prefix if it was given one).
func NewVerifier(tokens [][]byte) *Verifier {
	v := &Verifier{}
	for _, token := range tokens {
		v.tokens = append(v.tokens, sha256.Sum256(token))
	}
	return v
}

// Verify checks header's Authorization.
func (v *Verifier) Verify(header http.Header) error {
	got := header.Get("Authorization")
	if got == "" {
		return ErrMissingToken
	}
	sum := sha256.Sum256([]byte(got))
	match := 0
	for _, token := range v.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], token[:])
	}
	if match != 1 {
		return ErrNoMatch
	}
	return nil
}

// Event names orgsync acts on: person.* and employment.* (a person's job, manager, status and
// dates are on their employment).
const (
	EventPersonCreated     = "person.created"
	EventPersonUpdated     = "person.updated"
	EventPersonDeleted     = "person.deleted"
	EventEmploymentCreated = "employment.created"
	EventEmploymentUpdated = "employment.updated"
	EventEmploymentDeleted = "employment.deleted"
)

// Webhook is one Personio webhook delivery.
type Webhook struct {
	CompanyID  string
	EventName  string
	OccurredAt time.Time
	// PersonID is the person the event is about.
	PersonID string
}

// Leaves says whether the person was deleted.
func (w Webhook) Leaves() bool { return w.EventName == EventPersonDeleted }

type envelope struct {
	CompanyID  json.RawMessage `json:"company_id"`
	EventName  string          `json:"event_name"`
	OccurredAt string          `json:"occurred_at"`
	Payload    json.RawMessage `json:"payload"`
}

type payload struct {
	ID       json.RawMessage `json:"id"`
	PersonID json.RawMessage `json:"person_id"`
	Person   struct {
		ID json.RawMessage `json:"id"`
	} `json:"person"`
}

// ParseWebhook reads a delivery; every invalid field is reported at once
// (*normalize.InvalidError), a body that is not one JSON object is a *normalize.SyntaxError.
// The person is payload.id for person events, payload.person.id (or payload.person_id) for
// employment events.
func ParseWebhook(body []byte) (Webhook, error) {
	var e envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&e); err != nil {
		return Webhook{}, &normalize.SyntaxError{Format: "JSON", Err: err}
	}
	if dec.More() {
		return Webhook{}, &normalize.SyntaxError{Format: "JSON", Err: errors.New("more than one JSON value")}
	}
	errs := &normalize.Errors{}
	w := Webhook{CompanyID: text(e.CompanyID), EventName: e.EventName}
	var p payload
	if len(e.Payload) == 0 || json.Unmarshal(e.Payload, &p) != nil {
		errs.Add("/payload", "required: an object naming the person")
	}
	switch {
	case e.EventName == "":
		errs.Add("/event_name", "required")
	case strings.HasPrefix(e.EventName, "person."):
		w.PersonID = text(p.ID)
		if w.PersonID == "" {
			errs.Add("/payload/id", "required")
		}
	case strings.HasPrefix(e.EventName, "employment."):
		w.PersonID = text(p.Person.ID)
		if w.PersonID == "" {
			w.PersonID = text(p.PersonID)
		}
		if w.PersonID == "" {
			errs.Add("/payload/person/id", "required")
		}
	default:
		errs.Add("/event_name", fmt.Sprintf("%q is not a person or employment event (person.created, person.updated, employment.updated, …)", e.EventName))
	}
	if w.PersonID != "" {
		if why := normalize.ValidID(w.PersonID); why != "" {
			errs.Add("/payload/id", why)
		}
	}
	if e.OccurredAt != "" {
		if ts, err := normalize.Time(e.OccurredAt, time.UTC); err != nil {
			errs.Add("/occurred_at", err.Error())
		} else {
			w.OccurredAt = ts
		}
	}
	if err := errs.Err(); err != nil {
		return Webhook{}, err
	}
	return w, nil
}

func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}
