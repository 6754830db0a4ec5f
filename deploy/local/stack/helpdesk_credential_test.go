package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/orgsync/orgsync/deploy/local/stack"
	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
)

// TestHelpdeskCredentialsEndToEnd asks, through org-model's API, for a Temporary Access Pass and
// then a password reset for a worker: the requester's own approval is refused and changes
// nothing; a second person's approval runs through the pipeline (org-model, DIRECTORY,
// entra-writer, the Graph emulator through msgraph-sdk-go), the credential is made once and
// arrives in the manager's mailbox only, and the AUDIT record names the request, the requester,
// the approver and the reason — while no audit record, RESULTS message or service log holds the
// secret.
func TestHelpdeskCredentialsEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	dir := t.TempDir()
	const sender = "servicedesk@corp.example.com"
	logs := &syncBuffer{}
	// Console starts the dev OIDC issuer too, whose tokens name the requester and the approver.
	s, err := stack.Start(ctx, stack.Options{StoreDir: filepath.Join(dir, "js"), UPNDomain: "corp.example.com",
		FirstDayMailSender: sender, LogWriter: logs, LogLevel: -4, Console: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("stack: %v", err)
		}
	})
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
	post("unit-sales", event("org_unit.created", map[string]any{"orgUnitId": "sales", "name": "Sales"}))
	post("hire-manager", event("worker.created", map[string]any{
		"workerId": "M4001", "name": map[string]any{"givenName": "Mary", "familyName": "Manager"}, "workEmail": "mary.manager@corp.example.com",
		"orgUnitId": "sales", "employmentType": "employee", "hireDate": "2024-01-08", "startDate": "2024-01-08",
	}))
	post("hire-worker", event("worker.created", map[string]any{
		"workerId": "E4001", "name": map[string]any{"givenName": "Lee", "familyName": "Lockedout"}, "managerWorkerId": "M4001",
		"orgUnitId": "sales", "employmentType": "employee", "hireDate": "2025-02-03", "startDate": "2025-02-03",
	}))
	var userID string
	eventually(t, func() bool {
		account, ok := s.Emulator.UserByEmployeeID("E4001")
		if ok {
			userID = account.ID()
		}
		return ok && slices.Contains(groupMembers(s, "Org - Sales"), "E4001")
	})

	operator, approver := signedIn(t, s, "oscar.operator", auth.Operator), signedIn(t, s, "alex.approver", auth.Approver)
	asked, err := operator.RequestAccess(ctx, &orgsyncv1.RequestAccessRequest{Kind: orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_ACCESS_PASS,
		WorkerId: "E4001", LifetimeMinutes: 120, Reason: "INC-7001 lost phone"})
	if err != nil {
		t.Fatal(err)
	}
	passRequest := asked.GetRequest().GetRequestId()
	if _, err := operator.DecideAccessRequest(ctx, &orgsyncv1.DecideAccessRequestRequest{RequestId: passRequest, Decision: orgsyncv1.Decision_DECISION_APPROVED}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("the requester's own approval: %v, want PermissionDenied", err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, made := s.Emulator.AccessPass(userID); made || len(s.Emulator.SentMail()) != 0 {
		t.Fatal("an unapproved request made a pass or sent mail")
	}
	if _, err := approver.DecideAccessRequest(ctx, &orgsyncv1.DecideAccessRequestRequest{RequestId: passRequest, Decision: orgsyncv1.Decision_DECISION_APPROVED}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "E4001") || strings.Contains(line, "helpdesk") || strings.Contains(line, "ERROR") {
					t.Log(line)
				}
			}
		}
	})
	eventually(t, func() bool {
		_, made := s.Emulator.AccessPass(userID)
		return made && len(s.Emulator.SentMail()) > 0
	})
	pass, _ := s.Emulator.AccessPass(userID)
	mail := s.Emulator.SentMail()
	if len(mail) != 1 || !slices.Equal(mail[0].ToRecipients, []string{"mary.manager@corp.example.com"}) || mail[0].SenderPrincipalName != sender ||
		!strings.Contains(mail[0].Body, pass.Secret) {
		t.Fatalf("mail: %d messages, the first to %v from %s; want one to the manager from %s, with the pass", len(mail), mail[0].ToRecipients, mail[0].SenderPrincipalName, sender)
	}
	if pass.LifetimeInMinutes != 120 || !pass.IsUsableOnce {
		t.Errorf("the pass: %d minutes, once %v; want the request's 120, once", pass.LifetimeInMinutes, pass.IsUsableOnce)
	}
	audited := auditedDelivery(t, ctx, approver, "E4001", passRequest, []string{pass.Secret})
	if cause := audited.GetCause(); cause.GetRequestedBy().GetSubject() != "oscar.operator" || cause.GetApprovedBy().GetSubject() != "alex.approver" ||
		cause.GetGrantReason() != "INC-7001 lost phone" || !slices.Contains(audited.GetResult().GetOperations(), "user.temporary-access-pass.create") ||
		!slices.Contains(audited.GetResult().GetOperations(), "credential.deliver.manager-mailbox") {
		t.Errorf("audit of the pass: %v", prototext.Format(audited))
	}

	asked, err = operator.RequestAccess(ctx, &orgsyncv1.RequestAccessRequest{Kind: orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_PASSWORD_RESET,
		WorkerId: "E4001", Reason: "INC-7002 locked out"})
	if err != nil {
		t.Fatal(err)
	}
	resetRequest := asked.GetRequest().GetRequestId()
	if _, err := operator.DecideAccessRequest(ctx, &orgsyncv1.DecideAccessRequestRequest{RequestId: resetRequest, Decision: orgsyncv1.Decision_DECISION_APPROVED}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("the requester's own approval of the reset: %v, want PermissionDenied", err)
	}
	time.Sleep(300 * time.Millisecond)
	if profile, _ := s.Emulator.PasswordProfile(userID); profile.Changes != 1 || len(s.Emulator.SentMail()) != 1 {
		t.Fatalf("the reset's refused approval set the password (%d times) or sent mail (%d messages)", profile.Changes, len(s.Emulator.SentMail()))
	}
	if _, err := approver.DecideAccessRequest(ctx, &orgsyncv1.DecideAccessRequestRequest{RequestId: resetRequest, Decision: orgsyncv1.Decision_DECISION_APPROVED}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return len(s.Emulator.SentMail()) == 2 })
	resetMail := s.Emulator.SentMail()[1]
	if !slices.Equal(resetMail.ToRecipients, []string{"mary.manager@corp.example.com"}) || strings.Contains(resetMail.Body, pass.Secret) {
		t.Errorf("the reset's mail goes to %v; want the manager, without the earlier pass", resetMail.ToRecipients)
	}
	password := resetPasswordIn(t, s, userID, resetMail.Body)
	audited = auditedDelivery(t, ctx, approver, "E4001", resetRequest, []string{pass.Secret, password})
	if !slices.Contains(audited.GetResult().GetOperations(), "user.password.reset") || audited.GetCause().GetGrantReason() != "INC-7002 locked out" {
		t.Errorf("audit of the reset: %v", prototext.Format(audited))
	}

	// A pass the tenant's policy refuses (the default policy's minimum is an hour) is not made,
	// and the request says why, in Graph's words.
	asked, err = operator.RequestAccess(ctx, &orgsyncv1.RequestAccessRequest{Kind: orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_ACCESS_PASS,
		WorkerId: "E4001", LifetimeMinutes: 30, Reason: "INC-7003 lost phone again"})
	if err != nil {
		t.Fatal(err)
	}
	refused := asked.GetRequest().GetRequestId()
	if _, err := approver.DecideAccessRequest(ctx, &orgsyncv1.DecideAccessRequestRequest{RequestId: refused, Decision: orgsyncv1.Decision_DECISION_APPROVED}); err != nil {
		t.Fatal(err)
	}
	var outcome *orgsyncv1.AccessRequest
	eventually(t, func() bool {
		list, err := operator.ListAccessRequests(ctx, &orgsyncv1.ListAccessRequestsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list.GetRequests() {
			if r.GetRequestId() == refused && r.GetCredentialError() != "" {
				outcome = r
			}
			if r.GetRequestId() == passRequest && r.GetCredentialDelivery().GetRecipientWorkerId() != "M4001" {
				t.Errorf("the delivered pass's request: %v", r)
			}
		}
		return outcome != nil
	})
	if !strings.Contains(outcome.GetCredentialError(), "lifetimeInMinutes") {
		t.Errorf("the refused pass's request says %q, want Graph's reason naming lifetimeInMinutes", outcome.GetCredentialError())
	}

	for _, secret := range []string{pass.Secret, password} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a service's log holds a credential")
		}
		for _, m := range streamMessages(t, s) {
			if bytes.Contains(m, []byte(secret)) {
				t.Errorf("a stream message holds a credential")
			}
		}
	}
	if !strings.Contains(logs.String(), "E4001") {
		t.Errorf("the services' log was not captured: the search for the credentials in it proves nothing")
	}
	// Each credential was made once: the worker's later convergences (a restart's seed, drift)
	// find the delivery recorded.
	if got := len(s.Emulator.SentMail()); got != 2 {
		t.Errorf("%d messages sent, want 2 (one per request)", got)
	}
}

// auditedDelivery waits for the AUDIT record of the delivery for request and fails the test if
// any audit record of the worker holds one of secrets.
func auditedDelivery(t *testing.T, ctx context.Context, api orgsyncv1grpc.OrgModelServiceClient, workerID, request string, secrets []string) *orgsyncv1.AuditRecord {
	t.Helper()
	var delivery *orgsyncv1.AuditRecord
	eventually(t, func() bool {
		audit, err := api.ListAudit(ctx, &orgsyncv1.ListAuditRequest{WorkerId: workerID})
		if err != nil {
			t.Fatal(err)
		}
		for _, record := range audit.GetRecords() {
			text := prototext.Format(record)
			for _, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Fatalf("an audit record holds a credential: %s", record.GetPath())
				}
			}
			if record.GetPath() == "entra.user."+workerID && record.GetResult().GetHelpdeskDelivery().GetAccessRequestId() == request &&
				record.GetCause().GetAccessRequestId() == request {
				delivery = record
			}
		}
		return delivery != nil
	})
	return delivery
}

// streamMessages reads every message of every stream of the stack's JetStream.
func streamMessages(t *testing.T, s *stack.Stack) [][]byte {
	t.Helper()
	nc, err := nats.Connect(s.NATS.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	names := js.StreamNames(t.Context())
	for name := range names.Name() {
		str, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := str.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			msg, err := str.GetMsg(t.Context(), seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, msg.Data)
			for _, values := range msg.Header {
				for _, v := range values {
					out = append(out, []byte(v))
				}
			}
		}
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no stream messages read: the search for credentials in them proves nothing")
	}
	return out
}

// resetPasswordIn finds the password a reset's mail carries and checks it is the account's
// current password in the emulator, which must be changed at the next sign-in.
func resetPasswordIn(t *testing.T, s *stack.Stack, userID, body string) string {
	t.Helper()
	const label = "New password: "
	i := strings.Index(body, label)
	if i < 0 {
		t.Fatalf("the reset's mail names no password")
	}
	password, _, _ := strings.Cut(body[i+len(label):], "\n")
	password = strings.TrimSpace(password)
	if !s.Emulator.PasswordIs(userID, password) {
		t.Fatalf("the mailed password is not the account's password")
	}
	if profile, ok := s.Emulator.PasswordProfile(userID); !ok || !profile.ForceChangePasswordNextSignIn {
		t.Errorf("the reset password need not be changed at the next sign-in: %+v", profile)
	}
	return password
}

// signedIn is an org-model API client whose calls carry a token of the stack's dev issuer for
// subject with role (the stack must start with Options.Console).
func signedIn(t *testing.T, s *stack.Stack, subject string, role auth.Role) orgsyncv1grpc.OrgModelServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(s.OrgModel.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(authtest.SignWith(t, s.Issuer.Current(), s.Issuer.Claims(subject, role)))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return orgsyncv1grpc.NewOrgModelServiceClient(conn)
}

// createMailbox makes, in the emulator, the mailbox entra-writer sends credentials from: an
// account orgsync does not manage.
func createMailbox(t *testing.T, s *stack.Stack, address string) {
	t.Helper()
	local, _, _ := strings.Cut(address, "@")
	mailbox, _ := json.Marshal(map[string]any{"accountEnabled": true, "displayName": local, "mailNickname": local,
		"userPrincipalName": address, "mail": address, "passwordProfile": map[string]any{"password": "Mailbox-Passw0rd!"}})
	resp, err := http.Post(s.EmulatorURL+"/users", "application/json", bytes.NewReader(mailbox))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating the sender mailbox %s: %d", address, resp.StatusCode)
	}
}
