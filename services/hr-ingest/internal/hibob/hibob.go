// Package hibob verifies HiBob's v2 webhooks, reads them into notifications, and reads the
// notified employee through Bob's public API.
//
// A v2 webhook carries no field values: {"companyId":…,"type":"employee.updated",
// "triggeredBy":…,"triggeredAt":"…","version":"v2","data":{"employeeId":"…",…}}, signed in
// the Bob-Signature header: the base64 HMAC-SHA512 of the raw body with the webhook's secret.
package hibob

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
)

// HeaderSignature is the header HiBob signs webhooks in.
const HeaderSignature = "Bob-Signature"

// Verification errors; none carries a secret or a signature.
var (
	ErrMissingSignature = errors.New("missing " + HeaderSignature)
	ErrNoMatch          = errors.New(HeaderSignature + " does not match")
)

// Verifier checks Bob-Signature against any of several webhook secrets (several during a
// rotation). It is safe for concurrent use.
type Verifier struct {
	secrets [][]byte
}

// NewVerifier returns a Verifier for secrets.
func NewVerifier(secrets [][]byte) *Verifier { return &Verifier{secrets: secrets} }

// Verify checks header's signature of body.
func (v *Verifier) Verify(header http.Header, body []byte) error {
	signature := strings.TrimSpace(header.Get(HeaderSignature))
	if signature == "" {
		return ErrMissingSignature
	}
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return ErrNoMatch
	}
	for _, secret := range v.secrets {
		if hmac.Equal(got, sign(secret, body)) {
			return nil
		}
	}
	return ErrNoMatch
}

// Sign returns the Bob-Signature value of body, for tests and senders.
func Sign(secret, body []byte) string { return base64.StdEncoding.EncodeToString(sign(secret, body)) }

func sign(secret, body []byte) []byte {
	mac := hmac.New(sha512.New, secret)
	mac.Write(body)
	return mac.Sum(nil)
}

// Webhook event types orgsync acts on; employee.left and employee.deleted mean the employee
// leaves, the others that the record changed.
const (
	EventCreated = "employee.created"
	EventUpdated = "employee.updated"
	EventJoined  = "employee.joined"
	EventLeft    = "employee.left"
	EventDeleted = "employee.deleted"
)

// Webhook is one v2 webhook.
type Webhook struct {
	CompanyID   string
	Type        string
	TriggeredAt time.Time
	EmployeeID  string
}

type payload struct {
	CompanyID   json.RawMessage `json:"companyId"`
	Type        string          `json:"type"`
	TriggeredAt string          `json:"triggeredAt"`
	Version     string          `json:"version"`
	Data        struct {
		EmployeeID json.RawMessage `json:"employeeId"`
	} `json:"data"`
}

// ParseWebhook reads a v2 webhook; every invalid field is reported at once
// (*normalize.InvalidError), a body that is not one JSON object is a *normalize.SyntaxError.
func ParseWebhook(body []byte) (Webhook, error) {
	var p payload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return Webhook{}, &normalize.SyntaxError{Format: "JSON", Err: err}
	}
	if dec.More() {
		return Webhook{}, &normalize.SyntaxError{Format: "JSON", Err: errors.New("more than one JSON value")}
	}
	errs := &normalize.Errors{}
	w := Webhook{CompanyID: text(p.CompanyID), Type: p.Type, EmployeeID: text(p.Data.EmployeeID)}
	switch {
	case p.Type == "":
		errs.Add("/type", "required")
	case !strings.HasPrefix(p.Type, "employee."):
		errs.Add("/type", fmt.Sprintf("%q is not an employee event (employee.created, employee.updated, employee.left, …)", p.Type))
	}
	if p.Version != "" && p.Version != "v2" {
		errs.Add("/version", fmt.Sprintf("%q is not v2: create a v2 webhook in Bob", p.Version))
	}
	if w.EmployeeID == "" {
		errs.Add("/data/employeeId", "required")
	} else if why := normalize.ValidID(w.EmployeeID); why != "" {
		errs.Add("/data/employeeId", why)
	}
	if p.TriggeredAt != "" {
		if ts, err := normalize.Time(p.TriggeredAt, time.UTC); err != nil {
			errs.Add("/triggeredAt", err.Error())
		} else {
			w.TriggeredAt = ts
		}
	}
	if err := errs.Err(); err != nil {
		return Webhook{}, err
	}
	return w, nil
}

// Leaves says whether the webhook's type means the employee leaves.
func (w Webhook) Leaves() bool { return w.Type == EventLeft || w.Type == EventDeleted }

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

// DefaultFields are the field ids a Client asks Bob for unless configured otherwise.
var DefaultFields = []string{
	"root.id", "root.firstName", "root.surname", "root.displayName", "root.email",
	"work.title", "work.department", "work.site", "work.reportsTo", "work.startDate",
	"internal.status", "internal.terminationDate", "work.employeeIdInCompany",
}

const maxRecordBytes = 1 << 20

// Client reads employees through Bob's public API: POST {base}/people/{id} with a JSON body
// naming the fields, HTTP basic auth of the service user's id and token; base is
// https://api.hibob.com/v1. It is safe for concurrent use.
type Client struct {
	base          string
	serviceUserID string
	token         string
	fields        []string
	loc           *time.Location
	http          *http.Client
	// workerIDPath, when set, is the field the worker id is taken from (WithWorkerIDField).
	workerIDPath  []string
	workerIDField string
}

var _ notify.Client = (*Client)(nil)

// NewClient returns a Client; fields default to DefaultFields, loc to UTC, httpClient to one
// with a 30s timeout.
func NewClient(baseURL, serviceUserID, token string, fields []string, loc *time.Location, httpClient *http.Client) *Client {
	if len(fields) == 0 {
		fields = DefaultFields
	}
	if loc == nil {
		loc = time.UTC
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), serviceUserID: serviceUserID, token: token, fields: fields, loc: loc, http: httpClient}
}

// Employee is the part of Bob's employee record orgsync maps (machine format: list values are
// ids, humanReadable not asked for).
type Employee struct {
	ID          string `json:"id"`
	FirstName   string `json:"firstName"`
	Surname     string `json:"surname"`
	DisplayName string `json:"displayName"`
	Email       string `json:"email"`
	Work        struct {
		Title               string          `json:"title"`
		Department          string          `json:"department"`
		Site                string          `json:"site"`
		ReportsTo           json.RawMessage `json:"reportsTo"`
		StartDate           string          `json:"startDate"`
		EmployeeIDInCompany json.RawMessage `json:"employeeIdInCompany"`
	} `json:"work"`
	Internal struct {
		Status          string `json:"status"`
		TerminationDate string `json:"terminationDate"`
	} `json:"internal"`
}

// WithWorkerIDField returns a copy of c that takes each worker's id from field (a Bob field
// path such as work.employeeIdInCompany or work.custom.field_…) instead of Bob's own id, which is
// longer than the 16 characters Entra's and AD's employeeId hold; the manager's id is read from
// the manager's record the same way. Bob's id is kept as the custom attribute hibob.id. An
// employee or manager without a value in field is an invalid record naming the field.
func (c *Client) WithWorkerIDField(field string) *Client {
	copied := *c
	copied.workerIDPath = FieldPath(field)
	copied.workerIDField = field
	fieldID := strings.Join(append([]string{"root"}, copied.workerIDPath...), ".")
	if len(copied.workerIDPath) > 1 {
		fieldID = strings.Join(copied.workerIDPath, ".")
	}
	if !slices.Contains(copied.fields, fieldID) {
		copied.fields = append(slices.Clone(copied.fields), fieldID)
	}
	return &copied
}

// MapsIDs says whether the client's worker ids are not Bob's ids (WithWorkerIDField): an
// employee Bob no longer has cannot then be named by its worker id.
func (c *Client) MapsIDs() bool { return len(c.workerIDPath) > 0 }

// Fetch reads one employee (inactive ones too) and maps the record to a worker event.
func (c *Client) Fetch(ctx context.Context, employeeID string) (*orgsyncv1.HREvent, error) {
	raw, err := c.read(ctx, employeeID)
	if err != nil {
		return nil, err
	}
	var e Employee
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("hibob API answered a record that is not an employee object: %w", err)
	}
	if e.ID == "" {
		e.ID = employeeID
	}
	if !c.MapsIDs() {
		return Map(e, c.loc)
	}
	bobID := e.ID
	pointer := "/" + strings.Join(c.workerIDPath, "/")
	workerID, ok := fieldValue(raw, c.workerIDPath)
	if !ok {
		return nil, invalid(pointer, "required: the worker id is taken from this field (api.workerIdField "+c.workerIDField+")")
	}
	e.ID = workerID
	if manager := reportsTo(e.Work.ReportsTo); manager != "" {
		managerRecord, err := c.read(ctx, manager)
		if err != nil {
			return nil, fmt.Errorf("reading the manager's worker id: %w", err)
		}
		managerID, ok := fieldValue(managerRecord, c.workerIDPath)
		if !ok {
			return nil, invalid("/work/reportsTo", "the manager's record has no "+c.workerIDField+" (api.workerIdField)")
		}
		e.Work.ReportsTo, _ = json.Marshal(managerID)
	}
	event, err := Map(e, c.loc)
	var invalidErr *normalize.InvalidError
	if errors.As(err, &invalidErr) {
		for i := range invalidErr.Fields {
			if invalidErr.Fields[i].Pointer == "/id" {
				invalidErr.Fields[i].Pointer = pointer
			}
		}
	}
	if err != nil {
		return nil, err
	}
	w := event.GetWorker()
	if w.CustomAttributes == nil {
		w.CustomAttributes = map[string]string{}
	}
	w.CustomAttributes["hibob.id"] = bobID
	return event, nil
}

func invalid(pointer, why string) error {
	errs := &normalize.Errors{}
	errs.Add(pointer, why)
	return errs.Err()
}

// fieldValue finds path in a record (root fields at the top, others nested by category);
// Bob may answer a field as a value or as {"value": …}.
func fieldValue(record []byte, path []string) (string, bool) {
	var node any
	if json.Unmarshal(record, &node) != nil {
		return "", false
	}
	for _, step := range path {
		m, ok := node.(map[string]any)
		if !ok {
			return "", false
		}
		node = m[step]
	}
	if m, ok := node.(map[string]any); ok {
		node = m["value"]
	}
	switch v := node.(type) {
	case string:
		v = strings.TrimSpace(v)
		return v, v != ""
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}

// read asks Bob for one employee's fields and returns the record as Bob answered it.
func (c *Client) read(ctx context.Context, employeeID string) ([]byte, error) {
	body, err := json.Marshal(map[string]any{"fields": c.fields})
	if err != nil {
		return nil, fmt.Errorf("hibob request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/people/"+url.PathEscape(employeeID), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("hibob API request: %w", err)
	}
	req.SetBasicAuth(c.serviceUserID, c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return nil, fmt.Errorf("hibob API: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if err := notify.ResponseError("hibob", resp); err != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxRecordBytes))
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRecordBytes))
	if err != nil {
		return nil, fmt.Errorf("hibob API: %w", err)
	}
	return raw, nil
}

// Map turns an employee record into a worker event; every invalid field is reported at once
// (*normalize.InvalidError), pointing into Bob's record.
func Map(e Employee, loc *time.Location) (*orgsyncv1.HREvent, error) {
	errs := &normalize.Errors{}
	w := &orgsyncv1.Worker{
		WorkerId:  e.ID,
		Name:      &orgsyncv1.PersonName{GivenName: strings.TrimSpace(e.FirstName), FamilyName: strings.TrimSpace(e.Surname), DisplayName: strings.TrimSpace(e.DisplayName)},
		WorkEmail: e.Email, JobTitle: e.Work.Title, Department: e.Work.Department, Location: e.Work.Site,
		EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
	}
	if why := normalize.ValidID(e.ID); why != "" {
		errs.Add("/id", why)
	}
	if manager := reportsTo(e.Work.ReportsTo); manager != "" {
		if why := normalize.ValidID(manager); why != "" {
			errs.Add("/work/reportsTo", why)
		}
		w.ManagerWorkerId = manager
	}
	switch strings.ToLower(e.Internal.Status) {
	case "", "active":
	case "inactive", "terminated":
		w.EmploymentStatus = orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED
	default:
		errs.Add("/internal/status", fmt.Sprintf("%q is not Active or Inactive", e.Internal.Status))
	}
	date := func(value, pointer string) *orgsyncv1.Date {
		if value == "" {
			return nil
		}
		d, err := normalize.Date(value, loc)
		if err != nil {
			errs.Add(pointer, err.Error())
		}
		return d
	}
	w.StartDate = date(e.Work.StartDate, "/work/startDate")
	w.EndDate = date(e.Internal.TerminationDate, "/internal/terminationDate")
	if w.EmploymentStatus != orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED {
		if w.Name.GivenName == "" {
			errs.Add("/firstName", "required (grant the service user the Basic info category)")
		}
		if w.Name.FamilyName == "" {
			errs.Add("/surname", "required (grant the service user the Basic info category)")
		}
	}
	if number := text(e.Work.EmployeeIDInCompany); number != "" && number != e.ID {
		w.CustomAttributes = map[string]string{"hibob.employeeIdInCompany": number}
	}
	normalize.Worker(w, errs, "", normalize.WorkerFieldNames{WorkEmail: "/email", EndDate: "/internal/terminationDate"})
	normalize.CheckLengths(w, errs, func(field string) string {
		if pointer, ok := bobPointers[field]; ok {
			return pointer
		}
		return "/" + field
	})
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &orgsyncv1.HREvent{Payload: &orgsyncv1.HREvent_Worker{Worker: w}}, nil
}

// bobPointers names, by worker field, where in Bob's record a too-long value came from.
var bobPointers = map[string]string{
	"workerId": "/id", "givenName": "/firstName", "familyName": "/surname", "displayName": "/displayName",
	"workEmail": "/email", "jobTitle": "/work/title", "department": "/work/department", "location": "/work/site",
	"managerWorkerId": "/work/reportsTo",
}

// reportsTo reads work.reportsTo: the manager's id, either a string or {"id": …}.
func reportsTo(raw json.RawMessage) string {
	if s := text(raw); s != "" {
		return s
	}
	var ref struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(raw, &ref) == nil {
		return text(ref.ID)
	}
	return ""
}
