package model

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// WorkerInfo is what the model knows of a worker.
type WorkerInfo struct {
	// Record is the HR record in effect; nil when the only records are future-dated.
	Record  *orgsyncv1.Worker
	Phase   Phase
	InScope bool
	// NextChange is when the worker's desired state next changes on its own; zero when never.
	NextChange time.Time
	// Pending holds future-dated records, by effective time.
	Pending   []*orgsyncv1.Worker
	PendingAt []time.Time
}

// Worker returns what the model knows of a worker.
func (m *Model) Worker(workerID string) (WorkerInfo, bool) {
	m.rlock()
	defer m.mu.RUnlock()
	st, ok := m.workers[workerID]
	if !ok {
		return WorkerInfo{}, false
	}
	info := WorkerInfo{Phase: m.phase(st, m.now), InScope: st.inScope, NextChange: st.due}
	if st.current != nil {
		info.Record = st.current.record
	}
	for _, e := range st.timeline {
		if e.at.After(m.now) {
			info.Pending = append(info.Pending, e.record)
			info.PendingAt = append(info.PendingAt, e.at)
		}
	}
	return info, true
}

// WorkerIDs lists worker ids in order, after the given one, up to limit; unitID filters by unit.
func (m *Model) WorkerIDs(after, unitID string, limit int) (ids []string, more bool) {
	m.rlock()
	defer m.mu.RUnlock()
	var all []string
	if unitID != "" {
		all = slices.Clone(m.workersByUnit.of(unitID))
	} else {
		all = make([]string, 0, len(m.workers))
		for id := range m.workers {
			all = append(all, id)
		}
	}
	sort.Strings(all)
	start := sort.SearchStrings(all, after)
	if start < len(all) && all[start] == after {
		start++
	}
	end := min(start+limit, len(all))
	return all[start:end], end < len(all)
}

// GroupKeysOf lists the groups a worker is a desired direct member of in target.
func (m *Model) GroupKeysOf(target orgsyncv1.Target, workerID string) []string {
	m.rlock()
	defer m.mu.RUnlock()
	var keys []string
	st := m.workers[workerID]
	if st == nil {
		return nil
	}
	for _, ref := range st.owned {
		if ref.Target == target && ref.Kind == KindMember {
			keys = append(keys, ref.Key)
		}
	}
	return keys
}

// Member is one desired member of a group.
type Member struct {
	Kind        orgsyncv1.MemberKind
	Key         string
	DisplayName string
}

// GroupMembers returns a group's desired state and its direct members, sorted by key.
func (m *Model) GroupMembers(target orgsyncv1.Target, groupKey string) (*orgsyncv1.DesiredGroup, []Member, bool) {
	m.rlock()
	defer m.mu.RUnlock()
	group := m.objects[GroupRef(target, groupKey)]
	if group == nil {
		return nil, nil, false
	}
	var members []Member
	for key, kind := range m.members[groupRef{target, groupKey}] {
		member := Member{Kind: kind, Key: key}
		if member.Kind == orgsyncv1.MemberKind_MEMBER_KIND_GROUP {
			member.DisplayName = m.objects[GroupRef(target, key)].GetGroup().GetDisplayName()
		} else {
			member.DisplayName = m.objects[UserRef(target, key)].GetUser().GetDisplayName()
		}
		members = append(members, member)
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Key < members[j].Key })
	return group.GetGroup(), members, true
}

// Explanation says why a worker is (or is not) in a group.
type Explanation struct {
	Member bool
	// Path is the chain of groups from the asked group down to the worker's direct group.
	Path []string
	// Reason says, in words, what put the worker in the direct group.
	Reason string
	// Kind says what put the worker in the direct group; Grant names the delegation or helpdesk
	// request when one did.
	Kind  orgsyncv1.MembershipReason
	Grant *orgsyncv1.MembershipGrant
}

// Explain says why a worker is a desired member of a group in target, directly or through
// nested groups.
func (m *Model) Explain(target orgsyncv1.Target, groupKey, workerID string) Explanation {
	m.rlock()
	defer m.mu.RUnlock()
	st := m.workers[workerID]
	if st == nil {
		return Explanation{Reason: fmt.Sprintf("orgsync knows no worker %q", workerID)}
	}
	path := m.findMember(target, groupKey, workerID, map[string]bool{})
	if path == nil {
		return Explanation{Reason: m.whyNot(target, st, groupKey)}
	}
	if e, ok := m.explainGrant(workerID, path[len(path)-1]); ok {
		e.Path = path
		return e
	}
	return Explanation{Member: true, Path: path, Reason: m.why(st, path[len(path)-1]), Kind: ownReason(path[len(path)-1])}
}

// findMember searches the nested groups depth-first for the worker.
func (m *Model) findMember(target orgsyncv1.Target, groupKey, workerID string, seen map[string]bool) []string {
	if seen[groupKey] {
		return nil
	}
	seen[groupKey] = true
	members := m.members[groupRef{target, groupKey}]
	if kind, ok := members[workerID]; ok && kind == orgsyncv1.MemberKind_MEMBER_KIND_USER {
		return []string{groupKey}
	}
	keys := make([]string, 0, len(members))
	for key, kind := range members {
		if kind == orgsyncv1.MemberKind_MEMBER_KIND_GROUP {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	for _, key := range keys {
		if path := m.findMember(target, key, workerID, seen); path != nil {
			return append([]string{groupKey}, path...)
		}
	}
	return nil
}

func (m *Model) why(st *workerState, directGroup string) string {
	w := st.current.record
	switch {
	case strings.HasPrefix(directGroup, unitGroupPrefix):
		_, names := m.unitChain(w.GetOrgUnitId())
		return fmt.Sprintf("HR places the worker in org unit %s (%s)", w.GetOrgUnitId(), strings.Join(names, " > "))
	case strings.HasPrefix(directGroup, ruleGroupPrefix):
		key := strings.TrimPrefix(directGroup, ruleGroupPrefix)
		for _, rule := range m.pol.Groups.Rules {
			if rule.Key == key {
				return fmt.Sprintf("rule %q selects the worker: %s (%s)", key, rule.Filter.Source, rule.Filter.At)
			}
		}
	case directGroup == PeopleManagersGroup:
		reports := slices.Clone(m.reportsOf.of(st.id))
		sort.Strings(reports)
		return "HR names the worker as manager of " + strings.Join(reports, ", ")
	case directGroup == UnitManagersGroup:
		units := make([]string, 0, len(m.unitsManagedBy[st.id]))
		for id := range m.unitsManagedBy[st.id] {
			units = append(units, id)
		}
		sort.Strings(units)
		return "HR names the worker as manager of org unit " + strings.Join(units, ", ")
	}
	return "member of " + directGroup
}

func (m *Model) whyNot(target orgsyncv1.Target, st *workerState, groupKey string) string {
	phase := m.phase(st, m.now)
	problem, failed := m.ids.failed[targetWorker{target, st.id}]
	switch {
	case failed && st.inScope:
		return fmt.Sprintf("the worker has no account in %s: %s %s", TargetName(target), problem.Property, problem.Reason)
	case st.current == nil:
		return "the worker's only HR records take effect later"
	case !st.inScope:
		return "the worker is outside the policy's scope"
	case phase == PhaseNone || phase == PhasePreCreated:
		return "the worker has not started yet (" + phase.String() + ")"
	case phase == PhaseGone:
		return "the worker has left and the membership grace period is over"
	}
	return fmt.Sprintf("no unit, rule or nesting puts the worker in %s", groupKey)
}

// Unit returns an org unit, its children's ids, and its path of names from the root.
func (m *Model) Unit(unitID string) (unit *orgsyncv1.OrgUnit, children []string, path []string, ok bool) {
	m.rlock()
	defer m.mu.RUnlock()
	unit, ok = m.units[unitID]
	if !ok {
		return nil, nil, nil, false
	}
	for child := range m.children[unitID] {
		children = append(children, child)
	}
	sort.Strings(children)
	_, path = m.unitChain(unitID)
	return unit, children, path, true
}

// UnitWorkerCount is the number of workers HR places in a unit.
func (m *Model) UnitWorkerCount(unitID string) int {
	m.rlock()
	defer m.mu.RUnlock()
	return len(m.workersByUnit.of(unitID))
}

// Roots lists the units without a known parent, and the units caught in a cycle (each cycle
// once, by its smallest id), sorted.
func (m *Model) Roots() (roots []string, cycles []string) {
	m.rlock()
	defer m.mu.RUnlock()
	for id, unit := range m.units {
		if _, ok := m.units[unit.GetParentOrgUnitId()]; !ok {
			roots = append(roots, id)
		} else if m.inCycle(id) && m.smallestOfCycle(id) == id {
			cycles = append(cycles, id)
		}
	}
	sort.Strings(roots)
	sort.Strings(cycles)
	return roots, cycles
}

func (m *Model) inCycle(unitID string) bool {
	seen := map[string]bool{}
	for id := m.units[unitID].GetParentOrgUnitId(); id != ""; id = m.units[id].GetParentOrgUnitId() {
		if id == unitID {
			return true
		}
		if seen[id] || m.units[id] == nil {
			return false
		}
		seen[id] = true
	}
	return false
}

func (m *Model) smallestOfCycle(unitID string) string {
	smallest := unitID
	for id := m.units[unitID].GetParentOrgUnitId(); id != unitID; id = m.units[id].GetParentOrgUnitId() {
		smallest = min(smallest, id)
	}
	return smallest
}

// Problem is one thing in HR's data that orgsync cannot resolve yet, or an expression that failed.
type Problem struct {
	Subject string
	Reason  string
}

// Problems lists unresolved references (unknown units and managers, orphan units, cycles) and
// expression errors, sorted.
func (m *Model) Problems() []Problem {
	m.rlock()
	defer m.mu.RUnlock()
	var problems []Problem
	for id, st := range m.workers {
		if st.current == nil {
			continue
		}
		w := st.current.record
		if unit := w.GetOrgUnitId(); unit != "" && m.units[unit] == nil {
			problems = append(problems, Problem{"worker " + id, fmt.Sprintf("org unit %q is not known yet", unit)})
		}
		if manager := w.GetManagerWorkerId(); manager != "" && m.workers[manager] == nil {
			problems = append(problems, Problem{"worker " + id, fmt.Sprintf("manager %q is not known yet", manager)})
		}
	}
	for id, unit := range m.units {
		if parent := unit.GetParentOrgUnitId(); parent != "" && m.units[parent] == nil {
			problems = append(problems, Problem{"unit " + id, fmt.Sprintf("parent unit %q is not known yet (orphan)", parent)})
		} else if m.inCycle(id) {
			problems = append(problems, Problem{"unit " + id, "is part of a cycle in the org tree"})
		}
		if manager := unit.GetManagerWorkerId(); manager != "" && m.workers[manager] == nil {
			problems = append(problems, Problem{"unit " + id, fmt.Sprintf("manager %q is not known yet", manager)})
		}
	}
	for subject, reason := range m.evalErrors {
		problems = append(problems, Problem{subject, reason})
	}
	for _, p := range m.identifierProblems() {
		problems = append(problems, Problem{"worker " + p.WorkerID, fmt.Sprintf("no account in %s: %s %s", TargetName(p.Target), p.Property, p.Reason)})
	}
	sort.Slice(problems, func(i, j int) bool {
		if problems[i].Subject != problems[j].Subject {
			return problems[i].Subject < problems[j].Subject
		}
		return problems[i].Reason < problems[j].Reason
	})
	return problems
}

// Counts are the sizes of the model.
type Counts struct {
	Units, Workers, Objects int
}

// Counts returns the sizes of the model.
func (m *Model) Counts() Counts {
	m.rlock()
	defer m.mu.RUnlock()
	return Counts{Units: len(m.units), Workers: len(m.workers), Objects: m.objectCount()}
}
