// Package webhook delivers a new hire's first-day Temporary Access Pass to a ticketing system as
// a webhook signed like Standard Webhooks (https://www.standardwebhooks.com): a JSON body with
// the headers webhook-id, webhook-timestamp and webhook-signature (v1, HMAC-SHA256 of
// "id.timestamp.body" with the shared secret). The pass is in the body only: never in a header,
// a log, an error or a span.
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

	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/entra-writer/internal/writer"
)

// EventType is the payload's type.
const EventType = "orgsync.first_day_credential.created"

// Op names the delivery in directory errors.
const Op = "credential.deliver.webhook"

// Sender posts first-day passes to one endpoint. It is safe for concurrent use.
type Sender struct {
	name   string
	url    string
	signer *standardwebhooks.Webhook
	client *http.Client
	now    func() time.Time
}

var _ writer.FirstDayWebhook = (*Sender)(nil)

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

// Name implements writer.FirstDayWebhook.
func (s *Sender) Name() string { return s.name }

// payload is the body: Standard Webhooks' recommended {type, timestamp, data}.
type payload struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      data   `json:"data"`
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

// DeliverFirstDayPass implements writer.FirstDayWebhook: one signed POST; a 2xx answer is a
// delivery. The webhook-id is the pass's own id, so a receiver that deduplicates by it takes a
// retried request once and a new pass (after a failed delivery) as new. A 4xx other than 408 and
// 429 (a refused signature included) is a refusal retrying cannot fix (class invalid); anything
// else may pass later.
func (s *Sender) DeliverFirstDayPass(ctx context.Context, pass writer.FirstDayPass) error {
	now := s.now()
	body, err := json.Marshal(payload{Type: EventType, Timestamp: now.UTC().Format(time.RFC3339), Data: data{
		WorkerID: pass.WorkerID, UserPrincipalName: pass.UserPrincipalName, ManagerWorkerID: pass.ManagerWorkerID,
		FirstDayAt: pass.FirstDayAt.UTC().Format(time.RFC3339), TemporaryAccessPass: pass.Pass.Secret.Reveal(),
		ValidFrom: pass.Pass.Start.UTC().Format(time.RFC3339), ExpiresAt: pass.Pass.Expires().UTC().Format(time.RFC3339),
		IsUsableOnce: pass.Pass.IsUsableOnce,
	}})
	if err != nil {
		return fmt.Errorf("%s: encoding the payload: %w", Op, err)
	}
	messageID := "tap_" + pass.Pass.ID
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
