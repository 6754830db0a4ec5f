package writeback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

// Status is how the write-back stands.
type Status struct {
	// Pending counts the results waiting to be written back (all sources: one consumer).
	Pending int64          `json:"pending"`
	Sources []SourceStatus `json:"sources"`
}

// SourceStatus is how one source's write-back stands.
type SourceStatus struct {
	Source     string             `json:"source"`
	Attributes []source.Attribute `json:"attributes"`
	From       string             `json:"from"`
	// Parked counts write-backs parked for a reason retrying cannot fix.
	Parked int `json:"parked"`
	// LastErrorClass is the class of this replica's last failed write ("unauthorized",
	// "rejected", "throttled", "unavailable"), and LastErrorAt when it happened.
	LastErrorClass string    `json:"lastErrorClass,omitempty"`
	LastErrorAt    time.Time `json:"lastErrorAt,omitzero"`
}

// Status reports the consumer's pending results and, per source, its parked write-backs,
// sorted by source.
func (s *Sink) Status(ctx context.Context) (Status, error) {
	status := Status{Sources: []SourceStatus{}}
	info, err := s.consumer.Info(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	status.Pending = int64(info.NumPending) + int64(info.NumAckPending)
	for name, src := range s.sources {
		parked, err := s.Parked(ctx, name)
		if err != nil {
			return Status{}, err
		}
		s.mu.Lock()
		last := s.lastError[name]
		s.mu.Unlock()
		status.Sources = append(status.Sources, SourceStatus{Source: name, Attributes: src.Config.Attributes, From: src.Config.Target(),
			Parked: len(parked), LastErrorClass: last.class, LastErrorAt: last.at})
	}
	sort.Slice(status.Sources, func(i, j int) bool { return status.Sources[i].Source < status.Sources[j].Source })
	return status, nil
}

// Parked lists source's parked write-backs.
func (s *Sink) Parked(ctx context.Context, sourceName string) ([]Parked, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, "parked."+subject.Token(sourceName)+".*")
	if err != nil {
		return nil, fmt.Errorf("listing parked write-backs: %w", err)
	}
	var parked []Parked
	for key := range lister.Keys() {
		entry, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // replayed meanwhile
		}
		if err != nil {
			_ = lister.Stop()
			return nil, fmt.Errorf("reading parked write-back: %w", err)
		}
		var p Parked
		if err := json.Unmarshal(entry.Value(), &p); err != nil {
			_ = lister.Stop()
			return nil, fmt.Errorf("parked write-back %s: %w", key, err)
		}
		parked = append(parked, p)
	}
	return parked, nil
}

// ReplayResult says what a replay did.
type ReplayResult struct {
	// Written counts parked write-backs now written (or found already written).
	Written int `json:"written"`
	// StillParked lists those that failed again, with the new reason.
	StillParked []Parked `json:"stillParked"`
}

// Replay writes source's parked write-backs again (all of them, or only workerID's), each from
// its user's newest result on RESULTS, after an operator fixed the cause. One that fails again
// stays parked, with its new reason.
func (s *Sink) Replay(ctx context.Context, sourceName, workerID string) (ReplayResult, error) {
	if _, ok := s.sources[sourceName]; !ok {
		return ReplayResult{}, fmt.Errorf("source %q does not write back: %w", sourceName, ErrUnknownSource)
	}
	parked, err := s.Parked(ctx, sourceName)
	if err != nil {
		return ReplayResult{}, err
	}
	replay := ReplayResult{StillParked: []Parked{}}
	for _, p := range parked {
		if workerID != "" && p.WorkerID != workerID {
			continue
		}
		var result orgsyncv1.WriterResult
		msg, err := s.results.GetLastMsgForSubject(ctx, p.ResultSubject)
		if err == nil {
			err = decode(msg, &result)
		}
		if err != nil {
			return replay, fmt.Errorf("newest result of worker %s: %w", p.WorkerID, err)
		}
		if err := s.writeBack(ctx, p.ResultSubject, &result, 1); err != nil {
			again := p
			again.Reason = err.Error()
			replay.StillParked = append(replay.StillParked, again)
			continue
		}
		// Nothing left to write (already written, or the account no longer asks for it).
		if err := s.kv.Delete(ctx, parkedKey(sourceName, p.WorkerID)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return replay, fmt.Errorf("clearing parked write-back: %w", err)
		}
		replay.Written++
	}
	return replay, nil
}

// ErrUnknownSource says a replay named a source that does not write back.
var ErrUnknownSource = errors.New("unknown write-back source")

func decode(msg *jetstream.RawStreamMsg, result *orgsyncv1.WriterResult) error {
	if err := proto.Unmarshal(msg.Data, result); err != nil {
		return fmt.Errorf("decoding %s: %w", msg.Subject, err)
	}
	return nil
}
