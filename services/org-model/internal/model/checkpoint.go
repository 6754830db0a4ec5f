package model

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

// CheckpointFormat is the layout of the checkpoints this model writes and reads.
const CheckpointFormat = 1

// ErrCheckpointUnusable is wrapped by Restore when a checkpoint cannot rebuild this model: another
// layout, units derived under other hierarchy settings, or a record the model cannot hold.
var ErrCheckpointUnusable = errors.New("checkpoint unusable")

// Checkpoint returns the organisation as it stands after stream HR up to hrSequence: every
// worker's timeline and lifecycle facts, the units and the open snapshots. Identifiers are
// recorded apart (RestoreIdentifiers), so a checkpoint does not hold them. Desired objects,
// indices and schedules are left out: Restore and ComputeAll rebuild them. Records are shared with the model (nothing changes them in place), so the caller may
// marshal the result without the lock while the model goes on.
func (m *Model) Checkpoint(hrSequence uint64, now time.Time) *orgsyncv1.ModelCheckpoint {
	m.rlock()
	defer m.mu.RUnlock()
	cp := &orgsyncv1.ModelCheckpoint{
		Format:          CheckpointFormat,
		HrSequence:      hrSequence,
		WrittenAt:       timestamppb.New(now),
		HierarchyDigest: policy.HierarchyDigest(m.pol.Hierarchies),
		Workers:         make([]*orgsyncv1.CheckpointWorker, 0, len(m.workers)),
		Units:           make([]*orgsyncv1.OrgUnit, 0, len(m.units)),
		DerivedUnits:    make([]*orgsyncv1.OrgUnit, 0, len(m.derived)),
	}
	for _, st := range m.workers {
		w := &orgsyncv1.CheckpointWorker{
			WorkerId: st.id, Source: st.source, FirstStart: st.firstStart,
			Timeline: make([]*orgsyncv1.CheckpointRecord, len(st.timeline)),
		}
		if !st.absentSince.IsZero() {
			w.AbsentSince = timestamppb.New(st.absentSince)
		}
		for i, e := range st.timeline {
			r := &orgsyncv1.CheckpointRecord{EffectiveAt: timestamppb.New(e.at), Record: e.record, EventId: e.eventID}
			if !e.terminatedSince.IsZero() {
				r.TerminatedSince = timestamppb.New(e.terminatedSince)
			}
			w.Timeline[i] = r
		}
		cp.Workers = append(cp.Workers, w)
	}
	for _, u := range m.units {
		cp.Units = append(cp.Units, u)
	}
	for _, u := range m.derived {
		cp.DerivedUnits = append(cp.DerivedUnits, u)
	}
	for key, snap := range m.snapshots {
		s := &orgsyncv1.CheckpointSnapshot{Source: key.source, SnapshotId: key.id, BegunAt: timestamppb.New(snap.begunAt),
			SeenWorkerIds: make([]string, 0, len(snap.seen))}
		for id := range snap.seen {
			s.SeenWorkerIds = append(s.SeenWorkerIds, id)
		}
		sort.Strings(s.SeenWorkerIds)
		cp.Snapshots = append(cp.Snapshots, s)
	}
	// A stable order makes equal states give equal checkpoints.
	sort.Slice(cp.Workers, func(i, j int) bool { return cp.Workers[i].GetWorkerId() < cp.Workers[j].GetWorkerId() })
	sort.Slice(cp.Units, func(i, j int) bool { return cp.Units[i].GetOrgUnitId() < cp.Units[j].GetOrgUnitId() })
	sort.Slice(cp.DerivedUnits, func(i, j int) bool { return cp.DerivedUnits[i].GetOrgUnitId() < cp.DerivedUnits[j].GetOrgUnitId() })
	sort.Slice(cp.Snapshots, func(i, j int) bool {
		a, b := cp.Snapshots[i], cp.Snapshots[j]
		return a.GetSource() < b.GetSource() || a.GetSource() == b.GetSource() && a.GetSnapshotId() < b.GetSnapshotId()
	})
	return cp
}

// Restore replaces the model's organisation with a checkpoint's. It checks the whole checkpoint
// first and leaves the model unchanged when it returns an error (wrapping ErrCheckpointUnusable).
// Apply or Record the HR events after the checkpoint's sequence next, then ComputeAll.
func (m *Model) Restore(cp *orgsyncv1.ModelCheckpoint) error {
	if cp.GetFormat() != CheckpointFormat {
		return fmt.Errorf("%w: layout %d, this org-model reads %d", ErrCheckpointUnusable, cp.GetFormat(), CheckpointFormat)
	}
	if digest := policy.HierarchyDigest(m.pol.Hierarchies); cp.GetHierarchyDigest() != digest {
		return fmt.Errorf("%w: written under other source hierarchy settings", ErrCheckpointUnusable)
	}
	fresh := New(m.pol, m.targets...)
	for _, u := range cp.GetUnits() {
		if u.GetOrgUnitId() == "" {
			return fmt.Errorf("%w: a unit without an id", ErrCheckpointUnusable)
		}
		fresh.units[u.GetOrgUnitId()] = u
		addTo(fresh.children, u.GetParentOrgUnitId(), u.GetOrgUnitId())
		if !u.GetDeleted() {
			addTo(fresh.unitsManagedBy, u.GetManagerWorkerId(), u.GetOrgUnitId())
		}
	}
	for _, u := range cp.GetDerivedUnits() {
		if u.GetOrgUnitId() == "" {
			return fmt.Errorf("%w: a derived unit without an id", ErrCheckpointUnusable)
		}
		fresh.derived[u.GetOrgUnitId()] = u
	}
	for _, w := range cp.GetWorkers() {
		id := w.GetWorkerId()
		if id == "" || fresh.workers[id] != nil {
			return fmt.Errorf("%w: a worker without an id, or twice", ErrCheckpointUnusable)
		}
		st := &workerState{id: id, source: w.GetSource(), firstStart: w.GetFirstStart()}
		if w.GetAbsentSince() != nil {
			st.absentSince = w.GetAbsentSince().AsTime()
		}
		for i, r := range w.GetTimeline() {
			if r.GetRecord() == nil || r.GetEffectiveAt() == nil || i > 0 && !r.GetEffectiveAt().AsTime().After(st.timeline[i-1].at) {
				return fmt.Errorf("%w: worker %d's timeline is not a sequence of records in order", ErrCheckpointUnusable, len(fresh.workers))
			}
			e := entry{at: r.GetEffectiveAt().AsTime(), record: r.GetRecord(), eventID: r.GetEventId()}
			if r.GetTerminatedSince() != nil {
				e.terminatedSince = r.GetTerminatedSince().AsTime()
			}
			st.timeline = append(st.timeline, e)
		}
		fresh.workers[id] = st
	}
	for _, s := range cp.GetSnapshots() {
		snap := &snapshotState{begunAt: s.GetBegunAt().AsTime(), seen: make(map[string]struct{}, len(s.GetSeenWorkerIds()))}
		for _, id := range s.GetSeenWorkerIds() {
			snap.seen[id] = struct{}{}
		}
		fresh.snapshots[snapshotKey{source: s.GetSource(), id: s.GetSnapshotId()}] = snap
	}

	m.lock()
	defer m.mu.Unlock()
	m.epoch++
	m.units, m.children, m.unitsManagedBy = fresh.units, fresh.children, fresh.unitsManagedBy
	m.derived, m.occupants, m.leads = fresh.derived, fresh.occupants, fresh.leads
	m.workers, m.workersByUnit, m.reportsOf = fresh.workers, fresh.workersByUnit, fresh.reportsOf
	m.snapshots = fresh.snapshots
	m.unitsChanged()
	m.owned, m.objects, m.members, m.memberCount = fresh.owned, fresh.objects, fresh.members, fresh.memberCount
	m.due, m.evalErrors, m.globalsComputed = nil, fresh.evalErrors, false
	m.now = cp.GetWrittenAt().AsTime()
	// The indices of workers (unit, manager, derived unit occupancy) are rebuilt by the refresh
	// of every worker in ComputeAll, from the records in effect then.
	return nil
}
