// Package webhook verifies and produces signatures per the Standard Webhooks specification
// (https://www.standardwebhooks.com): HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>",
// sent as "v1,<base64>" entries in the webhook-signature header, with a timestamp tolerance
// against replay. A source may have several active secrets, so one can be rotated without loss.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Verification errors. None of them carries a secret or a signature.
var (
	ErrMissingHeader  = errors.New("missing webhook header")
	ErrBadTimestamp   = errors.New("webhook-timestamp is not a Unix time in seconds")
	ErrStaleTimestamp = errors.New("webhook-timestamp is outside the tolerance")
	ErrNoMatch        = errors.New("no webhook-signature matches")
)

// Secret is one HMAC key.
type Secret []byte

// ParseSecret reads a secret in the spec's form "whsec_<base64>"; a value without the prefix is
// taken as base64 too. The error does not repeat the value.
func ParseSecret(s string) (Secret, error) {
	encoded := strings.TrimPrefix(strings.TrimSpace(s), "whsec_")
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(key) < 16 {
		return nil, errors.New("a webhook secret must be whsec_ followed by base64 of at least 16 bytes")
	}
	return key, nil
}

// Verifier checks Standard Webhooks signatures. It is safe for concurrent use.
type Verifier struct {
	secrets   []Secret
	tolerance time.Duration
	now       func() time.Time
}

// NewVerifier returns a Verifier accepting a signature by any of secrets within tolerance of now.
func NewVerifier(secrets []Secret, tolerance time.Duration, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{secrets: secrets, tolerance: tolerance, now: now}
}

// Verify checks header and body and returns the webhook id and timestamp when a signature matches.
func (v *Verifier) Verify(header http.Header, body []byte) (id string, timestamp time.Time, err error) {
	id = header.Get(HeaderID)
	rawTimestamp := header.Get(HeaderTimestamp)
	signatures := header.Get(HeaderSignature)
	for name, value := range map[string]string{HeaderID: id, HeaderTimestamp: rawTimestamp, HeaderSignature: signatures} {
		if value == "" {
			return "", time.Time{}, fmt.Errorf("%w: %s", ErrMissingHeader, name)
		}
	}
	seconds, err := strconv.ParseInt(rawTimestamp, 10, 64)
	if err != nil {
		return "", time.Time{}, ErrBadTimestamp
	}
	timestamp = time.Unix(seconds, 0)
	if skew := v.now().Sub(timestamp); skew > v.tolerance || skew < -v.tolerance {
		return "", time.Time{}, fmt.Errorf("%w of %v", ErrStaleTimestamp, v.tolerance)
	}
	for _, secret := range v.secrets {
		want := sign(secret, id, rawTimestamp, body)
		for _, entry := range strings.Fields(signatures) {
			version, encoded, ok := strings.Cut(entry, ",")
			if !ok || version != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(encoded)
			if err == nil && hmac.Equal(got, want) {
				return id, timestamp, nil
			}
		}
	}
	return "", time.Time{}, ErrNoMatch
}

// Sign returns the webhook-signature header value for a message, for senders and tests.
func Sign(secret Secret, id string, timestamp time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(sign(secret, id, strconv.FormatInt(timestamp.Unix(), 10), body))
}

// SetHeaders signs body and sets the three Standard Webhooks headers on header.
func SetHeaders(header http.Header, secret Secret, id string, timestamp time.Time, body []byte) {
	header.Set(HeaderID, id)
	header.Set(HeaderTimestamp, strconv.FormatInt(timestamp.Unix(), 10))
	header.Set(HeaderSignature, Sign(secret, id, timestamp, body))
}

func sign(secret Secret, id, timestamp string, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}
