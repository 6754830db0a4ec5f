package service

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/guard"
)

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

func newDecisionLog() *decisionLog { return &decisionLog{} }

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

// principalOf is the caller the query API authenticated, as recorded with a decision. Every call
// that reaches approve or reject is authenticated; an empty principal would mean a call from
// inside the process.
func principalOf(ctx context.Context) *orgsyncv1.Principal {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok {
		return &orgsyncv1.Principal{}
	}
	return &orgsyncv1.Principal{Subject: p.Subject, Issuer: p.Issuer, TokenName: p.TokenName}
}

// decidedBatch describes a held batch once decided; its objects are left out (they are on
// DIRECTORY when approved, in the bucket when rejected).
func decidedBatch(held *guard.Batch, decision orgsyncv1.Decision, by *orgsyncv1.Principal, at time.Time) *orgsyncv1.PendingBatch {
	return &orgsyncv1.PendingBatch{
		BatchId: held.ID, CreatedAt: timestamppb.New(held.CreatedAt), Reason: held.Reason, Cause: held.Cause,
		Disables: int32(held.Disables), Removals: int32(held.Removals),
		Decision: decision, DecidedBy: by, DecidedAt: timestamppb.New(at),
	}
}

// recordDecision keeps a decision in memory and in the decisions bucket. A bucket failure is
// logged, not returned: the decision itself has been made and its AUDIT records carry it.
func (s *Service) recordDecision(ctx context.Context, batch *orgsyncv1.PendingBatch) {
	evicted := s.decisions.add(batch)
	data, err := proto.Marshal(batch)
	if err == nil {
		_, err = s.decisionsKV.Put(ctx, decisionKeyPrefix+batch.GetBatchId(), data)
	}
	if err != nil {
		s.logger.WarnContext(ctx, "decision not saved; it stays in the audit", "bucket", DecisionsBucket, "batch_id", batch.GetBatchId(), "error", err)
	}
	for _, batchID := range evicted {
		if err := s.decisionsKV.Delete(ctx, decisionKeyPrefix+batchID); err != nil {
			s.logger.WarnContext(ctx, "old decision not removed", "bucket", DecisionsBucket, "batch_id", batchID, "error", err)
		}
	}
}

// loadDecision reads one decided batch from the bucket at start.
func (s *Service) loadDecision(ctx context.Context, key string) error {
	entry, err := s.decisionsKV.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	var batch orgsyncv1.PendingBatch
	if err := proto.Unmarshal(entry.Value(), &batch); err != nil {
		return fmt.Errorf("decoding %s: %w", key, err)
	}
	for _, batchID := range s.decisions.add(&batch) {
		if err := s.decisionsKV.Delete(ctx, decisionKeyPrefix+batchID); err != nil {
			return fmt.Errorf("removing an old decision: %w", err)
		}
	}
	return nil
}
