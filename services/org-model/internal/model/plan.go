package model

import (
	"context"
	"maps"
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

// Clone returns an independent copy of the model, for dry runs. Records and desired objects are
// shared: nothing changes them in place.
func (m *Model) Clone() *Model {
	m.rlock()
	defer m.mu.RUnlock()
	return m.copyLocked(m.pol, true)
}

// CloneContext is Clone with the copy's expression evaluations bound to ctx: once ctx is done
// (a plan's deadline, a cancelled request) expressions stop and ComputeAll stops early, and the
// copy's objects are incomplete. The caller checks ctx.
func (m *Model) CloneContext(ctx context.Context) *Model {
	c := m.Clone()
	c.ctx = ctx
	return c
}

// WithPolicy returns a copy of the organisation under another policy, keeping the identifiers
// already assigned, with every object computed at now.
func (m *Model) WithPolicy(pol *policy.Policy, now time.Time) *Model {
	c := m.policyCopy(pol)
	c.ComputeAll(now)
	return c
}

// WithPolicyContext is WithPolicy with the copy bound to ctx, as in CloneContext.
func (m *Model) WithPolicyContext(ctx context.Context, pol *policy.Policy, now time.Time) *Model {
	c := m.policyCopy(pol)
	c.ctx = ctx
	c.ComputeAll(now)
	return c
}

// policyCopy is a copy of the organisation under pol, not yet computed.
func (m *Model) policyCopy(pol *policy.Policy) *Model {
	m.rlock()
	defer m.mu.RUnlock()
	return m.copyLocked(pol, false)
}

func (m *Model) copyLocked(pol *policy.Policy, withObjects bool) *Model {
	targets := m.targets
	if pol != m.pol {
		targets = TargetsOf(pol)
	}
	c := New(pol, targets...)
	c.now = m.now
	c.units = maps.Clone(m.units)
	c.children = cloneIndex(m.children)
	c.workersByUnit = m.workersByUnit.clone()
	c.reportsOf = m.reportsOf.clone()
	c.unitsManagedBy = cloneIndex(m.unitsManagedBy)
	c.ids = m.ids.clone()
	c.evalErrors = maps.Clone(m.evalErrors)
	c.workers = make(map[string]*workerState, len(m.workers))
	for id, st := range m.workers {
		copied := *st
		copied.timeline = append(timeline(nil), st.timeline...)
		copied.current = copied.timeline.at(m.now)
		copied.due = time.Time{}
		copied.replayEpoch = 0
		if !withObjects {
			copied.owned = nil
		}
		c.workers[id] = &copied
	}
	for key, snap := range m.snapshots {
		c.snapshots[key] = &snapshotState{begunAt: snap.begunAt, seen: maps.Clone(snap.seen)}
	}
	// Derived units keep the ids they were derived with, even under a policy with another
	// hierarchy: a dry run shows groups and members, not a re-derivation of the tree.
	c.derived = maps.Clone(m.derived)
	c.occupants = cloneIndex(m.occupants)
	c.leads = cloneIndex(m.leads)
	c.grants = m.grants.clone()
	if withObjects {
		c.globalsComputed = m.globalsComputed
		c.objects, c.memberCount = maps.Clone(m.objects), m.memberCount
		c.owned = maps.Clone(m.owned)
		c.members = make(map[groupRef]map[string]orgsyncv1.MemberKind, len(m.members))
		for key, members := range m.members {
			c.members[key] = maps.Clone(members)
		}
		c.due = append(dueHeap(nil), m.due...)
		for _, st := range c.workers {
			st.due = m.workers[st.id].due
		}
	}
	return c
}

func cloneIndex(index map[string]map[string]struct{}) map[string]map[string]struct{} {
	out := make(map[string]map[string]struct{}, len(index))
	for key, set := range index {
		out[key] = maps.Clone(set)
	}
	return out
}
