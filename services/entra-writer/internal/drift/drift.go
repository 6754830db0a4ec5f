// Package drift finds edits made outside orgsync to the objects orgsync manages in Entra ID — an
// attribute changed by hand, a member added to or removed from one of its groups, an object
// deleted — with Microsoft Graph's delta queries, and corrects them or only reports them, per
// policy.
//
// A pass reads one round of /users/delta and /groups/delta (all objects on the first pass, only
// what changed since the previous pass after that) and compares each object orgsync manages with
// its desired state on stream DIRECTORY. Objects whose newest desired revision the writer has not
// applied yet are skipped: that difference is a change on its way, not drift. Delta rounds also
// return orgsync's own writes; those match the desired state and are not drift.
package drift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/orgsync/orgsync/pkg/converge"
	"github.com/orgsync/orgsync/pkg/metrics"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/entra-writer/internal/writer"
)

// Delta reads Graph's delta queries, page by page; an empty link starts a new round.
type Delta interface {
	UsersDelta(ctx context.Context, link string) (directory.DeltaPage[directory.UserDelta], error)
	GroupsDelta(ctx context.Context, link string) (directory.DeltaPage[directory.GroupDelta], error)
}

// Writer is what a pass needs of entra-writer's writer.
type Writer interface {
	Objects() (users, groups map[string]string)
	Converged(path string, revision uint64) bool
	Correct(ctx context.Context, obj *orgsyncv1.DesiredObject, reason string, reportOnly bool) (*orgsyncv1.WriterResult, error)
	RemoveStray(ctx context.Context, groupKey, groupID, memberKey, memberID string) (*orgsyncv1.WriterResult, error)
	// RefreshLicenseErrors re-reads the licensed groups' members in error (reads only).
	RefreshLicenseErrors(ctx context.Context)
}

var _ Writer = (*writer.Writer)(nil)

// DesiredState returns the current desired state of target entra (stream DIRECTORY).
type DesiredState func(ctx context.Context) ([]*orgsyncv1.DesiredObject, error)

// Policy says what a pass does about drift.
type Policy int

const (
	// Correct puts drifted objects back to their desired state.
	Correct Policy = iota
	// Report only logs, counts and returns what drifted.
	Report
)

// ParsePolicy reads "correct" or "report".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "correct":
		return Correct, nil
	case "report":
		return Report, nil
	}
	return 0, fmt.Errorf("%q is not correct or report", s)
}

// Finding is one object found drifted.
type Finding struct {
	// Kind is user, group or membership.
	Kind string `json:"kind"`
	// Key is the desired object's key (a membership's is "groupKey/memberKey").
	Key string `json:"key"`
	// What says what differed, e.g. "[jobTitle] differ" or "member added outside orgsync".
	What string `json:"what"`
	// Operations are the writes that corrected it (or, with Report, would have).
	Operations []string `json:"operations,omitempty"`
	Corrected  bool     `json:"corrected"`
}

// Reconciler runs drift passes. It is safe for concurrent use; passes run one at a time.
type Reconciler struct {
	delta   Delta
	writer  Writer
	desired DesiredState
	policy  Policy
	logger  *slog.Logger

	mu sync.Mutex
	// userLink and groupLink are the deltaLinks of the last complete rounds; empty before the
	// first pass, whose rounds list everything.
	userLink, groupLink string
	lastPass            time.Time
}

// New returns a Reconciler.
func New(delta Delta, w Writer, desired DesiredState, policy Policy, logger *slog.Logger) *Reconciler {
	return &Reconciler{delta: delta, writer: w, desired: desired, policy: policy, logger: logger}
}

// LastPass is when the last complete pass ended; zero before one did.
func (r *Reconciler) LastPass() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastPass
}

// Run runs a pass every interval until ctx ends. A failed pass is logged; the next one starts
// from where the last complete pass ended, so nothing is missed.
func (r *Reconciler) Run(ctx context.Context, interval time.Duration) error {
	return converge.Every(ctx, interval, func(ctx context.Context) {
		if _, err := r.Pass(ctx); err != nil && ctx.Err() == nil {
			r.logger.WarnContext(ctx, "drift pass incomplete; the next pass picks up from the last complete one", "error", err)
		}
	})
}

// Pass runs one drift pass and returns what it found.
func (r *Reconciler) Pass(ctx context.Context) ([]Finding, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	want, err := r.readDesired(ctx)
	if err != nil {
		return nil, err
	}
	users, groups := r.writer.Objects()
	p := pass{Reconciler: r, want: want, users: users, groups: groups}

	userLink, err := p.userRound(ctx, r.userLink)
	if err != nil {
		return p.findings, err
	}
	groupLink, err := p.groupRound(ctx, r.groupLink)
	if err != nil {
		return p.findings, err
	}
	if len(p.errs) > 0 {
		// The rounds' links are not kept: a drift whose correction failed would not show in the
		// next round (the object did not change again), so the next pass reads these rounds again.
		return p.findings, errors.Join(p.errs...)
	}
	r.userLink, r.groupLink, r.lastPass = userLink, groupLink, time.Now()
	// Licence errors change without any change orgsync makes (Graph settles them in the
	// background): each pass reads them again, with reads only.
	r.writer.RefreshLicenseErrors(ctx)
	return p.findings, nil
}

// desired is the desired state indexed for a pass.
type desired struct {
	users  map[string]*orgsyncv1.DesiredObject // by worker id
	groups map[string]*orgsyncv1.DesiredObject // by group key
	// members are the memberships by group key, then member key (tombstones included).
	members map[string]map[string]*orgsyncv1.DesiredObject
}

func (r *Reconciler) readDesired(ctx context.Context) (desired, error) {
	objs, err := r.desired(ctx)
	if err != nil {
		return desired{}, fmt.Errorf("reading the desired state: %w", err)
	}
	d := desired{users: map[string]*orgsyncv1.DesiredObject{}, groups: map[string]*orgsyncv1.DesiredObject{},
		members: map[string]map[string]*orgsyncv1.DesiredObject{}}
	for _, obj := range objs {
		switch o := obj.GetObject().(type) {
		case *orgsyncv1.DesiredObject_User:
			d.users[o.User.GetWorkerId()] = obj
		case *orgsyncv1.DesiredObject_Group:
			d.groups[o.Group.GetGroupKey()] = obj
		case *orgsyncv1.DesiredObject_Membership:
			byMember := d.members[o.Membership.GetGroupKey()]
			if byMember == nil {
				byMember = map[string]*orgsyncv1.DesiredObject{}
				d.members[o.Membership.GetGroupKey()] = byMember
			}
			byMember[o.Membership.GetMemberKey()] = obj
		}
	}
	return d, nil
}

// pass is the state of one pass.
type pass struct {
	*Reconciler
	want          desired
	users, groups map[string]string // object id → worker id / group key
	// userIDs and groupIDs are the inverse of users and groups, built when first needed.
	userIDs, groupIDs map[string]string
	findings          []Finding
	errs              []error
}

// settled reports whether the writer has applied obj's revision, so that a difference is drift.
func (p *pass) settled(obj *orgsyncv1.DesiredObject) bool {
	path, err := subject.ObjectPath(obj)
	return err == nil && p.writer.Converged(path, obj.GetRevision())
}

// userRound reads a users delta round from link and deals with each managed user in it.
func (p *pass) userRound(ctx context.Context, link string) (string, error) {
	full := link == ""
	for {
		page, err := p.delta.UsersDelta(ctx, link)
		if err != nil {
			return "", err
		}
		for _, observed := range page.Items {
			p.user(ctx, observed, full)
		}
		if page.DeltaLink != "" {
			return page.DeltaLink, nil
		}
		if page.NextLink == "" {
			return "", errors.New("a users delta page has neither a nextLink nor a deltaLink")
		}
		link = page.NextLink
	}
}

// user compares one user of a round with its desired state. full says the round is a first one,
// which reports every manager link: a user it reports without one has none.
func (p *pass) user(ctx context.Context, observed directory.UserDelta, full bool) {
	workerID, ours := p.users[observed.ID]
	obj := p.want.users[workerID]
	if !ours || obj == nil || !p.settled(obj) {
		return
	}
	switch {
	case obj.GetTombstone() && !observed.Removed:
		p.fix(ctx, obj, "user", "account exists though it should not", false)
	case obj.GetTombstone():
	case observed.Removed:
		p.fix(ctx, obj, "user", "account deleted outside orgsync", true)
	default:
		// A round may carry only the properties that changed: what it carries decides only
		// whether to look; the correction reads the account and writes what really differs.
		var what []string
		if changed := directory.UserChanges(observed.UserAttributes, writer.UserAttributes(obj.GetUser())); len(changed) > 0 {
			what = append(what, fieldList(changed)+" differ")
		}
		if (observed.ManagerSeen || full) && p.managerDiffers(obj.GetUser(), observed.ManagerID) {
			what = append(what, "manager link differs")
		}
		if len(what) > 0 {
			p.fix(ctx, obj, "user", strings.Join(what, "; "), false)
		}
	}
}

// managerDiffers reports whether a user's manager link, managerID ("" for none), is not the one
// its desired state asks for. A manager without an account yet is not drift: the writer links
// the user when the account exists.
func (p *pass) managerDiffers(u *orgsyncv1.DesiredUser, managerID string) bool {
	if u.GetManagerWorkerId() == "" {
		return managerID != ""
	}
	want := p.userObjectID(u.GetManagerWorkerId())
	return want != "" && !strings.EqualFold(want, managerID)
}

// groupSeen is what a groups delta round said about one group, gathered over its pages.
type groupSeen struct {
	observed         directory.Group
	removed          bool
	added, memberOut []string
}

// groupRound reads a groups delta round from link and deals with each managed group in it.
func (p *pass) groupRound(ctx context.Context, link string) (string, error) {
	full := link == ""
	rounds := map[string]*groupSeen{}
	var order []string
	for {
		page, err := p.delta.GroupsDelta(ctx, link)
		if err != nil {
			return "", err
		}
		for _, item := range page.Items {
			if _, ours := p.groups[item.ID]; !ours {
				continue
			}
			round := rounds[item.ID]
			if round == nil {
				round = &groupSeen{}
				rounds[item.ID] = round
				order = append(order, item.ID)
			}
			round.observed, round.removed = item.Group, round.removed || item.Removed
			round.added = append(round.added, item.MembersAdded...)
			round.memberOut = append(round.memberOut, item.MembersRemoved...)
		}
		if page.DeltaLink != "" {
			link = page.DeltaLink
			break
		}
		if page.NextLink == "" {
			return "", errors.New("a groups delta page has neither a nextLink nor a deltaLink")
		}
		link = page.NextLink
	}
	for _, id := range order {
		p.group(ctx, id, rounds[id], full)
	}
	return link, nil
}

func (p *pass) group(ctx context.Context, id string, round *groupSeen, full bool) {
	groupKey := p.groups[id]
	obj := p.want.groups[groupKey]
	if obj == nil || !p.settled(obj) {
		return
	}
	switch {
	case obj.GetTombstone() && !round.removed:
		p.fix(ctx, obj, "group", "group exists though it should not", false)
		return
	case obj.GetTombstone():
		return
	case round.removed:
		// Re-created with a new id, it needs its members again: the next pass's round lists
		// the new group in full.
		p.fix(ctx, obj, "group", "group deleted outside orgsync", true)
		return
	}
	desiredGroup := obj.GetGroup()
	if round.observed.DisplayName != desiredGroup.GetDisplayName() || round.observed.Description != desiredGroup.GetDescription() {
		p.fix(ctx, obj, "group", "displayName or description differ", false)
	} else if desiredGroup.GetManageLicenses() && licensesDiffer(round.observed.Licenses, desiredGroup.GetLicenses()) {
		p.fix(ctx, obj, "group", "assignedLicenses differ", false)
	}
	wanted := p.want.members[groupKey]
	present := map[string]bool{}
	for _, memberID := range round.added {
		if present[memberID] {
			continue
		}
		present[memberID] = true
		memberKey := p.memberKey(memberID)
		membership := wanted[memberKey]
		switch {
		case membership != nil && !membership.GetTombstone():
		case membership != nil && !p.settled(membership):
			// A removal on its way.
		default:
			p.stray(ctx, groupKey, id, memberKey, memberID)
		}
	}
	missing := map[string]bool{}
	for _, memberID := range round.memberOut {
		missing[memberID] = !present[memberID] // removed and added back within the round: there
	}
	if full {
		// A first round lists every member: a desired one it does not list is missing.
		for _, membership := range wanted {
			if memberID := p.objectID(membership.GetMembership()); memberID != "" && !membership.GetTombstone() && !present[memberID] {
				missing[memberID] = true
			}
		}
	}
	for memberID, gone := range missing {
		membership := wanted[p.memberKey(memberID)]
		if !gone || membership == nil || membership.GetTombstone() || !p.settled(membership) {
			continue
		}
		p.fix(ctx, membership, "membership", "member removed outside orgsync", false)
	}
}

// memberKey is the worker id or group key of a member object id, else the id itself.
func (p *pass) memberKey(memberID string) string {
	if workerID, ok := p.users[memberID]; ok {
		return workerID
	}
	if groupKey, ok := p.groups[memberID]; ok {
		return groupKey
	}
	return memberID
}

// objectID is the object id of a membership's member, "" when orgsync has none.
func (p *pass) objectID(m *orgsyncv1.DesiredMembership) string {
	p.invert()
	if m.GetMemberKind() == orgsyncv1.MemberKind_MEMBER_KIND_GROUP {
		return p.groupIDs[m.GetMemberKey()]
	}
	return p.userIDs[m.GetMemberKey()]
}

// userObjectID is the object id of a worker's account, "" when orgsync has none.
func (p *pass) userObjectID(workerID string) string {
	p.invert()
	return p.userIDs[workerID]
}

func (p *pass) invert() {
	if p.userIDs == nil {
		p.userIDs, p.groupIDs = invert(p.users), invert(p.groups)
	}
}

func invert(m map[string]string) map[string]string {
	inverted := make(map[string]string, len(m))
	for k, v := range m {
		inverted[v] = k
	}
	return inverted
}

// fix corrects (or reports) obj. deleted says the object is gone: with Report nothing is tried.
func (p *pass) fix(ctx context.Context, obj *orgsyncv1.DesiredObject, kind, what string, deleted bool) {
	finding := Finding{Kind: kind, Key: obj.GetKey(), What: what}
	reportOnly := p.policy == Report
	if !(reportOnly && deleted) {
		result, err := p.writer.Correct(ctx, obj, what, reportOnly)
		if err != nil {
			p.errs = append(p.errs, err)
			p.logger.ErrorContext(ctx, "drift found, correction failed", "kind", kind, "object", obj.GetKey(), "drift", what, "error", err)
			return
		}
		if len(result.GetOperations()) == 0 {
			return // the account read back matches: the round's partial view was not drift
		}
		finding.Operations, finding.Corrected = result.GetOperations(), !reportOnly
	}
	p.record(ctx, finding)
}

// stray removes (or reports) a member of a managed group that the desired state does not have.
func (p *pass) stray(ctx context.Context, groupKey, groupID, memberKey, memberID string) {
	finding := Finding{Kind: "membership", Key: groupKey + "/" + memberKey, What: "member added outside orgsync", Operations: []string{"member.remove"}}
	if p.policy == Correct {
		if _, err := p.writer.RemoveStray(ctx, groupKey, groupID, memberKey, memberID); err != nil {
			p.errs = append(p.errs, err)
			p.logger.ErrorContext(ctx, "drift found, correction failed", "kind", "membership", "object", finding.Key, "drift", finding.What, "error", err)
			return
		}
		finding.Corrected = true
	}
	p.record(ctx, finding)
}

func (p *pass) record(ctx context.Context, f Finding) {
	p.findings = append(p.findings, f)
	metrics.Default().Drift(ctx, "entra", f.Kind, f.Corrected)
	if f.Corrected {
		p.logger.WarnContext(ctx, "drift corrected: object edited outside orgsync", "kind", f.Kind, "object", f.Key, "drift", f.What, "operations", f.Operations)
		return
	}
	p.logger.WarnContext(ctx, "drift found (not corrected, DRIFT_POLICY=report)", "kind", f.Kind, "object", f.Key, "drift", f.What, "would_do", f.Operations)
}

func fieldList(fields []directory.Field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = string(f)
	}
	return fmt.Sprint(names)
}

// licensesDiffer says whether a group's licences, as a delta round shows them, are not the
// desired ones.
func licensesDiffer(observed []directory.License, desired []*orgsyncv1.GroupLicense) bool {
	want := make([]directory.License, len(desired))
	for i, license := range desired {
		want[i] = directory.License{SkuID: license.GetSkuId(), DisabledPlans: license.GetDisabledPlanIds()}
	}
	add, remove := directory.LicenseChanges(observed, want)
	return len(add) > 0 || len(remove) > 0
}
