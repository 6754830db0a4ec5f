package bamboohr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
)

// DefaultFields are the fields a Client asks BambooHR for unless configured otherwise: those
// orgsync maps to a worker (see Parse).
var DefaultFields = []string{
	"firstName", "lastName", "middleName", "preferredName", "displayName", "workEmail", "jobTitle",
	"department", "division", "location", "supervisorEId", "workPhone", "hireDate", "terminationDate",
	"status", "employeeNumber",
}

// maxRecordBytes bounds an employee record read from the API.
const maxRecordBytes = 1 << 20

// Client reads employees through BambooHR's API: GET {base}/employees/{id}?fields=…, where base
// is https://api.bamboohr.com/api/gateway.php/{companyDomain}/v1, with HTTP basic auth of the API
// key as user name and "x" as password. It is safe for concurrent use.
type Client struct {
	base   string
	apiKey string
	fields []string
	loc    *time.Location
	http   *http.Client
}

var _ notify.Client = (*Client)(nil)

// NewClient returns a Client; fields default to DefaultFields, loc to UTC, httpClient to one
// with a 30s timeout.
func NewClient(baseURL, apiKey string, fields []string, loc *time.Location, httpClient *http.Client) *Client {
	if len(fields) == 0 {
		fields = DefaultFields
	}
	if loc == nil {
		loc = time.UTC
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), apiKey: apiKey, fields: fields, loc: loc, http: httpClient}
}

// Fetch reads one employee and maps the record as a field-based webhook's entry is mapped.
func (c *Client) Fetch(ctx context.Context, employeeID string) (*orgsyncv1.HREvent, error) {
	u := c.base + "/employees/" + url.PathEscape(employeeID) + "?fields=" + url.QueryEscape(strings.Join(c.fields, ",")) + "&onlyCurrent=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("bamboohr API request: %w", err)
	}
	req.SetBasicAuth(c.apiKey, "x")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bamboohr API: %w", redact(err))
	}
	defer func() { _ = resp.Body.Close() }()
	if err := notify.ResponseError("bamboohr", resp); err != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxRecordBytes))
		return nil, err
	}
	var record map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxRecordBytes)).Decode(&record); err != nil {
		return nil, fmt.Errorf("bamboohr API answered a record that is not a JSON object: %w", err)
	}
	delete(record, "id")
	for name, value := range record {
		if string(value) == "null" { // a field the employee has no value of
			delete(record, name)
		}
	}
	entry, err := json.Marshal(map[string]any{"employees": []any{map[string]any{"id": employeeID, "action": "Updated", "fields": record}}})
	if err != nil {
		return nil, fmt.Errorf("bamboohr record: %w", err)
	}
	events, err := Parse(entry, c.loc)
	var invalid *normalize.InvalidError
	if errors.As(err, &invalid) {
		// Point into the API's record, not into the webhook-shaped entry it was read as.
		for i := range invalid.Fields {
			invalid.Fields[i].Pointer = strings.TrimPrefix(invalid.Fields[i].Pointer, "/employees/0")
		}
	}
	if err != nil {
		return nil, err
	}
	return events[0], nil
}

// redact drops the URL from a transport error (it holds the employee id, not a secret, but
// keeps errors short); the cause is kept.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
