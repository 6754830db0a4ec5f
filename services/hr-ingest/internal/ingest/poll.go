package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/poll"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/snapshot"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

// pollSource is a source hr-ingest reads (package poll) rather than one that sends: it has no
// route of its own. Its Parse reads one answer of the source's endpoint as the poller does, so
// that the dry run shows what a page would publish.
type pollSource struct {
	config source.Config
}

func (s *pollSource) Config() source.Config    { return s.config }
func (s *pollSource) Endpoint() string         { return "" }
func (s *pollSource) Credentials() Credentials { return BearerToken }
func (s *pollSource) MediaTypes() []string {
	if s.config.Poll.Format == "csv" {
		return []string{"text/csv"}
	}
	return []string{"application/json"}
}

// errPolled says a request was sent to a source that hr-ingest polls: nobody sends to it.
var errPolled = errors.New("this source is polled by hr-ingest and takes no requests")

func (s *pollSource) Authenticate(http.Header, []byte) (string, error) { return "", errPolled }

// Parse reads one page; a record that cannot be mapped refuses the page, naming its fields.
func (s *pollSource) Parse(_ http.Header, body []byte) (Batch, error) {
	page, err := poll.ParsePage(s.config.Poll, s.config.Location, body)
	if err != nil {
		return Batch{}, err
	}
	batch := Batch{Naming: ByVersion}
	for _, rec := range page.Records {
		if rec.Invalid != nil {
			return Batch{}, rec.Invalid
		}
		batch.Events = append(batch.Events, rec.Event)
		batch.Versions = append(batch.Versions, rec.Version())
	}
	return batch, nil
}

// versionID names a polled record's event by its worker id and version: a poll that reads the
// same version again publishes the same id, which stream HR stores once.
func versionID(kind, workerID, version string) string {
	sum := sha256.Sum256([]byte(workerID + "\x00" + version))
	return kind + "-" + hex.EncodeToString(sum[:12])
}

var _ poll.Sink = (*Handler)(nil)

// pollSourceNamed is the configured poll source called name.
func (h *Handler) pollSourceNamed(name string) (Source, error) {
	src, ok := h.sources[name]
	if !ok || src.Config().Kind != source.KindPoll {
		return nil, fmt.Errorf("no poll source named %q", name)
	}
	return src, nil
}

// stamp gives every event its source and receive time, as prepare does for a request.
func (h *Handler) stamp(src Source, events []*orgsyncv1.HREvent) {
	receivedAt := timestamppb.New(h.opts.Now())
	for _, event := range events {
		event.Source, event.ReceivedAt = src.Config().Name, receivedAt
	}
}

// PublishChanges implements poll.Sink: the polled events go through the pipeline's last steps
// (stamp, name by version, publish), as a request's would.
func (h *Handler) PublishChanges(ctx context.Context, sourceName string, events []*orgsyncv1.HREvent, versions []string) error {
	src, err := h.pollSourceNamed(sourceName)
	if err != nil {
		return err
	}
	if len(versions) != len(events) {
		return fmt.Errorf("%d events with %d versions", len(events), len(versions))
	}
	batch := Batch{Events: events, Naming: ByVersion, Versions: versions}
	h.stamp(src, batch.Events)
	if err := h.name(ctx, src, &batch, ""); err != nil {
		return err
	}
	_, err = h.store(ctx, src, batch)
	return err
}

// PublishSnapshot implements poll.Sink: a full pull is published as a CSV upload is (a new
// snapshot id, BEGIN, the workers, END once every worker was acknowledged, one snapshot of the
// source open at a time), so org-model marks the source's workers missing from it gone.
// occurredAt[i], when not zero, is when workers[i] last changed.
func (h *Handler) PublishSnapshot(ctx context.Context, sourceName string, workers []*orgsyncv1.Worker, occurredAt []time.Time) (string, error) {
	src, err := h.pollSourceNamed(sourceName)
	if err != nil {
		return "", err
	}
	snapshotID, err := snapshot.NewID(sourceName, "")
	if err != nil {
		return "", err
	}
	events := snapshot.Events(snapshotID, workers)
	for i, at := range occurredAt {
		if !at.IsZero() {
			events[i+1].OccurredAt = timestamppb.New(at)
		}
	}
	batch := Batch{Events: events, Naming: AsSnapshot, SnapshotID: snapshotID}
	h.stamp(src, batch.Events)
	if err := h.name(ctx, src, &batch, ""); err != nil {
		return "", err
	}
	if _, err := h.store(ctx, src, batch); err != nil {
		return "", err
	}
	return snapshotID, nil
}

// HoldPoll takes the lease of a poll source in the lock bucket (see Hold), for poll.New: one
// replica polls a source at a time, by the same mechanism that keeps one snapshot of a source
// open at a time.
func (l *JetStreamSnapshotLocks) HoldPoll(ctx context.Context, key, holder string) (poll.Lease, error) {
	lease, err := l.Hold(ctx, key, holder)
	if errors.Is(err, ErrHeld) {
		return nil, poll.ErrHeld
	}
	if err != nil {
		return nil, err
	}
	return lease, nil
}
