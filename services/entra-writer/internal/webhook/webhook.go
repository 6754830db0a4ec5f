// Package webhook delivers the credentials entra-writer makes — a new hire's first-day Temporary
// Access Pass, an approved helpdesk request's pass or password — to a ticketing system as a
// webhook signed like Standard Webhooks (https://www.standardwebhooks.com): a JSON body with the
// headers webhook-id, webhook-timestamp and webhook-signature (v1, HMAC-SHA256 of
// "id.timestamp.body" with the shared secret). The credential is in the body only: never in a
// header, a log, an error or a span.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/entra-writer/internal/writer"
)

// The payload types: EventType for a first-day pass, HelpdeskEventType for a helpdesk credential.
const (
	EventType         = "orgsync.first_day_credential.created"
	HelpdeskEventType = "orgsync.helpdesk_credential.created"
)

// Op names the delivery in directory errors.
const Op = "credential.deliver.webhook"

// Sender posts credentials to one endpoint. It is safe for concurrent use.
type Sender struct {
	name   string
	url    string
	signer *standardwebhooks.Webhook
	client *http.Client
	now    func() time.Time
}

var _ writer.CredentialWebhook = (*Sender)(nil)

// New returns a Sender to endpointURL, named name in results and audit records, signing with
// secret (Standard Webhooks' "whsec_" followed by the base64 key, or the base64 key alone).
func New(name, endpointURL, secret string) (*Sender, error) {
	signer, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		// The library's message does not hold the secret, only that it is not base64 or empty.
		return nil, fmt.Errorf("webhook %s: the signing secret: %w", name, err)
	}
	return &Sender{name: name, url: endpointURL, signer: signer, now: time.Now,
		client: &http.Client{Timeout: 30 * time.Second, Transport: otelhttp.NewTransport(http.DefaultTransport)}}, nil
}

// Name implements writer.CredentialWebhook.
func (s *Sender) Name() string { return s.name }

// payload is the body: Standard Webhooks' recommended {type, timestamp, data}.
type payload struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

type data struct {
	WorkerID            string `json:"worker_id"`
	UserPrincipalName   string `json:"user_principal_name"`
	ManagerWorkerID     string `json:"manager_worker_id,omitempty"`
	FirstDayAt          string `json:"first_day_at"`
	TemporaryAccessPass string `json:"temporary_access_pass"`
	ValidFrom           string `json:"valid_from"`
	ExpiresAt           string `json:"expires_at"`
	IsUsableOnce        bool   `json:"is_usable_once"`
}

// helpdeskData is a helpdesk credential's data: the pass's fields for a Temporary Access Pass,
// the password's for a reset.
type helpdeskData struct {
	WorkerID            string `json:"worker_id"`
	UserPrincipalName   string `json:"user_principal_name"`
	ManagerWorkerID     string `json:"manager_worker_id,omitempty"`
	AccessRequestID     string `json:"access_request_id"`
	Kind                string `json:"kind"`
	Reason              string `json:"reason,omitempty"`
	TemporaryAccessPass string `json:"temporary_access_pass,omitempty"`
	ValidFrom           string `json:"valid_from,omitempty"`
	ExpiresAt           string `json:"expires_at,omitempty"`
	IsUsableOnce        *bool  `json:"is_usable_once,omitempty"`
	Password            string `json:"password,omitempty"`
	// ForceChangePasswordNextSignIn is always true with a password: the worker must change it.
	ForceChangePasswordNextSignIn *bool `json:"force_change_password_next_sign_in,omitempty"`
}

// The helpdesk credential kinds, as the payload names them.
const (
	KindTemporaryAccessPass = "temporary_access_pass"
	KindPasswordReset       = "password_reset"
)

// DeliverFirstDayPass implements writer.CredentialWebhook: one signed POST of type EventType
// (see post). The webhook-id is the pass's own id.
func (s *Sender) DeliverFirstDayPass(ctx context.Context, pass writer.FirstDayPass) error {
	return s.post(ctx, EventType, "tap_"+pass.Pass.ID, data{
		WorkerID: pass.WorkerID, UserPrincipalName: pass.UserPrincipalName, ManagerWorkerID: pass.ManagerWorkerID,
		FirstDayAt: pass.FirstDayAt.UTC().Format(time.RFC3339), TemporaryAccessPass: pass.Pass.Secret.Reveal(),
		ValidFrom: pass.Pass.Start.UTC().Format(time.RFC3339), ExpiresAt: pass.Pass.Expires().UTC().Format(time.RFC3339),
		IsUsableOnce: pass.Pass.IsUsableOnce,
	})
}

// DeliverHelpdeskCredential implements writer.CredentialWebhook: one signed POST of type
// HelpdeskEventType (see post) naming the approved request, its kind and reason, and the pass or
// the password. The webhook-id is the credential's DeliveryID.
func (s *Sender) DeliverHelpdeskCredential(ctx context.Context, credential writer.HelpdeskCredential) error {
	if credential.DeliveryID == "" {
		return &directory.Error{Op: Op, Class: directory.ClassInvalid, Message: "a helpdesk credential without a delivery id"}
	}
	yes := true
	body := helpdeskData{WorkerID: credential.WorkerID, UserPrincipalName: credential.UserPrincipalName, ManagerWorkerID: credential.ManagerWorkerID,
		AccessRequestID: credential.AccessRequestID, Reason: credential.Reason}
	switch credential.Kind {
	case orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_TEMPORARY_ACCESS_PASS:
		pass := credential.Pass
		once := pass.IsUsableOnce
		body.Kind, body.TemporaryAccessPass, body.IsUsableOnce = KindTemporaryAccessPass, pass.Secret.Reveal(), &once
		body.ValidFrom, body.ExpiresAt = pass.Start.UTC().Format(time.RFC3339), pass.Expires().UTC().Format(time.RFC3339)
	case orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_PASSWORD_RESET:
		body.Kind, body.Password, body.ForceChangePasswordNextSignIn = KindPasswordReset, credential.Password.Reveal(), &yes
	default:
		return &directory.Error{Op: Op, Class: directory.ClassInvalid, Message: fmt.Sprintf("helpdesk credential kind %s has no payload", credential.Kind)}
	}
	return s.post(ctx, HelpdeskEventType, credential.DeliveryID, body)
}

// post sends one signed POST; a 2xx answer is a delivery. messageID is the credential's own id,
// so a receiver that deduplicates by it takes a retried request once and a new credential (after
// a failed delivery) as new. A 4xx other than 408 and 429 (a refused signature included) is a
// refusal retrying cannot fix (class invalid); anything else may pass later.
func (s *Sender) post(ctx context.Context, eventType, messageID string, eventData any) error {
	now := s.now()
	body, err := json.Marshal(payload{Type: eventType, Timestamp: now.UTC().Format(time.RFC3339), Data: eventData})
	if err != nil {
		return fmt.Errorf("%s: encoding the payload: %w", Op, err)
	}
	signature, err := s.signer.Sign(messageID, now, body)
	if err != nil {
		return fmt.Errorf("%s: signing: %w", Op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %w", Op, s.name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(standardwebhooks.HeaderWebhookID, messageID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, signature)
	resp, err := s.client.Do(req)
	if err != nil {
		// A transport error names the URL, never the body.
		return &directory.Error{Op: Op, Class: directory.ClassTransient, Message: fmt.Sprintf("webhook %s: %v", s.name, err)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // the answer is not read: only its status counts
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	class := directory.Classify(resp.StatusCode)
	if class == directory.ClassForbidden {
		// The endpoint refused the signature: a configuration error (the shared secret), not
		// Graph refusing orgsync's credentials, which pauses the writer.
		class = directory.ClassInvalid
	}
	return &directory.Error{Op: Op, Class: class, Status: resp.StatusCode,
		Message: fmt.Sprintf("webhook %s answered %d", s.name, resp.StatusCode)}
}
