package model

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// A helpdesk credential (a Temporary Access Pass or a password reset an approved helpdesk
// request gives) is desired state like the first-day pass: the worker's Entra user carries the
// newest approved request's credential (DesiredUser.helpdesk_credential), and entra-writer makes
// it once per request, recording the request it delivered for. Nothing falls due: the writer
// stops making it at its not_after, so the model needs no schedule for it, and a restart or a
// replay computes the same desired user (the request is kept in ORGMODEL_ACCESS, not in HR).

// CheckCredentialRequest says why a helpdesk credential for workerID cannot be asked for at now
// (wrapping ErrInvalidGrant), or nil: the worker must be known, have an active account, and be
// managed in Entra ID with an identifier.
func (m *Model) CheckCredentialRequest(workerID string, now time.Time) error {
	m.rlock()
	defer m.mu.RUnlock()
	st := m.workers[workerID]
	switch {
	case strings.TrimSpace(workerID) == "":
		return fmt.Errorf("%w: worker_id is required", ErrInvalidGrant)
	case st == nil || st.current == nil:
		return fmt.Errorf("%w: worker_id %q is not a worker orgsync knows", ErrInvalidGrant, workerID)
	case !m.managesTarget(orgsyncv1.Target_TARGET_ENTRA):
		return fmt.Errorf("%w: Temporary Access Passes and password resets are made in Entra ID, which this deployment does not manage", ErrInvalidGrant)
	case !m.hasAccount(st, now):
		return fmt.Errorf("%w: worker %q has no active account", ErrInvalidGrant, workerID)
	case !m.hasIdentifiers(orgsyncv1.Target_TARGET_ENTRA, workerID):
		return fmt.Errorf("%w: worker %q has no Entra ID account (no valid identifier)", ErrInvalidGrant, workerID)
	}
	return nil
}

func (m *Model) managesTarget(target orgsyncv1.Target) bool {
	return slices.Contains(m.targets, target)
}

// RestoreHelpdeskCredentials puts the credentials of approved helpdesk requests, by worker id,
// into the model at start, before the replay; for a worker with several, the newest approved.
func (m *Model) RestoreHelpdeskCredentials(byWorker map[string]*orgsyncv1.HelpdeskCredential) {
	m.lock()
	defer m.mu.Unlock()
	for workerID, c := range byWorker {
		m.grants.putCredential(workerID, c)
	}
}

// ApplyHelpdeskCredential gives workerID's Entra user the credential of an approved helpdesk
// request, replacing an older request's, and returns the objects that changed at now.
func (m *Model) ApplyHelpdeskCredential(workerID string, c *orgsyncv1.HelpdeskCredential, now time.Time) []*orgsyncv1.DesiredObject {
	m.lock()
	defer m.mu.Unlock()
	m.epoch++
	changes := m.advance(now)
	m.grants.putCredential(workerID, c)
	affected := map[owner]struct{}{}
	if st := m.workers[workerID]; st != nil {
		m.refreshWorker(st, now, affected)
	}
	return append(changes, m.recompute(affected, now)...)
}

// putCredential keeps c as workerID's helpdesk credential unless the one kept was approved later.
func (x *grantIndex) putCredential(workerID string, c *orgsyncv1.HelpdeskCredential) {
	if old := x.credentials[workerID]; old != nil && old.GetApprovedAt().AsTime().After(c.GetApprovedAt().AsTime()) {
		return
	}
	if x.credentials == nil {
		x.credentials = map[string]*orgsyncv1.HelpdeskCredential{}
	}
	x.credentials[workerID] = proto.CloneOf(c)
}

// helpdeskCredential is the credential workerID's Entra user carries, or nil: only an enabled
// account gets one.
func (x *grantIndex) helpdeskCredential(workerID string, target orgsyncv1.Target, enabled bool) *orgsyncv1.HelpdeskCredential {
	c := x.credentials[workerID]
	if c == nil || target != orgsyncv1.Target_TARGET_ENTRA || !enabled {
		return nil
	}
	return proto.CloneOf(c)
}
