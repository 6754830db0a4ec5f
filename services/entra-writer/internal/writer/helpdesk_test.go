package writer

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory/directorytest"
)

const (
	helpdeskTAP   = orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_TEMPORARY_ACCESS_PASS
	helpdeskReset = orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_PASSWORD_RESET
)

// helpdeskRequest is E1, reporting to M1, whose helpdesk request requestID of the given kind was
// approved at approvedAt (org-model's not_after: an hour later), with the cause org-model gives it.
func helpdeskRequest(revision uint64, requestID string, kind orgsyncv1.HelpdeskCredentialKind, approvedAt time.Time) *orgsyncv1.DesiredObject {
	obj := user(revision, "Sales")
	obj.GetUser().ManagerWorkerId = "M1"
	obj.GetUser().HelpdeskCredential = &orgsyncv1.HelpdeskCredential{AccessRequestId: requestID, Kind: kind,
		ApprovedAt: timestamppb.New(approvedAt), NotAfter: timestamppb.New(approvedAt.Add(time.Hour)), LifetimeMinutes: 60}
	obj.Cause = &orgsyncv1.Cause{Reason: "helpdesk request approved", AccessRequestId: requestID, GrantReason: "INC-4711 locked out",
		RequestedBy: &orgsyncv1.Principal{Subject: "operator-1"}, ApprovedBy: &orgsyncv1.Principal{Subject: "approver-2"}}
	return obj
}

// recordingWebhook is a ticketing endpoint in memory.
type recordingWebhook struct {
	helpdesk []HelpdeskCredential
	fail     error
}

func (r *recordingWebhook) Name() string { return "servicedesk" }

func (r *recordingWebhook) DeliverFirstDayPass(context.Context, FirstDayPass) error { return nil }

func (r *recordingWebhook) DeliverHelpdeskCredential(_ context.Context, credential HelpdeskCredential) error {
	if r.fail != nil {
		return r.fail
	}
	r.helpdesk = append(r.helpdesk, credential)
	return nil
}

func TestHelpdeskCredential(t *testing.T) {
	approved := time.Date(2026, 6, 22, 7, 45, 0, 0, time.UTC) // the fixture's clock is 08:00

	t.Run("a pass made and delivered once per request, across a restart; a new request makes a new one", func(t *testing.T) {
		f := newFirstDayFixture(t)
		var logs bytes.Buffer
		f.w.logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		result, err := f.w.Apply(t.Context(), helpdeskRequest(1, "r-1", helpdeskTAP, approved), 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"user.create", "manager.set", OpCreateAccessPass, OpDeliverToManager}; !slices.Equal(result.GetOperations(), want) {
			t.Errorf("operations %v, want %v", result.GetOperations(), want)
		}
		delivery := result.GetHelpdeskDelivery()
		if delivery.GetAccessRequestId() != "r-1" || delivery.GetKind() != helpdeskTAP || delivery.GetRecipientWorkerId() != "M1" ||
			delivery.GetChannel() != orgsyncv1.CredentialChannel_CREDENTIAL_CHANNEL_MANAGER_MAILBOX || delivery.GetChannelName() != "onboarding@corp.example.com" ||
			!delivery.GetDeliveredAt().AsTime().Equal(f.clock) || !delivery.GetExpiresAt().AsTime().Equal(f.clock.Add(time.Hour)) {
			t.Errorf("helpdesk delivery %v", delivery)
		}
		if result.GetCredentialDelivery() != nil {
			t.Errorf("a helpdesk pass recorded as a first-day delivery: %v", result.GetCredentialDelivery())
		}
		pass, ok := f.fake.AccessPass(result.GetObjectId())
		if !ok || !pass.IsUsableOnce || pass.LifetimeMinutes != 60 {
			t.Fatalf("the pass on the account: %+v (%v), want one of 60 minutes usable once", pass, ok)
		}
		mail := f.fake.SentMail()
		if len(mail) != 1 || !slices.Equal(mail[0].To, []string{"mary@corp.example.com"}) || !strings.Contains(mail[0].Body, pass.Secret.Reveal()) ||
			!strings.Contains(mail[0].Subject, "Helpdesk request r-1") || !strings.Contains(mail[0].Body, "INC-4711") {
			t.Fatalf("mail sent: %+v, want one helpdesk message with the pass to the manager", mail)
		}
		for where, text := range map[string]string{"result": prototext.Format(result), "logs": logs.String()} {
			if strings.Contains(text, pass.Secret.Reveal()) {
				t.Errorf("the pass is in the %s: %s", where, text)
			}
		}

		// Redelivered, and then a restarted writer seeded from RESULTS: nothing more.
		f.clock = f.clock.Add(10 * time.Minute)
		again, err := f.w.Apply(t.Context(), helpdeskRequest(1, "r-1", helpdeskTAP, approved), 2)
		if err != nil {
			t.Fatal(err)
		}
		restarted := f.newWriter()
		restarted.Seed(result, "entra.user.E1")
		restarted.Seed(&orgsyncv1.WriterResult{Kind: orgsyncv1.ObjectKind_OBJECT_KIND_USER, Key: "M1", ObjectId: f.w.userIDs["M1"]}, "entra.user.M1")
		afterRestart, err := restarted.Apply(t.Context(), helpdeskRequest(2, "r-1", helpdeskTAP, approved), 1)
		if err != nil {
			t.Fatal(err)
		}
		if f.fake.Writes[OpCreateAccessPass] != 1 || len(f.fake.SentMail()) != 1 {
			t.Errorf("%d passes, %d messages after a redelivery and a restart; want 1, 1", f.fake.Writes[OpCreateAccessPass], len(f.fake.SentMail()))
		}
		for _, later := range []*orgsyncv1.WriterResult{again, afterRestart} {
			if later.GetHelpdeskDelivery().GetAccessRequestId() != "r-1" {
				t.Errorf("the delivery is not carried on a later result: %v", later.GetHelpdeskDelivery())
			}
		}

		next, err := restarted.Apply(t.Context(), helpdeskRequest(3, "r-2", helpdeskTAP, f.clock), 1)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(next.GetOperations(), OpCreateAccessPass) || next.GetHelpdeskDelivery().GetAccessRequestId() != "r-2" || f.fake.Writes[OpCreateAccessPass] != 2 {
			t.Errorf("a second request: operations %v, delivery %v, %d passes; want a new pass", next.GetOperations(), next.GetHelpdeskDelivery(), f.fake.Writes[OpCreateAccessPass])
		}
	})

	t.Run("a password reset sets a complex password, forced to change, and delivers it", func(t *testing.T) {
		f := newFirstDayFixture(t)
		result, err := f.w.Apply(t.Context(), helpdeskRequest(1, "r-3", helpdeskReset, approved), 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"user.create", "manager.set", OpResetPassword, OpDeliverToManager}; !slices.Equal(result.GetOperations(), want) {
			t.Errorf("operations %v, want %v", result.GetOperations(), want)
		}
		reset, ok := f.fake.PasswordReset(result.GetObjectId())
		if !ok || !reset.ForceChangePasswordNextSignIn || !directorytest.ComplexPassword(reset.Secret.Reveal()) {
			t.Fatalf("password on the account: set %v, %+v", ok, reset)
		}
		mail := f.fake.SentMail()
		if len(mail) != 1 || !strings.Contains(mail[0].Body, "New password: "+reset.Secret.Reveal()+"\n") || !strings.Contains(mail[0].Subject, "new password") {
			t.Fatalf("mail sent: %+v, want the password that was set", mail)
		}
		if delivery := result.GetHelpdeskDelivery(); delivery.GetKind() != helpdeskReset || delivery.GetExpiresAt() != nil {
			t.Errorf("delivery %v, want a password reset without an expiry", delivery)
		}
		if strings.Contains(prototext.Format(result), reset.Secret.Reveal()) {
			t.Errorf("the password is in the result")
		}
		if _, err := f.w.Apply(t.Context(), helpdeskRequest(2, "r-3", helpdeskReset, approved), 1); err != nil || f.fake.Writes[OpResetPassword] != 1 {
			t.Errorf("a later revision of the same request: %v, %d resets; want no second reset", err, f.fake.Writes[OpResetPassword])
		}
	})

	t.Run("none once the request's time is over, none for a disabled account, none when report-only", func(t *testing.T) {
		f := newFirstDayFixture(t)
		expired := helpdeskRequest(1, "r-4", helpdeskTAP, f.clock.Add(-time.Hour))
		disabled := helpdeskRequest(2, "r-5", helpdeskReset, approved)
		disabled.GetUser().AccountEnabled = false
		for _, obj := range []*orgsyncv1.DesiredObject{expired, disabled} {
			result, err := f.w.Apply(t.Context(), obj, 1)
			if err != nil {
				t.Fatal(err)
			}
			if result.GetHelpdeskDelivery() != nil {
				t.Errorf("request %s delivered: %v", obj.GetCause().GetAccessRequestId(), result.GetHelpdeskDelivery())
			}
		}
		f.w.dir = recordOnly{dir: f.fake}
		if _, err := f.w.Apply(t.Context(), helpdeskRequest(3, "r-6", helpdeskTAP, approved), 1); err != nil {
			t.Fatal(err)
		}
		if f.fake.Writes[OpCreateAccessPass]+f.fake.Writes[OpResetPassword] != 0 || len(f.fake.SentMail()) != 0 {
			t.Errorf("a credential was made: %v, %d messages", f.fake.Writes, len(f.fake.SentMail()))
		}
	})

	t.Run("a failed delivery deletes the pass, and the retry delivers a new one", func(t *testing.T) {
		f := newFirstDayFixture(t)
		f.fake.Fail = func(op string) error {
			if op == "mail.send" {
				return &directory.Error{Op: op, Class: directory.ClassTransient, Status: 503, Code: "serviceNotAvailable", Message: "try later"}
			}
			return nil
		}
		_, err := f.w.Apply(t.Context(), helpdeskRequest(1, "r-7", helpdeskTAP, approved), 1)
		if directory.ClassOf(err) != directory.ClassTransient || strings.Contains(err.Error(), "fake-pass-") {
			t.Fatalf("error %v, want the delivery's transient error without the pass", err)
		}
		if _, left := f.fake.AccessPass(f.w.userIDs["E1"]); left || f.fake.Writes["user.temporary-access-pass.delete"] != 1 {
			t.Errorf("the undelivered pass: still there %v, %d deletions", left, f.fake.Writes["user.temporary-access-pass.delete"])
		}
		f.fake.Fail = nil
		result, err := f.w.Apply(t.Context(), helpdeskRequest(1, "r-7", helpdeskTAP, approved), 2)
		if err != nil || result.GetHelpdeskDelivery().GetAccessRequestId() != "r-7" || f.fake.Writes[OpCreateAccessPass] != 2 {
			t.Errorf("the retry: %v, %v, %d passes; want a second pass delivered", result.GetHelpdeskDelivery(), err, f.fake.Writes[OpCreateAccessPass])
		}
	})

	t.Run("a failed delivery of a password: the retry resets it again and delivers the one in force", func(t *testing.T) {
		f := newFirstDayFixture(t)
		f.fake.Fail = func(op string) error {
			if op == "mail.send" {
				return &directory.Error{Op: op, Class: directory.ClassTransient, Status: 503, Code: "serviceNotAvailable", Message: "try later"}
			}
			return nil
		}
		_, err := f.w.Apply(t.Context(), helpdeskRequest(1, "r-8", helpdeskReset, approved), 1)
		if directory.ClassOf(err) != directory.ClassTransient {
			t.Fatalf("error %v, want the delivery's transient error", err)
		}
		first, _ := f.fake.PasswordReset(f.w.userIDs["E1"])
		if strings.Contains(err.Error(), first.Secret.Reveal()) {
			t.Errorf("the error holds the password: %v", err)
		}
		f.fake.Fail = nil
		if _, err := f.w.Apply(t.Context(), helpdeskRequest(1, "r-8", helpdeskReset, approved), 2); err != nil {
			t.Fatal(err)
		}
		second, _ := f.fake.PasswordReset(f.w.userIDs["E1"])
		mail := f.fake.SentMail()
		if f.fake.Writes[OpResetPassword] != 2 || first.Secret.Reveal() == second.Secret.Reveal() || len(mail) != 1 || !strings.Contains(mail[0].Body, second.Secret.Reveal()) {
			t.Errorf("%d resets, %d messages; want 2 different passwords and the second delivered", f.fake.Writes[OpResetPassword], len(mail))
		}
	})

	t.Run("no manager: refused before anything is made, not retried", func(t *testing.T) {
		f := newFirstDayFixture(t)
		orphan := helpdeskRequest(1, "r-9", helpdeskReset, approved)
		orphan.GetUser().ManagerWorkerId = ""
		_, err := f.w.Apply(t.Context(), orphan, 1)
		if directory.ClassOf(err) != directory.ClassInvalid {
			t.Fatalf("error %v, want invalid", err)
		}
		if _, retried := retryDelay(err, 1); retried {
			t.Errorf("%v is retried; want it FAILED and parked", err)
		}
		if f.fake.Writes[OpResetPassword]+f.fake.Writes[OpCreateAccessPass] != 0 || len(f.fake.SentMail()) != 0 {
			t.Errorf("a credential was made with nowhere to go: %v", f.fake.Writes)
		}
	})

	t.Run("to the webhook when configured, with no mail", func(t *testing.T) {
		f := newFirstDayFixture(t)
		endpoint := &recordingWebhook{}
		w := New(f.fake, nil, slog.New(slog.DiscardHandler), Options{CredentialWebhook: endpoint})
		w.now = func() time.Time { return f.clock }
		orphan := helpdeskRequest(1, "r-10", helpdeskTAP, approved)
		orphan.GetUser().ManagerWorkerId = "" // the ticketing system routes it: no manager needed
		result, err := w.Apply(t.Context(), orphan, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(endpoint.helpdesk) != 1 || len(f.fake.SentMail()) != 0 {
			t.Fatalf("%d webhook deliveries, %d messages; want 1, 0", len(endpoint.helpdesk), len(f.fake.SentMail()))
		}
		got := endpoint.helpdesk[0]
		pass, _ := f.fake.AccessPass(result.GetObjectId())
		if got.AccessRequestID != "r-10" || got.Kind != helpdeskTAP || got.Reason != "INC-4711 locked out" || got.DeliveryID != "tap_"+pass.ID ||
			got.Pass.Secret.Reveal() != pass.Secret.Reveal() {
			t.Errorf("delivered %+v, want request r-10's pass %s", got, pass.ID)
		}
		if delivery := result.GetHelpdeskDelivery(); delivery.GetChannel() != orgsyncv1.CredentialChannel_CREDENTIAL_CHANNEL_WEBHOOK ||
			delivery.GetChannelName() != "servicedesk" || !slices.Contains(result.GetOperations(), OpDeliverToWebhook) {
			t.Errorf("delivery %v, operations %v", delivery, result.GetOperations())
		}

		endpoint.fail = &directory.Error{Op: "credential.deliver.webhook", Class: directory.ClassInvalid, Status: 400, Message: "refused"}
		_, err = w.Apply(t.Context(), helpdeskRequest(2, "r-11", helpdeskTAP, f.clock), 1)
		if directory.ClassOf(err) != directory.ClassInvalid {
			t.Errorf("a refused webhook delivery: %v, want invalid", err)
		}
		if _, left := f.fake.AccessPass(result.GetObjectId()); left {
			t.Errorf("the pass the webhook refused is still on the account")
		}
	})

	t.Run("no channel configured: nothing made", func(t *testing.T) {
		f := newFirstDayFixture(t)
		unconfigured := New(f.fake, nil, slog.New(slog.DiscardHandler))
		unconfigured.now = func() time.Time { return f.clock }
		result, err := unconfigured.Apply(t.Context(), helpdeskRequest(1, "r-12", helpdeskReset, approved), 1)
		if err != nil {
			t.Fatal(err)
		}
		if result.GetHelpdeskDelivery() != nil || f.fake.Writes[OpResetPassword] != 0 {
			t.Errorf("a password reset without a channel: %v, %d resets", result.GetHelpdeskDelivery(), f.fake.Writes[OpResetPassword])
		}
	})
}
