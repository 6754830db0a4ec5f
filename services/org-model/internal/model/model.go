// Package model keeps the organisation as HR describes it — org units and workers, each worker
// with a timeline of records by effective date — and computes from it, at a given moment, the
// desired directory objects of each target: a user per worker in scope (enabled, disabled or
// pre-created per the lifecycle), a security group per org unit, optional roll-up groups nesting
// a unit's group and its sub-units' roll-up groups, manager groups, rule groups, and the
// memberships in them.
//
// The model remembers the objects it computed, grouped by the owner that produced them (a worker,
// a unit, or the global groups); applying an event or a moment in time recomputes only the
// owners it affects and returns the objects that changed, tombstones included.
//
// A Model is safe for concurrent use: one goroutine applies events and time while queries read.
package model

import (
	"cmp"
	"container/heap"
	"context"
	"iter"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

// Group keys of the groups the model makes.
const (
	unitGroupPrefix       = "unit-"
	rollupGroupPrefix     = "all-"
	ruleGroupPrefix       = "rule-"
	PeopleManagersGroup   = "managers-people"
	UnitManagersGroup     = "managers-units"
	fallbackUPNDomain     = "orgsync.invalid"
	maxSAMAccountNameSize = 20
)

// GroupKey is the key of an org unit's group (its direct members).
func GroupKey(unitID string) string { return unitGroupPrefix + unitID }

// RollupGroupKey is the key of an org unit's roll-up group.
func RollupGroupKey(unitID string) string { return rollupGroupPrefix + unitID }

// RuleGroupKey is the key of a rule group.
func RuleGroupKey(rule string) string { return ruleGroupPrefix + rule }

// owner is what produces a set of objects: a worker (user and memberships), a unit (its groups
// and their nesting), or the global groups.
type owner struct {
	kind byte // 'w', 'u' or 'g'
	id   string
}

// Model is the organisation.
type Model struct {
	pol     *policy.Policy
	targets []orgsyncv1.Target
	domain  string

	mu sync.RWMutex
	// givenMu guards grants.given, which the workers of a full recompute write from every core.
	givenMu        sync.Mutex
	units          map[string]*orgsyncv1.OrgUnit
	children       map[string]map[string]struct{} // parent id (known or not) → child unit ids
	workers        map[string]*workerState
	workersByUnit  workerIndex                    // unit id (known or not) → worker ids, by record in effect
	reportsOf      workerIndex                    // manager id → worker ids, by record in effect
	unitsManagedBy map[string]map[string]struct{} // worker id → unit ids
	// ids holds the identifiers assigned to workers per target, the values foreign accounts
	// hold, and the workers without a valid candidate (identifiers.go).
	ids *identifiers
	// owned are the references of the objects each unit owner and the global owner produced
	// last (a worker's are in its state, workerState.owned); the objects themselves are those
	// stored under them (object), which another owner may have replaced since.
	owned map[owner][]Ref
	// objects are the desired users and groups, and members the memberships by group and member
	// key (object, setObject). A membership is all in its reference and member kind, so it is
	// kept as the kind alone, in its group's map, and made into a message when read (object,
	// allObjects): 160,000 memberships take 4 MB instead of 35 MB as messages. memberCount
	// counts them.
	objects     map[Ref]*orgsyncv1.DesiredObject
	memberCount int
	members     map[groupRef]map[string]orgsyncv1.MemberKind
	due         dueHeap
	now         time.Time
	// snapshots are the full exports begun and not yet ended, by source and snapshot id.
	snapshots  map[snapshotKey]*snapshotState
	evalErrors map[string]string // "worker <id>" or "unit <id>" → the last expression error
	// derived holds the units derived from worker attributes (hierarchy.go), as first derived;
	// occupants and leads say which workers are in each and which of them lead it.
	derived   map[string]*orgsyncv1.OrgUnit
	occupants map[string]map[string]struct{}
	leads     map[string]map[string]struct{}
	// chains caches unitChain for the computations (queries, under the read lock, do not use
	// it); any unit event empties it.
	chains map[string]unitChainEntry
	// memo remembers worker expressions' results by their inputs for the computations, as
	// chains does the unit chains, and is emptied with it (unitsChanged).
	memo *policy.Memo
	// mappings are what the policy maps in each target (compute.go).
	mappings map[orgsyncv1.Target]*targetMapping
	// unitsChanges counts unitsChanged, for memos of other goroutines (identify.go).
	unitsChanges uint64
	// refreshVars and inTurn are scratch space reused from one worker to the next: the
	// variables of a refresh, and the computation of workers in turn (recompute).
	refreshVars policy.WorkerVars
	inTurn      workerComputation
	// normalisedCandidates remembers normalised identifier candidates by property and value
	// (identifiers.go); they depend only on the policy.
	normalisedCandidates map[normalisedKey]normalisedValue
	// globalsComputed says the manager and rule groups have been computed once.
	globalsComputed bool
	// ctx bounds the expression evaluations of a plan's copy (plan.go); nil for the engine's model.
	ctx context.Context
	// replaying is set while Record applies the HR replay at start.
	replaying bool
	// replayAffected is Record's scratch set of affected owners, which it does not compute.
	replayAffected map[owner]struct{}
	// epoch counts the changes after which a worker's refresh during the replay no longer holds:
	// any unit changing, and any call other than Record. ComputeAll skips the refresh of a worker
	// whose replay refresh was made at the same epoch and moment (workerState.replayEpoch),
	// which would only repeat it.
	epoch uint64
	// replayNow is the moment of the replay's refreshes at this epoch: Record moves to another
	// epoch when it is given another moment.
	replayNow time.Time
	// identifying gives the replay's refreshes their identifiers on a goroutine of its own
	// (identify.go).
	identifying identifyQueue
	// grants are the delegations and approved temporary memberships (delegation.go).
	grants grantIndex
}

type workerState struct {
	id string
	// source is the HR source of the worker's newest record: a full export of that source judges
	// whether the worker is still there.
	source   string
	timeline timeline
	// current is the record in effect at the model's time.
	current    *entry
	firstStart *orgsyncv1.Date
	// absentSince is set when a full snapshot no longer lists the worker.
	absentSince time.Time
	inScope     bool
	// leading says whether the worker leads the derived unit they count in (occupied).
	leading bool
	// identifyDeferred says the replay left a renamed worker's identifiers for ComputeAll to
	// compare; written by the identifying goroutine (identify.go), read only by ComputeAll.
	identifyDeferred bool
	// replayRefreshes counts the worker's refreshes during the replay, to tell which one an
	// expression error found by the identifying goroutine belongs to.
	replayRefreshes uint32
	// indexed* are what the indices hold for this worker.
	indexedUnit, indexedManager string
	due                         time.Time
	// lastEventID is the HR event that last changed the record in effect.
	lastEventID string
	// occupied is the derived unit the worker counts in (hierarchy.go).
	occupied string
	// replayEpoch is the model's epoch at the worker's last refresh during the replay when
	// ComputeAll's refresh at that epoch would repeat it exactly; zero otherwise.
	replayEpoch uint64
	// owned are the references of the objects the worker produced last (Model.owned): kept
	// here rather than in a map by owner, 100,000 entries which cost 7 MB and a look-up each.
	owned []Ref
}

// New returns an empty model under pol, computing objects for the given targets (Entra when none).
func New(pol *policy.Policy, targets ...orgsyncv1.Target) *Model {
	if len(targets) == 0 {
		targets = []orgsyncv1.Target{orgsyncv1.Target_TARGET_ENTRA}
	}
	domain := fallbackUPNDomain
	if len(pol.UPNDomains) > 0 {
		domain = pol.UPNDomains[0]
	}
	m := &Model{
		pol: pol, targets: targets, domain: domain,
		units: map[string]*orgsyncv1.OrgUnit{}, children: map[string]map[string]struct{}{},
		workers: map[string]*workerState{}, workersByUnit: workerIndex{},
		reportsOf: workerIndex{}, unitsManagedBy: map[string]map[string]struct{}{},
		ids:   newIdentifiers(),
		owned: map[owner][]Ref{}, objects: map[Ref]*orgsyncv1.DesiredObject{},
		members: map[groupRef]map[string]orgsyncv1.MemberKind{}, evalErrors: map[string]string{},
		snapshots: map[snapshotKey]*snapshotState{}, derived: map[string]*orgsyncv1.OrgUnit{},
		occupants: map[string]map[string]struct{}{}, leads: map[string]map[string]struct{}{},
		memo: policy.NewMemo(), epoch: 1, mappings: map[orgsyncv1.Target]*targetMapping{},
	}
	for _, target := range targets {
		m.mappings[target] = mappingOf(pol, target)
	}
	m.inTurn.memo = m.memo
	return m
}

// TargetsOf lists the targets a policy computes objects for: Entra, and AD when the policy maps
// AD attributes.
func TargetsOf(pol *policy.Policy) []orgsyncv1.Target {
	targets := []orgsyncv1.Target{orgsyncv1.Target_TARGET_ENTRA}
	if _, ok := pol.Mapping["ad"]; ok {
		targets = append(targets, orgsyncv1.Target_TARGET_AD)
	}
	return targets
}

// Policy is the policy the model applies.
func (m *Model) Policy() *policy.Policy { return m.pol }

// Targets are the targets the model computes objects for.
func (m *Model) Targets() []orgsyncv1.Target { return m.targets }

// Record applies an HR event to the organisation without computing objects, as a replay at start
// does; ComputeAll computes them once the replay is done.
func (m *Model) Record(event *orgsyncv1.HREvent, now time.Time) {
	// Not lock: the replay's identifiers may still be given meanwhile, which Record never reads.
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = now
	if !now.Equal(m.replayNow) {
		m.epoch++
		m.replayNow = now
	}
	m.replaying = true
	defer func() { m.replaying = false }()
	// The owners a replayed event affects are not computed (ComputeAll computes them all): one
	// map serves every event, unless an event filled it, which would make clearing it slow.
	if m.replayAffected == nil || len(m.replayAffected) > 64 {
		m.replayAffected = map[owner]struct{}{}
	}
	clear(m.replayAffected)
	m.recordInto(event, now, m.replayAffected)
}

// Apply applies due transitions up to now and then the HR event, and returns every object whose
// desired state changed (a tombstone for an object no longer desired).
func (m *Model) Apply(event *orgsyncv1.HREvent, now time.Time) []*orgsyncv1.DesiredObject {
	m.lock()
	defer m.mu.Unlock()
	m.epoch++
	changes := m.advance(now)
	affected := m.record(event, now)
	if !m.globalsComputed {
		affected[owner{kind: 'g'}] = struct{}{}
		m.globalsComputed = true
	}
	return append(changes, m.recompute(affected, now)...)
}

// Advance applies the lifecycle transitions and future-dated records that fall due by now and
// returns the objects that changed.
func (m *Model) Advance(now time.Time) []*orgsyncv1.DesiredObject {
	m.lock()
	defer m.mu.Unlock()
	m.epoch++
	return m.advance(now)
}

// NextDue is when the next transition falls due, or zero when none is scheduled. It may be
// early (a transition since cancelled); Advance then changes nothing.
func (m *Model) NextDue() time.Time {
	m.rlock()
	defer m.mu.RUnlock()
	if len(m.due) == 0 {
		return time.Time{}
	}
	return m.due[0].at
}

func (m *Model) advance(now time.Time) []*orgsyncv1.DesiredObject {
	m.now = now
	affected := map[owner]struct{}{}
	for len(m.due) > 0 && !m.due[0].at.After(now) {
		item := heap.Pop(&m.due).(dueItem)
		st := m.workers[item.workerID]
		if st == nil || !st.due.Equal(item.at) {
			continue
		}
		st.due = time.Time{}
		m.refreshWorker(st, now, affected)
	}
	return m.recompute(affected, now)
}

// ComputeAll computes every owner's objects at now and returns every desired object (no
// tombstones), sorted by path.
func (m *Model) ComputeAll(now time.Time) []*orgsyncv1.DesiredObject {
	m.lock()
	defer m.mu.Unlock()
	m.now = now
	m.globalsComputed = true
	first := m.objectCount() == 0
	if first {
		// A first computation: size the maps for a user per worker and two groups per unit in
		// each target, so they do not grow step by step.
		m.objects = make(map[Ref]*orgsyncv1.DesiredObject, (len(m.workers)+2*len(m.units))*len(m.targets))
		m.members = make(map[groupRef]map[string]orgsyncv1.MemberKind, 2*len(m.units)*len(m.targets))
		m.owned = make(map[owner][]Ref, len(m.units)+1)
	}
	// Every worker, unit and the global groups are computed: the owners a refresh names as
	// affected go to a map that is only emptied (refreshing needs one), and the owners are listed
	// from the model (the units last: a refresh may add one).
	affected := map[owner]struct{}{}
	owners := make([]affectedOwner, 0, 1+len(m.units)+len(m.workers))
	stopped := false
	for _, st := range m.workers {
		owners = append(owners, affectedOwner{owner{kind: 'w', id: st.id}, st})
		if stopped = stopped || m.ctx != nil && m.ctx.Err() != nil; stopped {
			continue // a plan stopped: what is left would only fail to evaluate
		}
		deferred := st.identifyDeferred
		st.identifyDeferred = false
		if st.replayEpoch == m.epoch && now.Equal(m.replayNow) && !deferred {
			// The replay's refresh of this worker stands: nothing it read has changed since.
			st.replayEpoch = 0
			continue
		}
		st.due = time.Time{}
		if len(affected) > 64 {
			affected = map[owner]struct{}{}
		}
		clear(affected)
		m.refreshWorker(st, now, affected)
	}
	owners = append(owners, affectedOwner{owner: owner{kind: 'g'}})
	for id := range m.units {
		owners = append(owners, affectedOwner{owner: owner{kind: 'u', id: id}})
	}
	sortOwners(owners)
	m.epoch++
	if first {
		// Every object is new: they are listed as computed rather than made again from the
		// store (memberships are stored as their kind).
		return m.computeFirst(owners, now)
	}
	m.computeOwners(owners, now)
	return m.allObjects()
}

func (m *Model) allObjects() []*orgsyncv1.DesiredObject {
	return sortedObjects(func(yield func(Ref, *orgsyncv1.DesiredObject) bool) {
		for ref, obj := range m.objects {
			if !yield(ref, obj) {
				return
			}
		}
		for group, members := range m.members {
			for memberKey, kind := range members {
				if !yield(MemberRef(group.target, group.groupKey, memberKey), membership(group.target, group.groupKey, kind, memberKey)) {
					return
				}
			}
		}
	}, false)
}

// refObject is an object to sort, with its reference and its position among those given.
type refObject struct {
	ref   Ref
	obj   *orgsyncv1.DesiredObject
	index int32
}

// sortedObjects returns the objects each gives (each is called twice and must give the same)
// ordered by target name, kind name, then keys: they are put in buckets of one target and kind,
// and the buckets sorted by keys at once, on every core for a large model. With lastOnly, of the
// objects under one reference only the last given is listed.
func sortedObjects(each iter.Seq2[Ref, *orgsyncv1.DesiredObject], lastOnly bool) []*orgsyncv1.DesiredObject {
	// A few buckets (a kind of object in a target): a list finds one sooner than a map.
	type bucket struct {
		target orgsyncv1.Target
		kind   Kind
		size   int
		next   int
	}
	var names []bucket
	find := func(ref Ref) *bucket {
		for i := range names {
			if names[i].target == ref.Target && names[i].kind == ref.Kind {
				return &names[i]
			}
		}
		names = append(names, bucket{target: ref.Target, kind: ref.Kind})
		return &names[len(names)-1]
	}
	total := 0
	for ref := range each {
		find(ref).size++
		total++
	}
	slices.SortFunc(names, func(a, b bucket) int {
		return cmp.Or(strings.Compare(TargetName(a.target), TargetName(b.target)), strings.Compare(kindNames[a.kind], kindNames[b.kind]))
	})
	sorted := make([]refObject, total)
	buckets := make([][]refObject, len(names))
	next := 0
	for i := range names {
		names[i].next = next
		buckets[i] = sorted[next : next+names[i].size]
		next += names[i].size
	}
	index := int32(0)
	for ref, obj := range each {
		b := find(ref)
		sorted[b.next] = refObject{ref, obj, index}
		b.next++
		index++
	}
	byKey := func(a, b refObject) int {
		return cmp.Or(strings.Compare(a.ref.Key, b.ref.Key), strings.Compare(a.ref.Member, b.ref.Member), cmp.Compare(a.index, b.index))
	}
	var wg sync.WaitGroup
	for _, bucket := range buckets {
		if len(bucket) < parallelWorkersAt {
			slices.SortFunc(bucket, byKey)
			continue
		}
		wg.Go(func() { slices.SortFunc(bucket, byKey) })
	}
	wg.Wait()
	out := make([]*orgsyncv1.DesiredObject, 0, len(sorted))
	for i, ro := range sorted {
		if lastOnly && i+1 < len(sorted) && sorted[i+1].ref == ro.ref {
			continue
		}
		out = append(out, ro.obj)
	}
	return out
}

// Objects returns every desired object, sorted by target, kind and key.
func (m *Model) Objects() []*orgsyncv1.DesiredObject {
	m.rlock()
	defer m.mu.RUnlock()
	return m.allObjects()
}

// Object returns the desired object ref names, or nil.
func (m *Model) Object(ref Ref) *orgsyncv1.DesiredObject {
	m.rlock()
	defer m.mu.RUnlock()
	obj, _ := m.object(ref)
	return obj
}

// record applies an event to the organisation and returns the owners it affects.
func (m *Model) record(event *orgsyncv1.HREvent, now time.Time) map[owner]struct{} {
	affected := map[owner]struct{}{}
	m.recordInto(event, now, affected)
	return affected
}

// recordInto is record adding the owners to affected.
func (m *Model) recordInto(event *orgsyncv1.HREvent, now time.Time, affected map[owner]struct{}) {
	at := EventTime(event, now)
	switch p := event.GetPayload().(type) {
	case *orgsyncv1.HREvent_Worker:
		m.recordWorker(event, p.Worker, at, now, affected)
	case *orgsyncv1.HREvent_OrgUnit:
		m.recordUnit(p.OrgUnit, affected)
	case *orgsyncv1.HREvent_Snapshot:
		m.recordSnapshot(event.GetSource(), p.Snapshot, at, now, affected)
	}
}

// EventTime is when an HR event happened for the model: HR's time when it gives one, else the
// time hr-ingest received it; only an event with neither (never stored by hr-ingest) takes now.
// Replaying the same event later therefore gives the same leave dates and grace periods.
func EventTime(event *orgsyncv1.HREvent, now time.Time) time.Time {
	switch {
	case event.GetOccurredAt() != nil:
		return event.GetOccurredAt().AsTime()
	case event.GetReceivedAt() != nil:
		return event.GetReceivedAt().AsTime()
	default:
		return now
	}
}

func (m *Model) recordWorker(event *orgsyncv1.HREvent, w *orgsyncv1.Worker, at, now time.Time, affected map[owner]struct{}) {
	id := w.GetWorkerId()
	if id == "" {
		return
	}
	eventID := event.GetEventId()
	st, known := m.workers[id]
	if !known {
		st = &workerState{id: id}
		m.workers[id] = st
	}
	st.source = event.GetSource()
	m.markSeen(event, id)
	w = m.deriveUnit(event.GetSource(), w, affected)
	previous := st.timeline.at(at)
	w = keepStatusWhenActiveOmitted(w, previous)
	terminatedSince := at
	if previous != nil && w.GetEmploymentStatus() == orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED &&
		previous.record.GetEmploymentStatus() == orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED {
		terminatedSince = previous.terminatedSince
	}
	// HR lists the worker again, so a snapshot's verdict that they are gone no longer holds, even
	// when this record itself is older than the one in effect.
	wasAbsent := !st.absentSince.IsZero()
	st.absentSince = time.Time{}
	if !st.timeline.insert(entry{at: at, record: w, eventID: eventID, terminatedSince: terminatedSince}, now) {
		if wasAbsent {
			m.refreshWorker(st, now, affected)
		}
		return
	}
	start := w.GetStartDate()
	if start.GetYear() == 0 {
		start = w.GetHireDate()
	}
	if start.GetYear() != 0 && (st.firstStart == nil || dateLess(start, st.firstStart)) {
		st.firstStart = start
	}
	m.refreshWorker(st, now, affected)
}

// keepStatusWhenActiveOmitted gives a record that did not state the worker's status the status of
// the record before it: omitting `active` must neither disable an active worker nor re-enable one
// who left (the trap of Entra's API-driven provisioning). A first record keeps hr-ingest's ACTIVE.
func keepStatusWhenActiveOmitted(w *orgsyncv1.Worker, previous *entry) *orgsyncv1.Worker {
	if !w.GetEmploymentStatusOmitted() || previous == nil {
		return w
	}
	kept := proto.CloneOf(w)
	kept.EmploymentStatus = previous.record.GetEmploymentStatus()
	if kept.GetEndDate() == nil {
		kept.EndDate = previous.record.GetEndDate()
	}
	return kept
}

func dateLess(a, b *orgsyncv1.Date) bool {
	if a.GetYear() != b.GetYear() {
		return a.GetYear() < b.GetYear()
	}
	if a.GetMonth() != b.GetMonth() {
		return a.GetMonth() < b.GetMonth()
	}
	return a.GetDay() < b.GetDay()
}

func (m *Model) recordUnit(u *orgsyncv1.OrgUnit, affected map[owner]struct{}) {
	id := u.GetOrgUnitId()
	if id == "" {
		return
	}
	old := m.units[id]
	if old != nil {
		removeFrom(m.children, old.GetParentOrgUnitId(), id)
		removeFrom(m.unitsManagedBy, old.GetManagerWorkerId(), id)
		affected[owner{kind: 'w', id: old.GetManagerWorkerId()}] = struct{}{}
	}
	m.units[id] = u
	m.epoch++
	m.unitsChanged()
	addTo(m.children, u.GetParentOrgUnitId(), id)
	addTo(m.unitsManagedBy, u.GetManagerWorkerId(), id)
	affected[owner{kind: 'w', id: u.GetManagerWorkerId()}] = struct{}{}
	// The unit's groups and those below it (paths in descriptions, roll-up nesting), and the
	// workers below it (department, unit variables in expressions). The replay computes no
	// owner: it does not look for them.
	if !m.replaying {
		for _, unitID := range m.subtree(id) {
			affected[owner{kind: 'u', id: unitID}] = struct{}{}
			for _, workerID := range m.workersByUnit.of(unitID) {
				affected[owner{kind: 'w', id: workerID}] = struct{}{}
			}
		}
	}
	if old != nil {
		affected[owner{kind: 'u', id: old.GetParentOrgUnitId()}] = struct{}{}
	}
}

// subtree lists a unit and every unit below it, once each even when the tree has a cycle.
func (m *Model) subtree(unitID string) []string {
	out := []string{unitID}
	seen := map[string]bool{unitID: true}
	for i := 0; i < len(out); i++ {
		for child := range m.children[out[i]] {
			if !seen[child] {
				seen[child] = true
				out = append(out, child)
			}
		}
	}
	return out
}

// refreshWorker moves a worker to the record in effect at now, keeps the indices, identifiers and
// schedule, and adds the owners whose objects depend on the worker.
func (m *Model) refreshWorker(st *workerState, now time.Time, affected map[owner]struct{}) {
	st.replayEpoch = 0
	epoch := m.epoch
	if m.replaying {
		st.replayRefreshes++
	}
	defer func() {
		// A refresh that changed a unit itself read the units before the change.
		if m.replaying && m.epoch == epoch {
			st.replayEpoch = epoch
		}
	}()
	st.timeline.prune(now)
	st.current = st.timeline.at(now)
	delete(m.evalErrors, "worker "+st.id)
	affected[owner{kind: 'w', id: st.id}] = struct{}{}
	var unitID, managerID string
	if st.current != nil {
		unitID, managerID = st.current.record.GetOrgUnitId(), st.current.record.GetManagerWorkerId()
		st.lastEventID = st.current.eventID
	}
	if unitID != st.indexedUnit {
		m.workersByUnit.remove(st.indexedUnit, st.id)
		m.workersByUnit.add(unitID, st.id)
		st.indexedUnit = unitID
	}
	if managerID != st.indexedManager {
		m.reportsOf.remove(st.indexedManager, st.id)
		affected[owner{kind: 'w', id: st.indexedManager}] = struct{}{}
		m.reportsOf.add(managerID, st.id)
		st.indexedManager = managerID
	}
	affected[owner{kind: 'w', id: managerID}] = struct{}{}
	// Reports' manager links skip a manager who has left: recompute the reports, and theirs
	// through reports who have left too.
	// Most workers have no report without an account: the queue and the seen set are made
	// when one is found. The replay computes no owner: it does not look for them.
	var queue []string
	var seen map[string]bool
	for next := st.id; !m.replaying; {
		for _, report := range m.reportsOf.of(next) {
			affected[owner{kind: 'w', id: report}] = struct{}{}
			if rst := m.workers[report]; report != st.id && !seen[report] && rst != nil && !m.hasAccount(rst, now) {
				if seen == nil {
					seen = map[string]bool{}
				}
				seen[report] = true
				queue = append(queue, report)
			}
		}
		if len(queue) == 0 {
			break
		}
		next, queue = queue[0], queue[1:]
	}
	if st.current == nil {
		m.occupy(st, now, affected)
		m.schedule(st, m.nextGrantChange(st.id, st.timeline.nextAfter(now), now))
		return
	}
	m.ensureUnit(unitID, affected)
	vars := m.workerVars(st.current.record)
	st.inScope = true
	if m.pol.Scope != nil {
		in, err := m.pol.Scope.Bool(vars)
		if err != nil {
			// An expression that fails keeps the worker managed: dropping them would delete accounts.
			m.evalErrors["worker "+st.id] = err.Error()
		} else {
			st.inScope = in
		}
	}
	switch {
	case m.replaying:
		// The replay's identifiers are given on a goroutine of their own, in order (identify.go).
		m.queueIdentifiers(st, vars, !st.inScope)
	case st.inScope:
		m.assignIdentifiers(st, vars)
	default:
		m.forgetFailures(st.id)
	}
	next := st.timeline.nextAfter(now)
	if d := lifecycleDates(st, st.current, m.pol).next(now); !d.IsZero() && (next.IsZero() || d.Before(next)) {
		next = d
	}
	m.occupy(st, now, affected)
	m.schedule(st, m.nextGrantChange(st.id, next, now))
}

func (m *Model) schedule(st *workerState, at time.Time) {
	if at.IsZero() {
		// Nothing is due any more; an entry left in the heap is skipped when it comes up.
		st.due = time.Time{}
		return
	}
	if at.Equal(st.due) {
		return
	}
	st.due = at
	heap.Push(&m.due, dueItem{at: at, workerID: st.id})
}

func addTo(index map[string]map[string]struct{}, key, value string) {
	if key == "" {
		return
	}
	set := index[key]
	if set == nil {
		set = map[string]struct{}{}
		index[key] = set
	}
	set[value] = struct{}{}
}

func removeFrom(index map[string]map[string]struct{}, key, value string) {
	if set := index[key]; set != nil {
		delete(set, value)
		if len(set) == 0 {
			delete(index, key)
		}
	}
}

// phase is a worker's lifecycle phase at now; PhaseNone when out of scope or without a record.
func (m *Model) phase(st *workerState, now time.Time) Phase {
	if st == nil || st.current == nil || !st.inScope {
		return PhaseNone
	}
	return lifecycleDates(st, st.current, m.pol).phase(now)
}

// hasAccount says whether a worker has a usable account at now (pre-created or active).
func (m *Model) hasAccount(st *workerState, now time.Time) bool {
	p := m.phase(st, now)
	return p == PhasePreCreated || p == PhaseActive
}

// recompute computes the affected owners' objects, stores them, and returns what changed.
func (m *Model) recompute(affected map[owner]struct{}, now time.Time) []*orgsyncv1.DesiredObject {
	m.addDelegates(affected)
	owners := make([]affectedOwner, 0, len(affected))
	for o := range affected {
		var st *workerState
		if o.kind == 'w' {
			if st = m.workers[o.id]; st == nil {
				continue
			}
		}
		owners = append(owners, affectedOwner{o, st})
	}
	sortOwners(owners)
	return m.computeOwners(owners, now)
}

// affectedOwner is an owner to compute, with its state when it is a worker.
type affectedOwner struct {
	owner
	st *workerState
}

// sortOwners orders owners as they are computed: global and unit groups first, users next, so
// both ends of a membership come before it; by id within a kind. Many owners (a full recompute)
// are sorted in two halves at once, then merged.
func sortOwners(owners []affectedOwner) {
	compare := func(a, b affectedOwner) int {
		if a.kind != b.kind {
			return cmp.Compare(ownerKindOrder(a.kind), ownerKindOrder(b.kind))
		}
		return strings.Compare(a.id, b.id)
	}
	if len(owners) < parallelWorkersAt || runtime.GOMAXPROCS(0) < 2 {
		slices.SortFunc(owners, compare)
		return
	}
	low, high := owners[:len(owners)/2], owners[len(owners)/2:]
	var wg sync.WaitGroup
	wg.Go(func() { slices.SortFunc(low, compare) })
	slices.SortFunc(high, compare)
	wg.Wait()
	merged := make([]affectedOwner, 0, len(owners))
	for len(low) > 0 && len(high) > 0 {
		if compare(low[0], high[0]) <= 0 {
			merged, low = append(merged, low[0]), low[1:]
		} else {
			merged, high = append(merged, high[0]), high[1:]
		}
	}
	merged = append(append(merged, low...), high...)
	copy(owners, merged)
}

// computeOwners computes the owners' objects (sorted by sortOwners; a worker's with its state),
// stores them, and returns what changed.
func (m *Model) computeOwners(owners []affectedOwner, now time.Time) []*orgsyncv1.DesiredObject {
	computed := m.computeEach(owners, now)
	n := 0
	for _, c := range computed {
		n += len(c.objects)
	}
	fresh, freshRefs := make([]*orgsyncv1.DesiredObject, 0, n), make([]Ref, 0, n)
	var previous []*orgsyncv1.DesiredObject
	for i, o := range owners {
		fresh, freshRefs = append(fresh, computed[i].objects...), append(freshRefs, computed[i].refs...)
		for _, ref := range m.ownedBy(o) {
			if stored, ok := m.object(ref); ok {
				previous = append(previous, stored)
			}
		}
	}
	changes, changeRefs := diff(fresh, freshRefs, previous)
	m.store(len(changes), func(yield func(Ref, *orgsyncv1.DesiredObject) bool) {
		for i, obj := range changes {
			if !yield(changeRefs[i], obj) {
				return
			}
		}
	})
	m.keepOwned(owners, computed)
	return changes
}

// computeFirst is computeOwners when nothing is stored (ComputeAll's first computation): every
// object computed is new, so no changes are made apart; the objects are stored, owned and listed
// as computed. It returns them sorted as Objects sorts them, sorted while they are stored; of
// two objects under one reference, the later owner's is stored and listed.
func (m *Model) computeFirst(owners []affectedOwner, now time.Time) []*orgsyncv1.DesiredObject {
	computed := m.computeEach(owners, now)
	each := func(yield func(Ref, *orgsyncv1.DesiredObject) bool) {
		for _, c := range computed {
			for i, obj := range c.objects {
				if c.refs[i].Kind != KindNone && !yield(c.refs[i], obj) {
					return
				}
			}
		}
	}
	sorted := make(chan []*orgsyncv1.DesiredObject, 1)
	go func() { sorted <- sortedObjects(each, true) }()
	var wg sync.WaitGroup
	wg.Go(func() { m.storePart(each, true) })
	m.storePart(each, false)
	m.keepOwned(owners, computed)
	wg.Wait()
	return <-sorted
}

// store stores the objects each gives (a tombstone deletes), about n of them. Users and groups
// are stored apart from memberships (objects, members): when there are many, the two at once.
func (m *Model) store(n int, each iter.Seq2[Ref, *orgsyncv1.DesiredObject]) {
	if n >= parallelWorkersAt && runtime.GOMAXPROCS(0) > 1 {
		var wg sync.WaitGroup
		wg.Go(func() { m.storePart(each, true) })
		m.storePart(each, false)
		wg.Wait()
		return
	}
	m.storePart(each, false)
	m.storePart(each, true)
}

// storePart stores the memberships each gives, or the users and groups. The two parts touch
// apart maps, so they may be stored at once.
func (m *Model) storePart(each iter.Seq2[Ref, *orgsyncv1.DesiredObject], memberships bool) {
	for ref, obj := range each {
		if (ref.Kind == KindMember) != memberships {
			continue
		}
		if obj.GetTombstone() {
			m.deleteObject(ref)
		} else {
			m.setObject(ref, obj)
		}
	}
}

// keepOwned keeps the references of each owner's objects computed.
func (m *Model) keepOwned(owners []affectedOwner, computed []computedOwner) {
	for i, o := range owners {
		switch refs := computed[i].refs; {
		case o.st != nil && len(refs) == 0:
			o.st.owned = nil
		case o.st != nil:
			o.st.owned = refs
		case len(refs) == 0:
			delete(m.owned, o.owner)
		default:
			m.owned[o.owner] = refs
		}
	}
}

// ownedBy is the references of the objects o produced last.
func (m *Model) ownedBy(o affectedOwner) []Ref {
	if o.st != nil {
		return o.st.owned
	}
	return m.owned[o.owner]
}

// ownerKindOrder ranks the kinds of owner in the order recompute computes them.
func ownerKindOrder(kind byte) int {
	switch kind {
	case 'g':
		return 0
	case 'u':
		return 1
	default:
		return 2
	}
}

// object returns the stored desired object ref names; a membership is made anew.
func (m *Model) object(ref Ref) (*orgsyncv1.DesiredObject, bool) {
	if ref.Kind == KindMember {
		kind, ok := m.members[groupRef{ref.Target, ref.Key}][ref.Member]
		if !ok {
			return nil, false
		}
		return membership(ref.Target, ref.Key, kind, ref.Member), true
	}
	obj, ok := m.objects[ref]
	return obj, ok
}

// objectCount is the number of desired objects stored.
func (m *Model) objectCount() int { return len(m.objects) + m.memberCount }

func (m *Model) setObject(ref Ref, obj *orgsyncv1.DesiredObject) {
	if ref.Kind != KindMember {
		m.objects[ref] = obj
		return
	}
	key := groupRef{ref.Target, ref.Key}
	members := m.members[key]
	if members == nil {
		members = map[string]orgsyncv1.MemberKind{}
		m.members[key] = members
	}
	before := len(members)
	members[ref.Member] = obj.GetMembership().GetMemberKind()
	m.memberCount += len(members) - before
}

func (m *Model) deleteObject(ref Ref) {
	if ref.Kind != KindMember {
		delete(m.objects, ref)
		return
	}
	key := groupRef{ref.Target, ref.Key}
	members := m.members[key]
	if _, ok := members[ref.Member]; !ok {
		return
	}
	m.memberCount--
	delete(members, ref.Member)
	if len(members) == 0 {
		delete(m.members, key)
	}
}

// groupRef names a group in the members index.
type groupRef struct {
	target   orgsyncv1.Target
	groupKey string
}

var kindNames = [...]string{KindNone: "", KindUser: "user", KindGroup: "group", KindMember: "member"}

// TargetName is the name of a target in the policy and in messages: "entra" or "ad".
func TargetName(target orgsyncv1.Target) string {
	switch target {
	case orgsyncv1.Target_TARGET_ENTRA:
		return "entra"
	case orgsyncv1.Target_TARGET_AD:
		return "ad"
	default:
		return "unknown"
	}
}

// workerVars are the expression variables of a worker record, in the model's scratch space: valid
// until the next call (refreshWorker and MarkHeld use them in turn).
func (m *Model) workerVars(w *orgsyncv1.Worker) *policy.WorkerVars {
	m.fillWorkerVars(&m.refreshVars, w, m.memo)
	return &m.refreshVars
}

// fillWorkerVars sets vars to the expression variables of a worker record, remembering results
// in memo. It only reads the model when the unit chain of the worker's unit is cached already
// (computeInParallel).
func (m *Model) fillWorkerVars(vars *policy.WorkerVars, w *orgsyncv1.Worker, memo *policy.Memo) {
	chain := m.cachedUnit(w.GetOrgUnitId())
	*vars = policy.WorkerVars{Worker: w, Unit: chain.unit, UnitIDs: chain.ids, UnitPath: chain.names, Domain: m.domain, Context: m.ctx, Memo: memo}
}

// unitsChanged forgets what was computed from the org units as they were: the unit chains and
// the remembered results of expressions that read a unit.
func (m *Model) unitsChanged() {
	clear(m.chains)
	m.memo.Reset()
	m.unitsChanges++
}

type unitChainEntry struct {
	// unit is the unit itself, nil when it is not known: a worker's variables are found with
	// one look-up.
	unit       *orgsyncv1.OrgUnit
	ids, names []string
	// groupKey is GroupKey(unit id), made once for all the unit's workers.
	groupKey string
}

// cachedUnitChain is unitChain, remembered until a unit changes; the slices it returns are
// shared and never changed. Only the goroutine that applies changes (holding the write lock)
// calls it, or goroutines that only read it once it holds their units (computeInParallel).
func (m *Model) cachedUnitChain(unitID string) (ids, names []string) {
	chain := m.cachedUnit(unitID)
	return chain.ids, chain.names
}

// cachedGroupKey is GroupKey(unitID), remembered with the unit's chain.
func (m *Model) cachedGroupKey(unitID string) string { return m.cachedUnit(unitID).groupKey }

func (m *Model) cachedUnit(unitID string) unitChainEntry {
	if chain, ok := m.chains[unitID]; ok {
		return chain
	}
	ids, names := m.unitChain(unitID)
	if m.chains == nil {
		m.chains = map[string]unitChainEntry{}
	}
	chain := unitChainEntry{unit: m.units[unitID], ids: ids[:len(ids):len(ids)], names: names[:len(names):len(names)], groupKey: GroupKey(unitID)}
	m.chains[unitID] = chain
	return chain
}

// unitChain lists the ids and names of a unit and its ancestors, root first; a cycle or a
// missing parent ends the chain instead of looping.
func (m *Model) unitChain(unitID string) (ids, names []string) {
	seen := map[string]bool{}
	for id := unitID; id != "" && !seen[id]; {
		seen[id] = true
		unit, ok := m.units[id]
		if !ok {
			break
		}
		ids = append(ids, id)
		names = append(names, unit.GetName())
		id = unit.GetParentOrgUnitId()
	}
	for i, j := 0, len(ids)-1; i < j; i, j = i+1, j-1 {
		ids[i], ids[j] = ids[j], ids[i]
		names[i], names[j] = names[j], names[i]
	}
	return ids, names
}

type dueItem struct {
	at       time.Time
	workerID string
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	item := old[len(old)-1]
	*h = old[:len(old)-1]
	return item
}
