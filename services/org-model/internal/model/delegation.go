package model

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

// Grants are memberships given for a time, on top of what HR and the policy give: a delegation
// (the delegate gets the direct groups of another worker, or an org unit's group, during a
// leave of absence) or an approved helpdesk request (one group until an end date). A grant takes
// effect at the start of its start date and ends at the start of its end date, in the policy's
// time zone; both moments are scheduled like lifecycle dates, on the delegate's own entry in the
// model's schedule, so there is one mechanism for everything that falls due. The memberships a
// grant gives are the delegate's desired memberships (published to DIRECTORY like any other),
// only while the delegate is active.

// ErrInvalidGrant is wrapped by CheckDelegation and CheckMembershipRequest for a grant that
// cannot be made; the message names the problem.
var ErrInvalidGrant = errors.New("invalid grant")

// grant is one delegation or approved helpdesk request, as the model applies it.
type grant struct {
	delegationID, requestID string
	delegateID              string
	// fromWorkerID, fromUnitID or groupKey is what the grant gives: a worker's groups, a unit's
	// group, or one group.
	fromWorkerID, fromUnitID, groupKey string
	start, end                         time.Time
	endDate                            *orgsyncv1.Date
}

func (g *grant) id() string {
	if g.delegationID != "" {
		return "delegation/" + g.delegationID
	}
	return "request/" + g.requestID
}

func (g *grant) activeAt(now time.Time) bool { return !now.Before(g.start) && now.Before(g.end) }

// grantIndex holds the grants by delegate and by source (a worker or unit whose groups are
// delegated), and the groups each delegate holds through grants now.
type grantIndex struct {
	byID map[string]*grant
	to   map[string][]*grant // delegate worker id → grants
	from map[string][]*grant // "w:<worker id>" or "u:<unit id>" → delegations from it
	// given is, per delegate, the group keys the last computation gave them through a grant
	// (and not on their own), for Explain.
	given map[string]map[string]*grant
	// credentials are, per worker, the newest approved helpdesk request's credential (credential.go).
	credentials map[string]*orgsyncv1.HelpdeskCredential
}

func (x *grantIndex) clone() grantIndex {
	c := grantIndex{byID: maps.Clone(x.byID), to: map[string][]*grant{}, from: map[string][]*grant{}, given: map[string]map[string]*grant{},
		credentials: maps.Clone(x.credentials)}
	for key, list := range x.to {
		c.to[key] = slices.Clone(list)
	}
	for key, list := range x.from {
		c.from[key] = slices.Clone(list)
	}
	for key, given := range x.given {
		c.given[key] = maps.Clone(given)
	}
	return c
}

func (x *grantIndex) put(g *grant) {
	if x.byID == nil {
		x.byID, x.to, x.from, x.given = map[string]*grant{}, map[string][]*grant{}, map[string][]*grant{}, map[string]map[string]*grant{}
	}
	if old := x.byID[g.id()]; old != nil {
		x.to[old.delegateID] = slices.DeleteFunc(x.to[old.delegateID], func(e *grant) bool { return e == old })
		if key := old.sourceKey(); key != "" {
			x.from[key] = slices.DeleteFunc(x.from[key], func(e *grant) bool { return e == old })
		}
	}
	x.byID[g.id()] = g
	x.to[g.delegateID] = append(x.to[g.delegateID], g)
	if key := g.sourceKey(); key != "" {
		x.from[key] = append(x.from[key], g)
	}
}

func (g *grant) sourceKey() string {
	switch {
	case g.fromWorkerID != "":
		return "w:" + g.fromWorkerID
	case g.fromUnitID != "":
		return "u:" + g.fromUnitID
	}
	return ""
}

// delegationGrant is the grant a delegation makes, ending early when it was ended.
func (m *Model) delegationGrant(d *orgsyncv1.Delegation) (*grant, error) {
	start, ok := dayStart(d.GetStartDate(), m.pol.Location)
	if !ok {
		return nil, fmt.Errorf("%w: start_date is required", ErrInvalidGrant)
	}
	end, ok := dayStart(d.GetEndDate(), m.pol.Location)
	if !ok {
		return nil, fmt.Errorf("%w: end_date is required", ErrInvalidGrant)
	}
	g := &grant{delegationID: d.GetDelegationId(), delegateID: d.GetDelegateWorkerId(), fromWorkerID: d.GetFromWorkerId(),
		fromUnitID: d.GetFromOrgUnitId(), start: start, end: end, endDate: d.GetEndDate()}
	if d.GetEndedAt() != nil && d.GetEndedAt().AsTime().Before(g.end) {
		g.end = d.GetEndedAt().AsTime()
	}
	return g, nil
}

// CheckDelegation says why a new delegation cannot be made at now (wrapping ErrInvalidGrant), or
// nil: the delegate and the worker or unit it is from must be known, it must be from one worker
// or one unit, not from the delegate, and end after it starts and after now.
func (m *Model) CheckDelegation(d *orgsyncv1.Delegation, now time.Time) error {
	m.rlock()
	defer m.mu.RUnlock()
	delegate := strings.TrimSpace(d.GetDelegateWorkerId())
	switch {
	case delegate == "":
		return fmt.Errorf("%w: delegate_worker_id is required", ErrInvalidGrant)
	case m.workers[delegate] == nil:
		return fmt.Errorf("%w: delegate_worker_id %q is not a worker orgsync knows", ErrInvalidGrant, delegate)
	case (d.GetFromWorkerId() == "") == (d.GetFromOrgUnitId() == ""):
		return fmt.Errorf("%w: give exactly one of from_worker_id and from_org_unit_id", ErrInvalidGrant)
	case d.GetFromWorkerId() == delegate:
		return fmt.Errorf("%w: a worker cannot be delegated their own memberships (delegate_worker_id equals from_worker_id)", ErrInvalidGrant)
	case d.GetFromWorkerId() != "" && m.workers[d.GetFromWorkerId()] == nil:
		return fmt.Errorf("%w: from_worker_id %q is not a worker orgsync knows", ErrInvalidGrant, d.GetFromWorkerId())
	case d.GetFromOrgUnitId() != "" && (m.units[d.GetFromOrgUnitId()] == nil || m.units[d.GetFromOrgUnitId()].GetDeleted()):
		return fmt.Errorf("%w: from_org_unit_id %q is not an org unit orgsync knows", ErrInvalidGrant, d.GetFromOrgUnitId())
	case strings.TrimSpace(d.GetReason()) == "":
		return fmt.Errorf("%w: reason is required (it goes to the audit trail)", ErrInvalidGrant)
	}
	if err := validDate("start_date", d.GetStartDate()); err != nil {
		return err
	}
	if err := validDate("end_date", d.GetEndDate()); err != nil {
		return err
	}
	g, err := m.delegationGrant(d)
	if err != nil {
		return err
	}
	if !g.end.After(g.start) {
		return fmt.Errorf("%w: end_date %s is not after start_date %s", ErrInvalidGrant, formatDate(d.GetEndDate()), formatDate(d.GetStartDate()))
	}
	if !g.end.After(now) {
		return fmt.Errorf("%w: end_date %s has passed", ErrInvalidGrant, formatDate(d.GetEndDate()))
	}
	return nil
}

// CheckMembershipRequest says why a temporary membership of workerID in groupKey until endDate
// cannot be asked for at now (wrapping ErrInvalidGrant), or nil: the worker and the group must be
// known, and the end date ahead.
func (m *Model) CheckMembershipRequest(workerID, groupKey string, endDate *orgsyncv1.Date, now time.Time) error {
	m.rlock()
	defer m.mu.RUnlock()
	switch {
	case strings.TrimSpace(workerID) == "":
		return fmt.Errorf("%w: worker_id is required", ErrInvalidGrant)
	case m.workers[workerID] == nil:
		return fmt.Errorf("%w: worker_id %q is not a worker orgsync knows", ErrInvalidGrant, workerID)
	case strings.TrimSpace(groupKey) == "":
		return fmt.Errorf("%w: group_key is required", ErrInvalidGrant)
	case m.objects[GroupRef(m.targets[0], groupKey)] == nil:
		return fmt.Errorf("%w: group_key %q is not a group orgsync manages", ErrInvalidGrant, groupKey)
	}
	if err := validDate("end_date", endDate); err != nil {
		return err
	}
	end, _ := dayStart(endDate, m.pol.Location)
	if !end.After(now) {
		return fmt.Errorf("%w: end_date %s has passed", ErrInvalidGrant, formatDate(endDate))
	}
	return nil
}

func validDate(field string, d *orgsyncv1.Date) error {
	if d.GetYear() == 0 {
		return fmt.Errorf("%w: %s is required", ErrInvalidGrant, field)
	}
	t := time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, time.UTC)
	if d.GetMonth() < 1 || d.GetMonth() > 12 || t.Day() != int(d.GetDay()) || t.Year() != int(d.GetYear()) {
		return fmt.Errorf("%w: %s %s is not a calendar date", ErrInvalidGrant, field, formatDate(d))
	}
	return nil
}

func formatDate(d *orgsyncv1.Date) string {
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

// DelegationState is where a delegation stands at now.
func (m *Model) DelegationState(d *orgsyncv1.Delegation, now time.Time) orgsyncv1.DelegationState {
	g, err := m.delegationGrant(d)
	switch {
	case err != nil || !now.Before(g.end):
		return orgsyncv1.DelegationState_DELEGATION_STATE_ENDED
	case now.Before(g.start):
		return orgsyncv1.DelegationState_DELEGATION_STATE_SCHEDULED
	default:
		return orgsyncv1.DelegationState_DELEGATION_STATE_ACTIVE
	}
}

// RestoreDelegations and RestoreMembershipGrants put the grants kept durable apart from HR into
// the model at start, before the replay; ComputeAll then applies them.
func (m *Model) RestoreDelegations(delegations []*orgsyncv1.Delegation) error {
	m.lock()
	defer m.mu.Unlock()
	var errs []error
	for _, d := range delegations {
		g, err := m.delegationGrant(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("delegation %s: %w", d.GetDelegationId(), err))
			continue
		}
		m.grants.put(g)
	}
	return errors.Join(errs...)
}

// ApplyDelegation adds or replaces a delegation (an early end sets its ended_at) and returns the
// objects that changed at now; its start and end are scheduled.
func (m *Model) ApplyDelegation(d *orgsyncv1.Delegation, now time.Time) ([]*orgsyncv1.DesiredObject, error) {
	g, err := m.delegationGrant(d)
	if err != nil {
		return nil, err
	}
	return m.applyGrant(g, now), nil
}

// MembershipGrant is a temporary membership an approved helpdesk request gives.
type MembershipGrant struct {
	RequestID, WorkerID, GroupKey string
	Start                         time.Time
	EndDate                       *orgsyncv1.Date
}

// RestoreMembershipGrants puts approved temporary memberships into the model at start.
func (m *Model) RestoreMembershipGrants(grants []MembershipGrant) {
	m.lock()
	defer m.mu.Unlock()
	for _, mg := range grants {
		m.grants.put(m.membershipGrant(mg))
	}
}

// ApplyMembershipGrant adds an approved temporary membership and returns the objects that changed.
func (m *Model) ApplyMembershipGrant(mg MembershipGrant, now time.Time) []*orgsyncv1.DesiredObject {
	return m.applyGrant(m.membershipGrant(mg), now)
}

func (m *Model) membershipGrant(mg MembershipGrant) *grant {
	end, _ := dayStart(mg.EndDate, m.pol.Location)
	return &grant{requestID: mg.RequestID, delegateID: mg.WorkerID, groupKey: mg.GroupKey, start: mg.Start, end: end, endDate: mg.EndDate}
}

func (m *Model) applyGrant(g *grant, now time.Time) []*orgsyncv1.DesiredObject {
	m.lock()
	defer m.mu.Unlock()
	m.epoch++
	changes := m.advance(now)
	m.grants.put(g)
	affected := map[owner]struct{}{}
	if st := m.workers[g.delegateID]; st != nil {
		m.refreshWorker(st, now, affected)
	}
	return append(changes, m.recompute(affected, now)...)
}

// nextGrantChange is the earlier of next and the first start or end of a grant to workerID
// after now.
func (m *Model) nextGrantChange(workerID string, next, now time.Time) time.Time {
	for _, g := range m.grants.to[workerID] {
		for _, t := range []time.Time{g.start, g.end} {
			if t.After(now) && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
	}
	return next
}

// addDelegates adds to affected the delegates of the workers and units in it: what a delegate
// holds follows the groups of whom they replace.
func (m *Model) addDelegates(affected map[owner]struct{}) {
	if len(m.grants.from) == 0 {
		return
	}
	var delegates []string
	for o := range affected {
		key := ""
		switch o.kind {
		case 'w':
			key = "w:" + o.id
		case 'u':
			key = "u:" + o.id
		}
		for _, g := range m.grants.from[key] {
			delegates = append(delegates, g.delegateID)
		}
	}
	for _, id := range delegates {
		affected[owner{kind: 'w', id: id}] = struct{}{}
	}
}

// grantedGroups returns own followed by the groups the worker's grants active at now give them
// and they do not hold on their own, and remembers those for Explain. Only an active worker
// holds granted groups: a delegate who has left or not started gets none.
// It is safe to call for many workers at once, each with its own c (see computeInParallel).
func (m *Model) grantedGroups(st *workerState, own []string, phase Phase, now time.Time, c *workerComputation) []string {
	grants := m.grants.to[st.id]
	if len(grants) == 0 || phase != PhaseActive {
		if m.grants.given != nil {
			m.givenMu.Lock()
			delete(m.grants.given, st.id)
			m.givenMu.Unlock()
		}
		return own
	}
	given := map[string]*grant{}
	keys := own
	add := func(key string, g *grant) {
		if slices.Contains(keys, key) || given[key] != nil {
			return
		}
		keys = append(keys, key)
		given[key] = g
	}
	for _, g := range grants {
		if !g.activeAt(now) {
			continue
		}
		switch {
		case g.groupKey != "":
			add(g.groupKey, g)
		case g.fromUnitID != "":
			if unit, ok := m.units[g.fromUnitID]; ok && !unit.GetDeleted() {
				add(GroupKey(g.fromUnitID), g)
			}
		case g.fromWorkerID != "":
			from := m.workers[g.fromWorkerID]
			if from == nil || from.current == nil || !from.inScope {
				continue
			}
			var fromVars policy.WorkerVars
			m.fillWorkerVars(&fromVars, from.current.record, c.memo)
			for _, key := range m.groupsOf(nil, from, &fromVars, PhaseActive, now, c) {
				add(key, g)
			}
		}
	}
	m.givenMu.Lock()
	if len(given) == 0 {
		delete(m.grants.given, st.id)
	} else {
		m.grants.given[st.id] = given
	}
	m.givenMu.Unlock()
	return keys
}

// explainGrant is the explanation of a membership the worker holds through a grant, if they do.
func (m *Model) explainGrant(workerID, groupKey string) (Explanation, bool) {
	g := m.grants.given[workerID][groupKey]
	if g == nil {
		return Explanation{}, false
	}
	until := formatDate(g.endDate)
	if g.end.Before(mustDayStart(g.endDate, m.pol.Location)) {
		until = g.end.In(m.pol.Location).Format("2006-01-02 15:04")
	}
	e := Explanation{Member: true, Grant: &orgsyncv1.MembershipGrant{
		DelegationId: g.delegationID, AccessRequestId: g.requestID, FromWorkerId: g.fromWorkerID, FromOrgUnitId: g.fromUnitID,
		EndsAt: timestamppb.New(g.end), EndDate: proto.CloneOf(g.endDate),
	}}
	switch {
	case g.fromWorkerID != "":
		e.Kind = orgsyncv1.MembershipReason_MEMBERSHIP_REASON_DELEGATION
		e.Reason = fmt.Sprintf("delegated from %s until %s (delegation %s)", g.fromWorkerID, until, g.delegationID)
	case g.fromUnitID != "":
		e.Kind = orgsyncv1.MembershipReason_MEMBERSHIP_REASON_DELEGATION
		e.Reason = fmt.Sprintf("delegated from org unit %s until %s (delegation %s)", g.fromUnitID, until, g.delegationID)
	default:
		e.Kind = orgsyncv1.MembershipReason_MEMBERSHIP_REASON_TEMPORARY_ACCESS
		e.Reason = fmt.Sprintf("temporary access until %s (helpdesk request %s)", until, g.requestID)
	}
	return e, true
}

func mustDayStart(d *orgsyncv1.Date, loc *time.Location) time.Time {
	t, _ := dayStart(d, loc)
	return t
}

// ownReason is the kind of reason that puts a worker in their direct group on their own.
func ownReason(directGroup string) orgsyncv1.MembershipReason {
	switch {
	case strings.HasPrefix(directGroup, unitGroupPrefix):
		return orgsyncv1.MembershipReason_MEMBERSHIP_REASON_ORG_UNIT
	case strings.HasPrefix(directGroup, ruleGroupPrefix):
		return orgsyncv1.MembershipReason_MEMBERSHIP_REASON_RULE
	case directGroup == PeopleManagersGroup || directGroup == UnitManagersGroup:
		return orgsyncv1.MembershipReason_MEMBERSHIP_REASON_MANAGER
	}
	return orgsyncv1.MembershipReason_MEMBERSHIP_REASON_UNSPECIFIED
}

// GrantTransition is a grant starting or ending.
type GrantTransition struct {
	DelegationID, RequestID string
	WorkerID                string
	Ended                   bool
}

// GrantTransitions lists the grants that start or end after from and by to.
func (m *Model) GrantTransitions(from, to time.Time) []GrantTransition {
	m.rlock()
	defer m.mu.RUnlock()
	var out []GrantTransition
	for _, g := range m.grants.byID {
		for _, edge := range []struct {
			at    time.Time
			ended bool
		}{{g.start, false}, {g.end, true}} {
			if edge.at.After(from) && !edge.at.After(to) {
				out = append(out, GrantTransition{DelegationID: g.delegationID, RequestID: g.requestID, WorkerID: g.delegateID, Ended: edge.ended})
			}
		}
	}
	return out
}
