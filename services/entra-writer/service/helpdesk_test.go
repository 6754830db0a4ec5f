package service

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/writer"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// helpdeskApproved is a desired user reporting to managerWorkerID as org-model publishes it when
// a helpdesk request is approved: the credential (not_after an hour after the approval) and the
// cause naming the request, its requester, its approver and its reason.
func helpdeskApproved(workerID, principalName, managerWorkerID string, revision uint64, requestID string, kind orgsyncv1.HelpdeskCredentialKind, approvedAt time.Time) *orgsyncv1.DesiredObject {
	obj := desiredUser(workerID, principalName, managerWorkerID, revision)
	obj.GetUser().HelpdeskCredential = &orgsyncv1.HelpdeskCredential{AccessRequestId: requestID, Kind: kind,
		ApprovedAt: timestamppb.New(approvedAt), NotAfter: timestamppb.New(approvedAt.Add(time.Hour)), LifetimeMinutes: 60}
	obj.Cause = &orgsyncv1.Cause{Reason: "helpdesk request approved", AccessRequestId: requestID, GrantReason: "INC-4711 " + requestID,
		RequestedBy: &orgsyncv1.Principal{Subject: "operator-ann"}, ApprovedBy: &orgsyncv1.Principal{Subject: "approver-bob"}}
	return obj
}

// TestHelpdeskCredentialsReachOnlyTheManager runs two approved helpdesk requests through
// entra-writer and msgraph-sdk-go against the emulator — a Temporary Access Pass for E1, a
// password reset for E2, both reporting to M1 — and checks that each credential is made once,
// reaches the manager's mailbox and nothing else (the writer's log, every span, every message on
// every stream are searched), that the password mailed is the one Graph holds, forced to change,
// and that the AUDIT records name the request, its requester and approver and the operations. A
// restarted writer applying a later revision of both makes nothing more.
func TestHelpdeskCredentialsReachOnlyTheManager(t *testing.T) {
	spans := recordSpans(t)
	p := newPipeline(t, emulator.Faults{})
	logs := &lockedBuffer{}
	stop := p.startCredentialReplica(t, logs, senderMailbox)

	p.publish(t, []*orgsyncv1.DesiredObject{
		withMail(desiredUser("S1", senderMailbox, "", 1), senderMailbox),
		withMail(desiredUser("M1", "mary.manager@corp.example.test", "", 1), "mary.manager@corp.example.test"),
		desiredUser("E1", "jane.doe@corp.example.test", "M1", 1),
		desiredUser("E2", "tom.reset@corp.example.test", "M1", 1),
	})
	p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		return r["entra.user.E1"].GetRevision() == 1 && r["entra.user.E2"].GetRevision() == 1 && r["entra.user.M1"].GetRevision() == 1
	})
	approved := time.Now().Add(-time.Minute)
	tap := orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_TEMPORARY_ACCESS_PASS
	reset := orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_PASSWORD_RESET
	p.publish(t, []*orgsyncv1.DesiredObject{
		helpdeskApproved("E1", "jane.doe@corp.example.test", "M1", 2, "r-tap", tap, approved),
		helpdeskApproved("E2", "tom.reset@corp.example.test", "M1", 2, "r-reset", reset, approved),
	})
	results := p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		return r["entra.user.E1"].GetRevision() == 2 && r["entra.user.E2"].GetRevision() == 2
	})
	for key, want := range map[string][]string{
		"entra.user.E1": {writer.OpCreateAccessPass, writer.OpDeliverToManager},
		"entra.user.E2": {writer.OpResetPassword, writer.OpDeliverToManager},
	} {
		if got := results[key].GetOperations(); !slices.Equal(got, want) {
			t.Errorf("%s: operations %v, want %v (result %v)", key, got, want, results[key])
		}
	}

	jane, _ := p.emulator.UserByEmployeeID("E1")
	pass, ok := p.emulator.AccessPass(jane.ID())
	if !ok || pass.LifetimeInMinutes != 60 || !pass.IsUsableOnce {
		t.Fatalf("E1's pass: %v, %d minutes, usable once %v; want one of 60 minutes, usable once", ok, pass.LifetimeInMinutes, pass.IsUsableOnce)
	}
	tom, _ := p.emulator.UserByEmployeeID("E2")
	profile, ok := p.emulator.PasswordProfile(tom.ID())
	if !ok || profile.Changes != 2 || !profile.ForceChangePasswordNextSignIn {
		t.Errorf("E2's password: %+v; want set twice (the create, the reset), to be changed at the next sign-in", profile)
	}

	mail := p.emulator.SentMail()
	if len(mail) != 2 {
		t.Fatalf("%d messages sent, want 2 (one per request, to the manager): %+v", len(mail), mail)
	}
	var password string
	for _, message := range mail {
		if !slices.Equal(message.ToRecipients, []string{"mary.manager@corp.example.test"}) || len(message.CcRecipients)+len(message.BccRecipients) != 0 ||
			message.SenderPrincipalName != senderMailbox || message.SaveToSentItems {
			t.Errorf("a message to %v (cc %v, bcc %v) from %s, kept %v; want only the manager, from %s, not kept",
				message.ToRecipients, message.CcRecipients, message.BccRecipients, message.SenderPrincipalName, message.SaveToSentItems, senderMailbox)
		}
		switch {
		case strings.Contains(message.Subject, "r-tap"):
			if !strings.Contains(message.Body, pass.Secret) {
				t.Errorf("request r-tap's message does not hold E1's pass")
			}
		case strings.Contains(message.Subject, "r-reset"):
			_, rest, found := strings.Cut(message.Body, "New password: ")
			password, _, _ = strings.Cut(rest, "\n")
			if !found || !p.emulator.PasswordIs(tom.ID(), password) {
				t.Errorf("request r-reset's message does not hold the password E2 has now")
			}
		default:
			t.Errorf("a message for no request: %q", message.Subject)
		}
	}
	if password == "" {
		t.Fatal("no password delivered")
	}

	// Audited with the request, its requester and approver and what was done; never the secret.
	for workerID, requestID := range map[string]string{"E1": "r-tap", "E2": "r-reset"} {
		var delivered []*orgsyncv1.WriterResult
		for _, record := range streamtest.AuditRecords(t, p.js, "audit.entra.user."+workerID) {
			if slices.Contains(record.GetOperations(), writer.OpDeliverToManager) {
				delivered = append(delivered, record)
			}
		}
		if len(delivered) != 1 {
			t.Fatalf("%s: %d audit records of a delivery, want 1", workerID, len(delivered))
		}
		record := delivered[0]
		cause, delivery := record.GetCause(), record.GetHelpdeskDelivery()
		if cause.GetAccessRequestId() != requestID || cause.GetRequestedBy().GetSubject() != "operator-ann" || cause.GetApprovedBy().GetSubject() != "approver-bob" ||
			cause.GetGrantReason() != "INC-4711 "+requestID || delivery.GetAccessRequestId() != requestID || delivery.GetRecipientWorkerId() != "M1" ||
			delivery.GetChannel() != orgsyncv1.CredentialChannel_CREDENTIAL_CHANNEL_MANAGER_MAILBOX {
			t.Errorf("%s: the delivery's audit record: %v", workerID, prototext.Format(record))
		}
	}

	// A restart and a later revision of both: nothing more is made or sent.
	stop()
	p.startCredentialReplica(t, logs, senderMailbox)
	laterTap := helpdeskApproved("E1", "jane.doe@corp.example.test", "M1", 3, "r-tap", tap, approved)
	laterTap.GetUser().JobTitle = "Engineer"
	laterReset := helpdeskApproved("E2", "tom.reset@corp.example.test", "M1", 3, "r-reset", reset, approved)
	laterReset.GetUser().JobTitle = "Engineer"
	p.publish(t, []*orgsyncv1.DesiredObject{laterTap, laterReset})
	results = p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		return r["entra.user.E1"].GetRevision() == 3 && r["entra.user.E2"].GetRevision() == 3
	})
	for _, key := range []string{"entra.user.E1", "entra.user.E2"} {
		if got := results[key]; slices.Contains(got.GetOperations(), writer.OpDeliverToManager) || got.GetHelpdeskDelivery().GetAccessRequestId() == "" {
			t.Errorf("%s after the restart: operations %v, delivery %v; want nothing made, the delivery carried on", key, got.GetOperations(), got.GetHelpdeskDelivery())
		}
	}
	if got := p.emulator.Stats().Operations[emulator.OpAccessPassCreate]; got != 1 {
		t.Errorf("%d pass creations, want 1", got)
	}
	if profile, _ := p.emulator.PasswordProfile(tom.ID()); profile.Changes != 2 || len(p.emulator.SentMail()) != 2 {
		t.Errorf("after the restart: the password set %d times, %d messages; want 2, 2", profile.Changes, len(p.emulator.SentMail()))
	}

	// Nowhere else: not in the log, not in a span, not on any stream.
	if !strings.Contains(logs.String(), "helpdesk credential delivered") {
		t.Errorf("the writer's log does not report the deliveries (was the log captured?)")
	}
	if len(spans.GetSpans()) == 0 {
		t.Errorf("no span recorded: the search for the secrets in spans proves nothing")
	}
	if found := streamsHolding(t, p.js, "operator-ann"); len(found) == 0 {
		t.Errorf("no stream message holds the requester: the search of the streams proves nothing")
	}
	for name, secret := range map[string]string{"the pass": pass.Secret, "the password": password} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the writer's log holds %s", name)
		}
		if found := spansHolding(spans, secret); len(found) > 0 {
			t.Errorf("spans hold %s: %v", name, found)
		}
		if found := streamsHolding(t, p.js, secret); len(found) > 0 {
			t.Errorf("stream messages hold %s: %v", name, found)
		}
	}
}

// TestHelpdeskCredentialWithoutManagerFailsOnce: a worker without a manager, and no webhook,
// has nowhere to receive the credential: the desired state is FAILED once (INVALID), nothing is
// made, nothing sent.
func TestHelpdeskCredentialWithoutManagerFailsOnce(t *testing.T) {
	p := newPipeline(t, emulator.Faults{})
	p.startCredentialReplica(t, &lockedBuffer{}, senderMailbox)
	p.publish(t, []*orgsyncv1.DesiredObject{withMail(desiredUser("S1", senderMailbox, "", 1), senderMailbox)})
	p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool { return r["entra.user.S1"].GetRevision() == 1 })
	p.publish(t, []*orgsyncv1.DesiredObject{helpdeskApproved("E1", "jane.doe@corp.example.test", "", 1, "r-orphan",
		orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_PASSWORD_RESET, time.Now())})
	results := p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		return r["entra.user.E1"].GetOutcome() == orgsyncv1.Outcome_OUTCOME_FAILED
	})
	if got := results["entra.user.E1"]; got.GetErrorClass() != orgsyncv1.ErrorClass_ERROR_CLASS_INVALID || got.GetErrorCode() != "orgsync_NoRecipient" {
		t.Errorf("result: class %v, code %q; want INVALID, orgsync_NoRecipient", got.GetErrorClass(), got.GetErrorCode())
	}
	time.Sleep(2 * time.Second) // a retry, if there were one, would reset the password
	jane, _ := p.emulator.UserByEmployeeID("E1")
	if profile, _ := p.emulator.PasswordProfile(jane.ID()); profile.Changes != 1 {
		t.Errorf("the password was set %d times, want once (the create)", profile.Changes)
	}
	if len(p.emulator.SentMail()) != 0 {
		t.Errorf("a message was sent: %+v", p.emulator.SentMail())
	}
}
