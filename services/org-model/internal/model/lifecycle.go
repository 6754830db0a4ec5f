package model

import (
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

// Phase is where a worker stands in the joiner-mover-leaver lifecycle at one moment.
type Phase int

// Phases, in lifecycle order.
const (
	// PhaseNone: no account yet (a future hire more than the pre-create days ahead), or out of scope.
	PhaseNone Phase = iota
	// PhasePreCreated: the account exists, disabled, without memberships, until the start date.
	PhasePreCreated
	// PhaseActive: enabled, with memberships.
	PhaseActive
	// PhaseLeft: past the end; disabled (or only the leave date set, per policy), memberships kept
	// for the grace period.
	PhaseLeft
	// PhaseGone: past the end and the grace period: disabled, no memberships.
	PhaseGone
)

var phaseNames = [...]string{"none", "pre-created", "active", "left", "gone"}

func (p Phase) String() string { return phaseNames[p] }

var phaseProtos = [...]orgsyncv1.LifecyclePhase{
	orgsyncv1.LifecyclePhase_LIFECYCLE_PHASE_NONE,
	orgsyncv1.LifecyclePhase_LIFECYCLE_PHASE_PRE_CREATED,
	orgsyncv1.LifecyclePhase_LIFECYCLE_PHASE_ACTIVE,
	orgsyncv1.LifecyclePhase_LIFECYCLE_PHASE_LEFT,
	orgsyncv1.LifecyclePhase_LIFECYCLE_PHASE_GONE,
}

// Proto is the phase as the query API reports it.
func (p Phase) Proto() orgsyncv1.LifecyclePhase { return phaseProtos[p] }

// entry is one HR record of a worker and the moment it takes effect.
type entry struct {
	at      time.Time
	record  *orgsyncv1.Worker
	eventID string
	// terminatedSince, for a terminated record, is when the run of terminated records it
	// continues began: HR sending the termination again, or an update that omits the status,
	// does not move the leave date nor stretch the membership grace period.
	terminatedSince time.Time
}

// timeline holds a worker's current record and any future-dated ones, ordered by effect.
type timeline []entry

// at returns the record in effect at now: the last entry that took effect by then, or nil.
func (t timeline) at(now time.Time) *entry {
	var current *entry
	for i := range t {
		if t[i].at.After(now) {
			break
		}
		current = &t[i]
	}
	return current
}

// insert adds e unless an entry in effect at now is newer (a stale or redelivered event), and
// drops entries that e replaces or that no longer matter. It reports whether e was kept.
func (t *timeline) insert(e entry, now time.Time) bool {
	if current := t.at(now); current != nil && e.at.Before(current.at) {
		return false
	}
	out := (*t)[:0:0]
	placed := false
	for _, existing := range *t {
		if existing.at.Equal(e.at) {
			continue
		}
		if !placed && existing.at.After(e.at) {
			out = append(out, e)
			placed = true
		}
		out = append(out, existing)
	}
	if !placed {
		out = append(out, e)
	}
	*t = out
	t.prune(now)
	return true
}

// prune drops entries superseded before now.
func (t *timeline) prune(now time.Time) {
	keepFrom := 0
	for i := range *t {
		if !(*t)[i].at.After(now) {
			keepFrom = i
		}
	}
	*t = (*t)[keepFrom:]
}

// nextAfter is the effect time of the first future entry, or zero.
func (t timeline) nextAfter(now time.Time) time.Time {
	for _, e := range t {
		if e.at.After(now) {
			return e.at
		}
	}
	return time.Time{}
}

// dayStart is midnight of an HR date in the policy's time zone.
func dayStart(d *orgsyncv1.Date, loc *time.Location) (time.Time, bool) {
	if d.GetYear() == 0 {
		return time.Time{}, false
	}
	return time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, loc), true
}

// dates are the moments a worker's record makes the lifecycle change.
type dates struct {
	// create is when the account comes into existence (pre-create); zero: at once.
	create time.Time
	// start is when it is enabled; zero: at once.
	start time.Time
	// leave is when it is disabled; zero: never.
	leave time.Time
	// terminated says HR ended the employment (a termination or an end date), rather than the
	// worker vanishing from a full export.
	terminated bool
	// gone is when memberships go after leaving; zero: never.
	gone time.Time
}

func lifecycleDates(st *workerState, rec *entry, pol *policy.Policy) dates {
	var d dates
	w := rec.record
	startDate := w.GetStartDate()
	if startDate.GetYear() == 0 {
		startDate = w.GetHireDate()
	}
	if start, ok := dayStart(startDate, pol.Location); ok {
		d.start = start
	}
	// The account is created N days before the first start ever seen, so a rehire finds it there.
	if first, ok := dayStart(st.firstStart, pol.Location); ok {
		d.create = first.AddDate(0, 0, -pol.Lifecycle.PreCreateDays)
	}
	if end, ok := dayStart(w.GetEndDate(), pol.Location); ok {
		if !pol.Lifecycle.DisableAtStartOfEndDate {
			end = end.AddDate(0, 0, 1)
		}
		d.leave = end
	} else if w.GetEmploymentStatus() == orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED {
		d.leave = rec.terminatedSince
	}
	// An end date before the start belongs to an earlier employment: a rehire.
	if !d.leave.IsZero() && !d.start.IsZero() && d.leave.Before(d.start) &&
		w.GetEmploymentStatus() != orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED {
		d.leave = time.Time{}
	}
	d.terminated = !d.leave.IsZero()
	if !st.absentSince.IsZero() && (d.leave.IsZero() || st.absentSince.Before(d.leave)) {
		d.leave = st.absentSince
	}
	if !d.leave.IsZero() {
		d.gone = d.leave.Add(pol.Lifecycle.MembershipGrace)
	}
	return d
}

func (d dates) phase(now time.Time) Phase {
	switch {
	case !d.create.IsZero() && now.Before(d.create):
		return PhaseNone
	case !d.gone.IsZero() && !now.Before(d.gone):
		return PhaseGone
	case !d.leave.IsZero() && !now.Before(d.leave):
		return PhaseLeft
	case !d.start.IsZero() && now.Before(d.start):
		return PhasePreCreated
	default:
		return PhaseActive
	}
}

// next is the first of the dates after now, or zero.
func (d dates) next(now time.Time) time.Time {
	var next time.Time
	for _, t := range []time.Time{d.create, d.start, d.leave, d.gone} {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}
