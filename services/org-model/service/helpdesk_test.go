package service

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
)

// TestHelpdeskMembershipNeedsASecondApprover asks, as an admin, for E2's temporary membership
// of unit-sales: the admin's own approval is refused, an approver's is taken; the membership is
// published with requester, approver and reason in its cause (copied by the writers into every
// AUDIT record), survives a restart, and is removed on its end date.
func TestHelpdeskMembershipNeedsASecondApprover(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	fake := clock.NewFake(t0)
	accessCompany(t, h, t0)
	policyOption := withPolicy(t, "upnDomains: [corp.example.com]\ntimezone: UTC\n")
	svc, stop := h.start(t, policyOption, withClock(fake))
	requester := h.clientWith(t, svc, h.tokens[auth.Admin])

	asked, err := requester.RequestAccess(t.Context(), &orgsyncv1.RequestAccessRequest{
		Kind: orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_MEMBERSHIP, WorkerId: "E2", GroupKey: "unit-sales",
		EndDate: hrDate(t0.AddDate(0, 0, 3)), Reason: "ticket INC-4711: quarter-end reports",
	})
	if err != nil {
		t.Fatal(err)
	}
	request := asked.GetRequest()
	if request.GetState() != orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_PENDING || !proto3Equal(request.GetRequestedBy(), tokenPrincipal(auth.Admin)) ||
		!request.GetExpiresAt().AsTime().Equal(t0.Add(24*time.Hour)) {
		t.Errorf("requested: %v", request)
	}
	if got, _ := h.membership(t, "unit-sales", "E2"); got != "absent" {
		t.Fatalf("a pending request changed DIRECTORY: %s", got)
	}

	_, err = requester.DecideAccessRequest(t.Context(), &orgsyncv1.DecideAccessRequestRequest{RequestId: request.GetRequestId(), Decision: orgsyncv1.Decision_DECISION_APPROVED})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "cannot approve or reject their own request") {
		t.Fatalf("the requester's own approval: %v, want PermissionDenied naming why", err)
	}
	if got, _ := h.membership(t, "unit-sales", "E2"); got != "absent" {
		t.Fatalf("the refused approval changed DIRECTORY: %s", got)
	}

	approver := h.client(t, svc)
	decided, err := approver.DecideAccessRequest(t.Context(), &orgsyncv1.DecideAccessRequestRequest{RequestId: request.GetRequestId(), Decision: orgsyncv1.Decision_DECISION_APPROVED})
	if err != nil {
		t.Fatal(err)
	}
	approverPrincipal := &orgsyncv1.Principal{Subject: approverSubject, Issuer: h.auth.Issuer}
	if decided.GetRequest().GetState() != orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_APPROVED || !proto3Equal(decided.GetRequest().GetDecidedBy(), approverPrincipal) {
		t.Errorf("decided: %v", decided.GetRequest())
	}
	cause := eventuallyMembership(t, h, "unit-sales", "E2", "member")
	want := &orgsyncv1.Cause{Reason: "helpdesk request approved", AccessRequestId: request.GetRequestId(), RequestedBy: tokenPrincipal(auth.Admin),
		ApprovedBy: approverPrincipal, GrantReason: "ticket INC-4711: quarter-end reports"}
	if diff := cmp.Diff(want, cause, protocmp.Transform(), protocmp.IgnoreFields(&orgsyncv1.Cause{}, "computed_at")); diff != "" {
		t.Errorf("cause of the temporary membership (-want +got):\n%s", diff)
	}
	explain, err := approver.ExplainMembership(t.Context(), &orgsyncv1.ExplainMembershipRequest{GroupKey: "unit-sales", WorkerId: "E2"})
	if err != nil || explain.GetReasonKind() != orgsyncv1.MembershipReason_MEMBERSHIP_REASON_TEMPORARY_ACCESS ||
		explain.GetReason() != "temporary access until 2026-03-05 (helpdesk request "+request.GetRequestId()+")" {
		t.Errorf("explain: %v, %v", explain, err)
	}
	if _, err := approver.DecideAccessRequest(t.Context(), &orgsyncv1.DecideAccessRequestRequest{RequestId: request.GetRequestId(), Decision: orgsyncv1.Decision_DECISION_REJECTED}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("deciding a decided request: %v, want FailedPrecondition", err)
	}

	stop()
	svc, _ = h.start(t, policyOption, withClock(fake))
	if got, _ := h.membership(t, "unit-sales", "E2"); got != "member" {
		t.Fatalf("after a restart the temporary membership is %s", got)
	}
	fake.Set(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC))
	cause = eventuallyMembership(t, h, "unit-sales", "E2", "removed")
	want.Reason = "temporary access ended"
	if diff := cmp.Diff(want, cause, protocmp.Transform(), protocmp.IgnoreFields(&orgsyncv1.Cause{}, "computed_at")); diff != "" {
		t.Errorf("cause of the removal on the end date (-want +got):\n%s", diff)
	}
	list, err := h.clientWith(t, svc, h.tokens[auth.Viewer]).ListAccessRequests(t.Context(), &orgsyncv1.ListAccessRequestsRequest{})
	if err != nil || len(list.GetRequests()) != 1 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if got := list.GetRequests()[0]; got.GetReason() != "ticket INC-4711: quarter-end reports" || !proto3Equal(got.GetRequestedBy(), tokenPrincipal(auth.Admin)) ||
		!proto3Equal(got.GetDecidedBy(), approverPrincipal) {
		t.Errorf("listed request lacks requester, approver or reason: %v", got)
	}
}

func TestHelpdeskRequestExpiresUnapproved(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	fake := clock.NewFake(t0)
	accessCompany(t, h, t0)
	svc, _ := h.start(t, withPolicy(t, "upnDomains: [corp.example.com]\ntimezone: UTC\n"), withClock(fake))
	operator := h.clientWith(t, svc, h.tokens[auth.Operator])
	valid := func() *orgsyncv1.RequestAccessRequest {
		return &orgsyncv1.RequestAccessRequest{Kind: orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_MEMBERSHIP, WorkerId: "E2", GroupKey: "unit-sales",
			EndDate: hrDate(t0.AddDate(0, 0, 3)), Reason: "ticket", ApprovalWindowSeconds: 3600}
	}
	for name, tc := range map[string]struct {
		edit func(*orgsyncv1.RequestAccessRequest)
		want string
	}{
		"unknown worker": {func(r *orgsyncv1.RequestAccessRequest) { r.WorkerId = "E404" }, `worker_id "E404" is not a worker orgsync knows`},
		"unknown group":  {func(r *orgsyncv1.RequestAccessRequest) { r.GroupKey = "unit-nowhere" }, `group_key "unit-nowhere" is not a group orgsync manages`},
		"end passed":     {func(r *orgsyncv1.RequestAccessRequest) { r.EndDate = hrDate(t0) }, "end_date 2026-03-02 has passed"},
		"no reason":      {func(r *orgsyncv1.RequestAccessRequest) { r.Reason = "" }, "reason is required"},
		"password reset": {func(r *orgsyncv1.RequestAccessRequest) {
			r.Kind = orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_UNSPECIFIED
		}, "kind must be"},
	} {
		t.Run(name, func(t *testing.T) {
			req := valid()
			tc.edit(req)
			_, err := operator.RequestAccess(t.Context(), req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Errorf("%v, want InvalidArgument naming %q", err, tc.want)
			}
		})
	}

	asked, err := operator.RequestAccess(t.Context(), valid())
	if err != nil {
		t.Fatal(err)
	}
	fake.Advance(61 * time.Minute)
	_, err = h.client(t, svc).DecideAccessRequest(t.Context(), &orgsyncv1.DecideAccessRequestRequest{RequestId: asked.GetRequest().GetRequestId(), Decision: orgsyncv1.Decision_DECISION_APPROVED})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "is expired") {
		t.Errorf("approving an expired request: %v, want FailedPrecondition saying it expired", err)
	}
	list, err := operator.ListAccessRequests(t.Context(), &orgsyncv1.ListAccessRequestsRequest{})
	if err != nil || len(list.GetRequests()) != 1 || list.GetRequests()[0].GetState() != orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_EXPIRED {
		t.Errorf("list: %v, %v", list, err)
	}
	if got, _ := h.membership(t, "unit-sales", "E2"); got != "absent" {
		t.Errorf("an expired request changed DIRECTORY: %s", got)
	}
}
