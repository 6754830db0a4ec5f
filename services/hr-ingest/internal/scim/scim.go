// Package scim reads SCIM 2.0 bulk requests (RFC 7644 §3.7) in the shape Microsoft Entra
// API-driven inbound provisioning accepts at /bulkUpload: up to 50 POST /Users operations, each a
// core User (urn:ietf:params:scim:schemas:core:2.0:User) with the enterprise extension
// (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User) and any custom extension schema.
//
// Mapping: externalId is the worker id; employeeNumber, department, costCenter, organization
// (company), division and manager.value (the manager's externalId) come from the enterprise
// extension; title, name, emails, phoneNumbers, addresses and userType from the core schema;
// hireDate, startDate, endDate and orgUnitId from any extension schema; everything else is kept as
// a custom attribute. "active": false means the worker leaves. An operation that omits "active" is
// not a leave: Entra's own service has been seen to disable accounts then, orgsync does not.
//
// meta.lastModified, when the sender gives it, is when the event occurred (HREvent.occurred_at);
// without it the event has no occurrence time of its own and org-model uses the time hr-ingest
// received it — none is invented here.
//
// Attribute names are matched case-insensitively, as RFC 7643 §2.1 requires.
package scim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
)

// Schema URNs.
const (
	BulkRequestSchema  = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	BulkResponseSchema = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	ErrorSchema        = "urn:ietf:params:scim:api:messages:2.0:Error"
	UserSchema         = "urn:ietf:params:scim:schemas:core:2.0:User"
	EnterpriseSchema   = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	// MaxOperations is the most operations Entra's bulkUpload accepts in one request.
	MaxOperations = 50
)

// Operation is one accepted bulk operation and the worker event it carries.
type Operation struct {
	Method string
	BulkID string
	// Event is the worker, without an id: SCIM sends no delivery id, and the ingest pipeline
	// names the events.
	Event *orgsyncv1.HREvent
}

// Parse reads a bulk request. Dates without a zone are read in loc. Every invalid field of every
// operation is reported at once (*normalize.InvalidError); nothing is returned then.
func Parse(body []byte, loc *time.Location) ([]Operation, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	errs := &normalize.Errors{}
	root := object(errs, "", body)
	if root == nil {
		return nil, errs.Err()
	}
	if !hasSchema(root.take("schemas"), BulkRequestSchema) {
		errs.Add("/schemas", "must contain "+BulkRequestSchema)
	}
	root.take("failOnErrors") // every operation is validated before any is published
	opsField, ok := root.entries["operations"]
	delete(root.entries, "operations")
	var rawOps []json.RawMessage
	if !ok || json.Unmarshal(opsField.raw, &rawOps) != nil {
		errs.Add("/Operations", "required: an array of operations")
	} else if len(rawOps) == 0 || len(rawOps) > MaxOperations {
		errs.Add("/Operations", fmt.Sprintf("has %d operations; 1 to %d are allowed", len(rawOps), MaxOperations))
		rawOps = nil
	}
	for _, name := range root.names() {
		errs.Add("/"+normalize.EscapePointer(name), "unknown bulk request attribute")
	}
	ops := make([]Operation, 0, len(rawOps))
	bulkIDs := map[string]int{}
	for i, raw := range rawOps {
		at := "/Operations/" + strconv.Itoa(i)
		op, ok := parseOperation(errs, at, raw, loc)
		if !ok {
			continue
		}
		if op.BulkID != "" {
			if first, dup := bulkIDs[op.BulkID]; dup {
				errs.Add(at+"/bulkId", fmt.Sprintf("repeats the bulkId of operation %d", first))
			}
			bulkIDs[op.BulkID] = i
		}
		ops = append(ops, op)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return ops, nil
}

func checkJSON(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return &normalize.SyntaxError{Format: "JSON", Err: err}
	}
	if dec.More() {
		return &normalize.SyntaxError{Format: "JSON", Err: errors.New("more than one JSON value")}
	}
	return nil
}

func parseOperation(errs *normalize.Errors, at string, raw json.RawMessage, loc *time.Location) (Operation, bool) {
	op := object(errs, at, raw)
	if op == nil {
		return Operation{}, false
	}
	method := strings.ToUpper(op.str(errs, at, "method"))
	if method != "POST" {
		errs.Add(at+"/method", fmt.Sprintf("%q is not supported: only POST (create or update) is", method))
	}
	if path := op.str(errs, at, "path"); !strings.EqualFold(path, "/Users") {
		errs.Add(at+"/path", fmt.Sprintf("%q is not supported: only /Users is", path))
	}
	bulkID := op.str(errs, at, "bulkId")
	op.take("version")
	dataField, ok := op.entries["data"]
	delete(op.entries, "data")
	for _, name := range op.names() {
		errs.Add(at+"/"+normalize.EscapePointer(name), "unknown operation attribute")
	}
	if !ok {
		errs.Add(at+"/data", "required")
		return Operation{}, false
	}
	worker, lastModified := parseUser(errs, at+"/data", dataField.raw, loc)
	if worker == nil {
		return Operation{}, false
	}
	event := &orgsyncv1.HREvent{Payload: &orgsyncv1.HREvent_Worker{Worker: worker}}
	if !lastModified.IsZero() {
		event.OccurredAt = timestamppb.New(lastModified)
	}
	return Operation{Method: method, BulkID: bulkID, Event: event}, true
}

var userTypes = map[string]orgsyncv1.EmploymentType{
	"employee":   orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_EMPLOYEE,
	"contractor": orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_CONTRACTOR,
	"intern":     orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_INTERN,
	"temporary":  orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_TEMPORARY,
}

// parseUser reads a SCIM user into a worker, with meta.lastModified (when the sender gives it:
// the time HR says the record changed; zero otherwise).
func parseUser(errs *normalize.Errors, at string, raw json.RawMessage, loc *time.Location) (*orgsyncv1.Worker, time.Time) {
	user := object(errs, at, raw)
	if user == nil {
		return nil, time.Time{}
	}
	user.take("schemas")
	user.take("id") // the service provider's id, not HR's
	w := &orgsyncv1.Worker{Name: &orgsyncv1.PersonName{}}
	attrs := map[string]string{}
	var lastModified time.Time
	if meta := user.obj(errs, at, "meta"); meta != nil {
		if value := meta.str(errs, at+"/meta", "lastModified"); value != "" {
			t, err := normalize.Time(value, loc)
			if err != nil {
				errs.Add(at+"/meta/lastModified", err.Error())
			}
			lastModified = t
		}
		meta.keepRest(attrs, "meta.")
	}
	w.WorkerId = user.str(errs, at, "externalId")
	if w.WorkerId == "" {
		errs.Add(at+"/externalId", "required: the worker id")
	} else if why := normalize.ValidID(w.WorkerId); why != "" {
		errs.Add(at+"/externalId", why)
	}
	if name := user.obj(errs, at, "name"); name != nil {
		w.Name.GivenName = name.str(errs, at+"/name", "givenName")
		w.Name.FamilyName = name.str(errs, at+"/name", "familyName")
		w.Name.MiddleName = name.str(errs, at+"/name", "middleName")
		name.keepRest(attrs, "name.")
	}
	w.Name.DisplayName = user.str(errs, at, "displayName")
	w.Name.PreferredName = user.str(errs, at, "nickName")
	if w.Name.GivenName == "" && w.Name.PreferredName == "" {
		errs.Add(at+"/name/givenName", "required")
	}
	if w.Name.FamilyName == "" {
		errs.Add(at+"/name/familyName", "required")
	}
	w.JobTitle = user.str(errs, at, "title")
	if t := user.str(errs, at, "userType"); t != "" {
		if w.EmploymentType = userTypes[strings.ToLower(t)]; w.EmploymentType == orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_UNSPECIFIED {
			attrs["userType"] = t
		}
	}
	w.WorkEmail = user.multiValued(errs, at, "emails", attrs)
	w.PhoneNumber = user.multiValued(errs, at, "phoneNumbers", attrs)
	user.addresses(errs, at, w, attrs)

	w.EmploymentStatus = orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE
	if activeField, ok := user.entries["active"]; ok {
		delete(user.entries, "active")
		switch active, err := boolean(activeField.raw); {
		case err != nil:
			errs.Add(at+"/active", err.Error())
		case !active:
			w.EmploymentStatus = orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED
		}
	} else {
		// ACTIVE is only assumed: org-model keeps the status the worker had.
		w.EmploymentStatusOmitted = true
	}

	endDatePointer := at + "/endDate"
	for _, name := range user.names() {
		field := user.entries[strings.ToLower(name)]
		if !strings.HasPrefix(strings.ToLower(name), "urn:") {
			attrs[name] = scalarText(field.raw)
			continue
		}
		ext := object(errs, at+"/"+normalize.EscapePointer(name), field.raw)
		if ext == nil {
			continue
		}
		extAt := at + "/" + normalize.EscapePointer(name)
		if strings.EqualFold(name, EnterpriseSchema) {
			enterprise(errs, extAt, ext, w, attrs)
		}
		if pointer := extension(errs, extAt, ext, w, attrs, loc); pointer != "" {
			endDatePointer = pointer
		}
	}
	normalize.Worker(w, errs, at, normalize.WorkerFieldNames{WorkEmail: "/emails", PhoneNumber: "/phoneNumbers", EndDate: strings.TrimPrefix(endDatePointer, at)})
	enterpriseAt := at + "/" + normalize.EscapePointer(EnterpriseSchema)
	scimPointers := map[string]string{
		"workerId": at + "/externalId", "managerWorkerId": enterpriseAt + "/manager/value",
		"displayName": at + "/displayName", "givenName": at + "/name/givenName", "preferredName": at + "/nickName",
		"middleName": at + "/name/middleName", "familyName": at + "/name/familyName", "jobTitle": at + "/title",
		"department": enterpriseAt + "/department", "company": enterpriseAt + "/organization",
		"location": at + "/addresses", "workEmail": at + "/emails",
	}
	normalize.CheckLengths(w, errs, func(field string) string { return scimPointers[field] })
	if len(attrs) > 0 {
		w.CustomAttributes = attrs
	}
	return w, lastModified
}

func enterprise(errs *normalize.Errors, at string, ext *fields, w *orgsyncv1.Worker, attrs map[string]string) {
	if number := ext.str(errs, at, "employeeNumber"); number != "" && number != w.WorkerId {
		attrs["employeeNumber"] = number
	}
	w.Department = ext.str(errs, at, "department")
	w.CostCenter = ext.str(errs, at, "costCenter")
	w.Company = ext.str(errs, at, "organization")
	w.Division = ext.str(errs, at, "division")
	if manager := ext.obj(errs, at, "manager"); manager != nil {
		w.ManagerWorkerId = manager.str(errs, at+"/manager", "value")
		if why := normalize.ValidID(w.ManagerWorkerId); why != "" {
			errs.Add(at+"/manager/value", why)
		} else if w.ManagerWorkerId != "" && w.ManagerWorkerId == w.WorkerId {
			errs.Add(at+"/manager/value", "a worker cannot be their own manager")
		}
		manager.keepRest(attrs, "manager.")
	}
}

// extension reads the attributes orgsync knows from any extension schema and keeps the rest. It
// returns the pointer of the end date it read, if any.
func extension(errs *normalize.Errors, at string, ext *fields, w *orgsyncv1.Worker, attrs map[string]string, loc *time.Location) (endDatePointer string) {
	date := func(into **orgsyncv1.Date, names ...string) string {
		for _, name := range names {
			entry, ok := ext.entries[strings.ToLower(name)]
			if s := ext.str(errs, at, name); ok && s != "" {
				pointer := at + "/" + normalize.EscapePointer(entry.name)
				d, err := normalize.Date(s, loc)
				if err != nil {
					errs.Add(pointer, err.Error())
				}
				*into = d
				return pointer
			}
		}
		return ""
	}
	date(&w.HireDate, "hireDate")
	date(&w.StartDate, "startDate")
	endDatePointer = date(&w.EndDate, "endDate", "terminationDate", "leaveDate")
	if unit := ext.str(errs, at, "orgUnitId"); unit != "" {
		if why := normalize.ValidID(unit); why != "" {
			errs.Add(at+"/orgUnitId", why)
		} else {
			w.OrgUnitId = unit
		}
	}
	ext.keepRest(attrs, "")
	return endDatePointer
}

// fields holds a JSON object's members by lower-cased name, remembering each one's spelling.
type fields struct{ entries map[string]field }

type field struct {
	name string
	raw  json.RawMessage
}

func object(errs *normalize.Errors, at string, raw json.RawMessage) *fields {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		errs.Add(at, "must be a JSON object")
		return nil
	}
	f := &fields{entries: make(map[string]field, len(m))}
	for name, value := range m {
		f.entries[strings.ToLower(name)] = field{name: name, raw: value}
	}
	return f
}

func (f *fields) take(name string) json.RawMessage {
	e, ok := f.entries[strings.ToLower(name)]
	if !ok {
		return nil
	}
	delete(f.entries, strings.ToLower(name))
	return e.raw
}

// names lists the members not taken yet, sorted so that errors come in a stable order.
func (f *fields) names() []string {
	names := make([]string, 0, len(f.entries))
	for _, e := range f.entries {
		names = append(names, e.name)
	}
	sort.Strings(names)
	return names
}

func (f *fields) str(errs *normalize.Errors, at, name string) string {
	e, ok := f.entries[strings.ToLower(name)]
	if !ok {
		return ""
	}
	delete(f.entries, strings.ToLower(name))
	if string(e.raw) == "null" {
		return ""
	}
	var s string
	if err := json.Unmarshal(e.raw, &s); err != nil {
		errs.Add(at+"/"+normalize.EscapePointer(e.name), "must be a string")
		return ""
	}
	return strings.TrimSpace(s)
}

func (f *fields) obj(errs *normalize.Errors, at, name string) *fields {
	e, ok := f.entries[strings.ToLower(name)]
	if !ok || string(e.raw) == "null" {
		return nil
	}
	delete(f.entries, strings.ToLower(name))
	return object(errs, at+"/"+normalize.EscapePointer(e.name), e.raw)
}

func (f *fields) keepRest(attrs map[string]string, prefix string) {
	for _, name := range f.names() {
		attrs[prefix+name] = scalarText(f.entries[strings.ToLower(name)].raw)
	}
}

// multiValued picks the work (else primary, else first) value of a SCIM multi-valued attribute
// such as emails; the others are kept as custom attributes "<attribute>.<type>".
func (f *fields) multiValued(errs *normalize.Errors, at, name string, attrs map[string]string) string {
	e, ok := f.entries[strings.ToLower(name)]
	if !ok || string(e.raw) == "null" {
		return ""
	}
	delete(f.entries, strings.ToLower(name))
	var values []struct {
		Value   string `json:"value"`
		Type    string `json:"type"`
		Primary any    `json:"primary"`
	}
	if err := json.Unmarshal(e.raw, &values); err != nil {
		errs.Add(at+"/"+e.name, "must be an array of {value, type, primary}")
		return ""
	}
	chosen := -1
	for i, v := range values {
		if strings.EqualFold(v.Type, "work") {
			chosen = i
			break
		}
	}
	for i, v := range values {
		if chosen < 0 && (v.Primary == true || v.Primary == "true" || v.Primary == "True") {
			chosen = i
		}
	}
	if chosen < 0 && len(values) > 0 {
		chosen = 0
	}
	for i, v := range values {
		if i != chosen && v.Value != "" {
			key := e.name + "." + strings.ToLower(v.Type)
			if v.Type == "" {
				key = e.name + "." + strconv.Itoa(i)
			}
			attrs[key] = v.Value
		}
	}
	if chosen < 0 {
		return ""
	}
	return values[chosen].Value
}

// addresses takes the work (else primary, else first) address's locality as the location and
// keeps its other parts as "address.<part>".
func (f *fields) addresses(errs *normalize.Errors, at string, w *orgsyncv1.Worker, attrs map[string]string) {
	raw := f.take("addresses")
	if raw == nil || string(raw) == "null" {
		return
	}
	var addresses []map[string]any
	if err := json.Unmarshal(raw, &addresses); err != nil {
		errs.Add(at+"/addresses", "must be an array of address objects")
		return
	}
	chosen := -1
	for i, a := range addresses {
		if t, _ := a["type"].(string); strings.EqualFold(t, "work") && chosen < 0 {
			chosen = i
		}
	}
	if chosen < 0 && len(addresses) > 0 {
		chosen = 0
	}
	if chosen < 0 {
		return
	}
	for part, value := range addresses[chosen] {
		text, ok := value.(string)
		if !ok || part == "type" || part == "primary" {
			continue
		}
		if part == "locality" {
			w.Location = text
			continue
		}
		attrs["address."+part] = text
	}
}

func hasSchema(raw json.RawMessage, want string) bool {
	var schemas []string
	if json.Unmarshal(raw, &schemas) != nil {
		return false
	}
	for _, s := range schemas {
		if strings.EqualFold(s, want) {
			return true
		}
	}
	return false
}

// boolean reads a SCIM boolean; "True"/"False" strings, which PowerShell-generated payloads
// send, are accepted too.
func boolean(raw json.RawMessage) (bool, error) {
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return b, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if v, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(s))); err == nil {
			return v, nil
		}
	}
	return false, fmt.Errorf("%s is not a boolean", bytes.TrimSpace(raw))
}

func scalarText(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

// BulkResponse is the answer to an accepted bulk request (RFC 7644 §3.7.3).
type BulkResponse struct {
	Schemas    []string            `json:"schemas"`
	Operations []OperationResponse `json:"Operations"`
}

// OperationResponse is the result of one operation. Status is the HTTP status as a string.
type OperationResponse struct {
	Method   string `json:"method"`
	BulkID   string `json:"bulkId,omitempty"`
	Location string `json:"location,omitempty"`
	Status   string `json:"status"`
}
