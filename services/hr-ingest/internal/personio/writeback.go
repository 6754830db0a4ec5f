package personio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/writeback"
)

// Writer writes an account's attributes to the Personio person with PATCH {base}/v2/persons/{id}
// (scope personio:persons:write; 204 when stored): the mail to email (unique per person in
// Personio), the UPN to a custom attribute, {"custom_attributes":[{"id":…,"value":…}]}. It uses
// the Client's token. It is safe for concurrent use.
type Writer struct {
	client            *Client
	usernameAttribute string
}

var _ writeback.Writer = (*Writer)(nil)

// NewWriter returns a Writer over client; usernameAttribute is the id of the custom attribute
// the UPN is written to.
func NewWriter(client *Client, usernameAttribute string) *Writer {
	return &Writer{client: client, usernameAttribute: usernameAttribute}
}

type customAttribute struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// Write updates the person in one request.
func (w *Writer) Write(ctx context.Context, personID string, values writeback.Values) error {
	patch := map[string]any{}
	if values.Mail != "" {
		patch["email"] = values.Mail
	}
	if values.UPN != "" {
		patch["custom_attributes"] = []customAttribute{{ID: w.usernameAttribute, Value: values.UPN}}
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("personio update: %w", err)
	}
	err = w.client.do(ctx, http.MethodPatch, "/v2/persons/"+url.PathEscape(personID), body, nil)
	switch {
	case errors.Is(err, notify.ErrUnauthorized): // the token endpoint refused the credentials
		return fmt.Errorf("%w: %w", writeback.ErrUnauthorized, err)
	case errors.Is(err, notify.ErrNotFound):
		return fmt.Errorf("%w: %w", writeback.ErrRejected, err)
	}
	return err
}
