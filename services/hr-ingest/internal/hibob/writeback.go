package hibob

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/writeback"
)

// Writer writes an account's attributes to Bob with a service user (HTTP basic auth of its id
// and token). The work e-mail (root.email) is Bob's login address and is not written through
// the fields update: it has its own endpoint, PUT {base}/people/{id}/email with {"email": …}
// (Bob may send the employee an invitation to verify a changed address). The UPN goes to the
// configured field through PUT {base}/people/{id}, which updates only the fields sent (a field
// path a.b.c is sent nested, {"a":{"b":{"c":…}}}; root fields by their name alone) and answers
// 304 when nothing changed. It is safe for concurrent use.
type Writer struct {
	base          string
	serviceUserID string
	token         string
	usernamePath  []string
	http          *http.Client
}

var _ writeback.Writer = (*Writer)(nil)

// NewWriter returns a Writer; usernameField is a Bob field path such as
// work.custom.field_1690000000000 (or /work/custom/…); httpClient defaults to one with a 30s
// timeout.
func NewWriter(baseURL, serviceUserID, token, usernameField string, httpClient *http.Client) *Writer {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Writer{base: strings.TrimSuffix(baseURL, "/"), serviceUserID: serviceUserID, token: token,
		usernamePath: FieldPath(usernameField), http: httpClient}
}

// FieldPath splits a Bob field id (root.firstName, work.custom.field_1, /work/title) into the
// path its value has in a record and in an update: root's fields stand at the top.
func FieldPath(field string) []string {
	field = strings.Trim(strings.ReplaceAll(field, "/", "."), ".")
	path := strings.Split(field, ".")
	if len(path) > 1 && path[0] == "root" {
		path = path[1:]
	}
	return path
}

// Write sets the e-mail, then the username field.
func (w *Writer) Write(ctx context.Context, employeeID string, values writeback.Values) error {
	var errs []error
	if values.Mail != "" {
		if err := w.put(ctx, "/people/"+url.PathEscape(employeeID)+"/email", map[string]any{"email": values.Mail}); err != nil {
			return err
		}
	}
	if values.UPN != "" && len(w.usernamePath) > 0 {
		var body any = values.UPN
		for i := len(w.usernamePath) - 1; i >= 0; i-- {
			body = map[string]any{w.usernamePath[i]: body}
		}
		if err := w.put(ctx, "/people/"+url.PathEscape(employeeID), body); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (w *Writer) put(ctx context.Context, path string, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("hibob update: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, w.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("hibob update request: %w", err)
	}
	req.SetBasicAuth(w.serviceUserID, w.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := w.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return fmt.Errorf("hibob API: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxRecordBytes))
	return writeback.ResponseError("hibob API", resp)
}
