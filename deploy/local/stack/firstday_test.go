package stack_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/orgsync/orgsync/deploy/local/stack"
	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
)

// TestFirstDayPassEndToEnd hires a worker starting today through the whole pipeline — HR webhook,
// hr-ingest, org-model with lifecycle.firstDayCredential on, entra-writer, the Graph emulator —
// and finds a Temporary Access Pass on the account, sent to the manager's mailbox only, the
// delivery in the audit trail (ListAudit) without the pass, and the pass in no service's log.
func TestFirstDayPassEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("timezone: UTC\nlifecycle:\n  firstDayCredential: {enabled: true, lifetimeMinutes: 240}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const sender = "onboarding@corp.example.com"
	logs := &syncBuffer{}
	s, err := stack.Start(ctx, stack.Options{StoreDir: filepath.Join(dir, "js"), PolicyFile: policy, UPNDomain: "corp.example.com",
		FirstDayMailSender: sender, LogWriter: logs, LogLevel: -4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("stack: %v", err)
		}
	})
	// The sender mailbox is an account orgsync does not manage.
	createMailbox(t, s, sender)

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
	today := time.Now().UTC().Format(time.DateOnly)
	post("unit-sales", event("org_unit.created", map[string]any{"orgUnitId": "sales", "name": "Sales"}))
	post("msg_manager", event("worker.created", map[string]any{
		"workerId": "M3001", "name": map[string]any{"givenName": "Mary", "familyName": "Manager"}, "workEmail": "mary.manager@corp.example.com",
		"jobTitle": "Head of Sales", "orgUnitId": "sales", "employmentType": "employee", "hireDate": "2024-01-08", "startDate": "2024-01-08",
	}))
	post("msg_new_hire", event("worker.created", map[string]any{
		"workerId": "E3001", "name": map[string]any{"givenName": "Nia", "familyName": "Newcomer"}, "managerWorkerId": "M3001",
		"jobTitle": "Account Executive", "orgUnitId": "sales", "employmentType": "employee", "hireDate": today, "startDate": today,
	}))

	var hireID string
	eventually(t, func() bool {
		account, ok := s.Emulator.UserByEmployeeID("E3001")
		if ok {
			hireID = account.ID()
		}
		_, made := s.Emulator.AccessPass(hireID)
		return ok && made && len(s.Emulator.SentMail()) > 0
	})
	pass, _ := s.Emulator.AccessPass(hireID)
	mail := s.Emulator.SentMail()
	if len(mail) != 1 || !slices.Equal(mail[0].ToRecipients, []string{"mary.manager@corp.example.com"}) || mail[0].SenderPrincipalName != sender ||
		!strings.Contains(mail[0].Body, pass.Secret) {
		t.Fatalf("mail: %d messages, the first to %v from %s; want one to the manager from %s, with the pass", len(mail), mail[0].ToRecipients, mail[0].SenderPrincipalName, sender)
	}
	if pass.LifetimeInMinutes != 240 || !pass.IsUsableOnce {
		t.Errorf("the pass: %d minutes, once %v; want the policy's 240, once", pass.LifetimeInMinutes, pass.IsUsableOnce)
	}

	conn, err := grpc.NewClient(s.OrgModel.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(s.AdminToken)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	api := orgsyncv1grpc.NewOrgModelServiceClient(conn)
	var delivery *orgsyncv1.AuditRecord
	eventually(t, func() bool {
		audit, err := api.ListAudit(ctx, &orgsyncv1.ListAuditRequest{WorkerId: "E3001"})
		if err != nil {
			t.Fatal(err)
		}
		for _, record := range audit.GetRecords() {
			if strings.Contains(prototext.Format(record), pass.Secret) {
				t.Fatalf("an audit record holds the pass: %s", record.GetPath())
			}
			if record.GetPath() == "entra.user.E3001" && strings.Contains(prototext.Format(record), "credential.deliver.manager-mailbox") {
				delivery = record
			}
		}
		return delivery != nil
	})
	if text := prototext.Format(delivery); !strings.Contains(text, "CREDENTIAL_CHANNEL_MANAGER_MAILBOX") || !strings.Contains(text, "M3001") {
		t.Errorf("the delivery's audit record does not name the channel and the manager: %s", text)
	}
	if strings.Contains(logs.String(), pass.Secret) {
		t.Errorf("a service's log holds the pass")
	}
	if !strings.Contains(logs.String(), "first-day Temporary Access Pass delivered") {
		t.Errorf("the services' log was not captured: the search for the pass in it proves nothing")
	}
}
