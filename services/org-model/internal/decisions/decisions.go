// Package decisions keeps the mass-change guard's decisions durable in a JetStream key-value
// bucket: the rejected desired states (so that a restart does not hold them again) and the most
// recent approvals and rejections with who decided (for `orgsyncctl pending` and the console).
package decisions

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/guard"
)

// Bucket is the JetStream key-value bucket that keeps the guard's rejections and decisions.
const Bucket = "ORGMODEL_GUARD"

// Guard is what the store needs of the mass-change guard.
type Guard interface {
	Rejected() (map[string]*orgsyncv1.DesiredObject, uint64)
	RejectedVersion() uint64
	Restore(rejected map[string]*orgsyncv1.DesiredObject)
}

var _ Guard = (*guard.Guard)(nil)

// Store keeps the guard's decisions in the bucket. Save, Load and Record are called by the
// engine's goroutine; List is safe for concurrent use.
type Store struct {
	kv     jetstream.KeyValue
	guard  Guard
	logger *slog.Logger
	// savedVersion is the guard's rejection version the bucket holds.
	savedVersion uint64
	// log are the most recent approvals and rejections, with who decided.
	log decisionLog
}

// NewStore returns a store of guard's decisions in kv.
func NewStore(kv jetstream.KeyValue, g Guard, logger *slog.Logger) *Store {
	return &Store{kv: kv, guard: g, logger: logger}
}

// List returns copies of the recent decisions, newest first.
func (s *Store) List() []*orgsyncv1.PendingBatch { return s.log.list() }

// keptDecisions is how many recent approvals and rejections org-model keeps (in memory and in
// the decisions bucket) for `orgsyncctl pending`; the AUDIT records keep every approval for ever.
const keptDecisions = 50

// decisionKeyPrefix starts the decisions bucket's keys of decided batches; rejected states use
// base64url keys, which never contain a '.'.
const decisionKeyPrefix = "decided."

func isDecisionKey(key string) bool { return strings.HasPrefix(key, decisionKeyPrefix) }

// decisionLog is the most recent decisions, newest first. It is safe for concurrent use: the
// query API reads it while an approval adds to it.
type decisionLog struct {
	mu      sync.Mutex
	batches []*orgsyncv1.PendingBatch
}

// add keeps batch and returns the ids of the decisions that fell off the end.
func (l *decisionLog) add(batch *orgsyncv1.PendingBatch) (evicted []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches = append(l.batches, batch)
	sort.SliceStable(l.batches, func(i, j int) bool {
		return l.batches[i].GetDecidedAt().AsTime().After(l.batches[j].GetDecidedAt().AsTime())
	})
	for len(l.batches) > keptDecisions {
		evicted = append(evicted, l.batches[len(l.batches)-1].GetBatchId())
		l.batches = l.batches[:len(l.batches)-1]
	}
	return evicted
}

// list returns copies of the decisions, newest first.
func (l *decisionLog) list() []*orgsyncv1.PendingBatch {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*orgsyncv1.PendingBatch, len(l.batches))
	for i, b := range l.batches {
		out[i] = proto.CloneOf(b)
	}
	return out
}

// PrincipalOf is the caller the query API authenticated, as recorded with a decision. Every call
// that reaches approve or reject is authenticated; an empty principal would mean a call from
// inside the process.
func PrincipalOf(ctx context.Context) *orgsyncv1.Principal {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok {
		return &orgsyncv1.Principal{}
	}
	return &orgsyncv1.Principal{Subject: p.Subject, Issuer: p.Issuer, TokenName: p.TokenName}
}

// DecidedBatch describes a held batch once decided; its objects are left out (they are on
// DIRECTORY when approved, in the bucket when rejected).
func DecidedBatch(held *guard.Batch, decision orgsyncv1.Decision, by *orgsyncv1.Principal, at time.Time) *orgsyncv1.PendingBatch {
	return &orgsyncv1.PendingBatch{
		BatchId: held.ID, CreatedAt: timestamppb.New(held.CreatedAt), Reason: held.Reason, Cause: held.Cause,
		Disables: int32(held.Disables), Removals: int32(held.Removals),
		Decision: decision, DecidedBy: by, DecidedAt: timestamppb.New(at),
	}
}

// Record keeps a decision in memory and in the bucket. A bucket failure is
// logged, not returned: the decision itself has been made and its AUDIT records carry it.
func (s *Store) Record(ctx context.Context, batch *orgsyncv1.PendingBatch) {
	evicted := s.log.add(batch)
	data, err := proto.Marshal(batch)
	if err == nil {
		_, err = s.kv.Put(ctx, decisionKeyPrefix+batch.GetBatchId(), data)
	}
	if err != nil {
		s.logger.WarnContext(ctx, "decision not saved; it stays in the audit", "bucket", Bucket, "batch_id", batch.GetBatchId(), "error", err)
	}
	for _, batchID := range evicted {
		if err := s.kv.Delete(ctx, decisionKeyPrefix+batchID); err != nil {
			s.logger.WarnContext(ctx, "old decision not removed", "bucket", Bucket, "batch_id", batchID, "error", err)
		}
	}
}

// loadDecision reads one decided batch from the bucket at start.
func (s *Store) loadDecision(ctx context.Context, key string) error {
	entry, err := s.kv.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	var batch orgsyncv1.PendingBatch
	if err := proto.Unmarshal(entry.Value(), &batch); err != nil {
		return fmt.Errorf("decoding %s: %w", key, err)
	}
	for _, batchID := range s.log.add(&batch) {
		if err := s.kv.Delete(ctx, decisionKeyPrefix+batchID); err != nil {
			return fmt.Errorf("removing an old decision: %w", err)
		}
	}
	return nil
}

// SaveRejections makes the bucket hold exactly the guard's rejected states; it does nothing when
// they have not changed since the last save.
func (s *Store) SaveRejections(ctx context.Context) error {
	if s.guard.RejectedVersion() == s.savedVersion {
		return nil
	}
	rejected, version := s.guard.Rejected()
	stored := map[string]bool{}
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("listing %s: %w", Bucket, err)
	}
	for key := range keys.Keys() {
		if !isDecisionKey(key) {
			stored[key] = true
		}
	}
	for path, obj := range rejected {
		key := decisionKey(path)
		delete(stored, key)
		data, err := proto.Marshal(obj)
		if err != nil {
			return err
		}
		if _, err := s.kv.Put(ctx, key, data); err != nil {
			return fmt.Errorf("saving a rejection in %s: %w", Bucket, err)
		}
	}
	for key := range stored {
		if err := s.kv.Delete(ctx, key); err != nil {
			return fmt.Errorf("clearing a rejection in %s: %w", Bucket, err)
		}
	}
	s.savedVersion = version
	return nil
}

// Load restores the guard's rejected states and the recent decisions from the bucket at start;
// unreadable entries are logged and skipped.
func (s *Store) Load(ctx context.Context) error {
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("listing %s: %w", Bucket, err)
	}
	rejected := map[string]*orgsyncv1.DesiredObject{}
	for key := range keys.Keys() {
		if isDecisionKey(key) {
			if err := s.loadDecision(ctx, key); err != nil {
				s.logger.WarnContext(ctx, "unreadable decision skipped", "bucket", Bucket, "key", key, "error", err)
			}
			continue
		}
		entry, err := s.kv.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("reading %s %s: %w", Bucket, key, err)
		}
		var obj orgsyncv1.DesiredObject
		if err := proto.Unmarshal(entry.Value(), &obj); err != nil {
			s.logger.WarnContext(ctx, "unreadable rejection skipped", "bucket", Bucket, "key", key, "error", err)
			continue
		}
		rejected[guard.PathOf(&obj)] = &obj
	}
	s.guard.Restore(rejected)
	_, s.savedVersion = s.guard.Rejected()
	return nil
}

// decisionKey is a key-value key for an object path (paths hold '%', which keys may not).
func decisionKey(path string) string { return base64.RawURLEncoding.EncodeToString([]byte(path)) }

// OpenBucket creates or updates the decisions bucket on js, with the streams' replicas and storage.
func OpenBucket(ctx context.Context, js jetstream.JetStream, cfg stream.Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "org-model: desired states rejected through the mass-change guard, by object path",
		Replicas:    max(cfg.Replicas, 1),
		Storage:     cfg.Storage,
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", Bucket, err)
	}
	return kv, nil
}
