package ingest

import (
	"net/http"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/personio"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

// personioSource takes Personio's webhooks, which name the person; the record is fetched later.
// The sender proves itself with the webhook's static token in Authorization, checked before the
// body is read, and the request is answered once the notification is stored — well within
// Personio's 3 s.
type personioSource struct {
	config   source.Config
	verifier *personio.Verifier
}

func (s *personioSource) Config() source.Config    { return s.config }
func (s *personioSource) Endpoint() string         { return EventsPattern }
func (s *personioSource) Credentials() Credentials { return BearerToken }
func (s *personioSource) MediaTypes() []string     { return []string{"application/json"} }

func (s *personioSource) Authenticate(header http.Header, _ []byte) (string, error) {
	return "", s.verifier.Verify(header)
}

func (s *personioSource) Parse(_ http.Header, body []byte) (Batch, error) {
	webhook, err := personio.ParseWebhook(body)
	if err != nil {
		return Batch{}, err
	}
	n := notify.Notification{EmployeeID: webhook.PersonID, Type: notify.Changed, VendorType: webhook.EventName,
		DeliveryID: notify.BodyID(body), OccurredAt: webhook.OccurredAt}
	if webhook.Leaves() {
		n.Type = notify.Left
	}
	return Batch{Naming: BySender, Notifications: []notify.Notification{n}}, nil
}
