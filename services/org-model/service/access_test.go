package service

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
)

// call invokes one method of the query API with an empty (or minimal) request.
type call func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error

// methodCalls holds one call per method of OrgModelService; TestEveryMethodIsCalled keeps it
// complete.
var methodCalls = map[string]call{
	orgsyncv1grpc.OrgModelService_GetWorker_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.GetWorker(ctx, &orgsyncv1.GetWorkerRequest{WorkerId: "E1"})
		return err
	},
	orgsyncv1grpc.OrgModelService_ListGroupMembers_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.ListGroupMembers(ctx, &orgsyncv1.ListGroupMembersRequest{GroupKey: "unit-sales"})
		return err
	},
	orgsyncv1grpc.OrgModelService_ListWorkers_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.ListWorkers(ctx, &orgsyncv1.ListWorkersRequest{})
		return err
	},
	orgsyncv1grpc.OrgModelService_GetOrgUnit_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.GetOrgUnit(ctx, &orgsyncv1.GetOrgUnitRequest{OrgUnitId: "sales"})
		return err
	},
	orgsyncv1grpc.OrgModelService_GetOrgTree_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.GetOrgTree(ctx, &orgsyncv1.GetOrgTreeRequest{})
		return err
	},
	orgsyncv1grpc.OrgModelService_ExplainMembership_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.ExplainMembership(ctx, &orgsyncv1.ExplainMembershipRequest{GroupKey: "unit-sales", WorkerId: "E1"})
		return err
	},
	orgsyncv1grpc.OrgModelService_Plan_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.Plan(ctx, &orgsyncv1.PlanRequest{})
		return err
	},
	orgsyncv1grpc.OrgModelService_ListPending_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.ListPending(ctx, &orgsyncv1.ListPendingRequest{})
		return err
	},
	orgsyncv1grpc.OrgModelService_Approve_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.Approve(ctx, &orgsyncv1.ApproveRequest{BatchId: "b-none"})
		return err
	},
	orgsyncv1grpc.OrgModelService_Reject_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.Reject(ctx, &orgsyncv1.RejectRequest{BatchId: "b-none"})
		return err
	},
	orgsyncv1grpc.OrgModelService_GetStatus_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.GetStatus(ctx, &orgsyncv1.GetStatusRequest{})
		return err
	},
	orgsyncv1grpc.OrgModelService_ListAudit_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.ListAudit(ctx, &orgsyncv1.ListAuditRequest{WorkerId: "E1"})
		return err
	},
	orgsyncv1grpc.OrgModelService_CreateDelegation_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.CreateDelegation(ctx, &orgsyncv1.CreateDelegationRequest{DelegateWorkerId: "E2", FromWorkerId: "E1"})
		return err
	},
	orgsyncv1grpc.OrgModelService_ListDelegations_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.ListDelegations(ctx, &orgsyncv1.ListDelegationsRequest{})
		return err
	},
	orgsyncv1grpc.OrgModelService_EndDelegation_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.EndDelegation(ctx, &orgsyncv1.EndDelegationRequest{DelegationId: "d-none"})
		return err
	},
	orgsyncv1grpc.OrgModelService_RequestAccess_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.RequestAccess(ctx, &orgsyncv1.RequestAccessRequest{WorkerId: "E1"})
		return err
	},
	orgsyncv1grpc.OrgModelService_ListAccessRequests_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.ListAccessRequests(ctx, &orgsyncv1.ListAccessRequestsRequest{})
		return err
	},
	orgsyncv1grpc.OrgModelService_DecideAccessRequest_FullMethodName: func(ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient) error {
		_, err := api.DecideAccessRequest(ctx, &orgsyncv1.DecideAccessRequestRequest{RequestId: "r-none", Decision: orgsyncv1.Decision_DECISION_APPROVED})
		return err
	},
}

func TestEveryMethodIsCalled(t *testing.T) {
	for _, method := range orgsyncv1grpc.OrgModelService_ServiceDesc.Methods {
		name := "/" + orgsyncv1grpc.OrgModelService_ServiceDesc.ServiceName + "/" + method.MethodName
		if _, ok := methodCalls[name]; !ok {
			t.Errorf("%s has no call in methodCalls", name)
		}
		if _, ok := GRPCRules[name]; !ok {
			t.Errorf("%s has no rule in GRPCRules", name)
		}
	}
}

// TestQueryAPIAccess calls every method of the query API without credentials, with a valid
// token that lacks the role, and with the role the method needs.
func TestQueryAPIAccess(t *testing.T) {
	h := newHarness(t)
	svc, _ := h.start(t)
	anonymous := h.clientWith(t, svc, "")
	noRole := h.clientWith(t, svc, h.issuer.Token("someone"))
	expired := h.issuer.Claims("someone", auth.Admin)
	expired["exp"] = 1
	expiredClient := h.clientWith(t, svc, h.issuer.Sign(expired))
	byRole := map[auth.Role]orgsyncv1grpc.OrgModelServiceClient{}
	for _, role := range auth.Roles {
		byRole[role] = h.clientWith(t, svc, h.tokens[role])
	}
	// below names a role that does not include the one required.
	below := map[auth.Role]auth.Role{auth.Viewer: "", auth.Approver: auth.Operator, auth.Operator: auth.Approver}

	methods := make([]string, 0, len(methodCalls))
	for method := range methodCalls {
		methods = append(methods, method)
	}
	slices.Sort(methods)
	for _, method := range methods {
		invoke, required := methodCalls[method], GRPCRules[method]
		t.Run(method, func(t *testing.T) {
			if code := status.Code(invoke(t.Context(), anonymous)); code != codes.Unauthenticated {
				t.Errorf("without credentials: %s, want Unauthenticated", code)
			}
			if code := status.Code(invoke(t.Context(), expiredClient)); code != codes.Unauthenticated {
				t.Errorf("with an expired token: %s, want Unauthenticated", code)
			}
			if code := status.Code(invoke(t.Context(), noRole)); code != codes.PermissionDenied {
				t.Errorf("with a token holding no role: %s, want PermissionDenied", code)
			}
			if other := below[required]; other != "" {
				if code := status.Code(invoke(t.Context(), byRole[other])); code != codes.PermissionDenied {
					t.Errorf("as %s (needs %s): %s, want PermissionDenied", other, required, code)
				}
				if code := status.Code(invoke(t.Context(), byRole[auth.Viewer])); code != codes.PermissionDenied {
					t.Errorf("as viewer (needs %s): %s, want PermissionDenied", required, code)
				}
			}
			for _, role := range []auth.Role{required, auth.Admin} {
				code := status.Code(invoke(t.Context(), byRole[role]))
				if code == codes.Unauthenticated || code == codes.PermissionDenied {
					t.Errorf("as %s: %s, want the call let through", role, code)
				}
			}
		})
	}
}
