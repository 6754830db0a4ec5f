package writer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/password"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
)

// OpResetPassword is the operation, in results and audit records, of a helpdesk request's
// password reset. A helpdesk request's Temporary Access Pass is OpCreateAccessPass; either is
// followed by its delivery, OpDeliverToManager or OpDeliverToWebhook.
const OpResetPassword = "user.password.reset"

// HelpdeskCredential is the credential an approved helpdesk request gives a worker, on its way
// to the configured recipient. Its secrets are directory.Secret: printed by mistake, they say
// "[redacted]".
type HelpdeskCredential struct {
	WorkerID, UserPrincipalName, DisplayName string
	// ManagerWorkerID is the worker's manager, "" when HR names none.
	ManagerWorkerID string
	AccessRequestID string
	Kind            orgsyncv1.HelpdeskCredentialKind
	// Reason is the reason given with the request (the cause's grant_reason).
	Reason string
	// DeliveryID is this credential's own id — the pass's id, or a random id made with the
	// password — so that a receiver deduplicating by it takes a retried request once and a new
	// credential (after a failed delivery) as new.
	DeliveryID string
	// Pass is the Temporary Access Pass, for HELPDESK_CREDENTIAL_KIND_TEMPORARY_ACCESS_PASS.
	Pass directory.AccessPass
	// Password is the new password, for HELPDESK_CREDENTIAL_KIND_PASSWORD_RESET; the worker must
	// change it at the next sign-in.
	Password directory.Secret
}

// helpdeskCredential makes the credential an approved helpdesk request asks for — a Temporary
// Access Pass usable once, or a new random password that must be changed at the next sign-in —
// and delivers it to the configured channel (the webhook, else the worker's manager's mailbox),
// once per request. It is level-triggered like firstDayCredential: the desired user carries the
// request (access_request_id, not_after), the writer records the request it delivered for
// (WriterResult.helpdesk_delivery, on RESULTS, seeded at start) and acts only for a request it
// has not delivered, for an enabled account, before not_after.
//
// The secret exists in memory only between its making and the delivery call. A pass whose
// delivery failed is deleted at once. A password whose delivery failed stays set but known to no
// one (the old one is gone either way); the retry resets it again, so the one delivered is the
// one in force. The recipient is checked before anything is made: a worker without a manager (or
// a manager without mail) is ClassInvalid — FAILED once and parked — and nothing is made.
func (w *Writer) helpdeskCredential(ctx context.Context, cause *orgsyncv1.Cause, desired *orgsyncv1.DesiredUser, userID string, result *orgsyncv1.WriterResult) error {
	workerID := desired.GetWorkerId()
	w.mu.Lock()
	recorded := w.helpdeskDeliveries[workerID]
	w.mu.Unlock()
	result.HelpdeskDelivery = recorded
	asked := desired.GetHelpdeskCredential()
	if asked.GetAccessRequestId() == "" || recorded.GetAccessRequestId() == asked.GetAccessRequestId() {
		return nil
	}
	if _, reportOnly := w.dir.(recordOnly); reportOnly {
		return nil
	}
	requestID := asked.GetAccessRequestId()
	if !desired.GetAccountEnabled() {
		w.logger.DebugContext(ctx, "no helpdesk credential: the account is disabled", "worker_id", workerID, "access_request_id", requestID)
		return nil
	}
	now := w.now()
	if asked.GetNotAfter() == nil || !now.Before(asked.GetNotAfter().AsTime()) {
		w.logger.DebugContext(ctx, "no helpdesk credential: the request's time to make it is over", "worker_id", workerID,
			"access_request_id", requestID, "not_after", asked.GetNotAfter().AsTime())
		return nil
	}
	kind := asked.GetKind()
	if kind != orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_TEMPORARY_ACCESS_PASS &&
		kind != orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_PASSWORD_RESET {
		return &directory.Error{Op: "helpdesk-credential", Class: directory.ClassInvalid, Code: "orgsync_UnknownCredentialKind",
			Message: fmt.Sprintf("helpdesk request %s asks for credential kind %s, which this writer does not make", requestID, kind)}
	}
	if !w.deliveryConfigured() {
		w.logger.WarnContext(ctx, "a helpdesk credential is asked for but no delivery is configured (ENTRA_FIRST_DAY_MAIL_SENDER or ENTRA_FIRST_DAY_WEBHOOK_URL); none is made",
			"worker_id", workerID, "access_request_id", requestID)
		return nil
	}
	var managerMail string
	if w.webhook == nil {
		var err error
		if managerMail, err = w.managerMailbox(ctx, desired, "the helpdesk credential"); err != nil {
			return err
		}
	}

	credential := HelpdeskCredential{WorkerID: workerID, UserPrincipalName: desired.GetUserPrincipalName(), DisplayName: desired.GetDisplayName(),
		ManagerWorkerID: desired.GetManagerWorkerId(), AccessRequestID: requestID, Kind: kind, Reason: cause.GetGrantReason()}
	delivery := &orgsyncv1.CredentialDelivery{AccessRequestId: requestID, Kind: kind, DeliveredAt: timestamppb.New(now)}
	var madeOp string
	switch kind {
	case orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_TEMPORARY_ACCESS_PASS:
		pass, err := w.dir.CreateTemporaryAccessPass(ctx, userID, now, int(asked.GetLifetimeMinutes()), true)
		if err != nil {
			return err
		}
		credential.Pass, credential.DeliveryID, madeOp = *pass, "tap_"+pass.ID, OpCreateAccessPass
		delivery.ExpiresAt = timestamppb.New(pass.Expires())
	case orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_PASSWORD_RESET:
		value, err := password.New()
		if err != nil {
			return err
		}
		deliveryID, err := randomID()
		if err != nil {
			return err
		}
		credential.Password, credential.DeliveryID, madeOp = directory.NewSecret(value), "pwd_"+deliveryID, OpResetPassword
		if err := w.dir.ResetPassword(ctx, userID, credential.Password); err != nil {
			return err
		}
	}

	var deliverOp string
	var deliverErr error
	if w.webhook != nil {
		deliverOp, delivery.Channel, delivery.ChannelName = OpDeliverToWebhook, orgsyncv1.CredentialChannel_CREDENTIAL_CHANNEL_WEBHOOK, w.webhook.Name()
		deliverErr = w.webhook.DeliverHelpdeskCredential(ctx, credential)
	} else {
		deliverOp, delivery.Channel, delivery.ChannelName = OpDeliverToManager, orgsyncv1.CredentialChannel_CREDENTIAL_CHANNEL_MANAGER_MAILBOX, w.mailSender
		delivery.RecipientWorkerId = credential.ManagerWorkerID
		deliverErr = w.dir.SendMail(ctx, w.mailSender, helpdeskMail(credential, managerMail))
	}
	if deliverErr != nil {
		if kind == orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_TEMPORARY_ACCESS_PASS {
			return w.undelivered(ctx, userID, credential.Pass.ID, deliverErr)
		}
		return fmt.Errorf("delivering the reset password (set, known to no one; the retry resets it again): %w", deliverErr)
	}

	w.mu.Lock()
	w.helpdeskDeliveries[workerID] = delivery
	w.mu.Unlock()
	result.HelpdeskDelivery = delivery
	result.Operations = append(result.Operations, madeOp, deliverOp)
	w.logger.InfoContext(ctx, "helpdesk credential delivered", "worker_id", workerID, "access_request_id", requestID,
		"kind", kind.String(), "channel", delivery.GetChannel().String(), "channel_name", delivery.GetChannelName(),
		"manager_worker_id", delivery.GetRecipientWorkerId())
	return nil
}

// randomID is 16 random hex digits.
func randomID() (string, error) {
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generating a delivery id: %w", err)
	}
	return hex.EncodeToString(raw[:]), nil
}

// helpdeskMail is the message that carries a helpdesk credential to the worker's manager: it says
// which approved request it is for, so it cannot be taken for a first-day pass.
func helpdeskMail(credential HelpdeskCredential, to string) directory.Mail {
	var body strings.Builder
	fmt.Fprintf(&body, "A helpdesk request for %s (account %s) was approved by a second person.\n\nRequest: %s\n",
		credential.DisplayName, credential.UserPrincipalName, credential.AccessRequestID)
	if credential.Reason != "" {
		fmt.Fprintf(&body, "Reason: %s\n", credential.Reason)
	}
	subject := "Helpdesk request " + credential.AccessRequestID + ": "
	switch credential.Kind {
	case orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_PASSWORD_RESET:
		subject += "new password for " + credential.DisplayName
		fmt.Fprintf(&body, "\nTheir password was reset. New password: %s\n\n"+
			"They must change it at their next sign-in. Please hand it to them in person.\n", credential.Password.Reveal())
	default:
		subject += "Temporary Access Pass for " + credential.DisplayName
		pass := credential.Pass
		use := "It can be used several times until it expires."
		if pass.IsUsableOnce {
			use = "It can be used for one sign-in only."
		}
		fmt.Fprintf(&body, "\nTemporary Access Pass: %s\n\nIt is valid from %s until %s (UTC). %s Please hand it to them in person; "+
			"they use it to sign in and to set up their sign-in methods again.\n",
			pass.Secret.Reveal(), pass.Start.UTC().Format("2006-01-02 15:04"), pass.Expires().UTC().Format("2006-01-02 15:04"), use)
	}
	body.WriteString("\nThis message was sent by orgsync. Do not forward it.")
	return directory.Mail{To: []string{to}, Subject: subject, Body: body.String()}
}
