// Package access keeps the access orgsync gives for a time on top of HR: delegations (a worker
// gets another worker's or a unit's group memberships between two dates) and helpdesk requests
// (a temporary group membership, a Temporary Access Pass or a password reset for a managed
// worker, approved by a second person). Both are
// durable in the key-value bucket ORGMODEL_ACCESS, apart from stream HR, so that neither a
// restart, a checkpoint nor trimmed HR history loses them; the model applies them as grants
// whose start and end fall due on its one schedule, and what they change is published to
// DIRECTORY like any other desired state.
//
// Every operation runs on org-model's engine goroutine, which owns the delegations and requests
// held in memory: no mutex is needed, and a creation is ordered with HR events.
package access

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/decisions"
	"github.com/orgsync/orgsync/services/org-model/internal/engine"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
)

// Bucket is the JetStream key-value bucket that keeps delegations (key "delegation.<id>",
// orgsync.v1.Delegation) and helpdesk requests (key "request.<id>", orgsync.v1.AccessRequest).
// Each change of one is a new revision of its key; the bucket keeps the history.
const Bucket = "ORGMODEL_ACCESS"

// DefaultApprovalWindow is how long a helpdesk request waits for approval when the request does
// not say.
const DefaultApprovalWindow = 24 * time.Hour

// maxApprovalWindow bounds how long a request may wait for approval.
const maxApprovalWindow = 30 * 24 * time.Hour

// CredentialWindow is how long after its approval a helpdesk credential is still made: a writer
// that meets the request later (down for longer) makes none, and the helpdesk asks again.
const CredentialWindow = time.Hour

// A Temporary Access Pass's lifetime: DefaultPassLifetime when the request does not say, and
// at least minPassLifetime (Graph's own minimum) and at most maxPassLifetime (a day: a helpdesk
// pass is for getting back in now, not for a week).
const (
	DefaultPassLifetime = 60
	minPassLifetime     = 10
	maxPassLifetime     = 24 * 60
)

// Errors of the operations; the query API turns each into its gRPC status.
var (
	// ErrNotReady: org-model is still replaying HR, so workers and groups are not all known yet.
	ErrNotReady = errors.New("org-model is still replaying stream HR; try again once it has caught up")
	// ErrNotFound: no delegation or request with that id.
	ErrNotFound = errors.New("not found")
	// ErrOwnRequest: the requester tried to decide their own request.
	ErrOwnRequest = errors.New("the requester cannot approve or reject their own request: a second person with the approver role must")
	// ErrNotPending: the request was decided already or has expired.
	ErrNotPending = errors.New("the request is no longer pending")
	// ErrInvalid: a request's fields are wrong in a way the model does not judge.
	ErrInvalid = errors.New("invalid request")
)

// Engine runs a function on the goroutine that owns org-model's state.
type Engine interface {
	Do(ctx context.Context, fn func(ctx context.Context) error) error
}

var _ Engine = (*engine.Engine)(nil)

// Model is the part of the domain model that applies grants.
type Model interface {
	CheckDelegation(d *orgsyncv1.Delegation, now time.Time) error
	ApplyDelegation(d *orgsyncv1.Delegation, now time.Time) ([]*orgsyncv1.DesiredObject, error)
	RestoreDelegations(delegations []*orgsyncv1.Delegation) error
	DelegationState(d *orgsyncv1.Delegation, now time.Time) orgsyncv1.DelegationState
	CheckMembershipRequest(workerID, groupKey string, endDate *orgsyncv1.Date, now time.Time) error
	ApplyMembershipGrant(grant model.MembershipGrant, now time.Time) []*orgsyncv1.DesiredObject
	RestoreMembershipGrants(grants []model.MembershipGrant)
	GrantTransitions(from, to time.Time) []model.GrantTransition
	CheckCredentialRequest(workerID string, now time.Time) error
	ApplyHelpdeskCredential(workerID string, c *orgsyncv1.HelpdeskCredential, now time.Time) []*orgsyncv1.DesiredObject
	RestoreHelpdeskCredentials(byWorker map[string]*orgsyncv1.HelpdeskCredential)
}

var _ Model = (*model.Model)(nil)

// Emit passes desired-state changes through the mass-change guard and publishes what it admits,
// with their cause; it runs on the engine's goroutine.
type Emit func(ctx context.Context, changes []*orgsyncv1.DesiredObject, cause *orgsyncv1.Cause) error

// Clock says what time it is.
type Clock interface{ Now() time.Time }

// Service keeps delegations and helpdesk requests. Its methods are safe for concurrent use:
// each runs on the engine's goroutine.
type Service struct {
	engine Engine
	model  Model
	kv     jetstream.KeyValue
	emit   Emit
	clock  Clock
	ready  func() bool
	logger *slog.Logger
	// delegations and requests are what the bucket holds, by id; the engine's goroutine owns them.
	delegations map[string]*orgsyncv1.Delegation
	requests    map[string]*orgsyncv1.AccessRequest
	// lastDue is when DueCause last ran (the load at start before that).
	lastDue time.Time
	// loaded says Load has read the bucket: lists before that would be empty, not true.
	loaded bool
	// lifetime ends when the service stops: what a creation, an end or an approval changed is
	// published until then even when its caller has gone away.
	lifetime context.Context
}

// SetLifetime sets the context whose end stops publishing what a call decided once its caller
// has gone away. Call it before the engine runs.
func (s *Service) SetLifetime(ctx context.Context) { s.lifetime = ctx }

// publish emits what a decision changed. The decision is kept already, so its changes are
// published even if the caller goes away (stopping half-way would leave them unpublished until
// a restart), for as long as the service runs.
func (s *Service) publish(ctx context.Context, changes []*orgsyncv1.DesiredObject, cause *orgsyncv1.Cause) error {
	publishCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	if s.lifetime != nil {
		defer context.AfterFunc(s.lifetime, cancel)()
	}
	return s.emit(publishCtx, changes, cause)
}

// New returns the service over kv. ready says whether the HR replay at start is done.
func New(engine Engine, m Model, kv jetstream.KeyValue, emit Emit, clock Clock, ready func() bool, logger *slog.Logger) *Service {
	return &Service{engine: engine, model: m, kv: kv, emit: emit, clock: clock, ready: ready, logger: logger,
		delegations: map[string]*orgsyncv1.Delegation{}, requests: map[string]*orgsyncv1.AccessRequest{}}
}

// OpenBucket creates or updates the bucket on js, with the streams' replicas and storage.
func OpenBucket(ctx context.Context, js jetstream.JetStream, cfg stream.Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "org-model: delegations and helpdesk access requests, by id, with their history",
		History:     16,
		Replicas:    max(cfg.Replicas, 1),
		Storage:     cfg.Storage,
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

const (
	delegationPrefix = "delegation."
	requestPrefix    = "request."
)

// Load reads the bucket into the service and the model; call it on the engine, before the HR
// replay (the replay's reconcile then publishes what the grants give). An entry that cannot be
// decoded is logged and skipped: it cannot become readable later.
func (s *Service) Load(ctx context.Context) error {
	watcher, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("reading %s: %w", Bucket, err)
	}
	defer func() { _ = watcher.Stop() }()
	var delegations []*orgsyncv1.Delegation
	var grants []model.MembershipGrant
	credentials := map[string]*orgsyncv1.HelpdeskCredential{}
loop:
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case entry, ok := <-watcher.Updates():
			if !ok {
				return fmt.Errorf("reading %s: the watcher stopped", Bucket)
			}
			if entry == nil {
				break loop // every current value has been delivered
			}
			switch key := entry.Key(); {
			case strings.HasPrefix(key, delegationPrefix):
				var d orgsyncv1.Delegation
				if err := proto.Unmarshal(entry.Value(), &d); err != nil {
					s.logger.WarnContext(ctx, "unreadable delegation skipped", "bucket", Bucket, "key", key, "error", err)
					continue
				}
				s.delegations[d.GetDelegationId()] = &d
				delegations = append(delegations, &d)
			case strings.HasPrefix(key, requestPrefix):
				var r orgsyncv1.AccessRequest
				if err := proto.Unmarshal(entry.Value(), &r); err != nil {
					s.logger.WarnContext(ctx, "unreadable access request skipped", "bucket", Bucket, "key", key, "error", err)
					continue
				}
				s.requests[r.GetRequestId()] = &r
				if r.GetState() != orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_APPROVED {
					continue
				}
				if c := helpdeskCredential(&r); c != nil {
					if kept := credentials[r.GetWorkerId()]; kept == nil || c.GetApprovedAt().AsTime().After(kept.GetApprovedAt().AsTime()) {
						credentials[r.GetWorkerId()] = c
					}
					continue
				}
				grants = append(grants, membershipGrant(&r))
			}
		}
	}
	if err := s.model.RestoreDelegations(delegations); err != nil {
		s.logger.WarnContext(ctx, "delegations not applied", "bucket", Bucket, "error", err)
	}
	s.model.RestoreMembershipGrants(grants)
	s.model.RestoreHelpdeskCredentials(credentials)
	s.lastDue, s.loaded = s.clock.Now(), true
	s.logger.InfoContext(ctx, "access loaded", "delegations", len(delegations), "requests", len(s.requests))
	return nil
}

func membershipGrant(r *orgsyncv1.AccessRequest) model.MembershipGrant {
	return model.MembershipGrant{RequestID: r.GetRequestId(), WorkerID: r.GetWorkerId(), GroupKey: r.GetGroupKey(),
		Start: r.GetDecidedAt().AsTime(), EndDate: r.GetEndDate()}
}

// helpdeskCredential is the credential an approved request of a credential kind gives; nil for
// a temporary membership.
func helpdeskCredential(r *orgsyncv1.AccessRequest) *orgsyncv1.HelpdeskCredential {
	var kind orgsyncv1.HelpdeskCredentialKind
	switch r.GetKind() {
	case orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_ACCESS_PASS:
		kind = orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_TEMPORARY_ACCESS_PASS
	case orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_PASSWORD_RESET:
		kind = orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_PASSWORD_RESET
	default:
		return nil
	}
	approved := r.GetDecidedAt().AsTime()
	return &orgsyncv1.HelpdeskCredential{AccessRequestId: r.GetRequestId(), Kind: kind, ApprovedAt: r.GetDecidedAt(),
		NotAfter: timestamppb.New(approved.Add(CredentialWindow)), LifetimeMinutes: r.GetLifetimeMinutes()}
}

func newID(prefix string) (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making an id: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}

// save writes one delegation or request to the bucket: before it takes effect, so that what is
// on DIRECTORY is always something the bucket keeps.
func (s *Service) save(ctx context.Context, key string, m proto.Message) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	if _, err := s.kv.Put(ctx, key, data); err != nil {
		return fmt.Errorf("saving %s in %s: %w", key, Bucket, err)
	}
	return nil
}

// onEngine runs fn on the engine once the HR replay is done.
func (s *Service) onEngine(ctx context.Context, fn func(ctx context.Context, now time.Time) error) error {
	if !s.ready() {
		return ErrNotReady
	}
	return s.engine.Do(ctx, func(ctx context.Context) error { return fn(ctx, s.clock.Now()) })
}

// CreateDelegation checks, keeps and applies a new delegation; the principal in ctx is its creator.
func (s *Service) CreateDelegation(ctx context.Context, req *orgsyncv1.CreateDelegationRequest) (*orgsyncv1.Delegation, error) {
	var created *orgsyncv1.Delegation
	err := s.onEngine(ctx, func(ctx context.Context, now time.Time) error {
		id, err := newID("d-")
		if err != nil {
			return err
		}
		d := &orgsyncv1.Delegation{
			DelegationId: id, DelegateWorkerId: strings.TrimSpace(req.GetDelegateWorkerId()),
			FromWorkerId: strings.TrimSpace(req.GetFromWorkerId()), FromOrgUnitId: strings.TrimSpace(req.GetFromOrgUnitId()),
			StartDate: req.GetStartDate(), EndDate: req.GetEndDate(), Reason: strings.TrimSpace(req.GetReason()),
			CreatedBy: decisions.PrincipalOf(ctx), CreatedAt: timestamppb.New(now),
		}
		if err := s.model.CheckDelegation(d, now); err != nil {
			return err
		}
		if err := s.save(ctx, delegationPrefix+id, d); err != nil {
			return err
		}
		s.delegations[id] = d
		changes, err := s.model.ApplyDelegation(d, now)
		if err != nil {
			return err
		}
		created = s.withState(d, now)
		return s.publish(ctx, changes, delegationCause(d, "delegation created", now))
	})
	return created, err
}

// EndDelegation ends a delegation now; the principal in ctx is recorded as who ended it. Ending
// one that has ended already changes nothing and returns it.
func (s *Service) EndDelegation(ctx context.Context, delegationID string) (*orgsyncv1.Delegation, error) {
	var ended *orgsyncv1.Delegation
	err := s.onEngine(ctx, func(ctx context.Context, now time.Time) error {
		current := s.delegations[delegationID]
		if current == nil {
			return fmt.Errorf("%w: no delegation %q", ErrNotFound, delegationID)
		}
		if s.model.DelegationState(current, now) == orgsyncv1.DelegationState_DELEGATION_STATE_ENDED {
			ended = s.withState(current, now)
			return nil
		}
		d := proto.CloneOf(current)
		d.EndedBy, d.EndedAt = decisions.PrincipalOf(ctx), timestamppb.New(now)
		if err := s.save(ctx, delegationPrefix+delegationID, d); err != nil {
			return err
		}
		s.delegations[delegationID] = d
		changes, err := s.model.ApplyDelegation(d, now)
		if err != nil {
			return err
		}
		ended = s.withState(d, now)
		cause := delegationCause(d, "delegation ended", now)
		cause.RequestedBy = d.GetEndedBy()
		return s.publish(ctx, changes, cause)
	})
	return ended, err
}

// ListDelegations lists the delegations to or from workerID (every one when empty), newest first.
func (s *Service) ListDelegations(ctx context.Context, workerID string) ([]*orgsyncv1.Delegation, error) {
	var out []*orgsyncv1.Delegation
	err := s.engine.Do(ctx, func(context.Context) error {
		if !s.loaded {
			return ErrNotReady
		}
		now := s.clock.Now()
		for _, d := range s.delegations {
			if workerID == "" || d.GetDelegateWorkerId() == workerID || d.GetFromWorkerId() == workerID {
				out = append(out, s.withState(d, now))
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].GetCreatedAt().AsTime(), out[j].GetCreatedAt().AsTime()
		return a.After(b) || a.Equal(b) && out[i].GetDelegationId() < out[j].GetDelegationId()
	})
	return out, err
}

func (s *Service) withState(d *orgsyncv1.Delegation, now time.Time) *orgsyncv1.Delegation {
	out := proto.CloneOf(d)
	out.State = s.model.DelegationState(d, now)
	return out
}

func delegationCause(d *orgsyncv1.Delegation, reason string, now time.Time) *orgsyncv1.Cause {
	return &orgsyncv1.Cause{Reason: reason, ComputedAt: timestamppb.New(now), DelegationId: d.GetDelegationId(),
		RequestedBy: d.GetCreatedBy(), GrantReason: d.GetReason()}
}

// RequestAccess records a helpdesk request, pending a second person's approval; the principal in
// ctx is the requester.
func (s *Service) RequestAccess(ctx context.Context, req *orgsyncv1.RequestAccessRequest) (*orgsyncv1.AccessRequest, error) {
	membership := req.GetKind() == orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_MEMBERSHIP
	lifetime := req.GetLifetimeMinutes()
	switch req.GetKind() {
	case orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_MEMBERSHIP, orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_PASSWORD_RESET:
		if lifetime != 0 {
			return nil, fmt.Errorf("%w: lifetime_minutes is only for a Temporary Access Pass", ErrInvalid)
		}
	case orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_ACCESS_PASS:
		if lifetime == 0 {
			lifetime = DefaultPassLifetime
		}
		if lifetime < minPassLifetime || lifetime > maxPassLifetime {
			return nil, fmt.Errorf("%w: lifetime_minutes must be between %d and %d", ErrInvalid, minPassLifetime, maxPassLifetime)
		}
	default:
		return nil, fmt.Errorf("%w: kind must be ACCESS_REQUEST_KIND_TEMPORARY_MEMBERSHIP, ACCESS_REQUEST_KIND_TEMPORARY_ACCESS_PASS or ACCESS_REQUEST_KIND_PASSWORD_RESET", ErrInvalid)
	}
	if !membership && (req.GetGroupKey() != "" || req.GetEndDate() != nil) {
		return nil, fmt.Errorf("%w: group_key and end_date are only for a temporary membership", ErrInvalid)
	}
	if strings.TrimSpace(req.GetReason()) == "" {
		return nil, fmt.Errorf("%w: reason is required (it goes to the audit trail)", ErrInvalid)
	}
	window := time.Duration(req.GetApprovalWindowSeconds()) * time.Second
	switch {
	case req.GetApprovalWindowSeconds() < 0 || window > maxApprovalWindow:
		return nil, fmt.Errorf("%w: approval_window_seconds must be between 0 and %d", ErrInvalid, int64(maxApprovalWindow/time.Second))
	case window == 0:
		window = DefaultApprovalWindow
	}
	var created *orgsyncv1.AccessRequest
	err := s.onEngine(ctx, func(ctx context.Context, now time.Time) error {
		workerID, groupKey := strings.TrimSpace(req.GetWorkerId()), strings.TrimSpace(req.GetGroupKey())
		check := func() error { return s.model.CheckMembershipRequest(workerID, groupKey, req.GetEndDate(), now) }
		if !membership {
			check = func() error { return s.model.CheckCredentialRequest(workerID, now) }
		}
		if err := check(); err != nil {
			return err
		}
		id, err := newID("r-")
		if err != nil {
			return err
		}
		r := &orgsyncv1.AccessRequest{
			RequestId: id, Kind: req.GetKind(), WorkerId: workerID, GroupKey: groupKey, EndDate: req.GetEndDate(),
			Reason: strings.TrimSpace(req.GetReason()), RequestedBy: decisions.PrincipalOf(ctx), RequestedAt: timestamppb.New(now),
			ExpiresAt: timestamppb.New(now.Add(window)), State: orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_PENDING,
			LifetimeMinutes: lifetime,
		}
		if err := s.save(ctx, requestPrefix+id, r); err != nil {
			return err
		}
		s.requests[id] = r
		created = proto.CloneOf(r)
		return nil
	})
	return created, err
}

// DecideAccessRequest approves or rejects a pending request as the principal in ctx, who must not
// be its requester. An approved temporary membership is applied at once and removed on its end
// date; an approved credential is desired at once, and entra-writer makes and delivers it once
// within CredentialWindow; a request past its expiry is EXPIRED and can no longer be decided.
func (s *Service) DecideAccessRequest(ctx context.Context, requestID string, decision orgsyncv1.Decision) (*orgsyncv1.AccessRequest, error) {
	if decision != orgsyncv1.Decision_DECISION_APPROVED && decision != orgsyncv1.Decision_DECISION_REJECTED {
		return nil, fmt.Errorf("%w: decision must be DECISION_APPROVED or DECISION_REJECTED", ErrInvalid)
	}
	var decided *orgsyncv1.AccessRequest
	err := s.onEngine(ctx, func(ctx context.Context, now time.Time) error {
		current := s.requests[requestID]
		if current == nil {
			return fmt.Errorf("%w: no access request %q", ErrNotFound, requestID)
		}
		if err := s.expire(ctx, current, now); err != nil {
			return err
		}
		current = s.requests[requestID]
		if state := current.GetState(); state != orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_PENDING {
			return fmt.Errorf("%w: request %s is %s", ErrNotPending, requestID, strings.ToLower(strings.TrimPrefix(state.String(), "ACCESS_REQUEST_STATE_")))
		}
		by := decisions.PrincipalOf(ctx)
		if samePrincipal(by, current.GetRequestedBy()) {
			return ErrOwnRequest
		}
		r := proto.CloneOf(current)
		r.DecidedBy, r.DecidedAt = by, timestamppb.New(now)
		r.State = orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_REJECTED
		if decision == orgsyncv1.Decision_DECISION_APPROVED {
			r.State = orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_APPROVED
		}
		if err := s.save(ctx, requestPrefix+requestID, r); err != nil {
			return err
		}
		s.requests[requestID] = r
		decided = proto.CloneOf(r)
		if r.GetState() != orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_APPROVED {
			return nil
		}
		var changes []*orgsyncv1.DesiredObject
		if c := helpdeskCredential(r); c != nil {
			changes = s.model.ApplyHelpdeskCredential(r.GetWorkerId(), c, now)
		} else {
			changes = s.model.ApplyMembershipGrant(membershipGrant(r), now)
		}
		return s.publish(ctx, changes, &orgsyncv1.Cause{Reason: "helpdesk request approved", ComputedAt: timestamppb.New(now),
			AccessRequestId: requestID, RequestedBy: r.GetRequestedBy(), ApprovedBy: by, GrantReason: r.GetReason()})
	})
	return decided, err
}

// ListAccessRequests lists the requests, newest first, pending ones past their expiry marked
// (and kept) as EXPIRED.
func (s *Service) ListAccessRequests(ctx context.Context) ([]*orgsyncv1.AccessRequest, error) {
	var out []*orgsyncv1.AccessRequest
	err := s.engine.Do(ctx, func(ctx context.Context) error {
		if !s.loaded {
			return ErrNotReady
		}
		now := s.clock.Now()
		for _, r := range s.requests {
			if err := s.expire(ctx, r, now); err != nil {
				return err
			}
		}
		for _, r := range s.requests {
			out = append(out, proto.CloneOf(r))
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].GetRequestedAt().AsTime(), out[j].GetRequestedAt().AsTime()
		return a.After(b) || a.Equal(b) && out[i].GetRequestId() < out[j].GetRequestId()
	})
	return out, err
}

// expire keeps a pending request past its expiry as EXPIRED, decided at its expiry.
func (s *Service) expire(ctx context.Context, r *orgsyncv1.AccessRequest, now time.Time) error {
	if r.GetState() != orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_PENDING || now.Before(r.GetExpiresAt().AsTime()) {
		return nil
	}
	expired := proto.CloneOf(r)
	expired.State, expired.DecidedAt = orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_EXPIRED, r.GetExpiresAt()
	if err := s.save(ctx, requestPrefix+r.GetRequestId(), expired); err != nil {
		return err
	}
	s.requests[r.GetRequestId()] = expired
	return nil
}

// samePrincipal says whether two principals are the same person or token.
func samePrincipal(a, b *orgsyncv1.Principal) bool {
	return a.GetSubject() == b.GetSubject() && a.GetIssuer() == b.GetIssuer() && a.GetTokenName() == b.GetTokenName()
}

// DueCause is the cause of the changes a due transition made at now: base, unless exactly one
// grant started or ended since the last due transition and every change is a membership of its
// worker — then the grant's cause (its id, requester, approver and reason), so that the AUDIT
// records of a delegation's start and end name it. It runs on the engine's goroutine.
func (s *Service) DueCause(changes []*orgsyncv1.DesiredObject, base *orgsyncv1.Cause, now time.Time) *orgsyncv1.Cause {
	from := s.lastDue
	s.lastDue = now
	transitions := s.model.GrantTransitions(from, now)
	if len(transitions) != 1 || len(changes) == 0 {
		return base
	}
	transition := transitions[0]
	for _, obj := range changes {
		if obj.GetMembership().GetMemberKey() != transition.WorkerID {
			return base
		}
	}
	cause := proto.CloneOf(base)
	switch d, r := s.delegations[transition.DelegationID], s.requests[transition.RequestID]; {
	case transition.DelegationID != "" && d != nil:
		cause.Reason = "delegation started"
		if transition.Ended {
			cause.Reason = "delegation ended"
		}
		cause.DelegationId, cause.RequestedBy, cause.GrantReason = d.GetDelegationId(), d.GetCreatedBy(), d.GetReason()
	case transition.RequestID != "" && r != nil:
		cause.Reason = "temporary access started"
		if transition.Ended {
			cause.Reason = "temporary access ended"
		}
		cause.AccessRequestId, cause.RequestedBy, cause.ApprovedBy, cause.GrantReason = r.GetRequestId(), r.GetRequestedBy(), r.GetDecidedBy(), r.GetReason()
	}
	return cause
}
