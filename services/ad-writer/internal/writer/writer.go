// Package writer converges Active Directory to the desired state on stream DIRECTORY (target ad):
// it creates users disabled, sets their initial password over TLS and enables them, updates
// attributes, moves and renames them (ModifyDN), disables leavers and moves them to the leavers
// OU, creates global security groups, nests them, adds and removes members in chunks, corrects
// drift found by uSNChanged, and reports each outcome to RESULTS (and every write to AUDIT). It
// touches only objects under the managed OUs that carry orgsync's marker.
package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/orgsync/orgsync/pkg/auditlog"
	"github.com/orgsync/orgsync/pkg/converge"
	"github.com/orgsync/orgsync/pkg/password"
	"github.com/orgsync/orgsync/pkg/pii"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
)

const tracerName = "github.com/orgsync/orgsync/services/ad-writer/internal/writer"

// Directory is what the writer needs of AD.
type Directory interface {
	Search(ctx context.Context, base, filter string, attrs []string) ([]*ldap.Entry, error)
	AddEntry(ctx context.Context, dn string, attrs map[string][]string) error
	Modify(ctx context.Context, dn string, changes []ldap.Change) error
	ModifyDN(ctx context.Context, dn, newRDN, newSuperior string) error
	DeleteEntry(ctx context.Context, dn string) error
	HighestUSN(ctx context.Context) (int64, error)
	// Members reads every member of a group, with range retrieval.
	Members(ctx context.Context, groupDN string) ([]string, error)
}

var _ Directory = (*ldap.Client)(nil)

// Options are the writer's policy.
type Options struct {
	// BaseDN is where objects are looked up (the domain).
	BaseDN string
	// UsersOU is where users go when the desired state names no parentDistinguishedName.
	UsersOU string
	// GroupsOU is where groups are created.
	GroupsOU string
	// LeaversOU is where disabled leavers are moved.
	LeaversOU string
	// ManagedOUs: only objects under one of these are changed (default: the three OUs above).
	ManagedOUs []string
	// MarkerAttribute and MarkerValue mark objects orgsync created; others are left alone.
	MarkerAttribute, MarkerValue string
	// MustChangePassword makes a new user change the initial password at first logon.
	MustChangePassword bool
	// KeepRDNOnRename keeps a user's CN when the display name changes.
	KeepRDNOnRename bool
	// MemberChunk is the most member values sent in one modify (default 500).
	MemberChunk int
	// DriftReportOnly reports drift without correcting it.
	DriftReportOnly bool
	// NewPassword generates initial passwords (default: 24 random characters).
	NewPassword func() (string, error)
	// Latest returns the newest desired state of the object at path (stream DIRECTORY), nil when
	// there is none. With it, a redelivered revision older than one applied is replaced by the
	// newest desired state (see converge.Engine.Decode); without it, it is dropped. One replica
	// applies at a time (converge.Lease), so nothing newer can be written between the decode and
	// the write.
	Latest converge.Latest
}

// Writer applies desired objects. HandleBatch is called by one goroutine at a time; Seed and
// Reconcile may run concurrently with it.
type Writer struct {
	dir    Directory
	engine *converge.Engine
	pause  *converge.Pause
	logger *slog.Logger
	opts   Options

	// applyMu serialises applying with the drift reconcile.
	applyMu sync.Mutex

	mu sync.Mutex
	// guids and dns record the objects orgsync manages by object path key ("user/E1",
	// "group/unit-x"): objectGUID from RESULTS, DN as last seen.
	guids map[string]string
	dns   map[string]string
	// desired is the last desired state applied per objectGUID, for the drift reconcile.
	desired map[string]*orgsyncv1.DesiredObject
	// unmanaged marks users orgsync must leave alone.
	unmanaged map[string]bool
	// members is the desired membership applied per group key (by member ref), for the drift
	// reconcile; it holds what this process applied since it started.
	members map[string]map[string]appliedMember
	lastUSN int64
}

// New returns a Writer.
func New(dir Directory, sender converge.Sender, logger *slog.Logger, opts Options) *Writer {
	if len(opts.ManagedOUs) == 0 {
		opts.ManagedOUs = []string{opts.UsersOU, opts.GroupsOU, opts.LeaversOU}
	}
	if opts.MemberChunk <= 0 {
		opts.MemberChunk = 500
	}
	if opts.NewPassword == nil {
		opts.NewPassword = password.New
	}
	if opts.MarkerAttribute == "" {
		opts.MarkerAttribute, opts.MarkerValue = "adminDescription", "managed-by:orgsync"
	}
	return &Writer{
		dir: dir, logger: logger, opts: opts,
		engine: converge.New(orgsyncv1.Target_TARGET_AD, sender, opts.Latest, logger), pause: converge.NewPause(logger),
		guids: map[string]string{}, dns: map[string]string{},
		desired: map[string]*orgsyncv1.DesiredObject{}, unmanaged: map[string]bool{}, members: map[string]map[string]appliedMember{},
	}
}

// appliedMember is a membership this process applied: its object path and revision, so that the
// drift reconcile can tell when another replica has applied a newer revision since.
type appliedMember struct {
	path     string
	revision uint64
}

// errPending says a membership or manager waits for the other object to exist.
var errPending = errors.New("waiting for another object to exist")

// errManagerPending says a user was written without its manager, whose account does not exist
// yet: the message comes back until it does, and the link is written then.
var errManagerPending = errors.New("written without the manager, whose account does not exist yet")

// errManagerMoved says the manager DN the writer had recorded names nothing any more (the
// manager was moved or renamed outside orgsync): it was looked up again by objectGUID, and the
// next attempt writes the link with the current DN.
var errManagerMoved = errors.New("the manager's recorded DN names nothing; looked up again")

// errNotOwned says an object exists but is not orgsync's to change.
var errNotOwned = errors.New("outside the managed OUs or without orgsync's marker")

func userRef(workerID string) string  { return "user/" + workerID }
func groupRef(groupKey string) string { return "group/" + groupKey }

// Seed records a result published before, so a restarted writer knows its objects.
func (w *Writer) Seed(result *orgsyncv1.WriterResult, path string) {
	w.engine.Seed(path, result.GetRevision())
	w.mu.Lock()
	defer w.mu.Unlock()
	if result.GetObjectId() == "" {
		return
	}
	switch result.GetKind() {
	case orgsyncv1.ObjectKind_OBJECT_KIND_USER:
		w.guids[userRef(result.GetKey())] = result.GetObjectId()
	case orgsyncv1.ObjectKind_OBJECT_KIND_GROUP:
		w.guids[groupRef(result.GetKey())] = result.GetObjectId()
	}
}

// Pause is the writer's pause: entered while the DC does not answer, ended by the consumer's
// probe (see converge.Consumer) or by the DC's next answer.
func (w *Writer) Pause() *converge.Pause { return w.pause }

// Engine is the writer's share of the convergence engine.
func (w *Writer) Engine() *converge.Engine { return w.engine }

// HandleBatch is the batch stream handler: users and groups one by one, membership changes
// grouped per group and sent in chunks.
func (w *Writer) HandleBatch(ctx context.Context, msgs []jetstream.Msg) []error {
	w.applyMu.Lock()
	defer w.applyMu.Unlock()
	items, errs := w.engine.Decode(ctx, msgs)
	objs := make([]*orgsyncv1.DesiredObject, len(msgs))
	paths := make([]string, len(msgs))
	for i, it := range items {
		objs[i], paths[i] = it.Obj, it.Path
	}
	var memberships []int
	for i, obj := range objs {
		if obj == nil {
			continue
		}
		if obj.GetMembership() != nil {
			memberships = append(memberships, i)
			continue
		}
		spanCtx, span := stream.StartProcessSpan(ctx, msgs[i])
		attempt := stream.Attempt(msgs[i])
		result, err := w.Apply(spanCtx, obj, attempt)
		errs[i] = w.finish(spanCtx, msgs[i], obj, paths[i], attempt, result, err)
		span.End()
	}
	w.applyMemberships(ctx, msgs, objs, paths, memberships, errs)
	return errs
}

// applyMemberships sends the membership changes at indexes grouped by group and operation, up to
// MemberChunk values per modify. A chunk refused because one value is already there (or already
// gone) is re-sent value by value, where that answer is success.
func (w *Writer) applyMemberships(ctx context.Context, msgs []jetstream.Msg, objs []*orgsyncv1.DesiredObject, paths []string, indexes []int, errs []error) {
	type pending struct {
		index    int
		memberDN string
	}
	type batchKey struct {
		groupDN string
		remove  bool
	}
	batches := map[batchKey][]pending{}
	var order []batchKey
	for _, i := range indexes {
		obj := objs[i]
		result := w.engine.Result(obj)
		if w.unmanagedMember(obj.GetMembership()) {
			result.Outcome, result.ErrorMessage = orgsyncv1.Outcome_OUTCOME_SKIPPED, "the member is not orgsync's"
			errs[i] = w.finish(ctx, msgs[i], obj, paths[i], stream.Attempt(msgs[i]), result, nil)
			continue
		}
		groupDN, memberDN, err := w.membershipEnds(ctx, obj.GetMembership())
		if err != nil || groupDN == "" || memberDN == "" {
			if err == nil && obj.GetTombstone() {
				// orgsync never created one end, so it never added this membership.
				errs[i] = w.finish(ctx, msgs[i], obj, paths[i], stream.Attempt(msgs[i]), result, nil)
				continue
			}
			if err == nil {
				err = fmt.Errorf("membership %s: %w", obj.GetKey(), errPending)
			}
			errs[i] = w.finish(ctx, msgs[i], obj, paths[i], stream.Attempt(msgs[i]), nil, err)
			continue
		}
		key := batchKey{groupDN: groupDN, remove: obj.GetTombstone()}
		if _, ok := batches[key]; !ok {
			order = append(order, key)
		}
		batches[key] = append(batches[key], pending{index: i, memberDN: memberDN})
	}
	for _, key := range order {
		members := batches[key]
		if len(members) > 1 {
			// Several changes to one group: read its members once (range retrieval) and send only
			// what differs, so a re-applied state costs a read, not a refused write.
			current, err := w.dir.Members(ctx, key.groupDN)
			if err != nil {
				for _, p := range members {
					errs[p.index] = w.finish(ctx, msgs[p.index], objs[p.index], paths[p.index], stream.Attempt(msgs[p.index]), nil, err)
				}
				continue
			}
			have := make(map[string]bool, len(current))
			for _, dn := range current {
				have[strings.ToLower(dn)] = true
			}
			var todo []pending
			for _, p := range members {
				if key.remove && !have[strings.ToLower(p.memberDN)] {
					// Absent under the DN this process knows; another replica may have moved
					// the member since, so it may be there under its current DN.
					currentDN, err := w.currentDN(ctx, memberRef(objs[p.index].GetMembership()))
					if err != nil {
						errs[p.index] = w.finish(ctx, msgs[p.index], objs[p.index], paths[p.index], stream.Attempt(msgs[p.index]), nil, err)
						continue
					}
					if currentDN != "" {
						p.memberDN = currentDN
					}
				}
				if have[strings.ToLower(p.memberDN)] == key.remove {
					todo = append(todo, p)
					continue
				}
				result := w.engine.Result(objs[p.index])
				errs[p.index] = w.finish(ctx, msgs[p.index], objs[p.index], paths[p.index], stream.Attempt(msgs[p.index]), result, nil)
			}
			members = todo
		}
		for start := 0; start < len(members); start += w.opts.MemberChunk {
			// Checked again right before the write: looking up DNs and reading members took time.
			chunk := slices.DeleteFunc(slices.Clone(members[start:min(start+w.opts.MemberChunk, len(members))]), func(p pending) bool {
				return w.engine.Stale(paths[p.index], objs[p.index].GetRevision())
			})
			if len(chunk) == 0 {
				continue
			}
			values := make([]string, len(chunk))
			chunkMsgs := make([]jetstream.Msg, len(chunk))
			for k, p := range chunk {
				values[k], chunkMsgs[k] = p.memberDN, msgs[p.index]
			}
			// One span for the modify, linked to the trace of every change it carries.
			spanName := "add members"
			if key.remove {
				spanName = "remove members"
			}
			spanCtx, span := otel.Tracer(tracerName).Start(ctx, spanName, trace.WithLinks(stream.LinkMessages(ctx, chunkMsgs)...),
				trace.WithAttributes(attribute.Int("orgsync.members", len(chunk))))
			one := func(p pending) error {
				if key.remove {
					return w.removeMember(spanCtx, key.groupDN, p.memberDN, memberRef(objs[p.index].GetMembership()))
				}
				return w.changeMembers(spanCtx, key.groupDN, []string{p.memberDN}, false)
			}
			var err error
			if len(chunk) == 1 {
				err = one(chunk[0])
			} else {
				err = w.changeMembers(spanCtx, key.groupDN, values, key.remove)
			}
			if err != nil && len(chunk) > 1 && ldap.ClassOf(err) != ldap.ClassUnavailable {
				// One value decided the chunk's fate: find out which, one by one.
				for _, p := range chunk {
					errs[p.index] = w.finishMembership(spanCtx, objs[p.index], paths[p.index], msgs[p.index], key.remove, one(p))
				}
				span.End()
				continue
			}
			if err != nil {
				span.SetStatus(codes.Error, "modify refused")
			}
			for _, p := range chunk {
				errs[p.index] = w.finishMembership(spanCtx, objs[p.index], paths[p.index], msgs[p.index], key.remove, err)
			}
			span.End()
		}
	}
}

func (w *Writer) finishMembership(ctx context.Context, obj *orgsyncv1.DesiredObject, path string, msg jetstream.Msg, remove bool, err error) error {
	if ldap.ClassOf(err) == ldap.ClassNotFound {
		// A DN moved outside orgsync: look every DN up again by objectGUID.
		w.mu.Lock()
		clear(w.dns)
		w.mu.Unlock()
	}
	if err != nil {
		return w.finish(ctx, msg, obj, path, stream.Attempt(msg), nil, err)
	}
	result := w.engine.Result(obj)
	result.Outcome, result.Operations = orgsyncv1.Outcome_OUTCOME_APPLIED, []string{"member.add"}
	if remove {
		result.Operations = []string{"member.remove"}
	}
	return w.finish(ctx, msg, obj, path, stream.Attempt(msg), result, nil)
}

// changeMembers adds or removes member values. For a single value, "already a member" (LDAP 20,
// or 68 as Samba answers) on add and "not a member" (16, or 53 as Samba answers) on remove are
// success.
func (w *Writer) changeMembers(ctx context.Context, groupDN string, values []string, remove bool) error {
	op := ldap.Add
	if remove {
		op = ldap.Delete
	}
	err := w.dir.Modify(ctx, groupDN, []ldap.Change{{Op: op, Attr: "member", Values: values}})
	if err == nil || len(values) > 1 {
		return err
	}
	code := ldap.Code(err)
	if !remove && (code == ldap.ResultValueExists || code == ldap.ResultEntryExists) {
		return nil
	}
	if remove && (code == ldap.ResultNoSuchAttribute || code == ldap.ResultUnwillingToPerfom) {
		return nil
	}
	return err
}

// removeMember removes one member value. AD answers "not a member" both for a value that is gone
// and for a DN that names no object any more (Samba: 53, "Unable to find GUID for DN"), which is
// what a DN cached before another replica moved or renamed the member looks like. So that answer
// counts only once the member's current DN, looked up by objectGUID, is the one sent; else the
// removal is sent again with the current DN.
func (w *Writer) removeMember(ctx context.Context, groupDN, memberDN, ref string) error {
	for attempt := 0; ; attempt++ {
		err := w.dir.Modify(ctx, groupDN, []ldap.Change{{Op: ldap.Delete, Attr: "member", Values: []string{memberDN}}})
		code := ldap.Code(err)
		if err == nil || code != ldap.ResultNoSuchAttribute && code != ldap.ResultUnwillingToPerfom {
			return err
		}
		currentDN, lookupErr := w.currentDN(ctx, ref)
		if lookupErr != nil {
			return lookupErr
		}
		if currentDN == "" || ldap.SameDN(currentDN, memberDN) {
			return nil // not a member: removed already
		}
		if attempt == 2 {
			// Moving under every attempt: let the message come back with backoff.
			return fmt.Errorf("removing %s from %s: the member keeps moving: %w", ref, pii.DN(groupDN), errPending)
		}
		memberDN = currentDN
	}
}

// checkManagerDN looks at a write of desired refused as invalid or not found: when it carried a
// manager DN from this process's record, and the manager's objectGUID now lives at another DN
// (moved or renamed outside orgsync; AD and Samba refuse a DN naming nothing with 19,
// "Referenced object not found"), it returns errManagerMoved, so the write is retried with the
// current DN rather than parked as invalid. Any other error is returned as it is.
func (w *Writer) checkManagerDN(ctx context.Context, desired *orgsyncv1.DesiredUser, managerDN string, err error) error {
	if managerDN == "" || (ldap.ClassOf(err) != ldap.ClassInvalid && ldap.ClassOf(err) != ldap.ClassNotFound) {
		return err
	}
	current, lookupErr := w.currentDN(ctx, userRef(desired.GetManagerWorkerId()))
	if lookupErr != nil || current == "" || ldap.SameDN(current, managerDN) {
		return err
	}
	return fmt.Errorf("user %s, manager %s: %w (%w)", desired.GetWorkerId(), desired.GetManagerWorkerId(), errManagerMoved, err)
}

// currentDN looks the object of ref up again by its objectGUID, not trusting the DN this process
// saw last, and records it.
func (w *Writer) currentDN(ctx context.Context, ref string) (string, error) {
	w.mu.Lock()
	delete(w.dns, ref)
	w.mu.Unlock()
	return w.dnOf(ctx, ref)
}

// finish turns an outcome into what happens to its message: a retry for what may pass, a FAILED
// result and termination for what cannot, a reported result otherwise.
func (w *Writer) finish(ctx context.Context, msg jetstream.Msg, obj *orgsyncv1.DesiredObject, path string, attempt int, result *orgsyncv1.WriterResult, err error) error {
	it := converge.Item{Msg: msg, Obj: obj, Path: path}
	managerPending := result != nil && errors.Is(err, errManagerPending)
	if managerPending {
		result.ManagerLinkPending = true
	}
	if err != nil {
		if delay, retry := retryDelay(err, attempt); retry {
			// Only the DC's own silence pauses the writer: a user waiting for another object
			// (its manager, a member) is not a sign that the directory is unreachable, nor is a
			// failed read of DIRECTORY (NATS restarting) or the writer's own shutdown.
			if dcSilent(err) && !errors.Is(err, errPending) && !managerPending {
				w.pause.Enter(err.Error())
			}
			if managerPending {
				// The account is written: report it now, so that its memberships and the other
				// replica find it while the manager link waits.
				auditlog.Stamp(ctx, result, obj, msg)
				if pubErr := w.engine.Report(ctx, path, result); pubErr != nil {
					return pubErr
				}
			}
			return w.engine.Retry(ctx, it, delay, err)
		}
	}
	if managerPending {
		// Given up waiting: the account itself is fine, reported as written with the link
		// pending; a later revision of the user (or of the manager's) tries the link again.
		w.logger.WarnContext(ctx, "manager still has no account; the user stays without the manager link", "object", path, "attempt", attempt)
		err = nil
	}
	switch {
	case errors.Is(err, errNotOwned):
		return w.engine.Skip(ctx, it, err.Error())
	case err != nil:
		failure := converge.Failure{Class: errorClass(err), Property: ldap.PropertyOf(err)}
		if code := ldap.Code(err); code != 0 {
			failure.Code = strconv.Itoa(int(code))
		}
		return w.engine.Park(ctx, it, err, failure)
	}
	// The DC answered.
	w.pause.Resume()
	if err := w.engine.Succeed(ctx, it, result); err != nil {
		return err
	}
	if m := obj.GetMembership(); m != nil && result.GetOutcome() != orgsyncv1.Outcome_OUTCOME_SKIPPED {
		w.noteMember(m, appliedMember{path: path, revision: obj.GetRevision()}, !obj.GetTombstone())
	}
	return nil
}

// dcSilent reports whether err is the DC not answering: an LDAP operation that found it
// unreachable or unavailable, not an error of anything else the writer waits on.
func dcSilent(err error) bool {
	var ldapErr *ldap.Error
	return errors.As(err, &ldapErr) && ldapErr.Class == ldap.ClassUnavailable &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

func memberRef(m *orgsyncv1.DesiredMembership) string {
	if m.GetMemberKind() == orgsyncv1.MemberKind_MEMBER_KIND_USER {
		return userRef(m.GetMemberKey())
	}
	return groupRef(m.GetMemberKey())
}

func (w *Writer) noteMember(m *orgsyncv1.DesiredMembership, applied appliedMember, present bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	set := w.members[m.GetGroupKey()]
	if set == nil {
		set = map[string]appliedMember{}
		w.members[m.GetGroupKey()] = set
	}
	if present {
		set[memberRef(m)] = applied
	} else {
		delete(set, memberRef(m))
	}
}

// reconcileMembers adds back the desired members of a group that were removed outside orgsync,
// and reports members added outside orgsync (they are not removed: after a restart the writer
// does not know every membership it applied before).
func (w *Writer) reconcileMembers(ctx context.Context, groupKey string, result *orgsyncv1.WriterResult) error {
	groupDN, err := w.dnOf(ctx, groupRef(groupKey))
	if err != nil || groupDN == "" {
		return err
	}
	w.mu.Lock()
	var refs []string
	for ref, member := range w.members[groupKey] {
		if w.engine.Stale(member.path, member.revision) {
			// Another replica added or removed this member at a newer revision since (RESULTS
			// told Seed): adding it back would undo a removal.
			delete(w.members[groupKey], ref)
			continue
		}
		refs = append(refs, ref)
	}
	w.mu.Unlock()
	current, err := w.dir.Members(ctx, groupDN)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, dn := range current {
		have[strings.ToLower(dn)] = true
	}
	desired := map[string]bool{}
	var missing []string
	for _, ref := range refs {
		dn, err := w.dnOf(ctx, ref)
		if err != nil {
			return err
		}
		if dn == "" {
			continue
		}
		desired[strings.ToLower(dn)] = true
		if !have[strings.ToLower(dn)] {
			missing = append(missing, dn)
		}
	}
	for _, dn := range current {
		if !desired[strings.ToLower(dn)] {
			w.logger.WarnContext(ctx, "drift: a member orgsync did not add", "group", groupDN, "member", dn)
		}
	}
	for start := 0; start < len(missing); start += w.opts.MemberChunk {
		if err := w.changeMembers(ctx, groupDN, missing[start:min(start+w.opts.MemberChunk, len(missing))], false); err != nil {
			return err
		}
		result.Outcome = orgsyncv1.Outcome_OUTCOME_APPLIED
		result.Operations = append(result.Operations, "member.add")
	}
	return nil
}

// retryDelay says whether and when to try again after err on the given attempt.
func retryDelay(err error, attempt int) (time.Duration, bool) {
	backoff := converge.Backoff(attempt)
	switch {
	case errors.Is(err, errNotOwned):
		return 0, false
	case errors.Is(err, errManagerPending):
		return backoff, attempt < managerWaitAttempts
	case errors.Is(err, errManagerMoved):
		return 0, attempt < managerGiveUpAfter
	case errors.Is(err, errPending):
		return converge.WaitBackoff(attempt), true
	case errors.Is(err, stream.ErrPermanent):
		return 0, false
	}
	switch ldap.ClassOf(err) {
	case ldap.ClassUnavailable, ldap.ClassUnknown:
		return backoff, true
	case ldap.ClassNotFound:
		// A DN that moved under the writer; the next attempt looks it up again.
		return backoff, attempt < 6
	}
	return 0, false
}

func errorClass(err error) orgsyncv1.ErrorClass {
	switch ldap.ClassOf(err) {
	case ldap.ClassUnavailable:
		return orgsyncv1.ErrorClass_ERROR_CLASS_TRANSIENT
	case ldap.ClassNotFound:
		return orgsyncv1.ErrorClass_ERROR_CLASS_NOT_FOUND
	case ldap.ClassExists:
		return orgsyncv1.ErrorClass_ERROR_CLASS_CONFLICT
	case ldap.ClassInvalid:
		return orgsyncv1.ErrorClass_ERROR_CLASS_INVALID
	case ldap.ClassForbidden:
		return orgsyncv1.ErrorClass_ERROR_CLASS_FORBIDDEN
	}
	return orgsyncv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
}

// Apply converges one user or group and returns the result to report.
func (w *Writer) Apply(ctx context.Context, obj *orgsyncv1.DesiredObject, attempt int) (*orgsyncv1.WriterResult, error) {
	switch o := obj.GetObject().(type) {
	case *orgsyncv1.DesiredObject_User:
		return w.applyUser(ctx, obj, o.User, attempt)
	case *orgsyncv1.DesiredObject_Group:
		return w.applyGroup(ctx, obj, o.Group)
	default:
		return nil, fmt.Errorf("desired object %q is not a user or group: %w", obj.GetKey(), stream.ErrPermanent)
	}
}

// owned reports whether an existing entry is orgsync's to change.
func (w *Writer) owned(entry *ldap.Entry) bool {
	if entry.Get(w.opts.MarkerAttribute) != w.opts.MarkerValue {
		return false
	}
	for _, ou := range w.opts.ManagedOUs {
		if ou != "" && ldap.Under(entry.DN, ou) {
			return true
		}
	}
	return false
}

func (w *Writer) managedParent(dn string) bool {
	for _, ou := range w.opts.ManagedOUs {
		if ou != "" && ldap.Under(dn, ou) {
			return true
		}
	}
	return false
}

// find returns the entry recorded for ref (by objectGUID), else the one filter matches.
func (w *Writer) find(ctx context.Context, ref, filter string, attrs []string) (*ldap.Entry, error) {
	w.mu.Lock()
	guid := w.guids[ref]
	w.mu.Unlock()
	if guid != "" {
		guidFilter, err := ldap.GUIDFilter(guid)
		if err != nil {
			return nil, err
		}
		entries, err := w.dir.Search(ctx, w.opts.BaseDN, guidFilter, attrs)
		if err != nil {
			return nil, err
		}
		if len(entries) > 0 {
			return entries[0], nil
		}
	}
	entries, err := w.dir.Search(ctx, w.opts.BaseDN, filter, attrs)
	if err != nil || len(entries) == 0 {
		return nil, err
	}
	return entries[0], nil
}

func (w *Writer) remember(ref string, entry *ldap.Entry, obj *orgsyncv1.DesiredObject) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if guid := entry.GUID(); guid != "" {
		w.guids[ref] = guid
		if obj != nil {
			w.desired[guid] = obj
		}
	}
	w.dns[ref] = entry.DN
}

func (w *Writer) forget(ref string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.desired, w.guids[ref])
	delete(w.guids, ref)
	delete(w.dns, ref)
}

// Attributes of a user the writer reads and writes from the typed fields.
var userAttrNames = []string{
	"sAMAccountName", "userPrincipalName", "givenName", "sn", "displayName", "mail", "title", "department",
	"company", "physicalDeliveryOfficeName", "telephoneNumber", "employeeID", "employeeType", "division", "manager",
}

// contractAttributes are DesiredUser.attributes keys that steer the writer, not AD attributes.
var contractAttributes = map[string]bool{"parentDistinguishedName": true}

// desiredUserAttrs maps a desired user to AD attribute values ("" means absent).
func desiredUserAttrs(u *orgsyncv1.DesiredUser, managerDN string) map[string]string {
	sam := u.GetAttributes()["sAMAccountName"]
	if sam == "" {
		sam = u.GetMailNickname()
	}
	if len(sam) > 20 {
		sam = sam[:20]
	}
	employeeID := u.GetEmployeeId()
	if employeeID == "" {
		employeeID = u.GetWorkerId()
	}
	attrs := map[string]string{
		"sAMAccountName": sam, "userPrincipalName": u.GetUserPrincipalName(), "givenName": u.GetGivenName(),
		"sn": u.GetSurname(), "displayName": u.GetDisplayName(), "mail": u.GetMail(), "title": u.GetJobTitle(),
		"department": u.GetDepartment(), "company": u.GetCompanyName(), "physicalDeliveryOfficeName": u.GetOfficeLocation(),
		"telephoneNumber": u.GetBusinessPhone(), "employeeID": employeeID, "employeeType": u.GetEmployeeType(),
		"division": u.GetDivision(), "manager": managerDN,
	}
	for name, value := range u.GetAttributes() {
		if !contractAttributes[name] {
			attrs[name] = value
		}
	}
	return attrs
}

func (w *Writer) userReadAttrs(u *orgsyncv1.DesiredUser) []string {
	attrs := append([]string{"objectGUID", "userAccountControl", keyVersionAttribute, pwdLastSetAttribute, w.opts.MarkerAttribute}, userAttrNames...)
	for name := range u.GetAttributes() {
		if !contractAttributes[name] {
			attrs = append(attrs, name)
		}
	}
	return attrs
}

// keyVersionAttribute counts the password sets of an account (AD and Samba construct it when it
// is asked for by name). The writer adds an account without a password and sets it in a second
// write, so an account of orgsync's still at 1 never got its password.
const keyVersionAttribute = "msDS-KeyVersionNumber"

// pwdLastSetAttribute is when the account's password was last set (a FILETIME; 0 when it must be
// changed at next logon): it tells whether a leaver's password was reset since their access ended.
const pwdLastSetAttribute = "pwdLastSet"

// OpPasswordReset is the operation, in results and audit records, of a leaver's password set to
// a random value.
const OpPasswordReset = "user.password-reset"

const (
	uacDisabled = 0x2
	uacNormal   = 0x200
	// managerGiveUpAfter is the attempt after which a user is written without its manager when the
	// manager's account still does not exist. The message keeps coming back, so that the link is
	// written once the account exists, until managerWaitAttempts: with the backoff capped at 30 s,
	// about ten minutes (a manager's create may wait that long behind a batch a killed replica
	// held, and behind the DC's backlog during a large load).
	managerGiveUpAfter  = 6
	managerWaitAttempts = 25
)

func (w *Writer) applyUser(ctx context.Context, obj *orgsyncv1.DesiredObject, desired *orgsyncv1.DesiredUser, attempt int) (*orgsyncv1.WriterResult, error) {
	result := w.engine.Result(obj)
	ref := userRef(desired.GetWorkerId())
	current, err := w.find(ctx, ref, "(&(objectCategory=person)(objectClass=user)(employeeID="+ldap.EscapeFilter(desired.GetWorkerId())+"))", w.userReadAttrs(desired))
	if err != nil {
		return nil, err
	}
	if current != nil && !w.owned(current) {
		w.mu.Lock()
		w.unmanaged[desired.GetWorkerId()] = true
		w.mu.Unlock()
		result.ObjectId = current.GUID()
		return nil, fmt.Errorf("user %s at %q: %w", desired.GetWorkerId(), pii.DN(current.DN), errNotOwned)
	}
	w.mu.Lock()
	delete(w.unmanaged, desired.GetWorkerId())
	w.mu.Unlock()

	leaver := obj.GetTombstone() || !desired.GetAccountEnabled() && desired.GetEmployeeLeaveDateTime() != nil
	enabled := desired.GetAccountEnabled() && !obj.GetTombstone()
	parent := desired.GetAttributes()["parentDistinguishedName"]
	if parent == "" {
		parent = w.opts.UsersOU
	}
	if leaver && w.opts.LeaversOU != "" {
		parent = w.opts.LeaversOU
	}
	if !w.managedParent(parent) {
		return nil, fmt.Errorf("user %s: parent %q is not under a managed OU: %w", desired.GetWorkerId(), pii.DN(parent), stream.ErrPermanent)
	}
	if obj.GetTombstone() && current == nil {
		return result, nil
	}

	managerDN := ""
	if managerWorkerID := desired.GetManagerWorkerId(); managerWorkerID != "" && !obj.GetTombstone() {
		managerDN, err = w.dnOf(ctx, userRef(managerWorkerID))
		if err != nil {
			return nil, err
		}
		if managerDN == "" && attempt < managerGiveUpAfter {
			return nil, fmt.Errorf("manager %s of %s: %w", managerWorkerID, desired.GetWorkerId(), errPending)
		}
	}
	attrs := desiredUserAttrs(desired, managerDN)
	if obj.GetTombstone() {
		attrs = nil // a removed worker keeps its attributes; it is only disabled and moved
	}
	cn := desired.GetDisplayName()
	if cn == "" {
		cn = attrs["sAMAccountName"]
	}
	rdn := "CN=" + ldap.EscapeRDNValue(cn)
	if !obj.GetTombstone() {
		if err := w.checkDN(rdn, parent); err != nil {
			return nil, fmt.Errorf("user %s: %w", desired.GetWorkerId(), err)
		}
	}

	if current == nil {
		current, err = w.createUser(ctx, desired, attrs, rdn, parent, enabled, result)
		if err != nil {
			return nil, w.checkManagerDN(ctx, desired, managerDN, err)
		}
	} else {
		if current.Get(keyVersionAttribute) == "1" {
			// Added by an attempt that stopped before its password modify (a writer killed
			// between the two writes): finish that create, or the account would be enabled
			// below without a password, which Samba allows.
			uac, err := w.setInitialPassword(ctx, current.DN, enabled, result)
			if err != nil {
				return nil, err
			}
			current.Attrs["userAccountControl"] = []string{strconv.Itoa(uac)}
		}
		var accessEnded *time.Time
		if at := desired.GetAccessRevokedAt(); at != nil && !obj.GetTombstone() {
			accessEnded = new(at.AsTime())
		}
		if err := w.updateUser(ctx, current, attrs, enabled, accessEnded, result); err != nil {
			return nil, w.checkManagerDN(ctx, desired, managerDN, err)
		}
		currentRDN, currentParent := ldap.Parent(current.DN)
		newRDN := ""
		if !w.opts.KeepRDNOnRename && !obj.GetTombstone() && !ldap.SameDN(currentRDN, rdn) && !strings.HasPrefix(strings.ToLower(currentRDN), strings.ToLower(rdn+" (")) {
			newRDN = rdn
		}
		if newRDN != "" || !ldap.SameDN(currentParent, parent) {
			target := currentRDN
			if newRDN != "" {
				target = newRDN
			}
			err := w.dir.ModifyDN(ctx, current.DN, target, parent)
			if ldap.Code(err) == ldap.ResultEntryExists {
				target = "CN=" + ldap.EscapeRDNValue(cn+" ("+attrs["sAMAccountName"]+")")
				err = w.dir.ModifyDN(ctx, current.DN, target, parent)
			}
			if err != nil {
				return nil, err
			}
			current.DN = target + "," + parent
			result.Operations = append(result.Operations, "user.move")
		}
	}
	w.remember(ref, current, obj)
	if len(result.Operations) > 0 {
		result.Outcome = orgsyncv1.Outcome_OUTCOME_APPLIED
	}
	result.ObjectId = current.GUID()
	result.DistinguishedName = current.DN
	result.SamAccountName = current.Get("sAMAccountName")
	result.UserPrincipalName = current.Get("userPrincipalName")
	result.Mail = current.Get("mail")
	if attrs != nil {
		result.UserPrincipalName, result.Mail = attrs["userPrincipalName"], attrs["mail"]
		if sam := attrs["sAMAccountName"]; sam != "" {
			result.SamAccountName = sam
		}
	}
	if managerWorkerID := desired.GetManagerWorkerId(); managerWorkerID != "" && managerDN == "" && !obj.GetTombstone() {
		return result, fmt.Errorf("user %s, manager %s: %w", desired.GetWorkerId(), managerWorkerID, errManagerPending)
	}
	return result, nil
}

// createUser adds the account disabled, then sets its initial password and its state in one
// modify. The password travels once, over TLS, and is never logged nor stored.
func (w *Writer) createUser(ctx context.Context, desired *orgsyncv1.DesiredUser, attrs map[string]string, rdn, parent string, enabled bool, result *orgsyncv1.WriterResult) (*ldap.Entry, error) {
	add := map[string][]string{
		"objectClass":          {"top", "person", "organizationalPerson", "user"},
		"userAccountControl":   {strconv.Itoa(uacNormal | uacDisabled)},
		w.opts.MarkerAttribute: {w.opts.MarkerValue},
	}
	for name, value := range attrs {
		if value != "" {
			add[name] = []string{value}
		}
	}
	dn := rdn + "," + parent
	err := w.dir.AddEntry(ctx, dn, add)
	if ldap.Code(err) == ldap.ResultEntryExists {
		// Either a create whose answer was lost, or a namesake: the lookup by employeeID did not
		// find the worker, so it is a namesake.
		dn = "CN=" + ldap.EscapeRDNValue(desired.GetDisplayName()+" ("+attrs["sAMAccountName"]+")") + "," + parent
		err = w.dir.AddEntry(ctx, dn, add)
	}
	if err != nil {
		return nil, err
	}
	result.Operations = append(result.Operations, "user.create")
	if _, err := w.setInitialPassword(ctx, dn, enabled, result); err != nil {
		return nil, err
	}
	return w.readBack(ctx, dn, "(objectClass=user)", []string{"objectGUID", "userPrincipalName", "mail"})
}

// setInitialPassword is the second write of a create: a random password, the enabled state and,
// with MustChangePassword, pwdLastSet=0, in one modify. It returns the userAccountControl set.
func (w *Writer) setInitialPassword(ctx context.Context, dn string, enabled bool, result *orgsyncv1.WriterResult) (int, error) {
	password, err := w.opts.NewPassword()
	if err != nil {
		return 0, err
	}
	uac := uacNormal
	if !enabled {
		uac |= uacDisabled
	}
	changes := []ldap.Change{
		{Op: ldap.Replace, Attr: "unicodePwd", Values: []string{ldap.UnicodePwd(password)}, Secret: true},
		{Op: ldap.Replace, Attr: "userAccountControl", Values: []string{strconv.Itoa(uac)}},
	}
	if w.opts.MustChangePassword {
		changes = append(changes, ldap.Change{Op: ldap.Replace, Attr: "pwdLastSet", Values: []string{"0"}})
	}
	if err := w.dir.Modify(ctx, dn, changes); err != nil {
		return 0, err
	}
	result.Operations = append(result.Operations, "user.password")
	return uac, nil
}

// readBack reads an entry just created, for its objectGUID; in dry run, where nothing was
// created, it returns an entry with the DN only.
func (w *Writer) readBack(ctx context.Context, dn, filter string, attrs []string) (*ldap.Entry, error) {
	entries, err := w.dir.Search(ctx, dn, filter, attrs)
	if ldap.Code(err) == ldap.ResultNoSuchObject || err == nil && len(entries) == 0 {
		return &ldap.Entry{DN: dn, Attrs: map[string][]string{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return entries[0], nil
}

// updateUser replaces the attributes that differ and sets the enabled bit, in one modify. For a
// leaver whose access ended at accessEnded (DesiredUser.access_revoked_at) the same modify sets
// the password to a random value, so the disable and the reset are one atomic write: when this
// write disables the account, and whenever the directory shows a password set before the end of
// access (a reset that failed, a restart between two attempts). A password set since is left
// alone: a restarted writer does not reset it again. The password is generated here, travels
// once over TLS, and is never logged, stored or audited.
func (w *Writer) updateUser(ctx context.Context, current *ldap.Entry, attrs map[string]string, enabled bool, accessEnded *time.Time, result *orgsyncv1.WriterResult) error {
	var changes []ldap.Change
	for _, name := range sortedKeys(attrs) {
		want, have := attrs[name], current.Get(name)
		switch {
		case name == "manager" && ldap.SameDN(want, have) && want != "":
		case want == have:
		case want == "":
			changes = append(changes, ldap.Change{Op: ldap.Delete, Attr: name})
		default:
			changes = append(changes, ldap.Change{Op: ldap.Replace, Attr: name, Values: []string{want}})
		}
	}
	uac, _ := strconv.Atoi(current.Get("userAccountControl"))
	wantUAC := uac &^ uacDisabled
	if !enabled {
		wantUAC |= uacDisabled
	}
	if wantUAC != uac {
		changes = append(changes, ldap.Change{Op: ldap.Replace, Attr: "userAccountControl", Values: []string{strconv.Itoa(wantUAC)}})
	}
	justDisabled := uac&uacDisabled == 0 && wantUAC&uacDisabled != 0
	reset := false
	if !enabled && accessEnded != nil {
		passwordSet, known := ldap.ParseFileTime(current.Get(pwdLastSetAttribute))
		reset = justDisabled || !known || passwordSet.Before(*accessEnded)
	}
	if reset {
		password, err := w.opts.NewPassword()
		if err != nil {
			return fmt.Errorf("generating a leaver's random password: %w", err)
		}
		changes = append(changes, ldap.Change{Op: ldap.Replace, Attr: "unicodePwd", Values: []string{ldap.UnicodePwd(password)}, Secret: true})
	}
	if len(changes) == 0 {
		return nil
	}
	if err := w.dir.Modify(ctx, current.DN, changes); err != nil {
		return err
	}
	if !reset || len(changes) > 1 {
		result.Operations = append(result.Operations, "user.update")
	}
	if reset {
		result.Operations = append(result.Operations, OpPasswordReset)
	}
	for _, ch := range changes {
		if !ch.Secret {
			current.Attrs[ch.Attr] = ch.Values
		}
	}
	return nil
}

const groupTypeGlobalSecurity = "-2147483646"

func (w *Writer) applyGroup(ctx context.Context, obj *orgsyncv1.DesiredObject, desired *orgsyncv1.DesiredGroup) (*orgsyncv1.WriterResult, error) {
	result := w.engine.Result(obj)
	ref := groupRef(desired.GetGroupKey())
	sam := desired.GetGroupKey()
	if len(sam) > 64 {
		sam = sam[:64]
	}
	current, err := w.find(ctx, ref, "(&(objectClass=group)(sAMAccountName="+ldap.EscapeFilter(sam)+"))",
		[]string{"objectGUID", "description", "displayName", w.opts.MarkerAttribute})
	if err != nil {
		return nil, err
	}
	if current != nil && !w.owned(current) {
		return nil, fmt.Errorf("group %s at %q: %w", desired.GetGroupKey(), pii.DN(current.DN), errNotOwned)
	}
	if obj.GetTombstone() {
		if current != nil {
			if err := w.dir.DeleteEntry(ctx, current.DN); err != nil && ldap.ClassOf(err) != ldap.ClassNotFound {
				return nil, err
			}
			result.Outcome, result.Operations = orgsyncv1.Outcome_OUTCOME_APPLIED, []string{"group.delete"}
		}
		w.forget(ref)
		return result, nil
	}
	name := desired.GetDisplayName()
	if name == "" {
		name = sam
	}
	rdn := "CN=" + ldap.EscapeRDNValue(name)
	if err := w.checkDN(rdn, w.opts.GroupsOU); err != nil {
		return nil, fmt.Errorf("group %s: %w", desired.GetGroupKey(), err)
	}
	attrs := map[string]string{"description": desired.GetDescription(), "displayName": name}
	if current == nil {
		add := map[string][]string{
			"objectClass": {"top", "group"}, "sAMAccountName": {sam}, "groupType": {groupTypeGlobalSecurity},
			w.opts.MarkerAttribute: {w.opts.MarkerValue}, "displayName": {name},
		}
		if desired.GetDescription() != "" {
			add["description"] = []string{desired.GetDescription()}
		}
		dn := rdn + "," + w.opts.GroupsOU
		if err := w.dir.AddEntry(ctx, dn, add); err != nil {
			return nil, err
		}
		if current, err = w.readBack(ctx, dn, "(objectClass=group)", []string{"objectGUID"}); err != nil {
			return nil, err
		}
		result.Outcome, result.Operations = orgsyncv1.Outcome_OUTCOME_APPLIED, []string{"group.create"}
	} else {
		if err := w.updateUser(ctx, current, attrs, true, nil, result); err != nil {
			return nil, err
		}
		if currentRDN, _ := ldap.Parent(current.DN); !ldap.SameDN(currentRDN, rdn) {
			if err := w.dir.ModifyDN(ctx, current.DN, rdn, ""); err != nil {
				return nil, err
			}
			_, parent := ldap.Parent(current.DN)
			current.DN = rdn + "," + parent
			result.Operations = append(result.Operations, "group.rename")
		}
		for i, op := range result.Operations {
			if op == "user.update" {
				result.Operations[i] = "group.update"
			}
		}
		if len(result.Operations) > 0 {
			result.Outcome = orgsyncv1.Outcome_OUTCOME_APPLIED
		}
	}
	w.remember(ref, current, obj)
	result.ObjectId = current.GUID()
	result.DistinguishedName = current.DN
	return result, nil
}

func (w *Writer) unmanagedMember(m *orgsyncv1.DesiredMembership) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return m.GetMemberKind() == orgsyncv1.MemberKind_MEMBER_KIND_USER && w.unmanaged[m.GetMemberKey()]
}

// dnOf returns the current DN of a managed object: as last seen, else looked up by its recorded
// objectGUID; "" when orgsync has no record of it.
func (w *Writer) dnOf(ctx context.Context, ref string) (string, error) {
	w.mu.Lock()
	dn, guid := w.dns[ref], w.guids[ref]
	w.mu.Unlock()
	if dn != "" || guid == "" {
		return dn, nil
	}
	filter, err := ldap.GUIDFilter(guid)
	if err != nil {
		return "", err
	}
	entries, err := w.dir.Search(ctx, w.opts.BaseDN, filter, []string{"objectGUID"})
	if err != nil || len(entries) == 0 {
		return "", err
	}
	w.mu.Lock()
	w.dns[ref] = entries[0].DN
	w.mu.Unlock()
	return entries[0].DN, nil
}

func (w *Writer) membershipEnds(ctx context.Context, m *orgsyncv1.DesiredMembership) (groupDN, memberDN string, err error) {
	if groupDN, err = w.dnOf(ctx, groupRef(m.GetGroupKey())); err != nil {
		return "", "", err
	}
	memberRef := groupRef(m.GetMemberKey())
	if m.GetMemberKind() == orgsyncv1.MemberKind_MEMBER_KIND_USER {
		memberRef = userRef(m.GetMemberKey())
	}
	memberDN, err = w.dnOf(ctx, memberRef)
	return groupDN, memberDN, err
}

// Reconcile looks for managed objects changed since the last pass (uSNChanged) and re-applies
// their last desired state, which corrects edits made outside orgsync; with DriftReportOnly it
// only logs them. It returns how many objects were found changed.
func (w *Writer) Reconcile(ctx context.Context) (int, error) {
	w.applyMu.Lock()
	defer w.applyMu.Unlock()
	highest, err := w.dir.HighestUSN(ctx)
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	since := w.lastUSN
	w.mu.Unlock()
	changed := 0
	for _, ou := range w.opts.ManagedOUs {
		if ou == "" {
			continue
		}
		entries, err := w.dir.Search(ctx, ou, fmt.Sprintf("(&(|(objectClass=user)(objectClass=group))(uSNChanged>=%d))", since+1), []string{"objectGUID"})
		if err != nil {
			return changed, err
		}
		for _, entry := range entries {
			w.mu.Lock()
			obj := w.desired[entry.GUID()]
			w.mu.Unlock()
			if obj == nil || w.superseded(obj) {
				continue
			}
			result, err := w.reconcileOne(ctx, obj)
			if err != nil {
				return changed, err
			}
			if result.GetOutcome() == orgsyncv1.Outcome_OUTCOME_APPLIED && since > 0 {
				changed++
				if w.opts.DriftReportOnly {
					w.logger.WarnContext(ctx, "drift found (not corrected, AD_DRIFT_POLICY=report): object edited outside orgsync", "dn", entry.DN, "object", obj.GetKey(), "would_do", result.GetOperations())
					continue
				}
				w.logger.WarnContext(ctx, "drift corrected: object edited outside orgsync", "dn", entry.DN, "object", obj.GetKey(), "operations", result.GetOperations())
				if err := w.engine.ReportCorrection(ctx, obj, result, "object edited outside orgsync"); err != nil {
					return changed, err
				}
			}
		}
	}
	w.mu.Lock()
	w.lastUSN = highest
	w.mu.Unlock()
	return changed, nil
}

// superseded reports whether a newer revision of obj than the one this process applied has been
// applied since, by another replica (RESULTS told Seed). Re-applying obj would then undo that
// replica's write, which is no drift: the replica that applied the newest revision corrects the
// object's drift.
func (w *Writer) superseded(obj *orgsyncv1.DesiredObject) bool {
	path, err := subject.ObjectPath(obj)
	return err == nil && w.engine.Stale(path, obj.GetRevision())
}

// reconcileOne re-applies obj; with DriftReportOnly its writes are recorded, not sent.
func (w *Writer) reconcileOne(ctx context.Context, obj *orgsyncv1.DesiredObject) (*orgsyncv1.WriterResult, error) {
	if !w.opts.DriftReportOnly {
		return w.reapply(ctx, obj)
	}
	// applyMu is held: no other apply uses w.dir meanwhile.
	real := w.dir
	w.dir = recordOnly{real}
	defer func() {
		w.dir = real
		// Nothing moved: forget DNs the recorded writes assumed.
		w.mu.Lock()
		clear(w.dns)
		w.mu.Unlock()
	}()
	return w.reapply(ctx, obj)
}

// reapply applies obj again and, for a group, its desired members.
func (w *Writer) reapply(ctx context.Context, obj *orgsyncv1.DesiredObject) (*orgsyncv1.WriterResult, error) {
	result, err := w.Apply(ctx, obj, managerGiveUpAfter)
	if errors.Is(err, errManagerPending) {
		err = nil // the message that applied obj is still waiting for the manager
	}
	if err != nil || obj.GetGroup() == nil || obj.GetTombstone() {
		return result, err
	}
	return result, w.reconcileMembers(ctx, obj.GetGroup().GetGroupKey(), result)
}

// recordOnly reads from the directory and drops writes. It forwards each method of Directory
// by name, so that a method added to the port does not compile until it is decided here.
type recordOnly struct{ dir Directory }

var _ Directory = recordOnly{}

func (r recordOnly) Search(ctx context.Context, base, filter string, attrs []string) ([]*ldap.Entry, error) {
	return r.dir.Search(ctx, base, filter, attrs)
}

func (r recordOnly) HighestUSN(ctx context.Context) (int64, error) { return r.dir.HighestUSN(ctx) }

func (r recordOnly) Members(ctx context.Context, groupDN string) ([]string, error) {
	return r.dir.Members(ctx, groupDN)
}

func (recordOnly) AddEntry(context.Context, string, map[string][]string) error { return nil }
func (recordOnly) Modify(context.Context, string, []ldap.Change) error         { return nil }
func (recordOnly) ModifyDN(context.Context, string, string, string) error      { return nil }
func (recordOnly) DeleteEntry(context.Context, string) error                   { return nil }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
