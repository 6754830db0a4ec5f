// Package canonical parses orgsync's own JSON format for HR events into orgsync.v1 HR events.
//
// A request body is one event in the Standard Webhooks payload shape:
//
//	{"type": "worker.updated", "timestamp": "2026-03-01T09:00:00Z", "data": { ...worker... }}
//	{"type": "org_unit.updated", "timestamp": "...", "data": { ...org unit... }}
//
// Types ending in ".created" or ".updated" both carry the whole record; "org_unit.deleted" marks a
// unit removed. Every problem in a payload is reported at once, each with its JSON pointer
// (*normalize.InvalidError); a body that is not JSON is a *normalize.SyntaxError. Values are put in
// the one form every source's are (package normalize): dates and times without an offset are
// read in the source's time zone.
package canonical

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
)

type envelope struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Parse reads one canonical event; dates without an offset are read in loc. The caller fills in
// event id, source and receipt time.
func Parse(body []byte, loc *time.Location) (*orgsyncv1.HREvent, error) {
	var env envelope
	if err := strictUnmarshal(body, &env); err != nil {
		return nil, err
	}
	v := &validator{loc: loc}
	event := &orgsyncv1.HREvent{}
	if env.Timestamp != "" {
		ts, err := time.Parse(time.RFC3339, env.Timestamp) // Standard Webhooks' timestamp always has an offset
		if err != nil {
			v.fail("/timestamp", "not an RFC 3339 date-time such as 2026-03-01T09:00:00Z")
		} else {
			event.OccurredAt = timestamppb.New(ts.UTC())
		}
	}
	if len(bytes.TrimSpace(env.Data)) == 0 || bytes.Equal(bytes.TrimSpace(env.Data), []byte("null")) {
		v.fail("/data", "required")
	}
	switch env.Type {
	case "worker.created", "worker.updated":
		if worker := parseWorker(v, env.Data); worker != nil {
			event.Payload = &orgsyncv1.HREvent_Worker{Worker: worker}
		}
	case "org_unit.created", "org_unit.updated", "org_unit.deleted":
		if unit := parseOrgUnit(v, env.Data, env.Type == "org_unit.deleted"); unit != nil {
			event.Payload = &orgsyncv1.HREvent_OrgUnit{OrgUnit: unit}
		}
	case "":
		v.fail("/type", "required")
	default:
		v.fail("/type", fmt.Sprintf("%q is not one of worker.created, worker.updated, org_unit.created, org_unit.updated, org_unit.deleted", env.Type))
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return event, nil
}

// MaxBatch is the most events one batch request may carry.
const MaxBatch = 1000

// IsBatch reports whether body is a batch (a JSON array) rather than one event.
func IsBatch(body []byte) bool {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '['
}

// ParseBatch reads a request body: one event, or a JSON array of events (a batch). Problems in a
// batch are named by the event's index, e.g. "/3/data/startDate", and every one is reported.
func ParseBatch(body []byte, loc *time.Location) ([]*orgsyncv1.HREvent, error) {
	if !IsBatch(body) {
		event, err := Parse(body, loc)
		if err != nil {
			return nil, err
		}
		return []*orgsyncv1.HREvent{event}, nil
	}
	var raws []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raws); err != nil {
		return nil, &normalize.SyntaxError{Format: "JSON", Err: err}
	}
	if dec.More() {
		return nil, &normalize.SyntaxError{Format: "JSON", Err: errors.New("more than one JSON value")}
	}
	if len(raws) == 0 || len(raws) > MaxBatch {
		return nil, &normalize.InvalidError{Fields: []normalize.FieldError{{Pointer: "", Detail: fmt.Sprintf("a batch holds 1 to %d events, not %d", MaxBatch, len(raws))}}}
	}
	events := make([]*orgsyncv1.HREvent, 0, len(raws))
	invalid := &normalize.Errors{}
	for i, raw := range raws {
		event, err := Parse(raw, loc)
		var fields *normalize.InvalidError
		var syntaxErr *normalize.SyntaxError
		switch {
		case err == nil:
			events = append(events, event)
		case errors.As(err, &fields):
			for _, f := range fields.Fields {
				invalid.Fields = append(invalid.Fields, normalize.FieldError{Pointer: fmt.Sprintf("/%d%s", i, f.Pointer), Detail: f.Detail, Limit: f.Limit})
			}
		case errors.As(err, &syntaxErr):
			invalid.Add(fmt.Sprintf("/%d", i), syntaxErr.Err.Error())
		default:
			return nil, err
		}
	}
	if err := invalid.Err(); err != nil {
		return nil, err
	}
	return events, nil
}

// strictUnmarshal decodes exactly one JSON value, rejecting unknown envelope fields.
func strictUnmarshal(body []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return &normalize.InvalidError{Fields: []normalize.FieldError{{Pointer: "/" + strings.ReplaceAll(typeErr.Field, ".", "/"), Detail: "must be a JSON " + typeErr.Type.String()}}}
		}
		return &normalize.SyntaxError{Format: "JSON", Err: err}
	}
	if dec.More() {
		return &normalize.SyntaxError{Format: "JSON", Err: errors.New("more than one JSON value")}
	}
	return nil
}

// validator reads an event's fields, collecting every problem; loc is the source's time zone.
type validator struct {
	errs normalize.Errors
	loc  *time.Location
}

func (v *validator) fail(pointer, detail string) { v.errs.Add(pointer, detail) }

func (v *validator) err() error { return v.errs.Err() }

// object reads a JSON object into its raw fields, reporting a non-object at pointer.
func (v *validator) object(pointer string, raw json.RawMessage) map[string]json.RawMessage {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		v.fail(pointer, "must be a JSON object")
		return nil
	}
	return fields
}

// str takes a string field out of fields; null and absent read as "".
func (v *validator) str(fields map[string]json.RawMessage, pointer, name string) string {
	raw, ok := fields[name]
	delete(fields, name)
	if !ok || string(raw) == "null" {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		v.fail(pointer+"/"+name, "must be a string")
		return ""
	}
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		v.fail(pointer+"/"+name, "contains control characters")
		return ""
	}
	return s
}

// id takes an identifier field (see normalize.ValidID).
func (v *validator) id(fields map[string]json.RawMessage, pointer, name string, required bool) string {
	s := v.str(fields, pointer, name)
	if s == "" {
		if required {
			v.fail(pointer+"/"+name, "required")
		}
		return ""
	}
	if why := normalize.ValidID(s); why != "" {
		v.fail(pointer+"/"+name, why)
		return ""
	}
	return s
}

// date takes a date field, read in the source's time zone (see normalize.Date).
func (v *validator) date(fields map[string]json.RawMessage, pointer, name string) *orgsyncv1.Date {
	s := v.str(fields, pointer, name)
	if s == "" {
		return nil
	}
	d, err := normalize.Date(s, v.loc)
	if err != nil {
		v.fail(pointer+"/"+name, err.Error())
		return nil
	}
	return d
}

func (v *validator) customAttributes(fields map[string]json.RawMessage, pointer string) map[string]string {
	raw, ok := fields["customAttributes"]
	delete(fields, "customAttributes")
	attrs := map[string]string{}
	if ok && string(raw) != "null" {
		for name, value := range v.object(pointer+"/customAttributes", raw) {
			attrs[name] = scalarText(value)
		}
	}
	// Fields orgsync has no place for are kept as custom attributes rather than dropped.
	for name, value := range fields {
		attrs[name] = scalarText(value)
	}
	if len(attrs) == 0 {
		return nil
	}
	return attrs
}

// scalarText renders a JSON string as its text and anything else as its JSON.
func scalarText(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

func parseWorker(v *validator, raw json.RawMessage) *orgsyncv1.Worker {
	const at = "/data"
	fields := v.object(at, raw)
	if fields == nil {
		return nil
	}
	w := &orgsyncv1.Worker{
		WorkerId:        v.id(fields, at, "workerId", true),
		WorkEmail:       v.str(fields, at, "workEmail"),
		JobTitle:        v.str(fields, at, "jobTitle"),
		OrgUnitId:       v.id(fields, at, "orgUnitId", false),
		Department:      v.str(fields, at, "department"),
		ManagerWorkerId: v.id(fields, at, "managerWorkerId", false),
		Location:        v.str(fields, at, "location"),
		Company:         v.str(fields, at, "company"),
		CostCenter:      v.str(fields, at, "costCenter"),
		Division:        v.str(fields, at, "division"),
		PhoneNumber:     v.str(fields, at, "phoneNumber"),
		HireDate:        v.date(fields, at, "hireDate"),
		StartDate:       v.date(fields, at, "startDate"),
		EndDate:         v.date(fields, at, "endDate"),
	}
	if w.ManagerWorkerId != "" && w.ManagerWorkerId == w.WorkerId {
		v.fail(at+"/managerWorkerId", "a worker cannot be their own manager")
	}
	var err error
	if w.EmploymentType, err = normalize.EmploymentType(v.str(fields, at, "employmentType")); err != nil {
		v.fail(at+"/employmentType", err.Error())
	}
	if w.EmploymentStatus, err = normalize.EmploymentStatus(v.str(fields, at, "employmentStatus")); err != nil {
		v.fail(at+"/employmentStatus", err.Error())
	}
	if raw, ok := fields["name"]; ok {
		delete(fields, "name")
		if nameFields := v.object(at+"/name", raw); nameFields != nil {
			w.Name = &orgsyncv1.PersonName{
				GivenName:     v.str(nameFields, at+"/name", "givenName"),
				FamilyName:    v.str(nameFields, at+"/name", "familyName"),
				MiddleName:    v.str(nameFields, at+"/name", "middleName"),
				PreferredName: v.str(nameFields, at+"/name", "preferredName"),
				DisplayName:   v.str(nameFields, at+"/name", "displayName"),
			}
			for unknown := range nameFields {
				v.fail(at+"/name/"+unknown, "unknown name part (givenName, familyName, middleName, preferredName, displayName)")
			}
		}
	}
	normalize.Worker(w, &v.errs, at, normalize.WorkerFieldNames{WorkEmail: "/workEmail", PhoneNumber: "/phoneNumber", EndDate: "/endDate"})
	if w.GetName().GetGivenName() == "" && w.GetName().GetPreferredName() == "" {
		v.fail(at+"/name/givenName", "required")
	}
	if w.GetName().GetFamilyName() == "" {
		v.fail(at+"/name/familyName", "required")
	}
	w.CustomAttributes = v.customAttributes(fields, at)
	normalize.CheckLengths(w, &v.errs, func(field string) string {
		switch field {
		case "givenName", "familyName", "middleName", "preferredName", "displayName":
			return at + "/name/" + field
		}
		return at + "/" + field
	})
	return w
}

func parseOrgUnit(v *validator, raw json.RawMessage, deleted bool) *orgsyncv1.OrgUnit {
	const at = "/data"
	fields := v.object(at, raw)
	if fields == nil {
		return nil
	}
	u := &orgsyncv1.OrgUnit{
		OrgUnitId:       v.id(fields, at, "orgUnitId", true),
		Name:            normalize.Text(v.str(fields, at, "name")),
		ParentOrgUnitId: v.id(fields, at, "parentOrgUnitId", false),
		ManagerWorkerId: v.id(fields, at, "managerWorkerId", false),
		CostCenter:      normalize.Text(v.str(fields, at, "costCenter")),
		Deleted:         deleted,
	}
	if u.Name == "" && !deleted {
		v.fail(at+"/name", "required")
	}
	if u.ParentOrgUnitId != "" && u.ParentOrgUnitId == u.OrgUnitId {
		v.fail(at+"/parentOrgUnitId", "a unit cannot be its own parent")
	}
	u.CustomAttributes = v.customAttributes(fields, at)
	return u
}
