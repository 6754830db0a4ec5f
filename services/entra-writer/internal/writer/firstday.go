package writer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
)

// Operations, in results and audit records, of a first-day Temporary Access Pass.
const (
	OpCreateAccessPass = "user.temporary-access-pass.create"
	// OpDeliverToManager is the pass's delivery to the new hire's manager's mailbox.
	OpDeliverToManager = "credential.deliver.manager-mailbox"
)

// firstDayWindow is how long after the start of the first day a pass is still made: a writer
// that meets the desired state later (the policy just turned on for people hired long ago, a
// writer down for a day) makes none, as the day it was for is over.
const firstDayWindow = 24 * time.Hour

// errBeforeFirstDay says the first day has not begun by this writer's clock (org-model asks from
// its start, by its own clock): the user is written and reported, and its message comes back
// when the day begins (see untilFirstDay).
var errBeforeFirstDay = errors.New("the first-day pass waits for the first day")

// firstDayRecheck caps how long a message waiting for the first day stays away.
const firstDayRecheck = time.Hour

// untilFirstDay is how long until a first-day pass the desired user asks for and this writer
// has not delivered is due; zero when none waits.
func (w *Writer) untilFirstDay(desired *orgsyncv1.DesiredUser) time.Duration {
	asked := desired.GetFirstDayCredential()
	if asked.GetFirstDayAt() == nil || !desired.GetAccountEnabled() || !w.deliveryConfigured() {
		return 0
	}
	firstDay := asked.GetFirstDayAt().AsTime()
	w.mu.Lock()
	recorded := w.deliveries[desired.GetWorkerId()]
	w.mu.Unlock()
	if recorded != nil && recorded.GetFirstDayAt().AsTime().Equal(firstDay) {
		return 0
	}
	return min(firstDay.Sub(w.now()), firstDayRecheck)
}

// FirstDayPass is a new hire's pass on its way to the configured recipient.
type FirstDayPass struct {
	WorkerID, UserPrincipalName, DisplayName string
	// ManagerWorkerID is the hire's manager, "" when HR names none.
	ManagerWorkerID string
	FirstDayAt      time.Time
	Pass            directory.AccessPass
}

// CredentialWebhook delivers the credentials the writer makes — first-day passes and helpdesk
// credentials — to a ticketing system (see package webhook).
type CredentialWebhook interface {
	// Name names the endpoint in results and audit records.
	Name() string
	// DeliverFirstDayPass delivers one pass; a *directory.Error's class says whether to retry.
	DeliverFirstDayPass(ctx context.Context, pass FirstDayPass) error
	// DeliverHelpdeskCredential delivers one helpdesk credential; a *directory.Error's class says
	// whether to retry.
	DeliverHelpdeskCredential(ctx context.Context, credential HelpdeskCredential) error
}

// OpDeliverToWebhook is the pass's delivery to the configured webhook.
const OpDeliverToWebhook = "credential.deliver.webhook"

// deliveryConfigured says whether a channel for the credentials the writer makes is configured.
func (w *Writer) deliveryConfigured() bool { return w.mailSender != "" || w.webhook != nil }

// errNoRecipient is a first-day pass that has nowhere to go: no manager, or a manager without a
// mail address. Retrying cannot fix it; the desired state is FAILED once and parked, and no pass
// is made.
func errNoRecipient(why string) error {
	return &directory.Error{Op: OpDeliverToManager, Class: directory.ClassInvalid, Code: "orgsync_NoRecipient", Message: why}
}

// firstDayCredential gives a new hire a Temporary Access Pass on their first day and delivers it
// to their manager's mailbox, once per first day. It is level-triggered like revokeAccess: the
// desired user carries the first day's start (HR's date), the writer records the first day it
// delivered for (WriterResult.credential_delivery, on RESULTS, seeded at start), and makes a pass
// only when the day has come, is not over, and no delivery is recorded for it. The pass exists in
// memory only between Graph's answer and the sendMail call; a delivery that fails deletes it, so
// no undelivered pass stays usable, and the retry makes a new one (Graph keeps one per user).
func (w *Writer) firstDayCredential(ctx context.Context, desired *orgsyncv1.DesiredUser, userID string, result *orgsyncv1.WriterResult) error {
	workerID := desired.GetWorkerId()
	w.mu.Lock()
	recorded := w.deliveries[workerID]
	w.mu.Unlock()
	result.CredentialDelivery = recorded
	asked := desired.GetFirstDayCredential()
	if asked == nil || asked.GetFirstDayAt() == nil || !desired.GetAccountEnabled() {
		return nil
	}
	if _, reportOnly := w.dir.(recordOnly); reportOnly {
		return nil
	}
	firstDay := asked.GetFirstDayAt().AsTime()
	if recorded != nil && recorded.GetFirstDayAt().AsTime().Equal(firstDay) {
		return nil
	}
	now := w.now()
	switch {
	case now.Before(firstDay):
		// Not yet: nothing is made now; finish brings the message back when the day begins.
		return nil
	case !now.Before(firstDay.Add(firstDayWindow)):
		w.logger.DebugContext(ctx, "no first-day pass: the first day is over", "worker_id", workerID)
		return nil
	}
	if !w.deliveryConfigured() {
		w.logger.WarnContext(ctx, "a first-day pass is asked for but no delivery is configured (ENTRA_FIRST_DAY_MAIL_SENDER or ENTRA_FIRST_DAY_WEBHOOK_URL); none is made", "worker_id", workerID)
		return nil
	}
	managerWorkerID := desired.GetManagerWorkerId()
	if w.webhook != nil {
		return w.firstDayToWebhook(ctx, desired, userID, firstDay, now, result)
	}
	managerMail, err := w.managerMailbox(ctx, desired, "the first-day pass")
	if err != nil {
		return err
	}

	pass, err := w.dir.CreateTemporaryAccessPass(ctx, userID, now, int(asked.GetLifetimeMinutes()), asked.GetIsUsableOnce())
	if err != nil {
		return err
	}
	mail := firstDayMail(desired.GetDisplayName(), desired.GetUserPrincipalName(), managerMail, *pass)
	if err := w.dir.SendMail(ctx, w.mailSender, mail); err != nil {
		return w.undelivered(ctx, userID, pass.ID, err)
	}
	w.delivered(ctx, workerID, &orgsyncv1.CredentialDelivery{
		FirstDayAt: asked.GetFirstDayAt(), Channel: orgsyncv1.CredentialChannel_CREDENTIAL_CHANNEL_MANAGER_MAILBOX,
		ChannelName: w.mailSender, RecipientWorkerId: managerWorkerID,
		DeliveredAt: timestamppb.New(now), ExpiresAt: timestamppb.New(pass.Expires()),
	}, result, OpDeliverToManager)
	return nil
}

// managerMailbox is the mail address of the worker's manager, to whom what (a credential) is
// delivered: errNoRecipient when the worker has no manager or the manager no mail address,
// errPending while the manager's account is not known yet.
func (w *Writer) managerMailbox(ctx context.Context, desired *orgsyncv1.DesiredUser, what string) (string, error) {
	managerWorkerID := desired.GetManagerWorkerId()
	if managerWorkerID == "" {
		return "", errNoRecipient("the worker has no manager to deliver " + what + " to")
	}
	w.mu.Lock()
	managerID := w.userIDs[managerWorkerID]
	w.mu.Unlock()
	if managerID == "" {
		return "", fmt.Errorf("%s of %s: the manager's account: %w", what, desired.GetWorkerId(), errPending)
	}
	manager, err := w.dir.GetUser(ctx, managerID)
	if err != nil {
		return "", err
	}
	if manager.Mail == "" {
		return "", errNoRecipient("the worker's manager has no mail address to deliver " + what + " to")
	}
	return manager.Mail, nil
}

// firstDayToWebhook makes the pass and delivers it to the configured webhook, which needs no
// manager: the ticketing system routes it.
func (w *Writer) firstDayToWebhook(ctx context.Context, desired *orgsyncv1.DesiredUser, userID string, firstDay, now time.Time, result *orgsyncv1.WriterResult) error {
	asked := desired.GetFirstDayCredential()
	pass, err := w.dir.CreateTemporaryAccessPass(ctx, userID, now, int(asked.GetLifetimeMinutes()), asked.GetIsUsableOnce())
	if err != nil {
		return err
	}
	err = w.webhook.DeliverFirstDayPass(ctx, FirstDayPass{WorkerID: desired.GetWorkerId(), UserPrincipalName: desired.GetUserPrincipalName(),
		DisplayName: desired.GetDisplayName(), ManagerWorkerID: desired.GetManagerWorkerId(), FirstDayAt: firstDay, Pass: *pass})
	if err != nil {
		return w.undelivered(ctx, userID, pass.ID, err)
	}
	w.delivered(ctx, desired.GetWorkerId(), &orgsyncv1.CredentialDelivery{
		FirstDayAt: asked.GetFirstDayAt(), Channel: orgsyncv1.CredentialChannel_CREDENTIAL_CHANNEL_WEBHOOK, ChannelName: w.webhook.Name(),
		DeliveredAt: timestamppb.New(now), ExpiresAt: timestamppb.New(pass.Expires()),
	}, result, OpDeliverToWebhook)
	return nil
}

// undelivered deletes a pass whose delivery failed — an undelivered pass must not stay usable:
// nobody but orgsync ever saw it — and returns the delivery's error.
func (w *Writer) undelivered(ctx context.Context, userID, passID string, deliveryErr error) error {
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := w.dir.DeleteTemporaryAccessPass(cleanup, userID, passID); err != nil {
		return fmt.Errorf("delivering the Temporary Access Pass: %w (and deleting the undelivered pass: %v)", deliveryErr, err)
	}
	return fmt.Errorf("delivering the Temporary Access Pass (deleted undelivered): %w", deliveryErr)
}

// delivered records a delivery: on the result (and so on RESULTS and AUDIT) and in memory.
func (w *Writer) delivered(ctx context.Context, workerID string, delivery *orgsyncv1.CredentialDelivery, result *orgsyncv1.WriterResult, deliverOp string) {
	w.mu.Lock()
	w.deliveries[workerID] = delivery
	w.mu.Unlock()
	result.CredentialDelivery = delivery
	result.Operations = append(result.Operations, OpCreateAccessPass, deliverOp)
	w.logger.InfoContext(ctx, "first-day Temporary Access Pass delivered", "worker_id", workerID,
		"channel", delivery.GetChannel().String(), "channel_name", delivery.GetChannelName(),
		"manager_worker_id", delivery.GetRecipientWorkerId(), "expires_at", delivery.GetExpiresAt().AsTime())
}

// firstDayMail is the message that carries the pass to the manager.
func firstDayMail(displayName, principalName, to string, pass directory.AccessPass) directory.Mail {
	use := "It can be used several times until it expires."
	if pass.IsUsableOnce {
		use = "It can be used for one sign-in only."
	}
	body := fmt.Sprintf("%s starts today. Their account is %s.\n\n"+
		"Temporary Access Pass: %s\n\n"+
		"It is valid from %s until %s (UTC). %s Please hand it to them in person; they use it to sign in "+
		"for the first time and to set up their own sign-in methods.\n\n"+
		"This message was sent by orgsync. Do not forward it.",
		displayName, principalName, pass.Secret.Reveal(),
		pass.Start.UTC().Format("2006-01-02 15:04"), pass.Expires().UTC().Format("2006-01-02 15:04"), use)
	return directory.Mail{To: []string{to}, Subject: "First-day sign-in for " + displayName, Body: body}
}
