package query

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/access"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
)

// Access keeps delegations and helpdesk requests (access.Service); the principal in each call's
// context is the one recorded as creator, requester or approver.
type Access interface {
	CreateDelegation(ctx context.Context, req *orgsyncv1.CreateDelegationRequest) (*orgsyncv1.Delegation, error)
	ListDelegations(ctx context.Context, workerID string) ([]*orgsyncv1.Delegation, error)
	EndDelegation(ctx context.Context, delegationID string) (*orgsyncv1.Delegation, error)
	RequestAccess(ctx context.Context, req *orgsyncv1.RequestAccessRequest) (*orgsyncv1.AccessRequest, error)
	ListAccessRequests(ctx context.Context) ([]*orgsyncv1.AccessRequest, error)
	DecideAccessRequest(ctx context.Context, requestID string, decision orgsyncv1.Decision) (*orgsyncv1.AccessRequest, error)
}

var _ Access = (*access.Service)(nil)

// accessStatus turns an error of the access service into the RPC's status: bad input is
// InvalidArgument naming the problem, deciding one's own request PermissionDenied.
func accessStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, model.ErrInvalidGrant), errors.Is(err, access.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, access.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, access.ErrOwnRequest):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, access.ErrNotPending):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Unavailable, err.Error())
}

func (s *Server) access() (Access, error) {
	if s.Access == nil {
		return nil, status.Error(codes.Unimplemented, "delegations and helpdesk requests are not served here")
	}
	return s.Access, nil
}

// CreateDelegation gives a worker another worker's or a unit's memberships for a time.
func (s *Server) CreateDelegation(ctx context.Context, req *orgsyncv1.CreateDelegationRequest) (*orgsyncv1.CreateDelegationResponse, error) {
	a, err := s.access()
	if err != nil {
		return nil, err
	}
	d, err := a.CreateDelegation(ctx, req)
	if err != nil {
		return nil, accessStatus(err)
	}
	return &orgsyncv1.CreateDelegationResponse{Delegation: d}, nil
}

// ListDelegations lists the delegations.
func (s *Server) ListDelegations(ctx context.Context, req *orgsyncv1.ListDelegationsRequest) (*orgsyncv1.ListDelegationsResponse, error) {
	a, err := s.access()
	if err != nil {
		return nil, err
	}
	list, err := a.ListDelegations(ctx, req.GetWorkerId())
	if err != nil {
		return nil, accessStatus(err)
	}
	return &orgsyncv1.ListDelegationsResponse{Delegations: list}, nil
}

// EndDelegation ends a delegation now.
func (s *Server) EndDelegation(ctx context.Context, req *orgsyncv1.EndDelegationRequest) (*orgsyncv1.EndDelegationResponse, error) {
	a, err := s.access()
	if err != nil {
		return nil, err
	}
	if req.GetDelegationId() == "" {
		return nil, status.Error(codes.InvalidArgument, "delegation_id is required")
	}
	d, err := a.EndDelegation(ctx, req.GetDelegationId())
	if err != nil {
		return nil, accessStatus(err)
	}
	return &orgsyncv1.EndDelegationResponse{Delegation: d}, nil
}

// RequestAccess records a helpdesk request pending approval.
func (s *Server) RequestAccess(ctx context.Context, req *orgsyncv1.RequestAccessRequest) (*orgsyncv1.RequestAccessResponse, error) {
	a, err := s.access()
	if err != nil {
		return nil, err
	}
	r, err := a.RequestAccess(ctx, req)
	if err != nil {
		return nil, accessStatus(err)
	}
	return &orgsyncv1.RequestAccessResponse{Request: r}, nil
}

// ListAccessRequests lists the helpdesk requests.
func (s *Server) ListAccessRequests(ctx context.Context, _ *orgsyncv1.ListAccessRequestsRequest) (*orgsyncv1.ListAccessRequestsResponse, error) {
	a, err := s.access()
	if err != nil {
		return nil, err
	}
	list, err := a.ListAccessRequests(ctx)
	if err != nil {
		return nil, accessStatus(err)
	}
	for _, r := range list {
		s.withCredentialOutcome(r)
	}
	return &orgsyncv1.ListAccessRequestsResponse{Requests: list}, nil
}

// DecideAccessRequest approves or rejects a pending helpdesk request.
func (s *Server) DecideAccessRequest(ctx context.Context, req *orgsyncv1.DecideAccessRequestRequest) (*orgsyncv1.DecideAccessRequestResponse, error) {
	a, err := s.access()
	if err != nil {
		return nil, err
	}
	if req.GetRequestId() == "" {
		return nil, status.Error(codes.InvalidArgument, "request_id is required")
	}
	r, err := a.DecideAccessRequest(ctx, req.GetRequestId(), req.GetDecision())
	if err != nil {
		return nil, accessStatus(err)
	}
	return &orgsyncv1.DecideAccessRequestResponse{Request: r}, nil
}
