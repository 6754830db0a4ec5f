package model

import (
	"time"

	"google.golang.org/protobuf/proto"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

// Units derived from worker attributes. A source whose policy names a hierarchy (e.g. company ›
// division › department) sends no org units; the model derives one unit per distinct path prefix
// (policy.Hierarchy) and puts each worker in the unit of their whole path. Derived units then
// behave as HR's own: they have groups, roll-up groups nested by parent, managers (the lead the
// source marks) and rule groups see them through unit and unit_path.
//
// A derived unit exists while it is occupied — a worker with an account in it (pre-created,
// active, or a leaver in the membership grace period) — or while a sub-unit exists; when the last
// occupant moves away or is gone, it is removed like a unit HR deleted, and comes back when
// someone enters it again.

// Custom attributes a derived unit carries, so queries and expressions can tell it apart.
const (
	DerivedSourceAttribute = "orgsync.derivedFrom"
	DerivedLevelAttribute  = "orgsync.hierarchyLevel"
)

// deriveUnit returns the record with its unit set from its source's hierarchy and remembers the
// units on the path; a record of a source without a hierarchy, or with no value at the first
// level, keeps its org_unit_id.
func (m *Model) deriveUnit(source string, w *orgsyncv1.Worker, _ map[owner]struct{}) *orgsyncv1.Worker {
	h := m.pol.Hierarchies[source]
	if h == nil {
		return w
	}
	path := h.Path(w)
	if len(path) == 0 {
		return w
	}
	parent := h.Root
	var id string
	for i := range path {
		id = policy.UnitID(source, path[:i+1])
		if m.derived[id] == nil {
			m.epoch++
			m.derived[id] = &orgsyncv1.OrgUnit{OrgUnitId: id, Name: path[i], ParentOrgUnitId: parent,
				CustomAttributes: map[string]string{DerivedSourceAttribute: source, DerivedLevelAttribute: h.Levels[i]}}
		}
		parent = id
	}
	if w.GetOrgUnitId() == id {
		return w
	}
	derived := proto.CloneOf(w)
	derived.OrgUnitId = id
	return derived
}

// ensureUnit brings a derived unit and its derived ancestors into existence (or back) before a
// worker's expressions read them.
func (m *Model) ensureUnit(unitID string, affected map[owner]struct{}) {
	seen := map[string]bool{}
	for id := unitID; m.derived[id] != nil && !seen[id]; id = m.derived[id].GetParentOrgUnitId() {
		seen[id] = true
		if u := m.units[id]; u == nil || u.GetDeleted() {
			m.setDerived(id, false, affected)
		}
	}
}

// occupy keeps the occupants and leads of derived units after a worker's refresh, and removes the
// units left empty.
func (m *Model) occupy(st *workerState, now time.Time, affected map[owner]struct{}) {
	unitID, leading := "", false
	if st.current != nil && m.derived[st.current.record.GetOrgUnitId()] != nil {
		switch m.phase(st, now) {
		case PhasePreCreated, PhaseActive, PhaseLeft:
			unitID = st.current.record.GetOrgUnitId()
			h := m.pol.Hierarchies[m.derived[unitID].GetCustomAttributes()[DerivedSourceAttribute]]
			leading = h != nil && h.Leads(st.current.record)
		}
	}
	if unitID == st.occupied && leading == st.leading {
		if st.current != nil {
			m.retireIfEmpty(st.current.record.GetOrgUnitId(), affected)
		}
		return
	}
	old, oldLeading := st.occupied, st.leading
	st.occupied, st.leading = unitID, leading
	if old != "" {
		removeFrom(m.occupants, old, st.id)
		if oldLeading {
			removeFrom(m.leads, old, st.id)
		}
		m.refreshLead(old, affected)
		m.retireIfEmpty(old, affected)
	}
	if unitID != "" {
		addTo(m.occupants, unitID, st.id)
		if leading {
			addTo(m.leads, unitID, st.id)
		}
		m.ensureUnit(unitID, affected)
		m.refreshLead(unitID, affected)
	} else if st.current != nil {
		m.retireIfEmpty(st.current.record.GetOrgUnitId(), affected)
	}
}

// lead is the worker who leads a derived unit: the lowest worker id among those marked.
func (m *Model) lead(unitID string) string {
	lead := ""
	for workerID := range m.leads[unitID] {
		if lead == "" || workerID < lead {
			lead = workerID
		}
	}
	return lead
}

func (m *Model) refreshLead(unitID string, affected map[owner]struct{}) {
	if u := m.units[unitID]; u != nil && !u.GetDeleted() && u.GetManagerWorkerId() != m.lead(unitID) {
		m.setDerived(unitID, false, affected)
	}
}

// retireIfEmpty removes a derived unit no one occupies and without existing sub-units, then its
// ancestors that this leaves empty.
func (m *Model) retireIfEmpty(unitID string, affected map[owner]struct{}) {
	seen := map[string]bool{}
	for id := unitID; m.derived[id] != nil && !seen[id]; id = m.derived[id].GetParentOrgUnitId() {
		seen[id] = true
		u := m.units[id]
		if u == nil || u.GetDeleted() {
			continue
		}
		if len(m.occupants[id]) > 0 || m.hasLiveChild(id) {
			return
		}
		m.setDerived(id, true, affected)
	}
}

func (m *Model) hasLiveChild(unitID string) bool {
	for child := range m.children[unitID] {
		if u := m.units[child]; u != nil && !u.GetDeleted() {
			return true
		}
	}
	return false
}

// setDerived records a derived unit as HR would send it: with its lead, or removed.
func (m *Model) setDerived(unitID string, deleted bool, affected map[owner]struct{}) {
	u := proto.CloneOf(m.derived[unitID])
	u.Deleted = deleted
	if !deleted {
		u.ManagerWorkerId = m.lead(unitID)
	}
	m.recordUnit(u, affected)
}
