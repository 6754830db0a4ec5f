package model

import (
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// A full export (snapshot) belongs to its source: its END judges only the workers whose newest
// record came from that source, and only against the rows of that very snapshot. Snapshots of
// different sources may be open at once without mixing.

// snapshotKey names an open snapshot.
type snapshotKey struct {
	source, id string
}

// snapshotState is an open snapshot: when it began and the workers seen in it so far.
type snapshotState struct {
	begunAt time.Time
	seen    map[string]struct{}
}

// markSeen counts a worker event as a row of the snapshot it names, or, for an event that names
// none (stored before events carried their snapshot id), of every open snapshot of its source:
// being counted in one snapshot too many never marks a present worker gone.
func (m *Model) markSeen(event *orgsyncv1.HREvent, workerID string) {
	if len(m.snapshots) == 0 {
		return
	}
	if id := event.GetSnapshotId(); id != "" {
		if s := m.snapshots[snapshotKey{source: event.GetSource(), id: id}]; s != nil {
			s.seen[workerID] = struct{}{}
		}
		return
	}
	for key, s := range m.snapshots {
		if key.source == event.GetSource() {
			s.seen[workerID] = struct{}{}
		}
	}
}

func (m *Model) recordSnapshot(source string, s *orgsyncv1.SnapshotMarker, at, now time.Time, affected map[owner]struct{}) {
	key := snapshotKey{source: source, id: s.GetSnapshotId()}
	switch s.GetPhase() {
	case orgsyncv1.SnapshotMarker_PHASE_BEGIN:
		if m.snapshots[key] == nil {
			m.snapshots[key] = &snapshotState{begunAt: at, seen: map[string]struct{}{}}
		}
	case orgsyncv1.SnapshotMarker_PHASE_END:
		snap := m.snapshots[key]
		if snap == nil {
			return
		}
		delete(m.snapshots, key)
		for id, st := range m.workers {
			if _, seen := snap.seen[id]; !seen && st.source == source && st.absentSince.IsZero() {
				st.absentSince = at
				m.refreshWorker(st, now, affected)
			}
		}
		// An export of the same source begun before this one and still open was abandoned:
		// this one is newer, so the older one's END would judge by an older list.
		for other, open := range m.snapshots {
			if other.source == source && open.begunAt.Before(snap.begunAt) {
				delete(m.snapshots, other)
			}
		}
	}
}
