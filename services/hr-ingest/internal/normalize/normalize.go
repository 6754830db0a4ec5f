// Package normalize puts the values HR sources send into one form before they are published:
// names trimmed and in Unicode NFC with single spaces, e-mail addresses lower-cased, phone numbers
// reduced to digits with an optional leading "+", and dates and times read in the source's time
// zone. Every function is pure and safe for concurrent use.
package normalize

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Text trims s, folds every run of white space into one space and puts it in Unicode NFC, so
// that "José" typed on two keyboards compares equal.
func Text(s string) string {
	return norm.NFC.String(strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " "))
}

// Email lower-cases a plain address ("Jane.Doe@Example.COM" → "jane.doe@example.com") and rejects
// anything that is not one bare address.
func Email(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" {
		return "", fmt.Errorf("%q is not a plain e-mail address", s)
	}
	return strings.ToLower(s), nil
}

// Phone reduces a phone number to its digits, keeping a leading "+" (E.164 style):
// "+44 (20) 7946-0958" → "+442079460958". Extensions ("x123", "ext. 123") are kept after "x".
// A number must have 3 to 15 digits.
func Phone(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	main, ext := s, ""
	lower := strings.ToLower(s)
	for _, marker := range []string{"ext.", "ext", "x", "#"} {
		if i := strings.LastIndex(lower, marker); i > 0 {
			main, ext = s[:i], strings.TrimSpace(s[i+len(marker):])
			break
		}
	}
	var b strings.Builder
	digits := 0
	for i, r := range strings.TrimSpace(main) {
		switch {
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			b.WriteRune(r)
			digits++
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/':
		default:
			return "", fmt.Errorf("%q is not a phone number", s)
		}
	}
	if digits < 3 || digits > 15 {
		return "", fmt.Errorf("%q is not a phone number (3 to 15 digits)", s)
	}
	if ext != "" {
		for _, r := range ext {
			if r < '0' || r > '9' {
				return "", fmt.Errorf("%q has an extension that is not digits", s)
			}
		}
		b.WriteString("x" + ext)
	}
	return b.String(), nil
}

// dateLayouts are the date forms HR exports use; ambiguous day/month orders are not guessed.
var dateLayouts = []string{time.DateOnly, "2006/01/02", "20060102"}

// dateTimeLayouts carry a time of day; those without an offset are read in the source's zone.
var dateTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05-0700", "2006-01-02T15:04:05", "2006-01-02 15:04:05"}

// ErrNotDate says a value is not a date in any accepted form.
var ErrNotDate = errors.New("not a date in the form YYYY-MM-DD (or an ISO 8601 date-time)")

// Date reads a calendar date. A date-time with an offset is first moved to loc, the source's time
// zone, so that "2026-03-01T23:30:00-08:00" from a London HR system is the 2nd of March.
func Date(s string, loc *time.Location) (*orgsyncv1.Date, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, layout := range dateLayouts {
		if d, err := time.Parse(layout, s); err == nil {
			return &orgsyncv1.Date{Year: int32(d.Year()), Month: int32(d.Month()), Day: int32(d.Day())}, nil
		}
	}
	if t, err := Time(s, loc); err == nil {
		t = t.In(loc)
		return &orgsyncv1.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}, nil
	}
	return nil, fmt.Errorf("%q is %w", s, ErrNotDate)
}

// Time reads an ISO 8601 date-time and returns it in UTC; one without an offset is taken as
// wall-clock time in loc.
func Time(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range dateTimeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 date-time such as 2026-03-01T09:00:00Z", s)
}

// Before says whether date a is before date b; nil dates are never before anything.
func Before(a, b *orgsyncv1.Date) bool {
	if a == nil || b == nil {
		return false
	}
	return a.Year*10000+a.Month*100+a.Day < b.Year*10000+b.Month*100+b.Day
}

// FieldError is one invalid field, named by JSON pointer (RFC 6901).
type FieldError struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
	// Limit, when set, is the length in characters the field exceeds: the error is a target's
	// length limit, not a malformed value.
	Limit int `json:"limit,omitempty"`
}

// InvalidError lists every invalid field of a request.
type InvalidError struct{ Fields []FieldError }

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Pointer + ": " + f.Detail
	}
	return "invalid payload: " + strings.Join(parts, "; ")
}

// SyntaxError says a body is not in its format at all (not JSON, not CSV): no field of it can
// be named. Together with InvalidError it is every way a source's input is refused.
type SyntaxError struct {
	// Format is the body's format as people call it: "JSON" or "CSV".
	Format string
	Err    error
}

func (e *SyntaxError) Error() string { return "body is not valid " + e.Format + ": " + e.Err.Error() }
func (e *SyntaxError) Unwrap() error { return e.Err }

// Errors collects field errors; the zero value is ready to use.
type Errors struct{ Fields []FieldError }

// Add records that the field at pointer is invalid.
func (e *Errors) Add(pointer, detail string) {
	e.Fields = append(e.Fields, FieldError{Pointer: pointer, Detail: detail})
}

// AddLimit records that the field at pointer is longer than limit characters.
func (e *Errors) AddLimit(pointer, detail string, limit int) {
	e.Fields = append(e.Fields, FieldError{Pointer: pointer, Detail: detail, Limit: limit})
}

// Err returns an *InvalidError when something was recorded, else nil.
func (e *Errors) Err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return &InvalidError{Fields: e.Fields}
}

// EscapePointer escapes one JSON pointer token (RFC 6901 §3).
func EscapePointer(token string) string {
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}

// ValidID reports why id cannot be a worker or unit identifier, or "" when it can.
func ValidID(id string) string {
	switch {
	case len(id) > 128:
		return "longer than 128 characters"
	case strings.ContainsFunc(id, unicode.IsSpace):
		return "must not contain spaces"
	case strings.ContainsFunc(id, unicode.IsControl):
		return "contains control characters"
	}
	return ""
}

// Worker normalises the name, e-mail and phone of w in place and records what is wrong at
// pointer (the worker's JSON pointer) with the given field names.
func Worker(w *orgsyncv1.Worker, errs *Errors, pointer string, names WorkerFieldNames) {
	if n := w.GetName(); n != nil {
		n.GivenName, n.FamilyName, n.MiddleName = Text(n.GivenName), Text(n.FamilyName), Text(n.MiddleName)
		n.PreferredName, n.DisplayName = Text(n.PreferredName), Text(n.DisplayName)
	}
	w.JobTitle, w.Department, w.Location = Text(w.JobTitle), Text(w.Department), Text(w.Location)
	w.Company, w.Division, w.CostCenter = Text(w.Company), Text(w.Division), Text(w.CostCenter)
	if email, err := Email(w.WorkEmail); err != nil {
		errs.Add(pointer+names.WorkEmail, err.Error())
	} else {
		w.WorkEmail = email
	}
	if phone, err := Phone(w.PhoneNumber); err != nil {
		errs.Add(pointer+names.PhoneNumber, err.Error())
	} else {
		w.PhoneNumber = phone
	}
	if Before(w.EndDate, w.StartDate) {
		errs.Add(pointer+names.EndDate, "is before the start date")
	}
}

// WorkerFieldNames are the pointer suffixes (e.g. "/workEmail") a source uses for the fields
// Worker checks.
type WorkerFieldNames struct{ WorkEmail, PhoneNumber, EndDate string }

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

// EmploymentType reads employee, contractor, intern or temporary (any case); "" is unspecified.
func EmploymentType(s string) (orgsyncv1.EmploymentType, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_UNSPECIFIED, nil
	}
	if t, ok := employmentTypes[s]; ok {
		return t, nil
	}
	return 0, fmt.Errorf("%q is not one of contractor, employee, intern, temporary", s)
}

// EmploymentStatus reads active, on_leave or terminated (any case); "" is active.
func EmploymentStatus(s string) (orgsyncv1.EmploymentStatus, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, nil
	}
	if t, ok := employmentStatuses[s]; ok {
		return t, nil
	}
	return 0, fmt.Errorf("%q is not one of active, on_leave, terminated", s)
}

// FieldLimit is the most characters (runes, not bytes) one worker field may have, because a
// directory that orgsync writes it to refuses longer values.
type FieldLimit struct {
	// Field is the worker field's canonical name, e.g. "workerId" or "givenName".
	Field string
	Max   int
	// Why names the directory attribute that sets the limit.
	Why string
	get func(*orgsyncv1.Worker) string
}

// Limits are the worker fields' lengths as Microsoft Graph's user resource and AD allow them:
// employeeId (Entra and AD) 16, displayName 256, givenName and surname 64, jobTitle 128,
// department 64, companyName 64, officeLocation 128, mail 256. A manager's worker id is a
// worker id and is held to the same limit. They are checked at ingest so that a value no
// directory accepts is refused where the sender can still fix it.
var Limits = []FieldLimit{
	{Field: "workerId", Max: 16, Why: "employeeId in Entra ID and AD", get: func(w *orgsyncv1.Worker) string { return w.GetWorkerId() }},
	{Field: "managerWorkerId", Max: 16, Why: "a worker id, employeeId in Entra ID and AD", get: func(w *orgsyncv1.Worker) string { return w.GetManagerWorkerId() }},
	{Field: "displayName", Max: 256, Why: "displayName in Entra ID", get: func(w *orgsyncv1.Worker) string { return w.GetName().GetDisplayName() }},
	{Field: "givenName", Max: 64, Why: "givenName in Entra ID and AD", get: func(w *orgsyncv1.Worker) string { return w.GetName().GetGivenName() }},
	{Field: "preferredName", Max: 64, Why: "used as givenName in Entra ID and AD", get: func(w *orgsyncv1.Worker) string { return w.GetName().GetPreferredName() }},
	{Field: "middleName", Max: 64, Why: "middleName in AD", get: func(w *orgsyncv1.Worker) string { return w.GetName().GetMiddleName() }},
	{Field: "familyName", Max: 64, Why: "surname in Entra ID, sn in AD", get: func(w *orgsyncv1.Worker) string { return w.GetName().GetFamilyName() }},
	{Field: "jobTitle", Max: 128, Why: "jobTitle in Entra ID", get: func(w *orgsyncv1.Worker) string { return w.GetJobTitle() }},
	{Field: "department", Max: 64, Why: "department in Entra ID", get: func(w *orgsyncv1.Worker) string { return w.GetDepartment() }},
	{Field: "company", Max: 64, Why: "companyName in Entra ID", get: func(w *orgsyncv1.Worker) string { return w.GetCompany() }},
	{Field: "location", Max: 128, Why: "officeLocation in Entra ID", get: func(w *orgsyncv1.Worker) string { return w.GetLocation() }},
	{Field: "workEmail", Max: 256, Why: "mail in Entra ID", get: func(w *orgsyncv1.Worker) string { return w.GetWorkEmail() }},
}

// CheckLengths records every field of w longer than its limit (see Limits), at the pointer
// pointerOf gives for the field's canonical name. The detail names the length, the limit and
// the directory attribute, never the value (it may be a name).
func CheckLengths(w *orgsyncv1.Worker, errs *Errors, pointerOf func(field string) string) {
	for _, limit := range Limits {
		if n := utf8.RuneCountInString(limit.get(w)); n > limit.Max {
			errs.AddLimit(pointerOf(limit.Field), fmt.Sprintf("is %d characters; at most %d are allowed (%s)", n, limit.Max, limit.Why), limit.Max)
		}
	}
}
