package writeback

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

// CallbackType is the type of the webhook a Callback sends.
const CallbackType = "worker.account.updated"

// CallbackPayload is the body of a write-back webhook (Standard Webhooks' {type, timestamp,
// data} shape).
type CallbackPayload struct {
	Type      string       `json:"type"`
	Timestamp time.Time    `json:"timestamp"`
	Data      CallbackData `json:"data"`
}

// CallbackData names the worker and carries the attributes written back (only those that
// changed and that the source asked for).
type CallbackData struct {
	Source            string `json:"source"`
	WorkerID          string `json:"workerId"`
	UserPrincipalName string `json:"userPrincipalName,omitempty"`
	Mail              string `json:"mail,omitempty"`
}

// Callback writes back to any HR system by a POST of a CallbackPayload, signed per Standard
// Webhooks (webhook-id, webhook-timestamp, webhook-signature "v1,<base64 HMAC-SHA256>") with the
// source's whsec_ secret. webhook-id is the same on every retry of one write, so the receiver
// can drop duplicates. A 2xx answer is success; 401, 403 and other 4xx but 408 and 429 are
// permanent; 429, 5xx and network errors are retried. It is safe for concurrent use.
type Callback struct {
	url    string
	source string
	secret webhook.Secret
	http   *http.Client
	now    func() time.Time
}

var _ Writer = (*Callback)(nil)

// NewCallback returns a Callback for source; httpClient defaults to one with a 30s timeout,
// now to time.Now.
func NewCallback(callbackURL, sourceName string, secret webhook.Secret, httpClient *http.Client, now func() time.Time) *Callback {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	return &Callback{url: callbackURL, source: sourceName, secret: secret, http: httpClient, now: now}
}

// Write posts the worker's values.
func (c *Callback) Write(ctx context.Context, workerID string, values Values) error {
	now := c.now()
	body, err := json.Marshal(CallbackPayload{Type: CallbackType, Timestamp: now.UTC(),
		Data: CallbackData{Source: c.source, WorkerID: workerID, UserPrincipalName: values.UPN, Mail: values.Mail}})
	if err != nil {
		return fmt.Errorf("write-back webhook: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("write-back webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	webhook.SetHeaders(req.Header, c.secret, c.deliveryID(workerID, values), now, body)
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return fmt.Errorf("write-back webhook: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return ResponseError("write-back webhook", resp)
}

// deliveryID names one write: the same source, worker and values give the same id.
func (c *Callback) deliveryID(workerID string, values Values) string {
	sum := sha256.Sum256([]byte(c.source + "\x00" + workerID + "\x00" + values.UPN + "\x00" + values.Mail))
	return "msg_" + hex.EncodeToString(sum[:12])
}
