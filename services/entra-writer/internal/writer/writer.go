// Package writer converges Entra ID to the desired state on stream DIRECTORY, one object at a
// time: it creates or updates users (changing only what differs), creates and renames security
// groups, adds and removes memberships, and reports each outcome to stream RESULTS (and every
// write to AUDIT). It talks to Entra only through the Directory port.
package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/orgsync/orgsync/pkg/auditlog"
	"github.com/orgsync/orgsync/pkg/converge"
	"github.com/orgsync/orgsync/pkg/metrics"
	"github.com/orgsync/orgsync/pkg/password"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
)

// Directory is what the writer needs of Entra ID. Finds return (nil, nil) when nothing matches.
// AddMember succeeds when the member is already there; RemoveMember when it is not.
type Directory interface {
	FindUserByEmployeeID(ctx context.Context, employeeID string) (*directory.User, error)
	GetUser(ctx context.Context, id string) (*directory.User, error)
	CreateUser(ctx context.Context, attrs directory.UserAttributes, password string) (*directory.User, error)
	UpdateUser(ctx context.Context, id string, attrs directory.UserAttributes, fields []directory.Field) error
	DeleteUser(ctx context.Context, id string) error
	// FindDeletedUserByEmployeeID looks among soft-deleted users; (nil, nil) when none.
	FindDeletedUserByEmployeeID(ctx context.Context, employeeID string) (*directory.User, error)
	RestoreUser(ctx context.Context, id string) (*directory.User, error)
	FindGroupByMailNickname(ctx context.Context, mailNickname string) (*directory.Group, error)
	GetGroup(ctx context.Context, id string) (*directory.Group, error)
	CreateGroup(ctx context.Context, attrs directory.GroupAttributes) (*directory.Group, error)
	UpdateGroup(ctx context.Context, id string, attrs directory.GroupAttributes) error
	DeleteGroup(ctx context.Context, id string) error
	AddMember(ctx context.Context, groupID, memberID string) error
	// AddMembers adds up to 20 members at once, all or nothing.
	AddMembers(ctx context.Context, groupID string, memberIDs []string) error
	RemoveMember(ctx context.Context, groupID, memberID string) error
	// RemoveMembers removes up to 20 memberships in one $batch and returns one error per ref; a
	// missing member is success.
	RemoveMembers(ctx context.Context, refs []directory.MemberRef) []error
	SetManager(ctx context.Context, userID, managerID string) error
	// RemoveManager takes a user's manager link away; a user without one is success.
	RemoveManager(ctx context.Context, userID string) error
	// GetManager returns the object id of a user's manager, "" when the user has none.
	GetManager(ctx context.Context, userID string) (string, error)
	GetUserByPrincipalName(ctx context.Context, principalName string) (*directory.User, error)
	// RevokeSignInSessions invalidates every sign-in session the user was issued until now
	// (Graph's revokeSignInSessions); the user's SignInSessionsValidFrom becomes now.
	RevokeSignInSessions(ctx context.Context, userID string) error
	// AssignGroupLicenses adds licences to a group (or changes an assigned SKU's disabled plans)
	// and removes others, in one assignLicense call; the group's members get them in the background.
	AssignGroupLicenses(ctx context.Context, groupID string, add []directory.License, remove []string) error
	// GroupLicenseErrors lists the group's members whose licence from it is in error.
	GroupLicenseErrors(ctx context.Context, groupID string) ([]directory.LicenseError, error)
	// CreateTemporaryAccessPass gives a user a Temporary Access Pass, replacing any earlier one;
	// the answer is the only place the pass is shown.
	CreateTemporaryAccessPass(ctx context.Context, userID string, start time.Time, lifetimeMinutes int, usableOnce bool) (*directory.AccessPass, error)
	// DeleteTemporaryAccessPass deletes a user's pass; one already gone is success.
	DeleteTemporaryAccessPass(ctx context.Context, userID, passID string) error
	// SendMail sends a message from the sender's mailbox (an id or userPrincipalName).
	SendMail(ctx context.Context, senderID string, mail directory.Mail) error
	// ResetPassword gives a user a new password that must be changed at the next sign-in; a
	// password the directory's policy refuses is ClassInvalid.
	ResetPassword(ctx context.Context, userID string, password directory.Secret) error
}

// errPending says a membership waits for one of its ends to be created.
var errPending = errors.New("waiting for the group or member to exist")

// errHolderNotVisible says a user create was refused because the userPrincipalName is taken, but
// no account visibly holds it yet: the holder may be this worker's own account, not replicated.
var errHolderNotVisible = errors.New("the userPrincipalName is taken by an account not visible yet")

// errManagerLinkPending says a user was written without its manager link, the manager's account
// not existing yet: its message comes back until the link is made.
var errManagerLinkPending = errors.New("the manager link waits for the manager's account")

// errMaybeCreated marks a create that failed in a way that may have applied it (a 5xx or a lost
// connection): its retry waits out replication lag, so the lookup before the next create sees
// the object instead of creating a second one (groups have no unique property to refuse it).
var errMaybeCreated = errors.New("the create may have happened")

// endsPatience is how many attempts a membership removal waits for the object ids of its ends
// before concluding that orgsync never created one of them (and so never added the membership):
// replicas learn each other's ids from RESULTS, a moment after the fact.
const endsPatience = 4

// conflictPatience is how many attempts a user create refused with a userPrincipalName conflict
// is retried while no account visibly holds its userPrincipalName: the holder may be this worker's account, created by
// an attempt whose answer was lost or by another replica, and not replicated yet.
const conflictPatience = 12

// mayHaveApplied reports whether a failed create may nevertheless have happened.
func mayHaveApplied(err error) bool {
	switch directory.ClassOf(err) {
	case directory.ClassTransient, directory.ClassUnknown:
		return !errors.Is(err, context.Canceled)
	}
	return false
}

// Writer applies desired objects. Handle is called by one goroutine (the consumer's); Seed before
// that.
type Writer struct {
	dir    Directory
	engine *converge.Engine
	pause  *converge.Pause
	logger *slog.Logger
	now    func() time.Time

	// applyMu serialises applying desired state: the consumer's messages and the drift
	// reconcile's corrections (which may swap dir for a record-only one while they run).
	applyMu sync.Mutex

	mu sync.Mutex
	// userIDs and groupIDs are orgsync's own record of the objects it created or found, by worker id
	// and group key: Graph's lookups are eventually consistent, so a lookup right after a create
	// cannot be trusted to find it.
	userIDs  map[string]string
	groupIDs map[string]string
	// lostCreates counts, per object path, the creates that may have happened without an answer
	// since the object was last applied: each waits out replication lag longer.
	lostCreates map[string]int
	// gatherWindow and gathering hold membership additions back per group while a load is
	// under way, so that members arriving in any order are bound 20 at a time (see gather).
	gatherWindow time.Duration
	gathering    map[string]*gatheringGroup // by group object id
	// unmanaged marks workers whose accounts are outside the managed domains.
	unmanaged      map[string]bool
	managedDomains []string
	// forbiddenStreak counts consecutive 401/403 answers; at pauseAfterForbidden the writer
	// pauses.
	forbiddenStreak int
	pausedRetry     time.Duration
	lagWait         time.Duration
	// licensedGroups are the groups whose desired state gives licences, by group key, and
	// membersChanged the groups whose members were added or removed since the end of the last
	// batch: their members in error are read again then (see refreshLicenseErrors).
	licensedGroups map[string]licensedGroup
	membersChanged map[string]bool
	// deliveries are the first-day passes delivered, by worker id (see firstDayCredential), and
	// helpdeskDeliveries the last helpdesk credential delivered to each (see helpdeskCredential).
	deliveries         map[string]*orgsyncv1.CredentialDelivery
	helpdeskDeliveries map[string]*orgsyncv1.CredentialDelivery
	// mailSender is the mailbox first-day passes and helpdesk credentials are sent from, and
	// webhook the ticketing system they go to instead; neither: none are made.
	mailSender string
	webhook    CredentialWebhook
}

// pauseAfterForbidden consecutive refusals of the credentials, on any objects, pause the writer:
// a revoked secret or a removed permission fails every write, and burning messages on it would
// lose them.
const pauseAfterForbidden = 3

// Pause is the writer's pause: entered after pauseAfterForbidden refusals of the credentials,
// ended by the consumer's probe (see converge.Consumer).
func (w *Writer) Pause() *converge.Pause { return w.pause }

// Engine is the writer's share of the convergence engine.
func (w *Writer) Engine() *converge.Engine { return w.engine }

// noteOutcome keeps the run of credential refusals.
func (w *Writer) noteOutcome(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if directory.ClassOf(err) != directory.ClassForbidden {
		if err == nil {
			w.forbiddenStreak = 0
		}
		return
	}
	w.forbiddenStreak++
	if w.forbiddenStreak < pauseAfterForbidden {
		return
	}
	// After the pause, it takes as many refusals again to pause again.
	w.pause.Enter(fmt.Sprintf("%d consecutive refusals of the credentials, the last: %v", w.forbiddenStreak, err))
	w.forbiddenStreak = 0
}

// Options tune a Writer.
type Options struct {
	// ManagedDomains are the userPrincipalName domains orgsync owns; a user outside them is
	// reported and never created, changed or deleted. Empty means every domain.
	ManagedDomains []string
	// PausedRetry is how long a message waits after the directory refused the credentials or
	// when it meets a paused writer; default 30s.
	PausedRetry time.Duration
	// LagWait is how long a create that may have happened waits before it is looked up and
	// retried: longer than Graph's usual replication lag; default 15s.
	LagWait time.Duration
	// GatherWindow, when positive, holds membership additions back per group for up to this long
	// while many arrive at once, so that a group's members are bound 20 at a time whatever order
	// they arrive in (see gather). Zero binds each batch's additions at once.
	GatherWindow time.Duration
	// Latest returns the newest desired state of the object at path (stream DIRECTORY), nil when
	// there is none. With it, a redelivered revision older than one applied is replaced by the
	// newest desired state (see converge.Engine.Decode); without it, it is dropped.
	Latest converge.Latest
	// CredentialMailSender is the mailbox (userPrincipalName or object id) that sends the
	// credentials the writer makes — a new hire's first-day Temporary Access Pass, an approved
	// helpdesk request's pass or password — to the worker's manager. Empty (and no
	// CredentialWebhook): none is made.
	CredentialMailSender string
	// CredentialWebhook, when set, receives those credentials instead of the manager's mailbox.
	CredentialWebhook CredentialWebhook
}

// New returns a Writer.
func New(dir Directory, sender converge.Sender, logger *slog.Logger, opts ...Options) *Writer {
	var latest converge.Latest
	for _, o := range opts {
		if o.Latest != nil {
			latest = o.Latest
		}
	}
	w := &Writer{
		dir: dir, logger: logger, now: time.Now,
		engine: converge.New(orgsyncv1.Target_TARGET_ENTRA, sender, latest, logger), pause: converge.NewPause(logger),
		userIDs: map[string]string{}, groupIDs: map[string]string{}, lostCreates: map[string]int{},
		unmanaged: map[string]bool{}, pausedRetry: 30 * time.Second,
		lagWait: 15 * time.Second, gathering: map[string]*gatheringGroup{},
		licensedGroups: map[string]licensedGroup{}, membersChanged: map[string]bool{},
		deliveries: map[string]*orgsyncv1.CredentialDelivery{}, helpdeskDeliveries: map[string]*orgsyncv1.CredentialDelivery{},
	}
	w.engine.Now = func() time.Time { return w.now() }
	for _, o := range opts {
		if o.LagWait > 0 {
			w.lagWait = o.LagWait
		}
		if o.PausedRetry > 0 {
			w.pausedRetry = o.PausedRetry
		}
		if o.GatherWindow > 0 {
			w.gatherWindow = o.GatherWindow
		}
		if o.CredentialMailSender != "" {
			w.mailSender = o.CredentialMailSender
		}
		if o.CredentialWebhook != nil {
			w.webhook = o.CredentialWebhook
		}
		for _, domain := range o.ManagedDomains {
			if domain = strings.ToLower(strings.TrimSpace(domain)); domain != "" {
				w.managedDomains = append(w.managedDomains, domain)
			}
		}
	}
	return w
}

// manages reports whether a userPrincipalName is in a domain orgsync owns.
func (w *Writer) manages(principalName string) bool {
	if len(w.managedDomains) == 0 {
		return true
	}
	_, domain, _ := strings.Cut(strings.ToLower(principalName), "@")
	return slices.Contains(w.managedDomains, domain)
}

// leaveAlone reports a user orgsync must not touch and remembers it, so memberships of that user
// are left alone too.
func (w *Writer) leaveAlone(ctx context.Context, result *orgsyncv1.WriterResult, workerID, why string) *orgsyncv1.WriterResult {
	w.mu.Lock()
	w.unmanaged[workerID] = true
	w.mu.Unlock()
	w.logger.WarnContext(ctx, "user left alone: outside the managed domains", "worker_id", workerID, "reason", why)
	result.Outcome, result.ErrorMessage = orgsyncv1.Outcome_OUTCOME_SKIPPED, why
	return result
}

// Seed records a result the writer published before, so a restarted writer knows the objects it
// manages and the revisions it applied.
func (w *Writer) Seed(result *orgsyncv1.WriterResult, path string) {
	w.engine.Seed(path, result.GetRevision())
	w.mu.Lock()
	defer w.mu.Unlock()
	if result.GetKind() == orgsyncv1.ObjectKind_OBJECT_KIND_USER {
		if delivery := result.GetCredentialDelivery(); delivery != nil {
			w.deliveries[result.GetKey()] = delivery
		}
		if delivery := result.GetHelpdeskDelivery(); delivery != nil {
			w.helpdeskDeliveries[result.GetKey()] = delivery
		}
	}
	if result.GetObjectId() == "" {
		return
	}
	switch result.GetKind() {
	case orgsyncv1.ObjectKind_OBJECT_KIND_USER:
		w.userIDs[result.GetKey()] = result.GetObjectId()
	case orgsyncv1.ObjectKind_OBJECT_KIND_GROUP:
		w.groupIDs[result.GetKey()] = result.GetObjectId()
	}
}

// HandleBatch is the batch stream handler: users and groups are applied one by one, each under
// its own span continuing its producer's trace; membership additions are grouped per group and
// sent 20 to a request with members@odata.bind.
func (w *Writer) HandleBatch(ctx context.Context, msgs []jetstream.Msg) []error {
	w.applyMu.Lock()
	defer w.applyMu.Unlock()
	w.flushGathered(ctx, w.now())
	items, errs := w.engine.Decode(ctx, msgs)
	objs := make([]*orgsyncv1.DesiredObject, len(msgs))
	paths := make([]string, len(msgs))
	for i, it := range items {
		objs[i], paths[i] = it.Obj, it.Path
	}
	var additions, removals []int
	for i, obj := range objs {
		if obj == nil {
			continue
		}
		if m := obj.GetMembership(); m != nil && !w.unmanagedMember(m) {
			if obj.GetTombstone() {
				removals = append(removals, i)
			} else {
				additions = append(additions, i)
			}
			continue
		}
		spanCtx, span := stream.StartProcessSpan(ctx, msgs[i])
		attempt := w.engine.Attempt(msgs[i], paths[i])
		result, err := w.Apply(spanCtx, obj, attempt)
		errs[i] = w.finish(spanCtx, msgs[i], obj, paths[i], attempt, result, err)
		span.End()
	}
	w.addMembers(ctx, msgs, objs, paths, additions, errs)
	w.removeMembers(ctx, msgs, objs, paths, removals, errs)
	w.refreshLicenseErrors(ctx)
	return errs
}

// removeMembers applies the membership tombstones at the given indexes, 20 to a $batch, and
// settles each message by its own item's answer (a throttled item is retried alone).
func (w *Writer) removeMembers(ctx context.Context, msgs []jetstream.Msg, objs []*orgsyncv1.DesiredObject, paths []string, indexes []int, errs []error) {
	var pending []int
	var refs []directory.MemberRef
	for _, i := range indexes {
		attempt := w.engine.Attempt(msgs[i], paths[i])
		groupID, memberID, err := w.resolveEnds(ctx, objs[i].GetMembership(), attempt)
		if err != nil {
			errs[i] = w.finish(ctx, msgs[i], objs[i], paths[i], attempt, nil, err)
			continue
		}
		if groupID == "" || memberID == "" {
			if attempt < endsPatience {
				// Another replica may have created an end moments ago; its result is on its way.
				errs[i] = w.finish(ctx, msgs[i], objs[i], paths[i], attempt, nil, fmt.Errorf("membership %s: %w", objs[i].GetKey(), errPending))
				continue
			}
			// orgsync never created one end, so it never added this membership.
			errs[i] = w.finish(ctx, msgs[i], objs[i], paths[i], attempt, w.engine.Result(objs[i]), nil)
			continue
		}
		pending = append(pending, i)
		refs = append(refs, directory.MemberRef{GroupID: groupID, MemberID: memberID})
	}
	for start := 0; start < len(pending); start += maxBind {
		end := min(start+maxBind, len(pending))
		chunk := pending[start:end]
		batchMsgs := make([]jetstream.Msg, len(chunk))
		for k, i := range chunk {
			batchMsgs[k] = msgs[i]
		}
		spanCtx, span := otel.Tracer(tracerName).Start(ctx, "remove members",
			trace.WithLinks(stream.LinkMessages(ctx, batchMsgs)...))
		itemErrs := w.dir.RemoveMembers(spanCtx, refs[start:end])
		for k, i := range chunk {
			var result *orgsyncv1.WriterResult
			if itemErrs[k] == nil {
				result = w.engine.Result(objs[i])
				result.Outcome, result.Operations = orgsyncv1.Outcome_OUTCOME_APPLIED, []string{"member.remove"}
			}
			errs[i] = w.finish(spanCtx, msgs[i], objs[i], paths[i], w.engine.Attempt(msgs[i], paths[i]), result, itemErrs[k])
		}
		span.End()
	}
}

// errGathering says a held membership addition was given back unwritten.
var errGathering = errors.New("held back to be bound with more members of its group")

// addition is one membership addition on its way to a bind: its message, desired object and
// path, the object ids of both ends, and how its outcome is settled — into the batch's error
// slice for an addition of the batch being handled, on its message for one held back earlier.
type addition struct {
	msg             jetstream.Msg
	obj             *orgsyncv1.DesiredObject
	path            string
	groupID, member string
	settle          func(error)
	// held says the addition was held back by an earlier batch and is settled on its message.
	held bool
}

// gatheringGroup is a group's additions held back, and when the first of them came.
type gatheringGroup struct {
	first time.Time
	held  []addition
}

// addMembers applies the membership additions at the given indexes, 20 per bind request. A bind
// is all or nothing, so when one fails because a member is already there (400) or an object is
// not found yet (404), its members are added one by one, which tells exactly which is which.
//
// With a gathering window, additions are held back per group while many arrive at once, so that
// a group's members are bound 20 at a time whatever order they arrive in: without it, members
// that arrive in random order after a load's users and groups cost one write each instead of one
// per 20 (measured: 8,606 writes for the memberships of 10,000 workers in 600 units, where 600
// binds do). A held message stays unacknowledged in this replica until its group is bound (see
// gather and FlushGathered); if the replica dies, JetStream delivers it again after AckWait.
func (w *Writer) addMembers(ctx context.Context, msgs []jetstream.Msg, objs []*orgsyncv1.DesiredObject, paths []string, indexes []int, errs []error) {
	byGroup := map[string][]addition{}
	var groupOrder []string
	for _, i := range indexes {
		attempt := w.engine.Attempt(msgs[i], paths[i])
		groupID, memberID, err := w.resolveEnds(ctx, objs[i].GetMembership(), attempt)
		if err == nil && (groupID == "" || memberID == "") {
			err = fmt.Errorf("membership %s: %w", objs[i].GetKey(), errPending)
		}
		if err != nil {
			errs[i] = w.finish(ctx, msgs[i], objs[i], paths[i], attempt, nil, err)
			continue
		}
		if _, ok := byGroup[groupID]; !ok {
			groupOrder = append(groupOrder, groupID)
		}
		byGroup[groupID] = append(byGroup[groupID], addition{msg: msgs[i], obj: objs[i], path: paths[i], groupID: groupID, member: memberID,
			settle: func(err error) { errs[i] = err }})
	}
	now, busy := w.now(), len(indexes) >= maxBind
	for _, groupID := range groupOrder {
		additions := byGroup[groupID]
		if w.gatherWindow > 0 {
			additions = w.gather(groupID, additions, now, busy)
		}
		w.bindAdditions(ctx, groupID, additions)
	}
}

// gather adds a group's additions of this batch to those held back for it and returns the ones
// to bind now; it holds back the rest.
//   - A quiet batch (fewer than 20 additions: one hire, one move) is bound at once, unless its
//     group is already gathering: a single change never waits longer than the window.
//   - Full chunks of 20 are bound at once.
//   - Once the group's window has passed since its first held addition, everything is bound.
//
// Of two revisions of one membership, only the newer is kept; the older is acknowledged.
func (w *Writer) gather(groupID string, batch []addition, now time.Time, busy bool) []addition {
	g := w.gathering[groupID]
	if g == nil && !busy {
		return batch
	}
	if g == nil {
		g = &gatheringGroup{first: now}
		w.gathering[groupID] = g
	}
	all := g.held
	for _, a := range batch {
		if k := slices.IndexFunc(all, func(h addition) bool { return h.path == a.path }); k >= 0 {
			older, newer := all[k], a
			if older.obj.GetRevision() > newer.obj.GetRevision() {
				older, newer = newer, older
			}
			older.settle(nil)
			all[k] = newer
			continue
		}
		all = append(all, a)
	}
	if !now.Before(g.first.Add(w.gatherWindow)) {
		delete(w.gathering, groupID)
		return all
	}
	full := len(all) / maxBind * maxBind
	g.held = nil
	for _, a := range all[full:] {
		if !a.held {
			a.settle(stream.ErrHeld) // the batch leaves its message unsettled
			msg := a.msg
			a.held, a.settle = true, func(err error) { stream.Settle(msg, err) }
		}
		g.held = append(g.held, a)
	}
	if len(g.held) == 0 {
		delete(w.gathering, groupID)
	}
	return all[:full]
}

// FlushGathered binds the additions held back for every group whose gathering window has
// passed. The service calls it between batches, so held additions are bound on time even when
// no further message arrives.
func (w *Writer) FlushGathered(ctx context.Context) {
	w.applyMu.Lock()
	defer w.applyMu.Unlock()
	w.flushGathered(ctx, w.now())
	w.refreshLicenseErrors(ctx)
}

// ReleaseGathered gives every held addition back to the stream at once, unwritten, for another
// replica (or this one, restarted) to apply: on a graceful stop, so that they need not wait out
// the consumer's AckWait.
func (w *Writer) ReleaseGathered() {
	w.applyMu.Lock()
	defer w.applyMu.Unlock()
	for groupID, g := range w.gathering {
		delete(w.gathering, groupID)
		for _, a := range g.held {
			a.settle(stream.Retry(0, errGathering))
		}
	}
}

func (w *Writer) flushGathered(ctx context.Context, now time.Time) {
	for groupID, g := range w.gathering {
		if now.Before(g.first.Add(w.gatherWindow)) {
			continue
		}
		delete(w.gathering, groupID)
		w.bindAdditions(ctx, groupID, g.held)
	}
}

// bindAdditions binds a group's additions 20 at a time and settles each. An addition held back
// while a newer revision of its membership was applied (removed, say) is stale: it is
// acknowledged, not written.
func (w *Writer) bindAdditions(ctx context.Context, groupID string, additions []addition) {
	live := additions[:0:0]
	for _, a := range additions {
		if w.engine.Stale(a.path, a.obj.GetRevision()) {
			a.settle(nil)
			continue
		}
		live = append(live, a)
	}
	for start := 0; start < len(live); start += maxBind {
		chunk := live[start:min(start+maxBind, len(live))]
		ids := make([]string, len(chunk))
		batchMsgs := make([]jetstream.Msg, len(chunk))
		for k, a := range chunk {
			ids[k], batchMsgs[k] = a.member, a.msg
		}
		spanCtx, span := otel.Tracer(tracerName).Start(ctx, "bind members",
			trace.WithLinks(stream.LinkMessages(ctx, batchMsgs)...))
		err := w.bind(spanCtx, groupID, ids)
		for _, a := range chunk {
			attempt := w.engine.Attempt(a.msg, a.path)
			var outcome error
			switch {
			case err == nil:
				result := w.engine.Result(a.obj)
				result.Outcome, result.Operations = orgsyncv1.Outcome_OUTCOME_APPLIED, []string{"member.bind"}
				outcome = w.finish(spanCtx, a.msg, a.obj, a.path, attempt, result, nil)
			case errors.Is(err, errBindRefused):
				result, addErr := w.applyMembership(spanCtx, a.obj)
				outcome = w.finish(spanCtx, a.msg, a.obj, a.path, attempt, result, addErr)
			default:
				outcome = w.finish(spanCtx, a.msg, a.obj, a.path, attempt, nil, err)
			}
			a.settle(outcome)
		}
		span.End()
	}
}

// maxBind is Graph's limit of members in one members@odata.bind.
const maxBind = 20

// errBindRefused says a bind failed as a whole because of one of its members.
var errBindRefused = errors.New("bind refused")

func (w *Writer) bind(ctx context.Context, groupID string, memberIDs []string) error {
	if len(memberIDs) == 1 {
		return errBindRefused // one member: the single add is as cheap and tells more
	}
	err := w.dir.AddMembers(ctx, groupID, memberIDs)
	var dirErr *directory.Error
	if errors.As(err, &dirErr) && (dirErr.Status == 400 || dirErr.Status == 404) {
		return errBindRefused
	}
	return err
}

const tracerName = "github.com/orgsync/orgsync/services/entra-writer/internal/writer"

// finish turns the outcome of applying obj into what happens to its message: a retry for what may
// pass, a FAILED result and termination for what cannot, a reported result otherwise.
func (w *Writer) finish(ctx context.Context, msg jetstream.Msg, obj *orgsyncv1.DesiredObject, path string, attempt int, result *orgsyncv1.WriterResult, err error) error {
	w.noteOutcome(err)
	it := converge.Item{Msg: msg, Obj: obj, Path: path}
	if paused, _ := w.pause.Paused(); paused && err != nil {
		// Nothing is burned while paused: the message comes back after the pause.
		return stream.Retry(w.pausedRetry, err)
	}
	if errors.Is(err, errMaybeCreated) {
		// Longer each time this object's create may have happened unseen: the lag outlasted the
		// last wait. Other failures of the object (throttling, say) do not lengthen it.
		w.mu.Lock()
		w.lostCreates[path]++
		lost := w.lostCreates[path]
		w.mu.Unlock()
		return stream.Retry(min(time.Duration(lost)*w.lagWait, time.Minute), err)
	}
	if directory.ClassOf(err) == directory.ClassForbidden && attempt < 5 {
		// Often the whole tenant (see pauseAfterForbidden); one object that stays refused while
		// others pass fails after a few attempts.
		return stream.Retry(w.pausedRetry, err)
	}
	if err != nil {
		if delay, retry := retryDelay(err, attempt); retry {
			if directory.ClassOf(err) == directory.ClassThrottled {
				metrics.Default().GraphThrottle(ctx, "")
				metrics.Default().ThrottleWait(ctx, "retry-after", delay)
				w.engine.Throttled(path)
			}
			return w.engine.Retry(ctx, it, delay, err)
		}
		w.mu.Lock()
		delete(w.lostCreates, path)
		w.mu.Unlock()
		var failure converge.Failure
		var dirErr *directory.Error
		if errors.As(err, &dirErr) {
			failure = converge.Failure{Class: errorClass(dirErr.Class), Code: dirErr.Code, Property: dirErr.Property}
		}
		return w.engine.Park(ctx, it, err, failure)
	}
	if err := w.engine.Succeed(ctx, it, result); err != nil {
		return err
	}
	w.noteSettled(obj, path, result)
	w.mu.Lock()
	delete(w.lostCreates, path)
	w.mu.Unlock()
	if user := obj.GetUser(); user != nil && msg != nil && !obj.GetTombstone() {
		if wait := w.untilFirstDay(user); wait > 0 {
			// The user is written and reported; its first-day pass waits for the day.
			return stream.Retry(wait, fmt.Errorf("%s: %w", path, errBeforeFirstDay))
		}
	}
	if result.GetManagerLinkPending() && msg != nil && attempt < managerGiveUpAfter {
		// The user is written and reported; only the link waits. The message comes back, ever
		// less often, until the manager's account exists (see applyManager).
		delay := min(time.Duration(1<<min(attempt, 8))*250*time.Millisecond, time.Minute)
		return stream.Retry(delay, fmt.Errorf("%s: %w", path, errManagerLinkPending))
	}
	return nil
}

// retryDelay says whether and when to try again after err on the given attempt.
func retryDelay(err error, attempt int) (time.Duration, bool) {
	backoff := converge.Backoff(attempt)
	var dirErr *directory.Error
	switch {
	case errors.Is(err, errPending), errors.Is(err, errHolderNotVisible):
		// The other end is usually created within seconds, by this replica or another.
		return converge.WaitBackoff(attempt), true
	case errors.As(err, &dirErr):
		switch dirErr.Class {
		case directory.ClassThrottled:
			if dirErr.RetryAfter > 0 {
				return dirErr.RetryAfter, true
			}
			return backoff, true
		case directory.ClassTransient, directory.ClassNotFound, directory.ClassUnknown:
			if dirErr.RetryAfter > 0 {
				// A 503's advice is for this request only (see graph.ThrottleTransport).
				return dirErr.RetryAfter, true
			}
			return backoff, true
		}
		return 0, false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return backoff, true
	default:
		// Not a directory answer: a network error or an unexpected response; worth another try.
		return backoff, true
	}
}

// lostAfter is the attempt after which a recorded object id that Graph keeps answering 404 for is
// taken as deleted outside orgsync rather than not yet replicated.
const lostAfter = 8

// Apply converges one object and returns the result to report.
func (w *Writer) Apply(ctx context.Context, obj *orgsyncv1.DesiredObject, attempt int) (*orgsyncv1.WriterResult, error) {
	switch o := obj.GetObject().(type) {
	case *orgsyncv1.DesiredObject_User:
		return w.applyUser(ctx, obj, o.User, attempt)
	case *orgsyncv1.DesiredObject_Group:
		return w.applyGroup(ctx, obj, o.Group, attempt)
	case *orgsyncv1.DesiredObject_Membership:
		return w.applyMembership(ctx, obj)
	default:
		return nil, fmt.Errorf("desired object %q has no object: %w", obj.GetKey(), stream.ErrPermanent)
	}
}

// currentUser finds the worker's account: by the recorded id, else by employeeId.
func (w *Writer) currentUser(ctx context.Context, workerID string, attempt int) (*directory.User, error) {
	w.mu.Lock()
	id := w.userIDs[workerID]
	w.mu.Unlock()
	if id != "" {
		user, err := w.dir.GetUser(ctx, id)
		if err == nil || directory.ClassOf(err) != directory.ClassNotFound || attempt < lostAfter {
			return user, err
		}
		w.logger.WarnContext(ctx, "recorded user no longer exists; looking it up again", "worker_id", workerID, "object_id", id)
		w.forgetUser(workerID)
	}
	user, err := w.dir.FindUserByEmployeeID(ctx, workerID)
	if user != nil {
		w.rememberUser(workerID, user.ID)
	}
	return user, err
}

func (w *Writer) rememberUser(workerID, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.userIDs[workerID] = id
}

func (w *Writer) forgetUser(workerID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.userIDs, workerID)
}

func (w *Writer) applyUser(ctx context.Context, obj *orgsyncv1.DesiredObject, desired *orgsyncv1.DesiredUser, attempt int) (*orgsyncv1.WriterResult, error) {
	result := w.engine.Result(obj)
	if !obj.GetTombstone() && !w.manages(desired.GetUserPrincipalName()) {
		return w.leaveAlone(ctx, result, desired.GetWorkerId(), "the desired userPrincipalName is not in a managed domain"), nil
	}
	current, err := w.currentUser(ctx, desired.GetWorkerId(), attempt)
	if err != nil {
		return nil, err
	}
	if current != nil && !w.manages(current.UserPrincipalName) {
		result.ObjectId = current.ID
		return w.leaveAlone(ctx, result, desired.GetWorkerId(), "the existing account's userPrincipalName is not in a managed domain"), nil
	}
	w.mu.Lock()
	delete(w.unmanaged, desired.GetWorkerId())
	w.mu.Unlock()
	if obj.GetTombstone() {
		if current != nil {
			if err := w.dir.DeleteUser(ctx, current.ID); err != nil && directory.ClassOf(err) != directory.ClassNotFound {
				return nil, err
			}
			w.forgetUser(desired.GetWorkerId())
			result.Outcome, result.Operations = orgsyncv1.Outcome_OUTCOME_APPLIED, []string{"user.delete"}
		}
		return result, nil
	}
	attrs := UserAttributes(desired)
	if current == nil {
		// A rehire whose account was deleted gets that account back, not a second one.
		deleted, err := w.dir.FindDeletedUserByEmployeeID(ctx, desired.GetWorkerId())
		if err != nil {
			return nil, err
		}
		if deleted != nil {
			if current, err = w.dir.RestoreUser(ctx, deleted.ID); err != nil {
				return nil, err
			}
			w.rememberUser(desired.GetWorkerId(), current.ID)
			result.Operations = append(result.Operations, "user.restore")
		}
	}
	if current == nil {
		initial, err := password.New()
		if err != nil {
			return nil, err
		}
		created, err := w.dir.CreateUser(ctx, attrs, initial)
		if err != nil {
			if created, err = w.afterRefusedCreate(ctx, desired.GetWorkerId(), attrs, attempt, err); err != nil {
				return nil, err
			}
			w.logger.InfoContext(ctx, "adopted the account a create with a lost answer made", "worker_id", desired.GetWorkerId(), "object_id", created.ID)
		}
		// Either way the account is orgsync's create; the audit records it once.
		result.Operations = append(result.Operations, "user.create")
		result.Changes = auditlog.Changes(map[string]string{}, attrs.Values())
		w.rememberUser(desired.GetWorkerId(), created.ID)
		current = created
	}
	justDisabled := false
	if fields := directory.UserChanges(current.UserAttributes, attrs); len(fields) > 0 {
		if err := w.dir.UpdateUser(ctx, current.ID, attrs, fields); err != nil {
			return nil, err
		}
		result.Changes = append(result.Changes, auditlog.Changes(current.UserAttributes.Values(), attrs.Values())...)
		result.Operations = append(result.Operations, "user.update")
		justDisabled = current.AccountEnabled && !attrs.AccountEnabled
		current.UserAttributes = attrs
	}
	justCreated := slices.Contains(result.Operations, "user.create")
	if err := w.revokeAccess(ctx, desired, current, justCreated, justDisabled, result); err != nil {
		return nil, err
	}
	if err := w.applyManager(ctx, desired, current.ID, justCreated, attempt, result); err != nil {
		return nil, err
	}
	if err := w.firstDayCredential(ctx, desired, current.ID, result); err != nil {
		return nil, err
	}
	if err := w.helpdeskCredential(ctx, obj.GetCause(), desired, current.ID, result); err != nil {
		return nil, err
	}
	if len(result.Operations) > 0 {
		result.Outcome = orgsyncv1.Outcome_OUTCOME_APPLIED
	}
	result.ObjectId, result.UserPrincipalName, result.Mail = current.ID, current.UserPrincipalName, current.Mail
	return result, nil
}

// afterRefusedCreate decides what a refused (or unanswered) user create means, and returns the
// account to adopt when the refusal was about this worker's own account.
//   - An invalid value (a userPrincipalName with diacritics, a mailNickname too long) can never
//     pass: it is returned as it is, and the desired state is FAILED and dead-lettered at once.
//   - A create that may have happened (a 5xx, a lost connection), or a conflict on the
//     userPrincipalName, may be this worker's account, made by an attempt whose answer was lost or
//     by another replica: the holder is looked up and adopted when its employeeId is this worker's.
//   - A holder that is another object, one orgsync does not manage, is a CONFLICT: FAILED with the
//     property, not retried; org-model takes the worker's next identifier candidate.
//
// Errors never name the userPrincipalName: it is personal data.
func (w *Writer) afterRefusedCreate(ctx context.Context, workerID string, attrs directory.UserAttributes, attempt int, createErr error) (*directory.User, error) {
	var dirErr *directory.Error
	errors.As(createErr, &dirErr)
	switch class := directory.ClassOf(createErr); {
	case class == directory.ClassConflict && dirErr.Property != "" && dirErr.Property != string(directory.FieldUserPrincipalName):
		// Held by another object (a mailNickname, say): there is no account of ours to find by it.
		return nil, createErr
	case class == directory.ClassConflict, mayHaveApplied(createErr):
	default:
		// Invalid, throttled, forbidden: the class decides (see retryDelay).
		return nil, createErr
	}
	holder, lookupErr := w.dir.GetUserByPrincipalName(ctx, attrs.UserPrincipalName)
	switch {
	case lookupErr != nil:
		// The lookup's own failure (throttled, transient) decides: retry, don't fail the create.
		return nil, fmt.Errorf("looking up the holder of the userPrincipalName after a refused create (%v): %w", createErr, lookupErr)
	case holder == nil && mayHaveApplied(createErr):
		return nil, fmt.Errorf("user.create: %w: %w", errMaybeCreated, createErr)
	case holder == nil && dirErr != nil && dirErr.Property == string(directory.FieldUserPrincipalName) && attempt < conflictPatience:
		return nil, fmt.Errorf("user.create: %w: %w", errHolderNotVisible, createErr)
	case holder == nil || holder.EmployeeID != workerID:
		if holder != nil {
			w.logger.WarnContext(ctx, "the userPrincipalName is held by an account orgsync does not manage", "worker_id", workerID, "holder_object_id", holder.ID)
		}
		return nil, createErr
	}
	return holder, nil
}

// OpRevokeSessions is the operation, in results and audit records, of a leaver's sign-in sessions
// revoked.
const OpRevokeSessions = "user.revoke-sessions"

// revokeAccess makes sure that a leaver whose desired user carries access_revoked_at has no
// sign-in session issued before it, in the same convergence as the account's disable: Graph's
// revokeSignInSessions resets signInSessionsValidFromDateTime to now. It is level-triggered —
// the revocation is made when the directory shows sessions valid from before access_revoked_at,
// so a restarted writer or a redelivered message does not revoke again, and a revocation that
// failed after the disable is made on the retry — and, in addition, whenever this convergence is
// the one that disabled the account: a session issued between access_revoked_at and the disable
// (after a password change, say) must not survive either. An account created just now, disabled,
// has no session to revoke.
func (w *Writer) revokeAccess(ctx context.Context, desired *orgsyncv1.DesiredUser, current *directory.User, justCreated, justDisabled bool, result *orgsyncv1.WriterResult) error {
	accessEnded := desired.GetAccessRevokedAt()
	if accessEnded == nil || desired.GetAccountEnabled() || justCreated {
		return nil
	}
	validFrom := current.SignInSessionsValidFrom
	if !justDisabled && validFrom != nil && !validFrom.Before(accessEnded.AsTime()) {
		return nil
	}
	if err := w.dir.RevokeSignInSessions(ctx, current.ID); err != nil {
		return err
	}
	result.Operations = append(result.Operations, OpRevokeSessions)
	return nil
}

// managerGiveUpAfter is the attempt after which a user's message stops coming back for its
// manager link when the manager's account still does not exist (the manager is out of scope, or
// its own desired state FAILED). The user itself was written at the first attempt; the redeliveries
// back off to one a minute, so this is about two hours. A later revision of the user tries again.
const managerGiveUpAfter = 120

// applyManager points the user's manager reference at the manager's account when it points
// elsewhere, and takes it away when HR names no manager. It reads the link first, except on an
// account just created (which has none): another replica, or an administrator, may have changed
// it since this replica last looked, so no replica keeps its own idea of it. A read is not a
// write: Graph's write quota is what counts.
func (w *Writer) applyManager(ctx context.Context, desired *orgsyncv1.DesiredUser, userID string, justCreated bool, attempt int, result *orgsyncv1.WriterResult) error {
	managerWorkerID := desired.GetManagerWorkerId()
	if managerWorkerID == "" {
		if justCreated {
			return nil
		}
		current, err := w.dir.GetManager(ctx, userID)
		if err != nil || current == "" {
			return err
		}
		if err := w.dir.RemoveManager(ctx, userID); err != nil {
			return err
		}
		result.Operations = append(result.Operations, "manager.remove")
		return nil
	}
	w.mu.Lock()
	managerID := w.userIDs[managerWorkerID]
	w.mu.Unlock()
	if managerID == "" {
		// The user does not wait for the manager: it is written and reported now, with the link
		// pending, and its message comes back for the link (see finish).
		result.ManagerLinkPending = true
		level := slog.LevelDebug
		if attempt >= managerGiveUpAfter {
			level = slog.LevelWarn
		}
		w.logger.Log(ctx, level, "manager has no account yet; the user is written without the manager link",
			"worker_id", desired.GetWorkerId(), "manager_worker_id", managerWorkerID, "attempt", attempt)
		return nil
	}
	if !justCreated {
		current, err := w.dir.GetManager(ctx, userID)
		if err != nil {
			return err
		}
		if strings.EqualFold(current, managerID) {
			return nil
		}
	}
	if err := w.dir.SetManager(ctx, userID, managerID); err != nil {
		return err
	}
	result.Operations = append(result.Operations, "manager.set")
	return nil
}

// UserAttributes are the Entra user properties a desired user asks for.
func UserAttributes(u *orgsyncv1.DesiredUser) directory.UserAttributes {
	attrs := directory.UserAttributes{
		AccountEnabled: u.GetAccountEnabled(), DisplayName: u.GetDisplayName(), GivenName: u.GetGivenName(),
		Surname: u.GetSurname(), UserPrincipalName: u.GetUserPrincipalName(), MailNickname: u.GetMailNickname(),
		Mail: u.GetMail(), JobTitle: u.GetJobTitle(), Department: u.GetDepartment(), CompanyName: u.GetCompanyName(),
		OfficeLocation: u.GetOfficeLocation(), EmployeeID: u.GetEmployeeId(), EmployeeType: u.GetEmployeeType(),
		CostCenter: u.GetCostCenter(), Division: u.GetDivision(),
	}
	if u.GetEmployeeHireDate() != nil {
		t := u.GetEmployeeHireDate().AsTime()
		attrs.EmployeeHireDate = &t
	}
	if u.GetEmployeeLeaveDateTime() != nil {
		t := u.GetEmployeeLeaveDateTime().AsTime()
		attrs.EmployeeLeaveDateTime = &t
	}
	if u.GetBusinessPhone() != "" {
		attrs.BusinessPhones = []string{u.GetBusinessPhone()}
	}
	for name, value := range u.GetAttributes() {
		if directory.IsMapped(name) {
			if attrs.Mapped == nil {
				attrs.Mapped = map[string]string{}
			}
			attrs.Mapped[name] = value
		}
	}
	return attrs
}

func (w *Writer) applyGroup(ctx context.Context, obj *orgsyncv1.DesiredObject, desired *orgsyncv1.DesiredGroup, attempt int) (*orgsyncv1.WriterResult, error) {
	result := w.engine.Result(obj)
	key := desired.GetGroupKey()
	w.mu.Lock()
	id := w.groupIDs[key]
	w.mu.Unlock()

	var current *directory.Group
	var err error
	if id != "" {
		current, err = w.dir.GetGroup(ctx, id)
		if err != nil && (directory.ClassOf(err) != directory.ClassNotFound || attempt < lostAfter) {
			return nil, err
		}
	}
	if current == nil && desired.GetMailNickname() != "" {
		if current, err = w.dir.FindGroupByMailNickname(ctx, desired.GetMailNickname()); err != nil {
			return nil, err
		}
	}
	if obj.GetTombstone() {
		if current != nil {
			if err := w.dir.DeleteGroup(ctx, current.ID); err != nil && directory.ClassOf(err) != directory.ClassNotFound {
				return nil, err
			}
			result.Outcome, result.Operations = orgsyncv1.Outcome_OUTCOME_APPLIED, []string{"group.delete"}
		}
		w.mu.Lock()
		delete(w.groupIDs, key)
		w.mu.Unlock()
		return result, nil
	}
	attrs := directory.GroupAttributes{DisplayName: desired.GetDisplayName(), Description: desired.GetDescription(), MailNickname: desired.GetMailNickname()}
	switch {
	case current == nil:
		if current, err = w.dir.CreateGroup(ctx, attrs); err != nil {
			if mayHaveApplied(err) {
				return nil, fmt.Errorf("group.create: %w: %w", errMaybeCreated, err)
			}
			return nil, err
		}
		result.Outcome, result.Operations = orgsyncv1.Outcome_OUTCOME_APPLIED, []string{"group.create"}
	case current.DisplayName != attrs.DisplayName || current.Description != attrs.Description:
		if err := w.dir.UpdateGroup(ctx, current.ID, attrs); err != nil {
			return nil, err
		}
		result.Outcome, result.Operations = orgsyncv1.Outcome_OUTCOME_APPLIED, []string{"group.update"}
	}
	w.mu.Lock()
	w.groupIDs[key] = current.ID
	w.mu.Unlock()
	result.ObjectId = current.ID
	if desired.GetManageLicenses() {
		if err := w.convergeLicenses(ctx, current, desired, result); err != nil {
			return nil, err
		}
	}
	return result, nil
}

// OpAssignLicenses is the operation, in results and audit records, of a group's licences changed.
const OpAssignLicenses = "group.assign-license"

// convergeLicenses makes the group's licences exactly the desired ones (a licence the policy no
// longer names is removed, one changed behind orgsync's back is put back) in one assignLicense
// call, and reports the members whose licence from the group is in error, as the directory shows
// them now (group-based licensing assigns in the background: a member added moments ago may not
// show yet; a later change of the group's members, or its next convergence, reads them again).
func (w *Writer) convergeLicenses(ctx context.Context, current *directory.Group, desired *orgsyncv1.DesiredGroup, result *orgsyncv1.WriterResult) error {
	want := make([]directory.License, 0, len(desired.GetLicenses()))
	for _, license := range desired.GetLicenses() {
		want = append(want, directory.License{SkuID: license.GetSkuId(), DisabledPlans: license.GetDisabledPlanIds()})
	}
	add, remove := directory.LicenseChanges(current.Licenses, want)
	if len(add) > 0 || len(remove) > 0 {
		if err := w.dir.AssignGroupLicenses(ctx, current.ID, add, remove); err != nil {
			return err
		}
		result.Outcome = orgsyncv1.Outcome_OUTCOME_APPLIED
		result.Operations = append(result.Operations, OpAssignLicenses)
		result.Changes = append(result.Changes, &orgsyncv1.AttributeChange{Name: "assignedLicenses", Before: licenseList(current.Licenses), After: licenseList(want)})
	}
	if len(want) == 0 {
		return nil
	}
	licenseErrors, err := w.dir.GroupLicenseErrors(ctx, current.ID)
	if err != nil {
		return err
	}
	result.LicenseErrors = w.memberLicenseErrors(licenseErrors)
	if len(licenseErrors) > 0 {
		w.logger.WarnContext(ctx, "members of a group have licence errors", "group_key", desired.GetGroupKey(), "members_in_error", len(licenseErrors))
	}
	return nil
}

// licenseList renders licences for an audit record: "skuId" or "skuId (without plan, plan)".
func licenseList(licenses []directory.License) string {
	parts := make([]string, len(licenses))
	for i, license := range licenses {
		parts[i] = license.SkuID
		if len(license.DisabledPlans) > 0 {
			parts[i] += " (without " + strings.Join(license.DisabledPlans, ", ") + ")"
		}
	}
	return strings.Join(parts, "; ")
}

var licenseErrorKinds = map[string]orgsyncv1.LicenseAssignmentError{
	"CountViolation":                     orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_COUNT_VIOLATION,
	"MutuallyExclusiveViolation":         orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_MUTUALLY_EXCLUSIVE_VIOLATION,
	"DependencyViolation":                orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_DEPENDENCY_VIOLATION,
	"ProhibitedInUsageLocationViolation": orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_PROHIBITED_IN_USAGE_LOCATION_VIOLATION,
	"UniquenessViolation":                orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_UNIQUENESS_VIOLATION,
}

// licenseErrorKind maps Graph's licenseAssignmentState.error to the contract's enum; a code Graph
// adds later is OTHER, never dropped.
func licenseErrorKind(code string) orgsyncv1.LicenseAssignmentError {
	if kind, ok := licenseErrorKinds[code]; ok {
		return kind
	}
	return orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_OTHER
}

// unmanagedMember reports whether a membership's user member is left alone.
func (w *Writer) unmanagedMember(m *orgsyncv1.DesiredMembership) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return m.GetMemberKind() == orgsyncv1.MemberKind_MEMBER_KIND_USER && w.unmanaged[m.GetMemberKey()]
}

// membershipEnds returns the object ids of a membership's group and member, "" where unknown.
func (w *Writer) membershipEnds(m *orgsyncv1.DesiredMembership) (groupID, memberID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if m.GetMemberKind() == orgsyncv1.MemberKind_MEMBER_KIND_USER {
		return w.groupIDs[m.GetGroupKey()], w.userIDs[m.GetMemberKey()]
	}
	return w.groupIDs[m.GetGroupKey()], w.groupIDs[m.GetMemberKey()]
}

// resolveEnds is membershipEnds that, from attempt endsPatience on, looks a user member this
// replica does not know up in the directory by its employeeId: the replica's record is a cache of
// RESULTS, not the directory — a replica may have forgotten an id it could not read for a while,
// and without the lookup a removal concluded that orgsync never added the member (leaving it in
// the group) and an addition waited for ever (both found by the chaos run).
func (w *Writer) resolveEnds(ctx context.Context, m *orgsyncv1.DesiredMembership, attempt int) (groupID, memberID string, err error) {
	groupID, memberID = w.membershipEnds(m)
	if memberID != "" || attempt < endsPatience || m.GetMemberKind() != orgsyncv1.MemberKind_MEMBER_KIND_USER {
		return groupID, memberID, nil
	}
	user, err := w.dir.FindUserByEmployeeID(ctx, m.GetMemberKey())
	if err != nil || user == nil {
		return groupID, "", err
	}
	w.rememberUser(m.GetMemberKey(), user.ID)
	return groupID, user.ID, nil
}

func (w *Writer) applyMembership(ctx context.Context, obj *orgsyncv1.DesiredObject) (*orgsyncv1.WriterResult, error) {
	result := w.engine.Result(obj)
	if w.unmanagedMember(obj.GetMembership()) {
		result.Outcome, result.ErrorMessage = orgsyncv1.Outcome_OUTCOME_SKIPPED, "the member's account is outside the managed domains"
		return result, nil
	}
	groupID, memberID := w.membershipEnds(obj.GetMembership())
	if obj.GetTombstone() {
		if groupID == "" || memberID == "" {
			// orgsync never created one end, so it never added this membership.
			return result, nil
		}
		if err := w.dir.RemoveMember(ctx, groupID, memberID); err != nil {
			return nil, err
		}
		result.Outcome, result.Operations = orgsyncv1.Outcome_OUTCOME_APPLIED, []string{"member.remove"}
		return result, nil
	}
	if groupID == "" || memberID == "" {
		return nil, fmt.Errorf("membership %s: %w", obj.GetKey(), errPending)
	}
	if err := w.dir.AddMember(ctx, groupID, memberID); err != nil {
		return nil, err
	}
	result.Outcome, result.Operations = orgsyncv1.Outcome_OUTCOME_APPLIED, []string{"member.add"}
	return result, nil
}

func errorClass(c directory.Class) orgsyncv1.ErrorClass {
	switch c {
	case directory.ClassThrottled:
		return orgsyncv1.ErrorClass_ERROR_CLASS_THROTTLED
	case directory.ClassTransient:
		return orgsyncv1.ErrorClass_ERROR_CLASS_TRANSIENT
	case directory.ClassNotFound:
		return orgsyncv1.ErrorClass_ERROR_CLASS_NOT_FOUND
	case directory.ClassConflict:
		return orgsyncv1.ErrorClass_ERROR_CLASS_CONFLICT
	case directory.ClassInvalid:
		return orgsyncv1.ErrorClass_ERROR_CLASS_INVALID
	case directory.ClassForbidden:
		return orgsyncv1.ErrorClass_ERROR_CLASS_FORBIDDEN
	default:
		return orgsyncv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
	}
}
