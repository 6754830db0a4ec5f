package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrUnknownSource says a replay named a source that has no notifications.
var ErrUnknownSource = errors.New("unknown notification source")

// Replay puts source's parked notifications (all of them, or only employeeID's) back on their
// pending subjects, after an operator fixed what parked them (credentials, a record the vendor
// now maps), and removes them from the parked ones; it returns how many it replayed. A replayed
// notification is fetched like a new one and, failing again for the same reason, parked again.
func (f *Fetcher) Replay(ctx context.Context, source, employeeID string) (int, error) {
	if _, ok := f.clients[source]; !ok {
		return 0, fmt.Errorf("source %q: %w", source, ErrUnknownSource)
	}
	s, err := f.js.Stream(ctx, Stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", Stream, err)
	}
	filter := parkedFilter(source)
	if employeeID != "" {
		filter = ParkedSubject(source, employeeID)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", Stream, err)
	}
	// Only what was parked before the replay: a replayed notification that fails again is
	// parked anew, after this mark, and is not replayed twice.
	last := info.State.LastSeq
	replayed := 0
	for sequence := uint64(1); sequence <= last; {
		parked, err := s.GetMsg(ctx, sequence, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return replayed, nil
		}
		if err != nil {
			return replayed, fmt.Errorf("reading parked notifications of %s: %w", source, err)
		}
		if parked.Sequence > last {
			break
		}
		pending := &nats.Msg{Subject: pendingSubjectOf(source, parked.Subject), Data: parked.Data, Header: nats.Header{}}
		// A new message id: the original delivery id is still in the duplicate window.
		id := source + ":replay:" + strconv.FormatUint(parked.Sequence, 10)
		if _, err := f.js.PublishMsg(ctx, pending, jetstream.WithMsgID(id)); err != nil {
			return replayed, fmt.Errorf("replaying a parked notification of %s: %w", source, err)
		}
		if err := s.DeleteMsg(ctx, parked.Sequence); err != nil {
			// Gone already (a newer parked notification of the employee replaced it) is fine.
			if _, getErr := s.GetMsg(ctx, parked.Sequence); !errors.Is(getErr, jetstream.ErrMsgNotFound) {
				return replayed, fmt.Errorf("removing a replayed notification of %s: %w", source, err)
			}
		}
		replayed++
		sequence = parked.Sequence + 1
	}
	return replayed, nil
}

// pendingSubjectOf is the pending subject of a parked notification's subject (same source and
// employee tokens).
func pendingSubjectOf(source, parkedSubject string) string {
	prefix := subjectPrefix + "." + parkedToken + "."
	return subjectPrefix + "." + pendingToken + "." + parkedSubject[len(prefix):]
}
