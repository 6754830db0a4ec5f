// Package query serves org-model's gRPC API (orgsync.v1.OrgModelService) from the model, the
// desired-state publisher, the mass-change guard and the writers' latest results.
package query

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
	"github.com/orgsync/orgsync/services/org-model/internal/desired"
	"github.com/orgsync/orgsync/services/org-model/internal/guard"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

// Results keeps the newest writer result per object path. It is safe for concurrent use.
type Results struct {
	mu     sync.RWMutex
	byPath map[string]*orgsyncv1.WriterResult
	// licenseErrors holds, by group path, the members in error the group's newest converged
	// result listed.
	licenseErrors map[string]groupLicenseErrors
	// lastWrite is the newest observed_at of a result that made a write: kept apart, since a
	// newer result of the same object may make none (a licensed group's members in error read
	// again, say) without undoing the write.
	lastWrite *timestamppb.Timestamp
	// helpdeskDeliveries are the helpdesk credentials' deliveries the results reported, by
	// request id (credentials.go).
	helpdeskDeliveries map[string]*orgsyncv1.CredentialDelivery
}

// NewResults returns an empty store.
func NewResults() *Results {
	return &Results{byPath: map[string]*orgsyncv1.WriterResult{}, licenseErrors: map[string]groupLicenseErrors{},
		helpdeskDeliveries: map[string]*orgsyncv1.CredentialDelivery{}}
}

// Record keeps result as the newest for the object at path.
func (r *Results) Record(path string, result *orgsyncv1.WriterResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byPath[path] = result
	r.recordLicenseErrors(path, result)
	r.recordHelpdeskDelivery(result)
	if len(result.GetOperations()) > 0 && (r.lastWrite == nil || result.GetObservedAt().AsTime().After(r.lastWrite.AsTime())) {
		r.lastWrite = result.GetObservedAt()
	}
}

// Get returns the newest result for the object at path.
func (r *Results) Get(path string) *orgsyncv1.WriterResult {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byPath[path]
}

// LastWrite is when the newest result that made a write was observed, or nil.
func (r *Results) LastWrite() *timestamppb.Timestamp {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.lastWrite
}

// Failed counts the objects whose newest result is a failure.
func (r *Results) Failed() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, result := range r.byPath {
		if result.GetOutcome() == orgsyncv1.Outcome_OUTCOME_FAILED {
			n++
		}
	}
	return n
}

// Deps is what the query API reads and the one action it takes (approving, which publishes).
type Deps struct {
	Model     *model.Model
	Publisher *desired.Publisher
	Results   *Results
	Guard     *guard.Guard
	Clock     clock.Clock
	// Approve publishes a pending batch and returns the batch as decided (with who approved it,
	// the principal in ctx) and how many objects it published.
	Approve func(ctx context.Context, batchID string) (*orgsyncv1.PendingBatch, int, error)
	// Reject drops a pending batch and returns the batch as decided and how many changes it dropped.
	Reject func(ctx context.Context, batchID string) (*orgsyncv1.PendingBatch, int, error)
	// Decided lists the most recent decisions, newest first; nil lists none.
	Decided func() []*orgsyncv1.PendingBatch
	// Ready says whether the replay at start is done.
	Ready func() bool
	// Audit lists the directory writes recorded on stream AUDIT.
	Audit func(ctx context.Context, req *orgsyncv1.ListAuditRequest) (*orgsyncv1.ListAuditResponse, error)
	// Streams reports orgsync's streams and their durable consumers; nil leaves them out of status.
	Streams func(ctx context.Context) ([]*orgsyncv1.StreamStatus, error)
	// Services reports the running service instances; nil leaves them out of status.
	Services func(ctx context.Context) ([]*orgsyncv1.ServiceStatus, error)
	// PlanTimeout bounds every Plan (PLAN_TIMEOUT); zero is DefaultPlanTimeout.
	PlanTimeout time.Duration
	// Access keeps delegations and helpdesk requests; nil answers their methods Unimplemented.
	Access Access
}

// DefaultPlanTimeout is how long a plan may run when Deps.PlanTimeout is not set.
const DefaultPlanTimeout = 30 * time.Second

// Server implements OrgModelService.
type Server struct {
	orgsyncv1grpc.UnimplementedOrgModelServiceServer
	Deps
	// policyPlan is held by the one plan of a whole policy that may run at a time: it recomputes
	// every worker and group, so two would take the CPU from the engine.
	policyPlan sync.Mutex
	// planning, when set (by tests), is called inside a plan once it may run.
	planning func(ctx context.Context)
}

var _ orgsyncv1grpc.OrgModelServiceServer = (*Server)(nil)

// NewServer returns the query API over deps.
func NewServer(deps Deps) *Server { return &Server{Deps: deps} }

// GetWorker returns the worker's HR record and, per target, the desired account, its revision, its
// groups and the writer's last result.
func (s *Server) GetWorker(_ context.Context, req *orgsyncv1.GetWorkerRequest) (*orgsyncv1.GetWorkerResponse, error) {
	if strings.TrimSpace(req.GetWorkerId()) == "" {
		return nil, status.Error(codes.InvalidArgument, "worker_id is required")
	}
	info, ok := s.Model.Worker(req.GetWorkerId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no worker %q", req.GetWorkerId())
	}
	resp := &orgsyncv1.GetWorkerResponse{Worker: info.Record, Phase: info.Phase.Proto()}
	if !info.NextChange.IsZero() {
		resp.NextChange = timestamppb.New(info.NextChange)
	}
	for i, record := range info.Pending {
		resp.Scheduled = append(resp.Scheduled, &orgsyncv1.ScheduledRecord{EffectiveAt: timestamppb.New(info.PendingAt[i]), Worker: record})
	}
	if resp.Worker == nil && len(info.Pending) > 0 {
		resp.Worker = info.Pending[0]
	}
	for _, target := range s.Model.Targets() {
		path := subject.UserPath(target, req.GetWorkerId())
		revision, _ := s.Publisher.Revision(path)
		account := &orgsyncv1.WorkerAccount{
			Target:     target,
			Desired:    s.Model.Object(model.UserRef(target, req.GetWorkerId())).GetUser(),
			Revision:   revision,
			GroupKeys:  s.Model.GroupKeysOf(target, req.GetWorkerId()),
			LastResult: s.Results.Get(path),
		}
		if problem, failed := s.Model.FailedIdentifiers(target, req.GetWorkerId()); failed {
			account.IdentifierProblem = identifierProblem(problem)
		}
		account.LicenseErrors = s.Results.workerLicenseErrors(target, req.GetWorkerId(), account.GetLastResult().GetObjectId(), account.GetGroupKeys())
		resp.Accounts = append(resp.Accounts, account)
	}
	return resp, nil
}

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func pageSize(n int32) (int, error) {
	if n < 0 || n > maxPageSize {
		return 0, status.Errorf(codes.InvalidArgument, "page_size must be between 0 and %d", maxPageSize)
	}
	if n == 0 {
		return defaultPageSize, nil
	}
	return int(n), nil
}

// ListGroupMembers pages through a group's desired direct members in key order; the page token
// is the last member key of the previous page.
func (s *Server) ListGroupMembers(_ context.Context, req *orgsyncv1.ListGroupMembersRequest) (*orgsyncv1.ListGroupMembersResponse, error) {
	if req.GetTarget() == orgsyncv1.Target_TARGET_UNSPECIFIED {
		return nil, status.Error(codes.InvalidArgument, "target is required")
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	group, members, ok := s.Model.GroupMembers(req.GetTarget(), req.GetGroupKey())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no group %q", req.GetGroupKey())
	}
	start := sort.Search(len(members), func(i int) bool { return members[i].Key > req.GetPageToken() })
	end := min(start+size, len(members))
	resp := &orgsyncv1.ListGroupMembersResponse{Group: group}
	resp.LicenseErrors, resp.LicenseErrorsObservedAt = s.Results.GroupLicenseErrors(subject.GroupPath(req.GetTarget(), req.GetGroupKey()))
	for _, member := range members[start:end] {
		resp.Members = append(resp.Members, &orgsyncv1.GroupMember{MemberKind: member.Kind, MemberKey: member.Key, DisplayName: member.DisplayName})
	}
	if end < len(members) {
		resp.NextPageToken = members[end-1].Key
	}
	return resp, nil
}

// ListWorkers pages through the workers in id order.
func (s *Server) ListWorkers(_ context.Context, req *orgsyncv1.ListWorkersRequest) (*orgsyncv1.ListWorkersResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	ids, more := s.Model.WorkerIDs(req.GetPageToken(), req.GetOrgUnitId(), size)
	resp := &orgsyncv1.ListWorkersResponse{}
	for _, id := range ids {
		info, _ := s.Model.Worker(id)
		user := s.Model.Object(model.UserRef(orgsyncv1.Target_TARGET_ENTRA, id)).GetUser()
		resp.Workers = append(resp.Workers, &orgsyncv1.WorkerSummary{
			WorkerId: id, DisplayName: user.GetDisplayName(), OrgUnitId: info.Record.GetOrgUnitId(), JobTitle: info.Record.GetJobTitle(),
			Phase: info.Phase.Proto(), UserPrincipalName: user.GetUserPrincipalName(), AccountEnabled: user.GetAccountEnabled(),
		})
	}
	if more && len(ids) > 0 {
		resp.NextPageToken = ids[len(ids)-1]
	}
	return resp, nil
}

// GetOrgUnit returns one unit with its path, children and groups.
func (s *Server) GetOrgUnit(_ context.Context, req *orgsyncv1.GetOrgUnitRequest) (*orgsyncv1.GetOrgUnitResponse, error) {
	unit, children, path, ok := s.Model.Unit(req.GetOrgUnitId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no org unit %q", req.GetOrgUnitId())
	}
	resp := &orgsyncv1.GetOrgUnitResponse{Unit: unit, Path: path, ChildOrgUnitIds: children, WorkerCount: int32(s.Model.UnitWorkerCount(unit.GetOrgUnitId()))}
	for _, key := range []string{model.GroupKey(unit.GetOrgUnitId()), model.RollupGroupKey(unit.GetOrgUnitId())} {
		if s.Model.Object(model.GroupRef(orgsyncv1.Target_TARGET_ENTRA, key)) != nil {
			resp.GroupKeys = append(resp.GroupKeys, key)
		}
	}
	return resp, nil
}

// GetOrgTree returns the tree below the roots or one unit.
func (s *Server) GetOrgTree(_ context.Context, req *orgsyncv1.GetOrgTreeRequest) (*orgsyncv1.GetOrgTreeResponse, error) {
	roots, cycles := s.Model.Roots()
	if req.GetRootOrgUnitId() != "" {
		if _, _, _, ok := s.Model.Unit(req.GetRootOrgUnitId()); !ok {
			return nil, status.Errorf(codes.NotFound, "no org unit %q", req.GetRootOrgUnitId())
		}
		roots = []string{req.GetRootOrgUnitId()}
	}
	resp := &orgsyncv1.GetOrgTreeResponse{CycleOrgUnitIds: cycles}
	seen := map[string]bool{}
	var node func(id string, depth int) *orgsyncv1.OrgTreeNode
	node = func(id string, depth int) *orgsyncv1.OrgTreeNode {
		seen[id] = true
		unit, children, _, _ := s.Model.Unit(id)
		n := &orgsyncv1.OrgTreeNode{OrgUnitId: id, Name: unit.GetName(), ManagerWorkerId: unit.GetManagerWorkerId(), WorkerCount: int32(s.Model.UnitWorkerCount(id))}
		if req.GetMaxDepth() > 0 && int32(depth) >= req.GetMaxDepth() {
			return n
		}
		for _, child := range children {
			if !seen[child] {
				n.Children = append(n.Children, node(child, depth+1))
			}
		}
		return n
	}
	for _, root := range roots {
		resp.Roots = append(resp.Roots, node(root, 1))
	}
	return resp, nil
}

// ExplainMembership says why a worker is in a group.
func (s *Server) ExplainMembership(_ context.Context, req *orgsyncv1.ExplainMembershipRequest) (*orgsyncv1.ExplainMembershipResponse, error) {
	if req.GetGroupKey() == "" || req.GetWorkerId() == "" {
		return nil, status.Error(codes.InvalidArgument, "group_key and worker_id are required")
	}
	target := req.GetTarget()
	if target == orgsyncv1.Target_TARGET_UNSPECIFIED {
		target = orgsyncv1.Target_TARGET_ENTRA
	}
	if _, _, ok := s.Model.GroupMembers(target, req.GetGroupKey()); !ok {
		return nil, status.Errorf(codes.NotFound, "no group %q", req.GetGroupKey())
	}
	e := s.Model.Explain(target, req.GetGroupKey(), req.GetWorkerId())
	return &orgsyncv1.ExplainMembershipResponse{Member: e.Member, GroupPath: e.Path, Reason: e.Reason, ReasonKind: e.Kind, Grant: e.Grant}, nil
}

// ErrPlanTimeout says a plan ran longer than its timeout (PLAN_TIMEOUT).
var ErrPlanTimeout = errors.New("plan timeout")

// Plan computes, on a copy of the model, the changes HR events or a policy would make, compared
// with what DIRECTORY holds. A plan of a whole policy runs one at a time (another one meanwhile
// gets ResourceExhausted); every plan ends at its timeout or when its caller goes away, and the
// first expression over its cost limit or evaluation timeout ends it with InvalidArgument.
func (s *Server) Plan(ctx context.Context, req *orgsyncv1.PlanRequest) (*orgsyncv1.PlanResponse, error) {
	at := s.Clock.Now()
	if req.GetAt() != nil {
		at = req.GetAt().AsTime()
	}
	for i, event := range req.GetEvents() {
		if event.GetPayload() == nil {
			return nil, status.Errorf(codes.InvalidArgument, "events[%d] has no payload", i)
		}
	}
	var pol *policy.Policy
	if req.GetPolicyYaml() != "" {
		var err error
		if pol, err = policy.ParseUntrusted("policy_yaml", []byte(req.GetPolicyYaml())); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if !s.policyPlan.TryLock() {
			return nil, status.Error(codes.ResourceExhausted, "another plan of a whole policy is running; plans of a policy run one at a time, try again when it ends")
		}
		defer s.policyPlan.Unlock()
	}
	timeout := s.PlanTimeout
	if timeout <= 0 {
		timeout = DefaultPlanTimeout
	}
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w: the plan ran longer than %s (PLAN_TIMEOUT)", ErrPlanTimeout, timeout))
	defer cancelTimeout()
	ctx, stop := policy.StopOnLimit(ctx)
	defer stop()
	if s.planning != nil {
		s.planning(ctx)
	}

	var planned *model.Model
	if pol != nil {
		planned = s.Model.WithPolicyContext(ctx, pol, at)
	} else {
		planned = s.Model.CloneContext(ctx)
		planned.Advance(at)
	}
	for _, event := range req.GetEvents() {
		if ctx.Err() != nil {
			break
		}
		planned.Apply(event, at)
	}
	if err := planStopped(ctx); err != nil {
		return nil, err
	}
	resp := &orgsyncv1.PlanResponse{}
	for _, change := range model.Diff(planned.Objects(), s.Publisher.Live()) {
		path := guard.PathOf(change)
		s.addPlanned(resp, path, s.Publisher.Last(path), change)
	}
	if err := planStopped(ctx); err != nil {
		return nil, err
	}
	return resp, nil
}

// planStopped turns the reason a plan's context ended into the RPC's status, or nil.
func planStopped(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, policy.ErrCostLimit), errors.Is(cause, policy.ErrEvalTimeout):
		return status.Errorf(codes.InvalidArgument, "plan stopped: %v", cause)
	case errors.Is(cause, ErrPlanTimeout):
		return status.Error(codes.DeadlineExceeded, cause.Error())
	case errors.Is(cause, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "plan stopped: the caller's deadline passed")
	}
	return status.Error(codes.Canceled, "plan stopped: the caller went away")
}

// addPlanned adds one change of model.Diff to resp, with what it does to the published state.
func (s *Server) addPlanned(resp *orgsyncv1.PlanResponse, path string, before, after *orgsyncv1.DesiredObject) {
	change := &orgsyncv1.PlannedChange{Path: path, Before: before, After: after}
	switch effect := guard.Classify(before, after); {
	case before == nil || before.GetTombstone():
		change.Action = orgsyncv1.ChangeAction_CHANGE_ACTION_CREATE
	case effect == guard.Disable && !after.GetTombstone():
		change.Action = orgsyncv1.ChangeAction_CHANGE_ACTION_DISABLE
		resp.Disables++
	case after.GetTombstone():
		change.Action = orgsyncv1.ChangeAction_CHANGE_ACTION_DELETE
		if effect == guard.Disable {
			resp.Disables++
		} else {
			resp.Removals++
		}
	default:
		change.Action = orgsyncv1.ChangeAction_CHANGE_ACTION_UPDATE
	}
	resp.Changes = append(resp.Changes, change)
}

// ListPending lists the batches the guard holds.
func (s *Server) ListPending(context.Context, *orgsyncv1.ListPendingRequest) (*orgsyncv1.ListPendingResponse, error) {
	resp := &orgsyncv1.ListPendingResponse{}
	for _, b := range s.Guard.Pending() {
		batch := &orgsyncv1.PendingBatch{BatchId: b.ID, CreatedAt: timestamppb.New(b.CreatedAt), Reason: b.Reason, Cause: b.Cause,
			Disables: int32(b.Disables), Removals: int32(b.Removals)}
		paths := make([]string, 0, len(b.Objects))
		for path := range b.Objects {
			paths = append(paths, path)
		}
		sort.Strings(paths)
		for _, path := range paths {
			batch.Objects = append(batch.Objects, b.Objects[path])
		}
		resp.Batches = append(resp.Batches, batch)
	}
	if s.Decided != nil {
		resp.Decided = s.Decided()
	}
	return resp, nil
}

// Approve publishes a held batch.
func (s *Server) Approve(ctx context.Context, req *orgsyncv1.ApproveRequest) (*orgsyncv1.ApproveResponse, error) {
	batch, n, err := s.Deps.Approve(ctx, req.GetBatchId())
	if errors.Is(err, guard.ErrNoBatch) {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &orgsyncv1.ApproveResponse{Published: int32(n), Batch: batch}, nil
}

// Reject drops a held batch.
func (s *Server) Reject(ctx context.Context, req *orgsyncv1.RejectRequest) (*orgsyncv1.RejectResponse, error) {
	batch, n, err := s.Deps.Reject(ctx, req.GetBatchId())
	if errors.Is(err, guard.ErrNoBatch) {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &orgsyncv1.RejectResponse{Dropped: int32(n), Batch: batch}, nil
}

// ListAudit lists recorded directory writes with their causes.
func (s *Server) ListAudit(ctx context.Context, req *orgsyncv1.ListAuditRequest) (*orgsyncv1.ListAuditResponse, error) {
	if s.Audit == nil {
		return nil, status.Error(codes.Unimplemented, "no audit reader")
	}
	return s.Audit(ctx, req)
}

// GetStatus reports org-model's state, the streams' sizes and their consumers' lag.
func (s *Server) GetStatus(ctx context.Context, _ *orgsyncv1.GetStatusRequest) (*orgsyncv1.GetStatusResponse, error) {
	counts := s.Model.Counts()
	resp := &orgsyncv1.GetStatusResponse{
		CaughtUp: s.Ready(), OrgUnits: int32(counts.Units), Workers: int32(counts.Workers), DesiredObjects: int32(counts.Objects),
		PendingBatches: int32(len(s.Guard.Pending())), PolicyFile: s.Model.Policy().File, FailedWrites: int32(s.Results.Failed()),
	}
	if next := s.Model.NextDue(); !next.IsZero() {
		resp.NextTransition = timestamppb.New(next)
	}
	for _, p := range s.Model.Problems() {
		resp.Problems = append(resp.Problems, &orgsyncv1.StatusProblem{Subject: p.Subject, Reason: p.Reason})
	}
	for _, p := range s.Model.IdentifierProblems() {
		resp.IdentifierProblems = append(resp.IdentifierProblems, identifierProblem(p))
	}
	resp.LastWrite = s.Results.LastWrite()
	if s.Streams != nil {
		streams, err := s.Streams(ctx)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "streams: %v", err)
		}
		resp.Streams = streams
		for _, st := range streams {
			if st.GetStream() == stream.Audit {
				resp.AuditRecords = st.GetMessages()
			}
		}
	}
	if s.Services != nil {
		services, err := s.Services(ctx)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "service statuses: %v", err)
		}
		resp.Services = services
	}
	return resp, nil
}

func identifierProblem(p model.IdentifierProblem) *orgsyncv1.IdentifierProblem {
	return &orgsyncv1.IdentifierProblem{WorkerId: p.WorkerID, Target: p.Target, Property: p.Property, Reason: p.Reason}
}
