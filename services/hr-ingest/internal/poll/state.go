package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/subject"
)

// Bucket is the JetStream key-value bucket holding each poll source's State, one key per
// source; hr-ingest owns it.
const Bucket = "hr_ingest_poll"

// State is where a poll source stands: its cursor and how its polls went. It is written only by
// the replica holding the source's lease, with compare-and-set on the key's revision, and read
// by every replica for GET /v1/pull/status.
type State struct {
	// Since is the cursor: the newest modified time of the records published so far (every
	// record modified before it was published).
	Since time.Time `json:"since,omitzero"`
	// Recent are the records published whose modified time is within the overlap before Since,
	// by worker id, with the version published: a poll that reads them again skips them.
	// Records that could not be mapped are kept here too, so that each is reported once.
	Recent map[string]string `json:"recent,omitempty"`
	// LastFullSync is when the last full pull was published whole; LastSnapshotID names it.
	LastFullSync   time.Time `json:"lastFullSync,omitzero"`
	LastSnapshotID string    `json:"lastSnapshotId,omitempty"`
	// LastFullRefused is when a full pull was last not published because records could not be
	// mapped; the next is tried a full-sync interval later.
	LastFullRefused time.Time `json:"lastFullRefused,omitzero"`
	// LastPoll is when the last poll began; LastSuccess when one last ended without error.
	LastPoll    time.Time `json:"lastPoll,omitzero"`
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	// LastErrorClass and LastError say why the last failed poll failed (never a secret or a
	// record's value); ConsecutiveFailures counts the polls failed since the last success.
	LastErrorClass      string    `json:"lastErrorClass,omitempty"`
	LastError           string    `json:"lastError,omitempty"`
	LastErrorAt         time.Time `json:"lastErrorAt,omitzero"`
	ConsecutiveFailures int       `json:"consecutiveFailures"`
	// Parked is set when polling stopped for an error retrying cannot fix (refused credentials,
	// a refused request): the service must be restarted with fixed settings.
	Parked bool `json:"parked,omitempty"`
	// InvalidRecords counts the records skipped because they could not be mapped;
	// LastInvalid says which fields of the latest were invalid (pointers only).
	InvalidRecords int64  `json:"invalidRecords,omitempty"`
	LastInvalid    string `json:"lastInvalid,omitempty"`
	// Published counts the events published by polls and full pulls.
	Published int64 `json:"published"`
}

// ErrLostCursor says another replica wrote the source's state: this one no longer polls it.
var ErrLostCursor = errors.New("poll state written by another replica")

// Store keeps the States in Bucket. It is safe for concurrent use.
type Store struct {
	kv jetstream.KeyValue
}

// NewStore creates or updates Bucket (file storage, replicas) and returns a Store over it.
func NewStore(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Where each polled HR source stands: its cursor and its last polls (hr-ingest).",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", Bucket, err)
	}
	return &Store{kv: kv}, nil
}

func key(source string) string { return subject.Token(source) }

// Load returns source's state and its revision (0 when there is none yet).
func (s *Store) Load(ctx context.Context, source string) (State, uint64, error) {
	entry, err := s.kv.Get(ctx, key(source))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return State{}, 0, nil
	}
	if err != nil {
		return State{}, 0, fmt.Errorf("poll state of %s: %w", source, err)
	}
	var state State
	if err := json.Unmarshal(entry.Value(), &state); err != nil {
		return State{}, 0, fmt.Errorf("poll state of %s (revision %d): %w", source, entry.Revision(), err)
	}
	return state, entry.Revision(), nil
}

// Save writes source's state if its revision is still revision (0: there was none), and returns
// the new revision; ErrLostCursor when another replica wrote it meanwhile.
func (s *Store) Save(ctx context.Context, source string, state State, revision uint64) (uint64, error) {
	data, err := json.Marshal(state)
	if err != nil {
		return 0, fmt.Errorf("encoding poll state: %w", err)
	}
	var next uint64
	if revision == 0 {
		next, err = s.kv.Create(ctx, key(source), data)
	} else {
		next, err = s.kv.Update(ctx, key(source), data, revision)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("%s: %w", source, ErrLostCursor)
	}
	if err != nil {
		return 0, fmt.Errorf("saving poll state of %s: %w", source, err)
	}
	return next, nil
}
