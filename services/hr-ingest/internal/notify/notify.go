// Package notify keeps the notifications of HR vendors that tell that an employee changed
// without sending the record (BambooHR event-based webhooks, HiBob): the webhook's request
// stores a Notification in hr-ingest's own stream HR_NOTIFY and is answered; a Fetcher, owned by
// the service, later reads the employee from the vendor's API, publishes the HR event and only
// then acknowledges the notification. A notification whose fetch keeps failing stays in the
// stream, counted in Status; one that retrying cannot fix is parked there with its reason.
//
// Stream HR_NOTIFY is not under hr.>, which org-model consumes as HR events.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/subject"
)

// Stream is hr-ingest's stream of notifications waiting for their fetch, and of parked ones.
const Stream = "HR_NOTIFY"

// Subjects: a pending notification is on hrnotify.pending.<source>.<employeeId>, a parked one
// on hrnotify.parked.<source>.<employeeId>.
const (
	subjectPrefix = "hrnotify"
	pendingToken  = "pending"
	parkedToken   = "parked"
)

// PendingSubject is where a notification of source about employeeID waits for its fetch. The
// stream keeps one message per subject: a newer notification of an employee replaces one not
// yet fetched, since a fetch reads the employee's current record anyway.
func PendingSubject(source, employeeID string) string {
	return subjectPrefix + "." + pendingToken + "." + subject.Token(source) + "." + subject.Token(employeeID)
}

// ParkedSubject is where a notification of source about employeeID is kept when its fetch
// failed for a reason retrying cannot fix.
func ParkedSubject(source, employeeID string) string {
	return subjectPrefix + "." + parkedToken + "." + subject.Token(source) + "." + subject.Token(employeeID)
}

func pendingFilter(source string) string {
	return subjectPrefix + "." + pendingToken + "." + subject.Token(source) + ".*"
}

func parkedFilter(source string) string {
	return subjectPrefix + "." + parkedToken + "." + subject.Token(source) + ".*"
}

// ReasonHeader carries why a parked notification was parked (an error class and its text,
// which never holds a secret or PII).
const ReasonHeader = "Orgsync-Parked-Reason"

// Type is what a notification says happened to the employee.
type Type string

// Notification types.
const (
	// Changed: the employee was created or updated; the fetch reads the record.
	Changed Type = "changed"
	// Left: the employee left or was deleted; when the vendor no longer has the record (404),
	// the worker is published as terminated.
	Left Type = "left"
)

// Notification is one vendor notification, as stored in HR_NOTIFY.
type Notification struct {
	Source     string `json:"source"`
	EmployeeID string `json:"employeeId"`
	Type       Type   `json:"type"`
	// VendorType is the vendor's own event type, e.g. "employee.updated".
	VendorType string `json:"vendorType,omitempty"`
	// DeliveryID names the delivery: the vendor's id, or a hash of the signed body. A vendor's
	// retry of one delivery is stored once.
	DeliveryID string    `json:"deliveryId"`
	ReceivedAt time.Time `json:"receivedAt"`
	// OccurredAt is when the vendor says the change happened; zero when it does not say.
	OccurredAt time.Time `json:"occurredAt,omitzero"`
}

// BodyID names a delivery that carries no id of its own by its signed body: the vendor's retry
// of one delivery sends the same body.
func BodyID(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:16])
}

// ErrUnavailable says a notification could not be stored: the request should be retried.
var ErrUnavailable = errors.New("notification not stored")

// StreamConfig is HR_NOTIFY: file storage, one message per subject (coalescing an employee's
// notifications), deduplicated by delivery id within duplicates.
func StreamConfig(replicas int, duplicates time.Duration) jetstream.StreamConfig {
	if duplicates <= 0 {
		duplicates = 2 * time.Hour
	}
	return jetstream.StreamConfig{
		Name:              Stream,
		Description:       "HR vendor notifications waiting for hr-ingest to fetch the employee, and parked ones.",
		Subjects:          []string{subjectPrefix + ".>"},
		Storage:           jetstream.FileStorage,
		Replicas:          max(replicas, 1),
		Retention:         jetstream.WorkQueuePolicy,
		MaxMsgsPerSubject: 1,
		Duplicates:        duplicates,
	}
}

// EnsureStream creates or updates HR_NOTIFY; hr-ingest owns it (no other service reads it).
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, StreamConfig(replicas, 0))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", Stream, err)
	}
	return s, nil
}

// Store publishes notifications to HR_NOTIFY and returns once JetStream acknowledged them. It
// is safe for concurrent use.
type Store struct {
	js jetstream.JetStream
}

// NewStore returns a Store over js.
func NewStore(js jetstream.JetStream) *Store { return &Store{js: js} }

// Notify stores n under its pending subject, deduplicated by "<source>:<deliveryId>".
func (s *Store) Notify(ctx context.Context, n Notification) error {
	data, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encoding notification: %w", err)
	}
	msg := &nats.Msg{Subject: PendingSubject(n.Source, n.EmployeeID), Data: data, Header: nats.Header{}}
	if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(n.Source+":"+n.DeliveryID)); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}
