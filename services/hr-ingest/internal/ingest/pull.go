package ingest

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/bamboohr"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/hibob"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/personio"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

// Notifier stores a vendor's notification durably (stream HR_NOTIFY) for the fetcher
// (package notify); a request naming an employee to fetch is answered 202 once it returns nil.
type Notifier interface {
	Notify(ctx context.Context, n notify.Notification) error
}

var _ Notifier = (*notify.Store)(nil)

// errNoNotifier says a notification arrived but the service has nowhere to keep it.
var errNoNotifier = errors.New("no notification store configured")

// hibobSource takes HiBob's v2 webhooks, which name the employee; the record is fetched later.
type hibobSource struct {
	config   source.Config
	verifier *hibob.Verifier
}

func (s *hibobSource) Config() source.Config    { return s.config }
func (s *hibobSource) Endpoint() string         { return EventsPattern }
func (s *hibobSource) Credentials() Credentials { return SignedBody }
func (s *hibobSource) MediaTypes() []string     { return []string{"application/json"} }

func (s *hibobSource) Authenticate(header http.Header, body []byte) (string, error) {
	return "", s.verifier.Verify(header, body)
}

func (s *hibobSource) Parse(_ http.Header, body []byte) (Batch, error) {
	webhook, err := hibob.ParseWebhook(body)
	if err != nil {
		return Batch{}, err
	}
	n := notify.Notification{EmployeeID: webhook.EmployeeID, Type: notify.Changed, VendorType: webhook.Type,
		DeliveryID: notify.BodyID(body), OccurredAt: webhook.TriggeredAt}
	if webhook.Leaves() {
		n.Type = notify.Left
	}
	return Batch{Naming: BySender, Notifications: []notify.Notification{n}}, nil
}

// parseBambooHREvent reads a BambooHR event-based webhook into a notification.
func parseBambooHREvent(body []byte) (Batch, error) {
	event, err := bamboohr.ParseEvent(body)
	if err != nil {
		return Batch{}, err
	}
	n := notify.Notification{EmployeeID: event.EmployeeID, Type: notify.Changed, VendorType: event.Type,
		DeliveryID: notify.BodyID(body), OccurredAt: event.Timestamp}
	if event.Type == bamboohr.EventDeleted {
		n.Type = notify.Left
	}
	return Batch{Naming: BySender, Notifications: []notify.Notification{n}}, nil
}

// notify stores a batch's notifications and answers 202 once JetStream acknowledged them, or
// 503 with Retry-After when it did not. Nothing is fetched while the vendor waits.
func (h *Handler) notify(w http.ResponseWriter, r *http.Request, src Source, batch Batch) {
	if h.opts.Notifier == nil {
		h.unavailable(w, r, src, errNoNotifier)
		return
	}
	receivedAt := h.opts.Now()
	accepted := Accepted{EventIDs: make([]string, 0, len(batch.Notifications))}
	for _, n := range batch.Notifications {
		n.Source, n.ReceivedAt = src.Config().Name, receivedAt
		ctx, cancel := context.WithTimeout(r.Context(), h.opts.PublishTimeout)
		err := h.opts.Notifier.Notify(ctx, n)
		cancel()
		if err != nil {
			h.unavailable(w, r, src, err)
			return
		}
		accepted.EventIDs = append(accepted.EventIDs, "notify-"+n.DeliveryID)
	}
	writeJSON(w, http.StatusAccepted, "application/json", accepted)
}

// PublishEvent stores one fetched event in stream HR through the pipeline's own publish step
// (Nats-Msg-Id "<source>:<eventId>"), for the fetcher of notified employees.
func (h *Handler) PublishEvent(ctx context.Context, event *orgsyncv1.HREvent) error {
	ctx, cancel := context.WithTimeout(ctx, h.opts.PublishTimeout)
	defer cancel()
	var duplicates atomic.Int64
	return h.publishOne(ctx, event, &duplicates)
}

// FetchClients builds the vendor API client of every source whose webhooks are notifications
// (source.Config.Pulls), by source name, for notify.Fetcher.
func FetchClients(configs []source.Config) map[string]notify.Client {
	clients := map[string]notify.Client{}
	for _, cfg := range configs {
		cfg = cfg.WithDefaults()
		if !cfg.Pulls() {
			continue
		}
		switch cfg.Kind {
		case source.KindBambooHR:
			clients[cfg.Name] = bamboohr.NewClient(cfg.API.BaseURL, cfg.API.Token, cfg.API.Fields, cfg.Location, nil)
		case source.KindHiBob:
			client := hibob.NewClient(cfg.API.BaseURL, cfg.API.User, cfg.API.Token, cfg.API.Fields, cfg.Location, nil)
			if cfg.API.WorkerIDField != "" {
				client = client.WithWorkerIDField(cfg.API.WorkerIDField)
			}
			clients[cfg.Name] = client
		case source.KindPersonio:
			clients[cfg.Name] = personio.NewClient(cfg.API.BaseURL, cfg.API.User, cfg.API.Token, cfg.Location, nil)
		}
	}
	return clients
}
