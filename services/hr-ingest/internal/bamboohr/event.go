package bamboohr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
)

// Event-based webhook types.
const (
	EventCreated = "employee.created"
	EventUpdated = "employee.updated"
	EventDeleted = "employee.deleted"
)

// Event is one event-based webhook: that an employee was created, updated or deleted, without
// the employee's fields, which the receiver fetches through BambooHR's API.
type Event struct {
	Type          string
	Timestamp     time.Time
	CompanyID     string
	EmployeeID    string
	ChangedFields []string
}

type eventPayload struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      struct {
		CompanyID     json.RawMessage `json:"companyId"`
		EmployeeID    json.RawMessage `json:"employeeId"`
		ChangedFields []string        `json:"changedFields"`
	} `json:"data"`
	Employees json.RawMessage `json:"employees"`
}

// IsEvent says whether body is an event-based webhook ({"type": …, "data": …}) rather than a
// field-based one ({"employees": […]}); a body that is not JSON is neither.
func IsEvent(body []byte) bool {
	var p eventPayload
	return json.Unmarshal(body, &p) == nil && p.Type != "" && len(p.Employees) == 0
}

// ParseEvent reads an event-based webhook. Every invalid field is reported at once
// (*normalize.InvalidError); a body that is not one JSON object is a *normalize.SyntaxError.
func ParseEvent(body []byte) (Event, error) {
	var p eventPayload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return Event{}, &normalize.SyntaxError{Format: "JSON", Err: err}
	}
	if dec.More() {
		return Event{}, &normalize.SyntaxError{Format: "JSON", Err: errors.New("more than one JSON value")}
	}
	errs := &normalize.Errors{}
	e := Event{Type: p.Type, CompanyID: scalarText(p.Data.CompanyID), EmployeeID: scalarText(p.Data.EmployeeID), ChangedFields: p.Data.ChangedFields}
	switch p.Type {
	case EventCreated, EventUpdated, EventDeleted:
	case "":
		errs.Add("/type", "required")
	default:
		errs.Add("/type", fmt.Sprintf("%q is not one of %s, %s, %s", p.Type, EventCreated, EventUpdated, EventDeleted))
	}
	if e.EmployeeID == "" {
		errs.Add("/data/employeeId", "required")
	} else if why := normalize.ValidID(e.EmployeeID); why != "" {
		errs.Add("/data/employeeId", why)
	}
	if p.Timestamp != "" {
		if ts, err := parseTimestamp(p.Timestamp); err != nil {
			errs.Add("/timestamp", err.Error())
		} else {
			e.Timestamp = ts
		}
	}
	if err := errs.Err(); err != nil {
		return Event{}, err
	}
	return e, nil
}
