package service

import (
	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
)

// GRPCRules is the role each method of org-model's query API requires: reading (including a
// plan, which changes nothing) needs viewer, deciding on a held batch needs approver. A method
// added to the proto without a rule here stops the server at start.
var GRPCRules = auth.Rules{
	orgsyncv1grpc.OrgModelService_GetWorker_FullMethodName:         auth.Viewer,
	orgsyncv1grpc.OrgModelService_ListGroupMembers_FullMethodName:  auth.Viewer,
	orgsyncv1grpc.OrgModelService_ListWorkers_FullMethodName:       auth.Viewer,
	orgsyncv1grpc.OrgModelService_GetOrgUnit_FullMethodName:        auth.Viewer,
	orgsyncv1grpc.OrgModelService_GetOrgTree_FullMethodName:        auth.Viewer,
	orgsyncv1grpc.OrgModelService_ExplainMembership_FullMethodName: auth.Viewer,
	orgsyncv1grpc.OrgModelService_Plan_FullMethodName:              auth.Viewer,
	orgsyncv1grpc.OrgModelService_ListPending_FullMethodName:       auth.Viewer,
	orgsyncv1grpc.OrgModelService_GetStatus_FullMethodName:         auth.Viewer,
	orgsyncv1grpc.OrgModelService_ListAudit_FullMethodName:         auth.Viewer,
	orgsyncv1grpc.OrgModelService_Approve_FullMethodName:           auth.Approver,
	orgsyncv1grpc.OrgModelService_Reject_FullMethodName:            auth.Approver,
	// Delegations and helpdesk requests: listing reads; creating, ending and requesting act on
	// the running system (operator); deciding a request is an approval (approver).
	orgsyncv1grpc.OrgModelService_ListDelegations_FullMethodName:     auth.Viewer,
	orgsyncv1grpc.OrgModelService_ListAccessRequests_FullMethodName:  auth.Viewer,
	orgsyncv1grpc.OrgModelService_CreateDelegation_FullMethodName:    auth.Operator,
	orgsyncv1grpc.OrgModelService_EndDelegation_FullMethodName:       auth.Operator,
	orgsyncv1grpc.OrgModelService_RequestAccess_FullMethodName:       auth.Operator,
	orgsyncv1grpc.OrgModelService_DecideAccessRequest_FullMethodName: auth.Approver,
}
