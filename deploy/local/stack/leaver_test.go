package stack_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/orgsync/orgsync/deploy/local/stack"
	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
)

// TestTerminationRevokesEntraSessions terminates a worker through the whole pipeline — HR webhook,
// hr-ingest, org-model with the default policy, entra-writer, the Graph emulator — and finds the
// account disabled and its sign-in sessions revoked by one write of the termination, audited with
// the termination as its cause.
func TestTerminationRevokesEntraSessions(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s, err := stack.Start(ctx, stack.Options{StoreDir: t.TempDir()})
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
	conn, err := grpc.NewClient(s.OrgModel.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(s.AdminToken)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	api := orgsyncv1grpc.NewOrgModelServiceClient(conn)
	userRecords := func() []*orgsyncv1.AuditRecord {
		resp, err := api.ListAudit(ctx, &orgsyncv1.ListAuditRequest{WorkerId: "E2001"})
		if err != nil {
			t.Fatal(err)
		}
		var records []*orgsyncv1.AuditRecord
		for _, record := range resp.GetRecords() {
			if record.GetPath() == "entra.user.E2001" {
				records = append(records, record)
			}
		}
		return records
	}

	post("unit-sales", event("org_unit.created", map[string]any{"orgUnitId": "sales", "name": "Sales"}))
	worker := map[string]any{
		"workerId": "E2001", "name": map[string]any{"givenName": "Lee", "familyName": "Leaver"},
		"jobTitle": "Account Executive", "orgUnitId": "sales", "employmentType": "employee",
		"hireDate": "2025-03-01", "startDate": "2025-03-01",
	}
	post("msg_hire_leaver", event("worker.created", worker))
	eventually(t, func() bool { return len(userRecords()) == 1 })
	account, ok := s.Emulator.UserByEmployeeID("E2001")
	if !ok {
		t.Fatal("no Entra account for the hire")
	}
	sessionIssued := time.Now()
	if !s.Emulator.SignInSessionValid(account.ID(), sessionIssued) {
		t.Fatal("the hire's session is not valid")
	}

	worker["employmentStatus"] = "terminated"
	post("msg_terminate_leaver", event("worker.updated", worker))
	eventually(t, func() bool { return len(userRecords()) == 2 })
	termination := userRecords()[1]
	if got, want := termination.GetResult().GetOperations(), []string{"user.update", "user.revoke-sessions"}; !slices.Equal(got, want) {
		t.Errorf("the termination's write: operations %v, want %v", got, want)
	}
	if cause := termination.GetCause().GetHrEventId(); cause != "msg_terminate_leaver" {
		t.Errorf("the revocation's cause is HR event %q, want msg_terminate_leaver", cause)
	}
	if full, _ := s.Emulator.User(account.ID()); full["accountEnabled"] != false {
		t.Errorf("accountEnabled = %v after the termination", full["accountEnabled"])
	}
	if validFrom, _ := s.Emulator.SignInSessionsValidFrom(account.ID()); !validFrom.After(sessionIssued) {
		t.Errorf("sessions valid from %v: the session issued at %v was not revoked", validFrom, sessionIssued)
	}
}
