package service

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/subject"
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
		"no kind": {func(r *orgsyncv1.RequestAccessRequest) {
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

// TestHelpdeskCredentialNeedsASecondApprover asks, as an admin, for a Temporary Access Pass for
// E2: the admin's own approval is refused and nothing is desired; an approver's approval puts
// the credential on E2's Entra user (never the AD one) with requester, approver and reason in
// the cause, the same after a restart; a later password reset's approval replaces it.
func TestHelpdeskCredentialNeedsASecondApprover(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	fake := clock.NewFake(t0)
	accessCompany(t, h, t0)
	policyOption := withPolicy(t, "upnDomains: [corp.example.com]\ntimezone: UTC\n")
	svc, stop := h.start(t, policyOption, withClock(fake))
	requester := h.clientWith(t, svc, h.tokens[auth.Admin])
	approver := h.client(t, svc)
	approverPrincipal := &orgsyncv1.Principal{Subject: approverSubject, Issuer: h.auth.Issuer}

	asked, err := requester.RequestAccess(t.Context(), &orgsyncv1.RequestAccessRequest{
		Kind: orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_ACCESS_PASS, WorkerId: "E2", Reason: "INC-5001: lost phone",
	})
	if err != nil {
		t.Fatal(err)
	}
	request := asked.GetRequest()
	if request.GetLifetimeMinutes() != 60 || request.GetState() != orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_PENDING {
		t.Errorf("requested: %v, want pending with the default lifetime of 60 minutes", request)
	}
	_, err = requester.DecideAccessRequest(t.Context(), &orgsyncv1.DecideAccessRequestRequest{RequestId: request.GetRequestId(), Decision: orgsyncv1.Decision_DECISION_APPROVED})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("the requester's own approval: %v, want PermissionDenied", err)
	}
	if user := h.directory(t)["dir.entra.user.E2"]; user.GetUser().GetHelpdeskCredential() != nil {
		t.Fatalf("a pending request put a credential on the desired user: %v", user.GetUser().GetHelpdeskCredential())
	}

	if _, err := approver.DecideAccessRequest(t.Context(), &orgsyncv1.DecideAccessRequestRequest{RequestId: request.GetRequestId(), Decision: orgsyncv1.Decision_DECISION_APPROVED}); err != nil {
		t.Fatal(err)
	}
	user := h.desiredUser(t, "E2", func(obj *orgsyncv1.DesiredObject) bool { return obj.GetUser().GetHelpdeskCredential() != nil })
	wantCredential := &orgsyncv1.HelpdeskCredential{AccessRequestId: request.GetRequestId(), Kind: orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_TEMPORARY_ACCESS_PASS,
		ApprovedAt: timestamppb.New(t0), NotAfter: timestamppb.New(t0.Add(time.Hour)), LifetimeMinutes: 60}
	if diff := cmp.Diff(wantCredential, user.GetUser().GetHelpdeskCredential(), protocmp.Transform()); diff != "" {
		t.Errorf("the desired user's helpdesk credential (-want +got):\n%s", diff)
	}
	wantCause := &orgsyncv1.Cause{Reason: "helpdesk request approved", AccessRequestId: request.GetRequestId(), RequestedBy: tokenPrincipal(auth.Admin),
		ApprovedBy: approverPrincipal, GrantReason: "INC-5001: lost phone"}
	if diff := cmp.Diff(wantCause, user.GetCause(), protocmp.Transform(), protocmp.IgnoreFields(&orgsyncv1.Cause{}, "computed_at")); diff != "" {
		t.Errorf("cause of the desired user (-want +got):\n%s", diff)
	}
	if ad := h.directory(t)["dir.ad.user.E2"]; ad != nil && ad.GetUser().GetHelpdeskCredential() != nil {
		t.Errorf("the AD user carries the credential: %v", ad.GetUser().GetHelpdeskCredential())
	}

	// entra-writer's report of the delivery shows on the request: where it went, never what.
	delivery := &orgsyncv1.CredentialDelivery{AccessRequestId: request.GetRequestId(), Kind: wantCredential.GetKind(),
		Channel: orgsyncv1.CredentialChannel_CREDENTIAL_CHANNEL_MANAGER_MAILBOX, ChannelName: "servicedesk@corp.example.com",
		DeliveredAt: timestamppb.New(t0.Add(time.Second))}
	if _, err := h.pub.Publish(t.Context(), subject.ResultSubject("entra.user.E2"), "", &orgsyncv1.WriterResult{Target: orgsyncv1.Target_TARGET_ENTRA,
		Kind: orgsyncv1.ObjectKind_OBJECT_KIND_USER, Key: "E2", Revision: user.GetRevision(), Outcome: orgsyncv1.Outcome_OUTCOME_APPLIED,
		HelpdeskDelivery: delivery, Cause: user.GetCause()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		list, err := approver.ListAccessRequests(t.Context(), &orgsyncv1.ListAccessRequestsRequest{})
		return err == nil && proto.Equal(list.GetRequests()[0].GetCredentialDelivery(), delivery)
	})

	stop()
	published := h.directoryLastSeq(t)
	svc, stop = h.start(t, policyOption, withClock(fake))
	if got := h.directory(t)["dir.entra.user.E2"].GetUser().GetHelpdeskCredential(); !proto.Equal(got, wantCredential) {
		t.Errorf("after a restart the desired user's credential is %v, want %v", got, wantCredential)
	}
	if seq := h.directoryLastSeq(t); seq != published {
		t.Errorf("the restart republished desired state (DIRECTORY at %d, was %d): the credential must compute the same", seq, published)
	}

	fake.Advance(2 * time.Hour)
	requester, approver = h.clientWith(t, svc, h.tokens[auth.Admin]), h.client(t, svc)
	reset, err := requester.RequestAccess(t.Context(), &orgsyncv1.RequestAccessRequest{
		Kind: orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_PASSWORD_RESET, WorkerId: "E2", Reason: "INC-5002: locked out",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := approver.DecideAccessRequest(t.Context(), &orgsyncv1.DecideAccessRequestRequest{RequestId: reset.GetRequest().GetRequestId(), Decision: orgsyncv1.Decision_DECISION_APPROVED}); err != nil {
		t.Fatal(err)
	}
	user = h.desiredUser(t, "E2", func(obj *orgsyncv1.DesiredObject) bool {
		return obj.GetUser().GetHelpdeskCredential().GetAccessRequestId() == reset.GetRequest().GetRequestId()
	})
	if got := user.GetUser().GetHelpdeskCredential(); got.GetKind() != orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_PASSWORD_RESET ||
		!got.GetNotAfter().AsTime().Equal(t0.Add(3*time.Hour)) {
		t.Errorf("the password reset's credential: %v", got)
	}
	// Nothing reported for the reset: once its window is over the request says it was not made,
	// while the pass's delivery (read back from RESULTS after the restart) still shows.
	fake.Advance(time.Hour)
	list, err := approver.ListAccessRequests(t.Context(), &orgsyncv1.ListAccessRequestsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list.GetRequests() {
		switch r.GetRequestId() {
		case reset.GetRequest().GetRequestId():
			if !strings.HasPrefix(r.GetCredentialError(), "not made:") || r.GetCredentialDelivery() != nil {
				t.Errorf("the undelivered reset after its window: %v", r)
			}
		case request.GetRequestId():
			if !proto.Equal(r.GetCredentialDelivery(), delivery) {
				t.Errorf("the delivered pass after a restart: %v", r)
			}
		}
	}
	stop()
}

// TestHelpdeskCredentialRequestsRefuseWhatCannotBeMade names each problem of a credential request.
func TestHelpdeskCredentialRequestsRefuseWhatCannotBeMade(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	accessCompany(t, h, t0)
	h.hr(t, "w3", worker("E3", "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED, t0))
	svc, _ := h.start(t, withPolicy(t, "upnDomains: [corp.example.com]\ntimezone: UTC\n"), withClock(clock.NewFake(t0)))
	operator := h.clientWith(t, svc, h.tokens[auth.Operator])
	tap := orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_ACCESS_PASS
	reset := orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_PASSWORD_RESET
	for name, tc := range map[string]struct {
		req  *orgsyncv1.RequestAccessRequest
		want string
	}{
		"unknown worker":      {&orgsyncv1.RequestAccessRequest{Kind: tap, WorkerId: "E404", Reason: "r"}, `worker_id "E404" is not a worker orgsync knows`},
		"leaver":              {&orgsyncv1.RequestAccessRequest{Kind: reset, WorkerId: "E3", Reason: "r"}, `worker "E3" has no active account`},
		"lifetime too short":  {&orgsyncv1.RequestAccessRequest{Kind: tap, WorkerId: "E2", Reason: "r", LifetimeMinutes: 5}, "lifetime_minutes must be between 10 and 1440"},
		"lifetime too long":   {&orgsyncv1.RequestAccessRequest{Kind: tap, WorkerId: "E2", Reason: "r", LifetimeMinutes: 1441}, "lifetime_minutes must be between 10 and 1440"},
		"lifetime of a reset": {&orgsyncv1.RequestAccessRequest{Kind: reset, WorkerId: "E2", Reason: "r", LifetimeMinutes: 60}, "lifetime_minutes is only for a Temporary Access Pass"},
		"group with a pass":   {&orgsyncv1.RequestAccessRequest{Kind: tap, WorkerId: "E2", Reason: "r", GroupKey: "unit-sales"}, "group_key and end_date are only for a temporary membership"},
		"no reason":           {&orgsyncv1.RequestAccessRequest{Kind: reset, WorkerId: "E2"}, "reason is required"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := operator.RequestAccess(t.Context(), tc.req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Errorf("%v, want InvalidArgument naming %q", err, tc.want)
			}
		})
	}
}
