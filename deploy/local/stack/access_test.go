package stack_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orgsync/orgsync/deploy/local/stack"
	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// TestHelpdeskAndDelegationReachTheEmulator runs a helpdesk request and a delegation through the
// whole pipeline: the approved temporary membership is written to the Graph emulator by
// entra-writer, and its AUDIT record names the request, its requester, its approver and the
// reason; a delegation's membership is written and, ended early, removed again.
func TestHelpdeskAndDelegationReachTheEmulator(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s, err := stack.Start(ctx, stack.Options{StoreDir: t.TempDir(), Console: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("stack: %v", err)
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(id string, body []byte) {
		t.Helper()
		resp, respBody, err := stack.Post(ctx, client, s.WebhookURL(), id, body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook %s: %d %s", id, resp.StatusCode, respBody)
		}
	}
	post("unit-sales", event("org_unit.created", map[string]any{"orgUnitId": "sales", "name": "Sales"}))
	post("unit-marketing", event("org_unit.created", map[string]any{"orgUnitId": "marketing", "name": "Marketing"}))
	for _, w := range []struct{ id, unit string }{{"E1001", "sales"}, {"E1002", "marketing"}} {
		post("hire-"+w.id, event("worker.created", map[string]any{
			"workerId": w.id, "name": map[string]any{"givenName": "Jane", "familyName": "Doe " + w.id},
			"orgUnitId": w.unit, "employmentType": "employee", "hireDate": "2026-03-01", "startDate": "2026-03-01",
		}))
	}
	eventually(t, func() bool {
		return slices.Contains(groupMembers(s, "Org - Sales"), "E1001") && slices.Contains(groupMembers(s, "Org - Marketing"), "E1002")
	})

	operator, approver := signedIn(t, s, "oscar.operator", auth.Operator), signedIn(t, s, "alex.approver", auth.Approver)
	tomorrow := time.Now().UTC().AddDate(0, 0, 2)
	until := &orgsyncv1.Date{Year: int32(tomorrow.Year()), Month: int32(tomorrow.Month()), Day: int32(tomorrow.Day())}
	asked, err := operator.RequestAccess(ctx, &orgsyncv1.RequestAccessRequest{Kind: orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_MEMBERSHIP,
		WorkerId: "E1002", GroupKey: "unit-sales", EndDate: until, Reason: "INC-4711 quarter-end"})
	if err != nil {
		t.Fatal(err)
	}
	requestID := asked.GetRequest().GetRequestId()
	if _, err := operator.DecideAccessRequest(ctx, &orgsyncv1.DecideAccessRequestRequest{RequestId: requestID, Decision: orgsyncv1.Decision_DECISION_APPROVED}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("an operator's approval: %v, want PermissionDenied", err)
	}
	time.Sleep(200 * time.Millisecond)
	if slices.Contains(groupMembers(s, "Org - Sales"), "E1002") {
		t.Fatal("an unapproved request reached the emulator")
	}
	if _, err := approver.DecideAccessRequest(ctx, &orgsyncv1.DecideAccessRequestRequest{RequestId: requestID, Decision: orgsyncv1.Decision_DECISION_APPROVED}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return slices.Contains(groupMembers(s, "Org - Sales"), "E1002") })
	var audited *orgsyncv1.AuditRecord
	eventually(t, func() bool {
		resp, err := approver.ListAudit(ctx, &orgsyncv1.ListAuditRequest{WorkerId: "E1002"})
		if err != nil {
			t.Fatal(err)
		}
		for _, record := range resp.GetRecords() {
			if record.GetPath() == "entra.member.unit-sales.E1002" {
				audited = record
			}
		}
		return audited != nil
	})
	if cause := audited.GetCause(); cause.GetAccessRequestId() != requestID || cause.GetRequestedBy().GetSubject() != "oscar.operator" ||
		cause.GetApprovedBy().GetSubject() != "alex.approver" || cause.GetGrantReason() != "INC-4711 quarter-end" ||
		!slices.Contains(audited.GetResult().GetOperations(), "member.add") {
		t.Errorf("audit of the temporary membership: %v", audited)
	}

	yesterday := time.Now().UTC().AddDate(0, 0, -1)
	created, err := operator.CreateDelegation(ctx, &orgsyncv1.CreateDelegationRequest{DelegateWorkerId: "E1001", FromWorkerId: "E1002",
		StartDate: &orgsyncv1.Date{Year: int32(yesterday.Year()), Month: int32(yesterday.Month()), Day: int32(yesterday.Day())}, EndDate: until,
		Reason: "covering E1002"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return slices.Contains(groupMembers(s, "Org - Marketing"), "E1001") })
	if _, err := operator.EndDelegation(ctx, &orgsyncv1.EndDelegationRequest{DelegationId: created.GetDelegation().GetDelegationId()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return !slices.Contains(groupMembers(s, "Org - Marketing"), "E1001") })
	if !slices.Contains(groupMembers(s, "Org - Marketing"), "E1002") || !slices.Contains(groupMembers(s, "Org - Sales"), "E1001") {
		t.Errorf("ending the delegation touched other memberships: marketing %v, sales %v", groupMembers(s, "Org - Marketing"), groupMembers(s, "Org - Sales"))
	}
}
