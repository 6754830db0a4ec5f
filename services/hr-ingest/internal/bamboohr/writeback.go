package bamboohr

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/writeback"
)

// WorkEmailField is BambooHR's field for the work e-mail.
const WorkEmailField = "workEmail"

// Writer writes an account's attributes to BambooHR's employee record: POST {base}/employees/{id}
// with a JSON object of field names and values (BambooHR's "Update Employee"; fields left out
// are unchanged), HTTP basic auth of the API key as user name and "x" as password. The mail goes
// to workEmail, the UPN to the configured field (a custom field). BambooHR throttles with 503
// and Retry-After. It is safe for concurrent use.
type Writer struct {
	base          string
	apiKey        string
	usernameField string
	http          *http.Client
}

var _ writeback.Writer = (*Writer)(nil)

// NewWriter returns a Writer; httpClient defaults to one with a 30s timeout.
func NewWriter(baseURL, apiKey, usernameField string, httpClient *http.Client) *Writer {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Writer{base: strings.TrimSuffix(baseURL, "/"), apiKey: apiKey, usernameField: usernameField, http: httpClient}
}

// Write updates the employee's fields in one request.
func (w *Writer) Write(ctx context.Context, employeeID string, values writeback.Values) error {
	fields := map[string]string{}
	if values.Mail != "" {
		fields[WorkEmailField] = values.Mail
	}
	if values.UPN != "" {
		fields[w.usernameField] = values.UPN
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("bamboohr update: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.base+"/employees/"+url.PathEscape(employeeID), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bamboohr update request: %w", err)
	}
	req.SetBasicAuth(w.apiKey, "x")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := w.http.Do(req)
	if err != nil {
		return fmt.Errorf("bamboohr API: %w", redact(err))
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxRecordBytes))
	return writeback.ResponseError("bamboohr API", resp)
}
