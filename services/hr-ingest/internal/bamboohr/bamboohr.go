// Package bamboohr verifies and reads BambooHR's field-based ("global") webhooks: a JSON body
// {"employees":[{"id":"123","action":"Updated","timestamp":"…","changedFields":[…],"fields":{…}}]}
// signed with the webhook's private key: X-BambooHR-Signature is the hex HMAC-SHA256 of the raw
// body followed by the X-BambooHR-Timestamp header value.
//
// Field names are BambooHR's English names ("First Name", "Work Email", "Reporting to") or the
// aliases an admin configured ("firstName"); both are matched ignoring case, spaces and
// punctuation. A value may be a plain string or {"value": "…"} (permissioned webhooks). Fields
// orgsync has no place for are kept as custom attributes.
package bamboohr

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
)

// Header names BambooHR signs with.
const (
	HeaderSignature = "X-BambooHR-Signature"
	HeaderTimestamp = "X-BambooHR-Timestamp"
)

// Verification errors; none carries a key or a signature.
var (
	ErrMissingHeader  = errors.New("missing " + HeaderSignature + " or " + HeaderTimestamp)
	ErrBadTimestamp   = errors.New(HeaderTimestamp + " is neither Unix seconds nor an ISO 8601 date-time")
	ErrStaleTimestamp = errors.New(HeaderTimestamp + " is outside the tolerance")
	ErrNoMatch        = errors.New(HeaderSignature + " does not match")
)

// Verifier checks BambooHR signatures against any of several private keys (several during a
// rotation). It is safe for concurrent use.
type Verifier struct {
	keys      [][]byte
	tolerance time.Duration
	now       func() time.Time
}

// NewVerifier returns a Verifier; now defaults to time.Now.
func NewVerifier(keys [][]byte, tolerance time.Duration, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{keys: keys, tolerance: tolerance, now: now}
}

// Verify checks the headers against body and returns the signed timestamp.
func (v *Verifier) Verify(header http.Header, body []byte) (time.Time, error) {
	signature, rawTimestamp := strings.TrimSpace(header.Get(HeaderSignature)), strings.TrimSpace(header.Get(HeaderTimestamp))
	if signature == "" || rawTimestamp == "" {
		return time.Time{}, ErrMissingHeader
	}
	timestamp, err := parseTimestamp(rawTimestamp)
	if err != nil {
		return time.Time{}, ErrBadTimestamp
	}
	if skew := v.now().Sub(timestamp); skew > v.tolerance || skew < -v.tolerance {
		return time.Time{}, fmt.Errorf("%w of %v", ErrStaleTimestamp, v.tolerance)
	}
	got, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(signature), "sha256="))
	if err != nil {
		return time.Time{}, ErrNoMatch
	}
	for _, key := range v.keys {
		if hmac.Equal(got, sign(key, body, rawTimestamp)) {
			return timestamp, nil
		}
	}
	return time.Time{}, ErrNoMatch
}

// Sign returns the X-BambooHR-Signature value for body sent at timestamp, for tests and senders.
func Sign(key, body []byte, timestamp string) string {
	return hex.EncodeToString(sign(key, body, timestamp))
}

func sign(key, body []byte, timestamp string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	mac.Write([]byte(timestamp))
	return mac.Sum(nil)
}

func parseTimestamp(s string) (time.Time, error) {
	if seconds, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(seconds, 0), nil
	}
	return normalize.Time(s, time.UTC)
}

type payload struct {
	Employees []json.RawMessage `json:"employees"`
	// Type is set by event-based webhooks, which carry ids but no field values.
	Type string `json:"type"`
}

type employee struct {
	ID            json.RawMessage            `json:"id"`
	Action        string                     `json:"action"`
	Timestamp     string                     `json:"timestamp"`
	ChangedFields []string                   `json:"changedFields"`
	Fields        map[string]json.RawMessage `json:"fields"`
}

// Parse reads the employees of a webhook into worker events, dates read in loc. The events have
// no ids: BambooHR sends no delivery id, and the ingest pipeline names them.
// Every invalid field is reported at once (*normalize.InvalidError) and nothing is returned then.
func Parse(body []byte, loc *time.Location) ([]*orgsyncv1.HREvent, error) {
	var p payload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return nil, &normalize.SyntaxError{Format: "JSON", Err: err}
	}
	if dec.More() {
		return nil, &normalize.SyntaxError{Format: "JSON", Err: errors.New("more than one JSON value")}
	}
	errs := &normalize.Errors{}
	switch {
	case len(p.Employees) == 0 && p.Type != "":
		errs.Add("/type", fmt.Sprintf("%q is an event-based webhook, which carries no field values: configure the BambooHR webhook as field-based, posting the fields orgsync maps", p.Type))
	case len(p.Employees) == 0:
		errs.Add("/employees", "required: at least one employee")
	}
	events := make([]*orgsyncv1.HREvent, 0, len(p.Employees))
	for i, raw := range p.Employees {
		at := "/employees/" + strconv.Itoa(i)
		if event := parseEmployee(errs, at, raw, loc); event != nil {
			events = append(events, event)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return events, nil
}

// key folds a field name so that "Reporting to", "reportingTo" and "reporting_to" match.
func key(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '#' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// target says where a BambooHR field goes in a Worker.
type target int

const (
	givenName target = iota + 1
	familyName
	middleName
	preferredName
	displayName
	workEmail
	jobTitle
	department
	division
	location
	manager
	workPhone
	hireDate
	startDate
	endDate
	status
	employmentStatus
	orgUnit
	costCenter
	company
	employeeNumber
)

var targets = map[string]target{
	"firstname": givenName, "lastname": familyName, "middlename": middleName, "preferredname": preferredName,
	"displayname": displayName, "fullname": displayName,
	"workemail": workEmail, "jobtitle": jobTitle, "department": department, "division": division,
	"location": location, "reportingto": manager, "supervisorid": manager, "supervisoreid": manager,
	"workphone": workPhone, "mobilephone": workPhone,
	"hiredate": hireDate, "originalhiredate": hireDate, "startdate": startDate,
	"terminationdate": endDate, "enddate": endDate,
	"status": status, "employmentstatus": employmentStatus,
	"orgunit": orgUnit, "orgunitid": orgUnit, "costcenter": costCenter, "company": company,
	"employee#": employeeNumber, "employeenumber": employeeNumber,
}

func parseEmployee(errs *normalize.Errors, at string, raw json.RawMessage, loc *time.Location) *orgsyncv1.HREvent {
	var e employee
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&e); err != nil {
		errs.Add(at, "must be an employee object with id, action, timestamp, changedFields and fields")
		return nil
	}
	id := scalarText(e.ID)
	if id == "" || id == "null" {
		errs.Add(at+"/id", "required")
	} else if why := normalize.ValidID(id); why != "" {
		errs.Add(at+"/id", why)
	}
	event := &orgsyncv1.HREvent{}
	if e.Timestamp != "" {
		if ts, err := normalize.Time(e.Timestamp, loc); err != nil {
			errs.Add(at+"/timestamp", err.Error())
		} else {
			event.OccurredAt = timestamppb.New(ts)
		}
	}
	w := &orgsyncv1.Worker{WorkerId: id, Name: &orgsyncv1.PersonName{}, EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE}
	attrs := map[string]string{}
	action := strings.ToLower(e.Action)
	switch action {
	case "", "created", "updated":
	case "deleted":
		w.EmploymentStatus = orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED
	default:
		errs.Add(at+"/action", fmt.Sprintf("%q is not one of Created, Updated, Deleted", e.Action))
	}
	pointers := map[string]string{} // worker field → pointer of the BambooHR field it came from
	names := make([]string, 0, len(e.Fields))
	for name := range e.Fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fieldAt := at + "/fields/" + normalize.EscapePointer(name)
		value, ok := fieldValue(e.Fields[name])
		if !ok {
			errs.Add(fieldAt, `must be a string, a number, null or {"value": …}`)
			continue
		}
		date := func() *orgsyncv1.Date {
			d, err := normalize.Date(value, loc)
			if err != nil {
				errs.Add(fieldAt, err.Error())
			}
			return d
		}
		if field, ok := limitedFields[targets[key(name)]]; ok {
			pointers[field] = fieldAt
		}
		switch targets[key(name)] {
		case givenName:
			w.Name.GivenName = value
		case familyName:
			w.Name.FamilyName = value
		case middleName:
			w.Name.MiddleName = value
		case preferredName:
			w.Name.PreferredName = value
		case displayName:
			w.Name.DisplayName = value
		case workEmail:
			w.WorkEmail = value
		case jobTitle:
			w.JobTitle = value
		case department:
			w.Department = value
		case division:
			w.Division = value
		case location:
			w.Location = value
		case manager:
			if why := normalize.ValidID(value); why != "" {
				errs.Add(fieldAt, why)
			}
			w.ManagerWorkerId = value
		case workPhone:
			if w.PhoneNumber == "" || key(name) == "workphone" {
				w.PhoneNumber = value
			}
		case hireDate:
			w.HireDate = date()
		case startDate:
			w.StartDate = date()
		case endDate:
			w.EndDate = date()
		case status:
			switch strings.ToLower(value) {
			case "", "active":
			case "inactive", "terminated":
				w.EmploymentStatus = orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED
			default:
				errs.Add(fieldAt, fmt.Sprintf("%q is not Active or Inactive", value))
			}
		case employmentStatus:
			// BambooHR's "Employment Status" is the contract kind: Full-Time, Contractor, Intern…
			switch lower := strings.ToLower(value); {
			case strings.Contains(lower, "contract"):
				w.EmploymentType = orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_CONTRACTOR
			case strings.Contains(lower, "intern"):
				w.EmploymentType = orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_INTERN
			case strings.Contains(lower, "temp"):
				w.EmploymentType = orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_TEMPORARY
			case strings.Contains(lower, "time") || strings.Contains(lower, "employee"):
				w.EmploymentType = orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_EMPLOYEE
			case lower == "terminated":
				w.EmploymentStatus = orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED
			}
			attrs[name] = value
		case orgUnit:
			if why := normalize.ValidID(value); why != "" {
				errs.Add(fieldAt, why)
			}
			w.OrgUnitId = value
		case costCenter:
			w.CostCenter = value
		case company:
			w.Company = value
		case employeeNumber:
			if value != id {
				attrs[name] = value
			}
		default:
			attrs[name] = value
		}
	}
	if len(e.ChangedFields) > 0 {
		attrs["bamboohr.changedFields"] = strings.Join(e.ChangedFields, ",")
	}
	if action != "deleted" {
		if w.Name.GivenName == "" && w.Name.PreferredName == "" {
			errs.Add(at+"/fields/First Name", "required (post First Name with the webhook)")
		}
		if w.Name.FamilyName == "" {
			errs.Add(at+"/fields/Last Name", "required (post Last Name with the webhook)")
		}
	}
	if w.ManagerWorkerId != "" && w.ManagerWorkerId == w.WorkerId {
		errs.Add(at+"/fields/Reporting to", "a worker cannot be their own manager")
	}
	normalize.Worker(w, errs, at, normalize.WorkerFieldNames{WorkEmail: "/fields/Work Email", PhoneNumber: "/fields/Work Phone", EndDate: "/fields/Termination Date"})
	normalize.CheckLengths(w, errs, func(field string) string {
		if pointer, ok := pointers[field]; ok {
			return pointer
		}
		return at + "/id"
	})
	if len(attrs) > 0 {
		w.CustomAttributes = attrs
	}
	event.Payload = &orgsyncv1.HREvent_Worker{Worker: w}
	return event
}

// limitedFields names, by canonical worker field, the targets whose length is limited (see
// normalize.Limits), so that a too-long value is reported at the BambooHR field it came from.
var limitedFields = map[target]string{
	givenName: "givenName", familyName: "familyName", middleName: "middleName", preferredName: "preferredName",
	displayName: "displayName", workEmail: "workEmail", jobTitle: "jobTitle", department: "department",
	location: "location", manager: "managerWorkerId", company: "company",
}

// fieldValue reads a field as a string: "x", 42, null, or {"value": "x"}.
func fieldValue(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return strings.TrimSpace(s), true
	case '{':
		var wrapped struct {
			Value json.RawMessage `json:"value"`
		}
		if json.Unmarshal(raw, &wrapped) != nil || len(wrapped.Value) == 0 || wrapped.Value[0] == '{' {
			return "", false
		}
		return fieldValue(wrapped.Value)
	case '[':
		return "", false
	default:
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return n.String(), true
		}
		var b bool
		if json.Unmarshal(raw, &b) == nil {
			return strconv.FormatBool(b), true
		}
		return "", false
	}
}

func scalarText(raw json.RawMessage) string {
	s, _ := fieldValue(raw)
	return s
}
