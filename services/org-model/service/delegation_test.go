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

// accessCompany is two units with one worker each, E1 in sales and E2 in marketing, at t0.
func accessCompany(t *testing.T, h harness, t0 time.Time) {
	t.Helper()
	h.hr(t, "u1", unit("sales", "Sales", ""))
	h.hr(t, "u2", unit("marketing", "Marketing", ""))
	h.hr(t, "w1", worker("E1", "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, t0))
	h.hr(t, "w2", worker("E2", "marketing", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, t0))
}

// membership is the state of a membership on DIRECTORY: "member", "removed" or "absent", and its
// cause.
func (h harness) membership(t *testing.T, groupKey, workerID string) (string, *orgsyncv1.Cause) {
	t.Helper()
	obj, ok := h.directory(t)["dir.entra.member."+groupKey+"."+workerID]
	switch {
	case !ok:
		return "absent", nil
	case obj.GetTombstone():
		return "removed", obj.GetCause()
	default:
		return "member", obj.GetCause()
	}
}

func eventuallyMembership(t *testing.T, h harness, groupKey, workerID, want string) *orgsyncv1.Cause {
	t.Helper()
	var cause *orgsyncv1.Cause
	eventually(t, func() bool {
		var got string
		got, cause = h.membership(t, groupKey, workerID)
		return got == want
	})
	return cause
}

// tokenPrincipal is how a static API token is recorded as a principal.
func tokenPrincipal(role auth.Role) *orgsyncv1.Principal {
	return &orgsyncv1.Principal{Subject: string(role), TokenName: string(role)}
}

// TestDelegationStartsAndEndsOnItsDatesAndSurvivesRestart gives E2 E1's memberships from 4 to 6
// March through the API: published to DIRECTORY on the start date (fake clock), explained as
// delegated, still there after a restart, and removed on the end date.
func TestDelegationStartsAndEndsOnItsDatesAndSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	fake := clock.NewFake(t0)
	accessCompany(t, h, t0)
	policyOption := withPolicy(t, "upnDomains: [corp.example.com]\ntimezone: UTC\n")
	svc, stop := h.start(t, policyOption, withClock(fake))
	operator := h.clientWith(t, svc, h.tokens[auth.Operator])

	created, err := operator.CreateDelegation(t.Context(), &orgsyncv1.CreateDelegationRequest{
		DelegateWorkerId: "E2", FromWorkerId: "E1", StartDate: hrDate(t0.AddDate(0, 0, 2)), EndDate: hrDate(t0.AddDate(0, 0, 4)),
		Reason: "covering E1's parental leave",
	})
	if err != nil {
		t.Fatal(err)
	}
	d := created.GetDelegation()
	if d.GetState() != orgsyncv1.DelegationState_DELEGATION_STATE_SCHEDULED || !proto3Equal(d.GetCreatedBy(), tokenPrincipal(auth.Operator)) {
		t.Errorf("created: state %v, created by %v", d.GetState(), d.GetCreatedBy())
	}
	if got, _ := h.membership(t, "unit-sales", "E2"); got != "absent" {
		t.Fatalf("before the start date the delegated membership is %s", got)
	}

	fake.Set(time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC))
	cause := eventuallyMembership(t, h, "unit-sales", "E2", "member")
	want := &orgsyncv1.Cause{Reason: "delegation started", DelegationId: d.GetDelegationId(), RequestedBy: tokenPrincipal(auth.Operator),
		GrantReason: "covering E1's parental leave"}
	if diff := cmp.Diff(want, cause, protocmp.Transform(), protocmp.IgnoreFields(&orgsyncv1.Cause{}, "computed_at")); diff != "" {
		t.Errorf("cause of the delegation's start (-want +got):\n%s", diff)
	}
	if got, _ := h.membership(t, "unit-marketing", "E2"); got != "member" {
		t.Errorf("the delegate's own membership is %s", got)
	}
	explain, err := h.client(t, svc).ExplainMembership(t.Context(), &orgsyncv1.ExplainMembershipRequest{GroupKey: "unit-sales", WorkerId: "E2"})
	if err != nil {
		t.Fatal(err)
	}
	if explain.GetReasonKind() != orgsyncv1.MembershipReason_MEMBERSHIP_REASON_DELEGATION ||
		explain.GetReason() != "delegated from E1 until 2026-03-06 (delegation "+d.GetDelegationId()+")" ||
		explain.GetGrant().GetDelegationId() != d.GetDelegationId() || explain.GetGrant().GetFromWorkerId() != "E1" {
		t.Errorf("explain: %v", explain)
	}

	// A restart keeps the delegation (bucket ORGMODEL_ACCESS): nothing is removed, and it still
	// ends on its end date.
	stop()
	svc, _ = h.start(t, policyOption, withClock(fake))
	if got, _ := h.membership(t, "unit-sales", "E2"); got != "member" {
		t.Fatalf("after a restart the delegated membership is %s", got)
	}
	list, err := h.clientWith(t, svc, h.tokens[auth.Viewer]).ListDelegations(t.Context(), &orgsyncv1.ListDelegationsRequest{WorkerId: "E2"})
	if err != nil || len(list.GetDelegations()) != 1 {
		t.Fatalf("list after restart: %v, %v", list, err)
	}
	if got := list.GetDelegations()[0]; got.GetState() != orgsyncv1.DelegationState_DELEGATION_STATE_ACTIVE || got.GetReason() != "covering E1's parental leave" ||
		!proto3Equal(got.GetCreatedBy(), tokenPrincipal(auth.Operator)) {
		t.Errorf("listed after restart: %v", got)
	}

	fake.Set(time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC))
	cause = eventuallyMembership(t, h, "unit-sales", "E2", "removed")
	want.Reason = "delegation ended"
	if diff := cmp.Diff(want, cause, protocmp.Transform(), protocmp.IgnoreFields(&orgsyncv1.Cause{}, "computed_at")); diff != "" {
		t.Errorf("cause of the delegation's end (-want +got):\n%s", diff)
	}
	if got, _ := h.membership(t, "unit-marketing", "E2"); got != "member" {
		t.Errorf("after the end the delegate's own membership is %s", got)
	}
}

func proto3Equal(a, b *orgsyncv1.Principal) bool {
	return cmp.Equal(a, b, protocmp.Transform())
}

// TestDelegationEndedEarlyIsAudited creates a delegation in effect at once and ends it: both
// changes reach DIRECTORY with the delegation, who acted and why in their cause (the writers
// copy it into every AUDIT record).
func TestDelegationEndedEarlyIsAudited(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	accessCompany(t, h, t0)
	svc, _ := h.start(t, withPolicy(t, "upnDomains: [corp.example.com]\ntimezone: UTC\n"), withClock(clock.NewFake(t0)))
	operator := h.clientWith(t, svc, h.tokens[auth.Operator])
	created, err := operator.CreateDelegation(t.Context(), &orgsyncv1.CreateDelegationRequest{
		DelegateWorkerId: "E2", FromOrgUnitId: "sales", StartDate: hrDate(t0), EndDate: hrDate(t0.AddDate(0, 1, 0)), Reason: "sales cover"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetDelegation().GetDelegationId()
	cause := eventuallyMembership(t, h, "unit-sales", "E2", "member")
	want := &orgsyncv1.Cause{Reason: "delegation created", DelegationId: id, RequestedBy: tokenPrincipal(auth.Operator), GrantReason: "sales cover"}
	if diff := cmp.Diff(want, cause, protocmp.Transform(), protocmp.IgnoreFields(&orgsyncv1.Cause{}, "computed_at")); diff != "" {
		t.Errorf("cause of the delegated membership (-want +got):\n%s", diff)
	}

	admin := h.clientWith(t, svc, h.tokens[auth.Admin])
	ended, err := admin.EndDelegation(t.Context(), &orgsyncv1.EndDelegationRequest{DelegationId: id})
	if err != nil {
		t.Fatal(err)
	}
	if ended.GetDelegation().GetState() != orgsyncv1.DelegationState_DELEGATION_STATE_ENDED || !proto3Equal(ended.GetDelegation().GetEndedBy(), tokenPrincipal(auth.Admin)) {
		t.Errorf("ended: %v", ended.GetDelegation())
	}
	cause = eventuallyMembership(t, h, "unit-sales", "E2", "removed")
	want = &orgsyncv1.Cause{Reason: "delegation ended", DelegationId: id, RequestedBy: tokenPrincipal(auth.Admin), GrantReason: "sales cover"}
	if diff := cmp.Diff(want, cause, protocmp.Transform(), protocmp.IgnoreFields(&orgsyncv1.Cause{}, "computed_at")); diff != "" {
		t.Errorf("cause of the removal (-want +got):\n%s", diff)
	}
	if _, err := admin.EndDelegation(t.Context(), &orgsyncv1.EndDelegationRequest{DelegationId: "d-unknown"}); status.Code(err) != codes.NotFound {
		t.Errorf("ending an unknown delegation: %v, want NotFound", err)
	}
}

func TestDelegationRefusesBadInputAndNonOperators(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	accessCompany(t, h, t0)
	svc, _ := h.start(t, withPolicy(t, "upnDomains: [corp.example.com]\ntimezone: UTC\n"), withClock(clock.NewFake(t0)))
	valid := func() *orgsyncv1.CreateDelegationRequest {
		return &orgsyncv1.CreateDelegationRequest{DelegateWorkerId: "E2", FromWorkerId: "E1", StartDate: hrDate(t0), EndDate: hrDate(t0.AddDate(0, 0, 7)), Reason: "cover"}
	}
	for _, role := range []auth.Role{auth.Viewer, auth.Approver} {
		_, err := h.clientWith(t, svc, h.tokens[role]).CreateDelegation(t.Context(), valid())
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("as %s: %v, want PermissionDenied", role, err)
		}
	}
	operator := h.clientWith(t, svc, h.tokens[auth.Operator])
	tests := []struct {
		name string
		edit func(*orgsyncv1.CreateDelegationRequest)
		want string
	}{
		{"unknown delegate", func(r *orgsyncv1.CreateDelegationRequest) { r.DelegateWorkerId = "E404" }, `delegate_worker_id "E404" is not a worker orgsync knows`},
		{"unknown worker delegated from", func(r *orgsyncv1.CreateDelegationRequest) { r.FromWorkerId = "E405" }, `from_worker_id "E405" is not a worker orgsync knows`},
		{"end before start", func(r *orgsyncv1.CreateDelegationRequest) { r.EndDate = hrDate(t0.AddDate(0, 0, -1)) }, "end_date 2026-03-01 is not after start_date 2026-03-02"},
		{"delegating to oneself", func(r *orgsyncv1.CreateDelegationRequest) { r.FromWorkerId = "E2" }, "cannot be delegated their own memberships"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := valid()
			tc.edit(req)
			_, err := operator.CreateDelegation(t.Context(), req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Errorf("%v, want InvalidArgument naming %q", err, tc.want)
			}
		})
	}
	list, err := operator.ListDelegations(t.Context(), &orgsyncv1.ListDelegationsRequest{})
	if err != nil || len(list.GetDelegations()) != 0 {
		t.Errorf("refused delegations were kept: %v, %v", list, err)
	}
	if got, _ := h.membership(t, "unit-sales", "E2"); got != "absent" {
		t.Errorf("a refused delegation changed DIRECTORY: %s", got)
	}
}
