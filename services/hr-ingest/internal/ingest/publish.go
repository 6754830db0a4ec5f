package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/orgsync/orgsync/pkg/metrics"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/problem"
)

// publish stores every event of batch, each under the Nats-Msg-Id "<source>:<eventId>", so a
// retried request stores nothing twice, and answers 503 when JetStream does not acknowledge.
// Events of one subject are published in order. A snapshot's workers (between its BEGIN and
// END markers, on distinct subjects) are published concurrently, and END only after every
// worker was acknowledged, so an END marker is never stored for an incomplete snapshot; one
// snapshot per source is open at a time (Options.SnapshotLocks).
func (h *Handler) publish(w http.ResponseWriter, r *http.Request, src Source, batch Batch) (Accepted, bool) {
	ctx := r.Context()
	accepted, err := h.store(ctx, src, batch)
	if errors.Is(err, ErrSnapshotOpen) {
		problem.Write(w, problem.Details{Type: problem.TypeBase + "snapshot-open", Status: http.StatusConflict,
			Detail: fmt.Sprintf("a snapshot of source %q is being published; upload again once it has ended", src.Config().Name)}, h.opts.RetryAfter)
		return accepted, false
	}
	if err != nil {
		h.unavailable(w, r, src, err)
		return accepted, false
	}
	return accepted, true
}

// store is publish without the answer: it returns ErrSnapshotOpen when another snapshot of the
// source is open, or JetStream's error. The poller (poll.go) stores through it too.
func (h *Handler) store(ctx context.Context, src Source, batch Batch) (Accepted, error) {
	events := batch.Events
	accepted := Accepted{EventIDs: make([]string, len(events))}
	var duplicates atomic.Int64
	var err error
	switch {
	case batch.Naming == ByHistory || batch.Naming == ByVersion:
		err = h.publishBySubject(ctx, batch, &duplicates)
	case batch.Naming == AsSnapshot:
		if h.opts.SnapshotLocks != nil {
			release, lockErr := h.opts.SnapshotLocks.Open(ctx, src.Config().Name, batch.SnapshotID)
			if lockErr != nil {
				return accepted, lockErr
			}
			defer release()
		}
		err = h.publishOne(ctx, events[0], &duplicates)
		if err == nil && len(events) > 2 {
			err = h.publishConcurrently(ctx, events[1:len(events)-1], &duplicates)
		}
		if err == nil && len(events) > 1 {
			err = h.publishOne(ctx, events[len(events)-1], &duplicates)
		}
	default:
		for _, event := range events {
			if err = h.publishOne(ctx, event, &duplicates); err != nil {
				break
			}
		}
	}
	accepted.Duplicates = int(duplicates.Load())
	if err != nil {
		return accepted, err
	}
	for i, event := range events {
		accepted.EventIDs[i] = event.GetEventId()
	}
	metrics.Default().HREvent(ctx, src.Config().Name, "accepted", "", len(events)-accepted.Duplicates)
	if accepted.Duplicates > 0 {
		metrics.Default().HREvent(ctx, src.Config().Name, "duplicate", "", accepted.Duplicates)
	}
	return accepted, nil
}

// subjectEvents are a request's events on one subject (one worker), in order.
type subjectEvents struct {
	subject string
	events  []*orgsyncv1.HREvent
}

// bySubject groups events by subject, in the order each subject first appears.
func bySubject(events []*orgsyncv1.HREvent) ([]subjectEvents, error) {
	var groups []subjectEvents
	index := map[string]int{}
	for _, event := range events {
		name, err := subject.HRSubject(event)
		if err != nil {
			return nil, err
		}
		i, seen := index[name]
		if !seen {
			i = len(groups)
			index[name] = i
			groups = append(groups, subjectEvents{subject: name})
		}
		groups[i].events = append(groups[i].events, event)
	}
	return groups, nil
}

// eachSubject calls fn for every subject, up to PublishConcurrency at once, and returns the
// first error after every started call has returned; it starts no more once one failed.
func (h *Handler) eachSubject(ctx context.Context, subjects []subjectEvents, fn func(context.Context, subjectEvents) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	slots := make(chan struct{}, h.opts.PublishConcurrency)
	var wg sync.WaitGroup
	for _, s := range subjects {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := fn(ctx, s); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// publishBySubject stores the events of a request that has no delivery id, named by
// nameByHistory: a subject whose newest stored event already holds the request's state is a
// retry and nothing of it is stored again; the others' events are stored in order. Different
// subjects (workers) are stored concurrently, up to PublishConcurrency.
func (h *Handler) publishBySubject(ctx context.Context, batch Batch, duplicates *atomic.Int64) error {
	subjects, err := bySubject(batch.Events)
	if err != nil {
		return err
	}
	return h.eachSubject(ctx, subjects, func(ctx context.Context, s subjectEvents) error {
		if batch.retried[s.subject] {
			duplicates.Add(int64(len(s.events)))
			return nil
		}
		for _, event := range s.events {
			if _, err := h.publishAck(ctx, event, duplicates); err != nil {
				return err
			}
		}
		return nil
	})
}

// publishOne stores one event, counting it in duplicates when JetStream already had it.
func (h *Handler) publishOne(ctx context.Context, event *orgsyncv1.HREvent, duplicates *atomic.Int64) error {
	_, err := h.publishAck(ctx, event, duplicates)
	return err
}

// publishAck stores one event and returns its stream sequence (the stored original's, when
// JetStream already had it).
func (h *Handler) publishAck(ctx context.Context, event *orgsyncv1.HREvent, duplicates *atomic.Int64) (uint64, error) {
	name, err := subject.HRSubject(event)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.PublishTimeout)
	defer cancel()
	ack, err := h.publisher.Publish(ctx, name, event.GetSource()+":"+event.GetEventId(), event)
	if err != nil {
		return 0, err
	}
	if ack.Duplicate {
		duplicates.Add(1)
	}
	return ack.Sequence, nil
}

// publishConcurrently keeps up to PublishConcurrency events awaiting their acknowledgement and
// returns the first error after every started publish has finished.
func (h *Handler) publishConcurrently(ctx context.Context, events []*orgsyncv1.HREvent, duplicates *atomic.Int64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	slots := make(chan struct{}, h.opts.PublishConcurrency)
	var wg sync.WaitGroup
	for _, event := range events {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := h.publishOne(ctx, event, duplicates); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}
