// Package canonical parses orgsync's own JSON format for HR events into orgsync.v1 HR events.
//
// A request body is one event in the Standard Webhooks payload shape:
//
//	{"type": "worker.updated", "timestamp": "2026-03-01T09:00:00Z", "data": { ...worker... }}
//	{"type": "org_unit.updated", "timestamp": "...", "data": { ...org unit... }}
//
// Types ending in ".created" or ".updated" both carry the whole record; "org_unit.deleted" marks a
// unit removed. Every problem in a payload is reported at once, each with its JSON pointer.
package canonical

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
)

// FieldError is one invalid field.
type FieldError struct {
	// Pointer is the field's JSON pointer (RFC 6901), e.g. "/data/startDate".
	Pointer string `json:"pointer"`
	// Detail says what is wrong, without echoing secrets.
	Detail string `json:"detail"`
	// Limit, when set, is the length in characters the field exceeds.
	Limit int `json:"limit,omitempty"`
}

// InvalidError lists every invalid field of a payload.
type InvalidError struct{ Fields []FieldError }

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Pointer + ": " + f.Detail
	}
	return "invalid payload: " + strings.Join(parts, "; ")
}

// SyntaxError says the body is not JSON of the expected shape.
type SyntaxError struct{ Err error }

func (e *SyntaxError) Error() string { return "body is not valid JSON: " + e.Err.Error() }
func (e *SyntaxError) Unwrap() error { return e.Err }

type envelope struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Parse reads one canonical event. The caller fills in event id, source and receipt time.
func Parse(body []byte) (*orgsyncv1.HREvent, error) {
	var env envelope
	if err := strictUnmarshal(body, &env); err != nil {
		return nil, err
	}
	v := &validator{}
	event := &orgsyncv1.HREvent{}
	if env.Timestamp != "" {
		ts, err := time.Parse(time.RFC3339, env.Timestamp)
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

// ParseBatch reads a request body: one event, or a JSON array of events (a batch). Problems in a
// batch are named by the event's index, e.g. "/3/data/startDate", and every one is reported.
func ParseBatch(body []byte) ([]*orgsyncv1.HREvent, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		event, err := Parse(body)
		if err != nil {
			return nil, err
		}
		return []*orgsyncv1.HREvent{event}, nil
	}
	var raws []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raws); err != nil {
		return nil, &SyntaxError{Err: err}
	}
	if dec.More() {
		return nil, &SyntaxError{Err: errors.New("more than one JSON value")}
	}
	if len(raws) == 0 || len(raws) > MaxBatch {
		return nil, &InvalidError{Fields: []FieldError{{Pointer: "", Detail: fmt.Sprintf("a batch holds 1 to %d events, not %d", MaxBatch, len(raws))}}}
	}
	events := make([]*orgsyncv1.HREvent, 0, len(raws))
	invalid := &InvalidError{}
	for i, raw := range raws {
		event, err := Parse(raw)
		var fields *InvalidError
		var syntaxErr *SyntaxError
		switch {
		case err == nil:
			events = append(events, event)
		case errors.As(err, &fields):
			for _, f := range fields.Fields {
				invalid.Fields = append(invalid.Fields, FieldError{Pointer: fmt.Sprintf("/%d%s", i, f.Pointer), Detail: f.Detail, Limit: f.Limit})
			}
		case errors.As(err, &syntaxErr):
			invalid.Fields = append(invalid.Fields, FieldError{Pointer: fmt.Sprintf("/%d", i), Detail: syntaxErr.Err.Error()})
		default:
			return nil, err
		}
	}
	if len(invalid.Fields) > 0 {
		return nil, invalid
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
			return &InvalidError{Fields: []FieldError{{Pointer: "/" + strings.ReplaceAll(typeErr.Field, ".", "/"), Detail: "must be a JSON " + typeErr.Type.String()}}}
		}
		return &SyntaxError{Err: err}
	}
	if dec.More() {
		return &SyntaxError{Err: errors.New("more than one JSON value")}
	}
	return nil
}

type validator struct{ fields []FieldError }

func (v *validator) fail(pointer, detail string) {
	v.fields = append(v.fields, FieldError{Pointer: pointer, Detail: detail})
}

func (v *validator) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &InvalidError{Fields: v.fields}
}

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

// id takes an identifier field: at most 128 characters, no spaces or control characters.
func (v *validator) id(fields map[string]json.RawMessage, pointer, name string, required bool) string {
	s := v.str(fields, pointer, name)
	switch {
	case s == "" && required:
		v.fail(pointer+"/"+name, "required")
	case len(s) > 128:
		v.fail(pointer+"/"+name, "longer than 128 characters")
	case strings.ContainsFunc(s, unicode.IsSpace):
		v.fail(pointer+"/"+name, "must not contain spaces")
	default:
		return s
	}
	return ""
}

func (v *validator) date(fields map[string]json.RawMessage, pointer, name string) *orgsyncv1.Date {
	s := v.str(fields, pointer, name)
	if s == "" {
		return nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		v.fail(pointer+"/"+name, fmt.Sprintf("%q is not a date in the form YYYY-MM-DD", s))
		return nil
	}
	return &orgsyncv1.Date{Year: int32(d.Year()), Month: int32(d.Month()), Day: int32(d.Day())}
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

var employmentTypes = map[string]orgsyncv1.EmploymentType{
	"employee":   orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_EMPLOYEE,
	"contractor": orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_CONTRACTOR,
	"intern":     orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_INTERN,
	"temporary":  orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_TEMPORARY,
}

var employmentStatuses = map[string]orgsyncv1.EmploymentStatus{
	"active":     orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
	"on_leave":   orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ON_LEAVE,
	"terminated": orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED,
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
	if w.WorkEmail != "" {
		if addr, err := mail.ParseAddress(w.WorkEmail); err != nil || addr.Address != w.WorkEmail {
			v.fail(at+"/workEmail", fmt.Sprintf("%q is not a plain e-mail address", w.WorkEmail))
		} else {
			w.WorkEmail = strings.ToLower(w.WorkEmail)
		}
	}
	if phone, err := normalize.Phone(w.PhoneNumber); err != nil {
		v.fail(at+"/phoneNumber", err.Error())
	} else {
		w.PhoneNumber = phone
	}
	if t := strings.ToLower(v.str(fields, at, "employmentType")); t != "" {
		if w.EmploymentType = employmentTypes[t]; w.EmploymentType == orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_UNSPECIFIED {
			v.fail(at+"/employmentType", fmt.Sprintf("%q is not one of %s", t, keys(employmentTypes)))
		}
	}
	w.EmploymentStatus = orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE
	if s := strings.ToLower(v.str(fields, at, "employmentStatus")); s != "" {
		if w.EmploymentStatus = employmentStatuses[s]; w.EmploymentStatus == orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_UNSPECIFIED {
			v.fail(at+"/employmentStatus", fmt.Sprintf("%q is not one of %s", s, keys(employmentStatuses)))
		}
	}
	if before(w.EndDate, w.StartDate) {
		v.fail(at+"/endDate", "is before startDate")
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
	if n := w.GetName(); n != nil {
		n.GivenName, n.FamilyName, n.MiddleName = normalize.Text(n.GivenName), normalize.Text(n.FamilyName), normalize.Text(n.MiddleName)
		n.PreferredName, n.DisplayName = normalize.Text(n.PreferredName), normalize.Text(n.DisplayName)
	}
	if w.GetName().GetGivenName() == "" && w.GetName().GetPreferredName() == "" {
		v.fail(at+"/name/givenName", "required")
	}
	if w.GetName().GetFamilyName() == "" {
		v.fail(at+"/name/familyName", "required")
	}
	w.CustomAttributes = v.customAttributes(fields, at)
	lengths := &normalize.Errors{}
	normalize.CheckLengths(w, lengths, func(field string) string {
		switch field {
		case "givenName", "familyName", "middleName", "preferredName", "displayName":
			return at + "/name/" + field
		}
		return at + "/" + field
	})
	for _, f := range lengths.Fields {
		v.fields = append(v.fields, FieldError{Pointer: f.Pointer, Detail: f.Detail, Limit: f.Limit})
	}
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
		Name:            v.str(fields, at, "name"),
		ParentOrgUnitId: v.id(fields, at, "parentOrgUnitId", false),
		ManagerWorkerId: v.id(fields, at, "managerWorkerId", false),
		CostCenter:      v.str(fields, at, "costCenter"),
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

func before(a, b *orgsyncv1.Date) bool {
	if a == nil || b == nil {
		return false
	}
	return a.Year*10000+a.Month*100+a.Day < b.Year*10000+b.Month*100+b.Day
}

func keys[V any](m map[string]V) string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
