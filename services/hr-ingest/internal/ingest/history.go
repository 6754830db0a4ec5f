package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// History reads what stream HR already holds, so that a request without a delivery id of its
// own can be told apart as a retry (the same state again, right after itself) or a new change
// (a state that was left and comes back: A → B → A).
type History interface {
	// Latest returns the newest event stored under subject and its stream sequence, or nil and
	// 0 when the subject holds none.
	Latest(ctx context.Context, subject string) (*orgsyncv1.HREvent, uint64, error)
}

// JetStreamHistory is History over stream HR (a last-by-subject message get). It is safe for
// concurrent use.
type JetStreamHistory struct {
	js jetstream.JetStream

	mu     sync.Mutex
	stream jetstream.Stream
}

var _ History = (*JetStreamHistory)(nil)

// NewJetStreamHistory returns a History reading stream HR through js.
func NewJetStreamHistory(js jetstream.JetStream) *JetStreamHistory {
	return &JetStreamHistory{js: js}
}

// Latest implements History.
func (h *JetStreamHistory) Latest(ctx context.Context, subject string) (*orgsyncv1.HREvent, uint64, error) {
	s, err := h.hrStream(ctx)
	if err != nil {
		return nil, 0, err
	}
	msg, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading the latest event of %s: %w", subject, err)
	}
	var event orgsyncv1.HREvent
	if err := proto.Unmarshal(msg.Data, &event); err != nil {
		return nil, 0, fmt.Errorf("decoding the latest event of %s (sequence %d): %w", subject, msg.Sequence, err)
	}
	return &event, msg.Sequence, nil
}

// hrStream looks stream HR up once; a failed look-up is tried again on the next call.
func (h *JetStreamHistory) hrStream(ctx context.Context) (jetstream.Stream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stream != nil {
		return h.stream, nil
	}
	s, err := h.js.Stream(ctx, stream.HR)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream.HR, err)
	}
	h.stream = s
	return s, nil
}

// content is event without what differs between two receipts of the same state: its event id
// and receive time.
func content(event *orgsyncv1.HREvent) *orgsyncv1.HREvent {
	c := proto.CloneOf(event)
	c.EventId, c.ReceivedAt = "", nil
	return c
}

// sameContent says whether stored and candidate carry the same state from the same source.
func sameContent(stored, candidate *orgsyncv1.HREvent) bool {
	return proto.Equal(content(stored), content(candidate))
}

// historyEventID names an event by its content, the stream sequence of the event its request
// follows on its subject, and its position among the request's events on that subject: a retry
// of the same request (concurrent ones included) finds the same predecessor and gets the same
// ids, which JetStream's duplicate window then stores once, while the same content after a
// different state follows another sequence and is a new event. The ids are known before
// anything is published, so a dry run names events as a real request would.
func historyEventID(prefix string, event *orgsyncv1.HREvent, after uint64, position int) (string, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(content(event))
	if err != nil {
		return "", fmt.Errorf("encoding event for its id: %w", err)
	}
	sum := sha256.New()
	sum.Write(data)
	sum.Write(binary.BigEndian.AppendUint64(nil, after))
	if position > 0 {
		sum.Write(binary.BigEndian.AppendUint64(nil, uint64(position)))
	}
	return prefix + hex.EncodeToString(sum.Sum(nil)[:16]), nil
}

// errNoHistory says the handler was built without Options.History, which sources without a
// delivery id need.
var errNoHistory = errors.New("no HR history to tell retries from repeated states (Options.History)")

// nameByHistory sets the ids of a request's events on one subject from what stream HR holds
// there, reading and storing nothing else. When the newest stored event already carries the
// state the request leaves the worker in (its last event for the subject; receive time and
// event id aside), the request is a retry for the subject: every event is named after the
// stored one and retry is true. Otherwise each event's id is made of its content, the sequence
// of the stored event it follows and its position (historyEventID), so concurrent retries of one
// request collapse in JetStream's duplicate window, while a state that comes back after another
// one (A → B → A) is a new event.
func (h *Handler) nameByHistory(ctx context.Context, prefix, subject string, events []*orgsyncv1.HREvent) (retry bool, err error) {
	if h.opts.History == nil {
		return false, errNoHistory
	}
	latest, after, err := h.opts.History.Latest(ctx, subject)
	if err != nil {
		return false, err
	}
	if latest != nil && sameContent(latest, events[len(events)-1]) {
		for _, event := range events {
			event.EventId = latest.GetEventId()
		}
		return true, nil
	}
	for i, event := range events {
		if event.EventId, err = historyEventID(prefix, event, after, i); err != nil {
			return false, err
		}
	}
	return false, nil
}
