// Package writeback sends a worker's account attributes (UPN, mail) back to the worker's HR
// source once a writer reported them on stream RESULTS, for the sources that asked for it: HR
// then shows the new hire's username and work e-mail, as Microsoft's own HR provisioning does.
//
// A Sink is one durable consumer (hr-ingest-writeback) on RESULTS, filtered to the users of the
// directories the sources write back from. For each user result it compares the attributes a
// source asked for with what it last wrote for that worker (a hash per source, attribute and
// worker in the key-value bucket hr_ingest_writeback, so neither a redelivery nor a restart writes
// twice), writes what changed through the source's Writer, records it, audits it on AUDIT
// (audit.hr.user.<workerId>, values only as the PII policy allows) and only then acknowledges.
// A throttled or unavailable vendor is retried with backoff (honouring Retry-After); refused
// credentials or a write the vendor refuses (400, 404, 422) are parked in the bucket with their
// reason, counted in Status, and not retried until an operator replays them.
package writeback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

// Values are the attributes to write for one worker; an empty value is not written.
type Values struct {
	UPN  string
	Mail string
}

// Get returns the value of attribute.
func (v Values) Get(attribute source.Attribute) string {
	switch attribute {
	case source.AttributeUPN:
		return v.UPN
	case source.AttributeMail:
		return v.Mail
	}
	return ""
}

// Set sets the value of attribute.
func (v *Values) Set(attribute source.Attribute, value string) {
	switch attribute {
	case source.AttributeUPN:
		v.UPN = value
	case source.AttributeMail:
		v.Mail = value
	}
}

// Empty says whether nothing is to be written.
func (v Values) Empty() bool { return v.UPN == "" && v.Mail == "" }

// Writer writes a worker's attributes to one HR source. Implementations are safe for
// concurrent use, keep credentials and values out of their errors, and return an error that
// wraps ErrUnauthorized or ErrRejected (parked), a *notify.ThrottledError (retried after its
// delay), or anything else (retried with backoff).
type Writer interface {
	Write(ctx context.Context, workerID string, values Values) error
}

// Write errors that retrying cannot fix.
var (
	// ErrUnauthorized: the vendor refused the source's credentials (401, 403).
	ErrUnauthorized = errors.New("vendor refused the credentials")
	// ErrRejected: the vendor refused the write itself (400, 404, 409, 410, 422): an unknown
	// employee or field, a value it does not accept.
	ErrRejected = errors.New("vendor refused the write")
)

// ResponseError classifies a vendor's answer to a write by its status: nil for 2xx and 304 (not
// modified: the value was already there), ErrUnauthorized for 401 and 403, ErrRejected for the
// other 4xx except 408 and 429, a *notify.ThrottledError for 429 and for a 503 with Retry-After
// (BambooHR's way of throttling), a transient error otherwise. The body is never quoted.
func ResponseError(vendor string, resp *http.Response) error {
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300, code == http.StatusNotModified:
		return nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%s answered %d: %w", vendor, code, ErrUnauthorized)
	case code == http.StatusTooManyRequests,
		code == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		return &notify.ThrottledError{RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout:
		return fmt.Errorf("%s answered %d: %w", vendor, code, ErrRejected)
	default:
		return fmt.Errorf("%s answered %d", vendor, code)
	}
}

func retryAfter(value string) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if seconds, err := strconv.Atoi(value); err == nil && seconds >= 0 {
		return time.Duration(seconds) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil {
		return max(time.Until(at), 0)
	}
	return 0
}

// fingerprint is what the bucket keeps of a written value: its hash, not the value (PII).
func fingerprint(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:])
}
