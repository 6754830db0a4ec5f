// Package guard holds back mass changes: when one batch (an HR event, a snapshot, a scheduler
// tick, the reconcile at start) or the batches within a time window would disable or remove more
// accounts or memberships than the policy allows, the destructive changes are held as a pending
// batch until someone approves (they are published) or rejects them (they are dropped, and the
// same desired state stays suppressed until it changes). Everything else keeps flowing.
//
// Counting follows Entra's accidental-deletion threshold, disables included: a disabled or
// deleted account counts once, a removed membership or group once.
//
// A Guard is safe for concurrent use.
package guard

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

// ErrNoBatch is returned for an unknown or already decided batch.
var ErrNoBatch = errors.New("no pending batch with that id")

// Effect is what a change does to the directory, for counting.
type Effect int

// Effects.
const (
	Harmless Effect = iota
	// Disable turns an enabled account off or deletes it.
	Disable
	// Removal removes a membership or a group.
	Removal
)

// Totals are the sizes the shares are counted against.
type Totals struct {
	EnabledAccounts int
	Memberships     int
}

// Batch is a set of held changes.
type Batch struct {
	ID        string
	CreatedAt time.Time
	// Reason says which threshold the batch crossed.
	Reason   string
	Cause    *orgsyncv1.Cause
	Disables int
	Removals int
	// Objects are the held desired states by object path.
	Objects map[string]*orgsyncv1.DesiredObject
}

// Guard decides which changes may be published.
type Guard struct {
	cfg policy.Guard

	mu       sync.Mutex
	stamps   []stamp
	pending  map[string]*Batch
	open     *Batch
	heldIn   map[string]*Batch
	rejected map[string]*orgsyncv1.DesiredObject
	// rejectedVersion grows whenever rejected changes, so a caller knows when to save it.
	rejectedVersion uint64
}

// newBatchID returns a random batch id: an approval names its batch, so the id must not be
// guessable from the time or a counter.
func newBatchID() string {
	var raw [10]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "b-" + hex.EncodeToString(raw[:])
}

type stamp struct {
	at                 time.Time
	disables, removals int
}

// New returns a guard with the policy's thresholds.
func New(cfg policy.Guard) *Guard {
	return &Guard{cfg: cfg, pending: map[string]*Batch{}, heldIn: map[string]*Batch{}, rejected: map[string]*orgsyncv1.DesiredObject{}}
}

// Change is one desired state to publish, with its effect as classified against what was last
// published.
type Change struct {
	Path   string
	Object *orgsyncv1.DesiredObject
	Effect Effect
}

// Admit takes one batch of changes and returns those that may be published now, in order; the
// rest are held or suppressed.
func (g *Guard) Admit(changes []Change, totals Totals, cause *orgsyncv1.Cause, now time.Time) []*orgsyncv1.DesiredObject {
	g.mu.Lock()
	defer g.mu.Unlock()
	// admitted keeps the changes' order, which puts removed memberships before removed groups.
	admitted := make([]bool, len(changes))
	var destructive []Change
	var destructiveAt []int
	disables, removals := 0, 0
	for i, c := range changes {
		if rejected, ok := g.rejected[c.Path]; ok {
			if model.Same(rejected, c.Object) {
				continue
			}
			delete(g.rejected, c.Path)
			g.rejectedVersion++
		}
		if batch, held := g.heldIn[c.Path]; held {
			if c.Effect != Harmless {
				batch.Objects[c.Path] = c.Object
				continue
			}
			// The change that was held no longer applies: what HR wants now is harmless.
			g.release(batch, c.Path)
		}
		if c.Effect == Harmless {
			admitted[i] = true
			continue
		}
		destructive = append(destructive, c)
		destructiveAt = append(destructiveAt, i)
		if c.Effect == Disable {
			disables++
		} else {
			removals++
		}
	}
	inOrder := func() []*orgsyncv1.DesiredObject {
		var publish []*orgsyncv1.DesiredObject
		for i, c := range changes {
			if admitted[i] {
				publish = append(publish, c.Object)
			}
		}
		return publish
	}
	if len(destructive) == 0 {
		return inOrder()
	}
	windowDisables, windowRemovals := g.inWindow(now)
	reason := g.exceeded(disables+windowDisables, totals.EnabledAccounts, "accounts disabled or deleted")
	if reason == "" {
		reason = g.exceeded(removals+windowRemovals, totals.Memberships, "memberships or groups removed")
	}
	if reason == "" && g.open == nil {
		g.stamps = append(g.stamps, stamp{at: now, disables: disables, removals: removals})
		for _, i := range destructiveAt {
			admitted[i] = true
		}
		return inOrder()
	}
	batch := g.open
	if batch == nil {
		batch = &Batch{ID: newBatchID(), CreatedAt: now, Reason: reason,
			Cause: cause, Objects: map[string]*orgsyncv1.DesiredObject{}}
		g.pending[batch.ID] = batch
		g.open = batch
	}
	for _, c := range destructive {
		batch.Objects[c.Path] = c.Object
		g.heldIn[c.Path] = batch
		if c.Effect == Disable {
			batch.Disables++
		} else {
			batch.Removals++
		}
	}
	return inOrder()
}

func (g *Guard) exceeded(count, total int, what string) string {
	if g.cfg.MaxChanges > 0 && count > g.cfg.MaxChanges {
		return fmt.Sprintf("%d %s within %v, more than the %d allowed", count, what, g.cfg.Window, g.cfg.MaxChanges)
	}
	if g.cfg.MaxShare > 0 && total > 0 && count >= g.cfg.MinChangesForShare && float64(count)/float64(total) > g.cfg.MaxShare {
		return fmt.Sprintf("%d of %d %s within %v (%.0f%%), more than the %.0f%% allowed",
			count, total, what, g.cfg.Window, 100*float64(count)/float64(total), 100*g.cfg.MaxShare)
	}
	return ""
}

func (g *Guard) inWindow(now time.Time) (disables, removals int) {
	kept := g.stamps[:0]
	for _, s := range g.stamps {
		if now.Sub(s.at) < g.cfg.Window {
			kept = append(kept, s)
			disables += s.disables
			removals += s.removals
		}
	}
	g.stamps = kept
	return disables, removals
}

func (g *Guard) release(batch *Batch, path string) {
	delete(batch.Objects, path)
	delete(g.heldIn, path)
	if len(batch.Objects) == 0 {
		g.drop(batch)
	}
}

func (g *Guard) drop(batch *Batch) {
	for path := range batch.Objects {
		delete(g.heldIn, path)
	}
	delete(g.pending, batch.ID)
	if g.open == batch {
		g.open = nil
	}
}

// Pending lists the pending batches, oldest first. The batches are copies.
func (g *Guard) Pending() []*Batch {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Batch, 0, len(g.pending))
	for _, b := range g.pending {
		c := *b
		c.Objects = make(map[string]*orgsyncv1.DesiredObject, len(b.Objects))
		for path, obj := range b.Objects {
			c.Objects[path] = obj
		}
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Batch returns a copy of the pending batch id.
func (g *Guard) Batch(id string) (*Batch, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.pending[id]
	if !ok {
		return nil, false
	}
	c := *b
	c.Objects = make(map[string]*orgsyncv1.DesiredObject, len(b.Objects))
	for path, obj := range b.Objects {
		c.Objects[path] = obj
	}
	return &c, true
}

// Approve ends a pending batch and returns its changes, in publishing order (removed
// memberships first, then the rest), for the caller to publish.
func (g *Guard) Approve(id string) ([]*orgsyncv1.DesiredObject, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	batch, ok := g.pending[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoBatch, id)
	}
	paths := make([]string, 0, len(batch.Objects))
	for path := range batch.Objects {
		paths = append(paths, path)
	}
	sort.Slice(paths, func(i, j int) bool {
		mi, mj := batch.Objects[paths[i]].GetMembership() != nil, batch.Objects[paths[j]].GetMembership() != nil
		if mi != mj {
			return mi
		}
		return paths[i] < paths[j]
	})
	out := make([]*orgsyncv1.DesiredObject, len(paths))
	for i, path := range paths {
		out[i] = batch.Objects[path]
	}
	g.drop(batch)
	return out, nil
}

// Reject drops a pending batch: its changes are not published, and each stays suppressed while
// the desired state of its object is the one rejected.
func (g *Guard) Reject(id string) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	batch, ok := g.pending[id]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrNoBatch, id)
	}
	for path, obj := range batch.Objects {
		g.rejected[path] = obj
	}
	g.rejectedVersion++
	n := len(batch.Objects)
	g.drop(batch)
	return n, nil
}

// Rejected returns the rejected states still suppressed, by path, for keeping them durable, and
// a version that changes whenever they do.
func (g *Guard) Rejected() (map[string]*orgsyncv1.DesiredObject, uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]*orgsyncv1.DesiredObject, len(g.rejected))
	for path, obj := range g.rejected {
		out[path] = obj
	}
	return out, g.rejectedVersion
}

// RejectedVersion changes whenever the rejected states do.
func (g *Guard) RejectedVersion() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rejectedVersion
}

// Restore suppresses rejected states again, as loaded from durable storage at start.
func (g *Guard) Restore(rejected map[string]*orgsyncv1.DesiredObject) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for path, obj := range rejected {
		g.rejected[path] = obj
	}
	g.rejectedVersion++
}

// Held says whether the object at path is held in a pending batch.
func (g *Guard) Held(path string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.heldIn[path]
	return ok
}

// Classify says what publishing next does, given what was last published (nil: nothing).
func Classify(last, next *orgsyncv1.DesiredObject) Effect {
	if last == nil || last.GetTombstone() {
		return Harmless
	}
	switch {
	case last.GetUser() != nil:
		if next.GetTombstone() || last.GetUser().GetAccountEnabled() && !next.GetUser().GetAccountEnabled() {
			return Disable
		}
	case next.GetTombstone():
		return Removal
	}
	return Harmless
}

// PathOf is the object path of obj, "" when it has none.
func PathOf(obj *orgsyncv1.DesiredObject) string {
	path, _ := subject.ObjectPath(obj)
	return path
}
