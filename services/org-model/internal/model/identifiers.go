package model

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/identifier"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

// Assignment is a worker's identifiers in one target. Once assigned it is a fact: it is recorded
// (TakeUnrecorded), restored at start (RestoreIdentifiers), and kept through policy changes and
// trimmed HR history; only the policy's identifiers.regenerate or a directory refusing a value
// (MarkHeld) changes it.
type Assignment struct {
	WorkerID string
	Target   orgsyncv1.Target
	// UserPrincipalName is lower-case and valid for Graph (and so for AD).
	UserPrincipalName string
	// MailNickname is the UPN's alias; Entra's mailNickname.
	MailNickname string
	// SAMAccountName is AD's pre-Windows 2000 logon name; empty for Entra.
	SAMAccountName string
	// NameHash identifies the name the identifiers were made from without keeping the name, so
	// that regenerate: onNameChange still sees a change made while org-model was down.
	NameHash string
}

// value is the assignment's value of a directory property, or "".
func (a Assignment) value(property string) string {
	switch property {
	case identifier.PropertyUPN:
		return a.UserPrincipalName
	case identifier.PropertyMailNickname:
		return a.MailNickname
	case identifier.PropertySAMAccountName:
		return a.SAMAccountName
	}
	return ""
}

// keys are the uniqueness keys the assignment claims in its target, in the first n of an array
// rather than a slice: claiming and checking them is frequent enough for the allocation to show.
func (a Assignment) keys() (keys [2]valueKey, n int) {
	keys[0] = valueKey{a.Target, identifier.PropertyUPN, strings.ToLower(a.UserPrincipalName)}
	switch a.Target {
	case orgsyncv1.Target_TARGET_ENTRA:
		keys[1] = valueKey{a.Target, identifier.PropertyMailNickname, strings.ToLower(a.MailNickname)}
		return keys, 2
	case orgsyncv1.Target_TARGET_AD:
		keys[1] = valueKey{a.Target, identifier.PropertySAMAccountName, strings.ToLower(a.SAMAccountName)}
		return keys, 2
	}
	return keys, 1
}

// HeldIdentifier is an identifier value that an account orgsync does not manage holds in a
// target's directory; no worker is given it.
type HeldIdentifier struct {
	Target orgsyncv1.Target
	// Property is identifier.PropertyUPN, PropertyMailNickname or PropertySAMAccountName.
	Property string
	// Value is lower-case.
	Value string
}

// IdentifierProblem says why a worker has no account in a target: no candidate for one of the
// account's identifiers is valid there. Reason names the candidates by where the policy writes
// them and what is wrong with each, never their values.
type IdentifierProblem struct {
	WorkerID string
	Target   orgsyncv1.Target
	// Property is the identifier without a valid candidate.
	Property string
	Reason   string
}

type targetWorker struct {
	target   orgsyncv1.Target
	workerID string
}

type valueKey struct {
	target          orgsyncv1.Target
	property, value string
}

// suffixBase is an identifier value that numbers are added to, in one target and property.
type suffixBase struct {
	target          orgsyncv1.Target
	property, value string
}

// propertyOf names an identifier property in one target.
type propertyOf struct {
	target   orgsyncv1.Target
	property string
}

// propertyOwners are the owners of the values of one property in one target.
type propertyOwners struct {
	propertyOf
	owners map[string]string
}

// identifiers is the model's identifier state; the model's lock guards it.
type identifiers struct {
	assigned map[targetWorker]Assignment
	// owners maps each claimed value to the worker holding it, including workers HR no longer
	// sends (trimmed history): their identifiers stay theirs. One map per target and property,
	// keyed by the value alone: 100,000 workers claim 200,000 values, and a string key is 24
	// bytes smaller than a valueKey. The few maps are in a list (ownersOf): finding one there
	// is quicker than hashing its name, which a replay did a million times.
	owners []propertyOwners
	held   map[valueKey]struct{}
	failed map[targetWorker]IdentifierProblem
	// nextSuffix remembers, per identifier base, the first number not yet tried, so that many
	// namesakes do not make each new one try every taken number again.
	nextSuffix map[suffixBase]int
	// unrecorded are the assignments and held values changed since TakeUnrecorded: a list, not a
	// set, as a replay adds every worker once and a set of 100,000 grows slowly; a worker renamed
	// twice is in it twice until TakeUnrecorded.
	unrecorded     []targetWorker
	unrecordedHeld []HeldIdentifier
}

func newIdentifiers() *identifiers {
	return &identifiers{
		assigned: map[targetWorker]Assignment{}, held: map[valueKey]struct{}{},
		failed: map[targetWorker]IdentifierProblem{}, nextSuffix: map[suffixBase]int{},
	}
}

// clone copies the state for a dry run; what is unrecorded stays with the original.
func (ids *identifiers) clone() *identifiers {
	c := newIdentifiers()
	c.assigned = maps.Clone(ids.assigned)
	for _, po := range ids.owners {
		c.owners = append(c.owners, propertyOwners{po.propertyOf, maps.Clone(po.owners)})
	}
	c.held = maps.Clone(ids.held)
	c.failed = maps.Clone(ids.failed)
	c.nextSuffix = maps.Clone(ids.nextSuffix)
	return c
}

// taken says whether value is claimed by another worker or held by a foreign account.
func (ids *identifiers) taken(key valueKey, workerID string) bool {
	if _, held := ids.held[key]; held {
		return true
	}
	owner, claimed := ids.ownersOf(key.target, key.property, false)[key.value]
	return claimed && owner != workerID
}

// ownersOf returns the owners of property's values in target, made when create is set; nil
// otherwise when none was claimed.
func (ids *identifiers) ownersOf(target orgsyncv1.Target, property string, create bool) map[string]string {
	for _, po := range ids.owners {
		if po.target == target && po.property == property {
			return po.owners
		}
	}
	if !create {
		return nil
	}
	owners := map[string]string{}
	ids.owners = append(ids.owners, propertyOwners{propertyOf{target, property}, owners})
	return owners
}

// usable says whether every value of a is free for its worker.
func (ids *identifiers) usable(a Assignment) bool {
	keys, n := a.keys()
	for _, key := range keys[:n] {
		if key.value == "" || ids.taken(key, a.WorkerID) {
			return false
		}
	}
	return true
}

func (ids *identifiers) claim(a Assignment, record bool) {
	tw := targetWorker{a.Target, a.WorkerID}
	ids.assigned[tw] = a
	keys, n := a.keys()
	for _, key := range keys[:n] {
		ids.ownersOf(key.target, key.property, true)[key.value] = a.WorkerID
	}
	delete(ids.failed, tw)
	if record {
		ids.unrecorded = append(ids.unrecorded, tw)
	}
}

func (ids *identifiers) release(a Assignment) {
	delete(ids.assigned, targetWorker{a.Target, a.WorkerID})
	keys, n := a.keys()
	for _, key := range keys[:n] {
		owners := ids.ownersOf(key.target, key.property, false)
		if owner, claimed := owners[key.value]; claimed && owner == a.WorkerID {
			delete(owners, key.value)
		}
	}
}

// nameHash identifies a worker's name (the parts identifiers are made from).
func nameHash(name *orgsyncv1.PersonName) string {
	first, family := policy.FirstName(name), name.GetFamilyName()
	var buf [128]byte
	sum := sha256.Sum256(append(append(append(buf[:0], first...), 0), family...))
	return hex.EncodeToString(sum[:12])
}

// assignIdentifiers gives an in-scope worker its identifiers in every target, once (identify),
// and keeps a failed evaluation of a candidate as the worker's expression error.
func (m *Model) assignIdentifiers(st *workerState, vars *policy.WorkerVars) {
	if _, evalError := m.identify(st.id, vars, false); evalError != "" {
		m.evalErrors["worker "+st.id] = evalError
	}
}

// identify gives an in-scope worker its identifiers in every target, once; a recorded
// assignment is kept unless the policy regenerates on a name change and the name changed. A
// target where no candidate is valid is marked failed: the worker gets no account there. During
// the replay a renamed worker's identifiers are left for ComputeAll to compare (deferred). It
// returns the last expression error met rather than keeping it, as the replay identifies workers
// on a goroutine of its own (identify.go). It reads the worker's record from vars alone.
func (m *Model) identify(workerID string, vars *policy.WorkerVars, replaying bool) (deferred bool, evalError string) {
	hash := nameHash(vars.Worker.GetName())
	for _, target := range m.targets {
		tw := targetWorker{target, workerID}
		current, assigned := m.ids.assigned[tw]
		switch {
		case assigned && current.NameHash == hash:
			continue
		case assigned && replaying:
			// A replay passes through old names; ComputeAll compares the name in effect once.
			deferred = true
			continue
		case assigned && current.NameHash != "" && m.pol.Identifiers.Regenerate == policy.RegenerateOnNameChange:
			m.ids.release(current)
			fresh, problem := m.generate(target, workerID, vars, &evalError)
			if problem != nil {
				// A failed renaming keeps the account as it is rather than losing it.
				m.ids.claim(current, false)
				evalError = fmt.Sprintf("identifiers in %s not regenerated after a name change: %s", TargetName(target), problem.Reason)
				continue
			}
			fresh.NameHash = hash
			m.ids.claim(fresh, true)
		case assigned:
			// The name changed (or was not known, for an adopted account) and the identifiers
			// stay; remember the name so a later policy that regenerates compares with it.
			current.NameHash = hash
			m.ids.claim(current, true)
		default:
			fresh, problem := m.generate(target, workerID, vars, &evalError)
			if problem != nil {
				m.ids.failed[tw] = *problem
				continue
			}
			fresh.NameHash = hash
			m.ids.claim(fresh, true)
		}
	}
	return deferred, evalError
}

// forgetFailures drops a worker's identifier problems (out of scope: no account is wanted).
func (m *Model) forgetFailures(workerID string) {
	for _, target := range m.targets {
		delete(m.ids.failed, targetWorker{target, workerID})
	}
}

// generate picks a worker's identifiers in target from the policy's candidates: the first valid
// one that is free, else the last valid one with 2, 3, … added.
// A candidate that fails to evaluate sets *evalError.
func (m *Model) generate(target orgsyncv1.Target, workerID string, vars *policy.WorkerVars, evalError *string) (Assignment, *IdentifierProblem) {
	a := Assignment{WorkerID: workerID, Target: target}
	upns, reasons := m.candidates(m.pol.Identifiers.UserPrincipalName, vars, evalError, identifier.PropertyUPN, func(value string) (string, error) {
		return identifier.UPN(value, m.pol.UPNDomains, m.domain)
	})
	if len(upns) == 0 {
		return a, &IdentifierProblem{WorkerID: workerID, Target: target, Property: identifier.PropertyUPN, Reason: noValidCandidate(reasons)}
	}
	var sams []string
	if target == orgsyncv1.Target_TARGET_AD {
		sams, reasons = m.candidates(m.pol.Identifiers.SAMAccountName, vars, evalError, identifier.PropertySAMAccountName, identifier.SAMAccountName)
		if len(sams) == 0 {
			return a, &IdentifierProblem{WorkerID: workerID, Target: target, Property: identifier.PropertySAMAccountName, Reason: noValidCandidate(reasons)}
		}
	}
	a.UserPrincipalName = m.pick(target, identifier.PropertyUPN, workerID, upns, identifier.WithUPNSuffix, func(upn string) bool {
		// In Entra the alias becomes the mailNickname, which must be free too.
		return target != orgsyncv1.Target_TARGET_ENTRA || !m.ids.taken(valueKey{target, identifier.PropertyMailNickname, alias(upn)}, workerID)
	})
	a.MailNickname = alias(a.UserPrincipalName)
	if target == orgsyncv1.Target_TARGET_AD {
		a.SAMAccountName = m.pick(target, identifier.PropertySAMAccountName, workerID, sams, identifier.WithSAMSuffix, nil)
	}
	return a, nil
}

func alias(upn string) string {
	local, _, _ := strings.Cut(upn, "@")
	return local
}

// candidates evaluates and normalises candidate expressions for property, returning the valid
// values in order (without repeats) and, for each refused one, why. An expression that fails
// sets *evalError.
func (m *Model) candidates(exprs []*policy.Expr, vars *policy.WorkerVars, evalError *string, property string, normalise func(string) (string, error)) (valid, reasons []string) {
	for i, expr := range exprs {
		raw, err := expr.String(vars)
		if err != nil {
			*evalError = err.Error()
			reasons = append(reasons, fmt.Sprintf("candidate %d (%s) failed to evaluate", i+1, expr.At))
			continue
		}
		value, err := m.normalised(property, raw, normalise)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("candidate %d (%s) %v", i+1, expr.At, err))
			continue
		}
		// A policy lists a few candidates: a scan finds a repeat sooner than a map is made.
		if !slices.Contains(valid, value) {
			valid = append(valid, value)
		}
	}
	return valid, reasons
}

// normalisedLimit bounds the normalised candidates a model remembers.
const normalisedLimit = 1 << 14

type normalisedKey struct{ property, raw string }

type normalisedValue struct {
	value string
	err   error
}

// normalised is normalise(raw), remembered: namesakes are many (the candidates' expressions are
// memoised, so the same raw values come again) and folding diacritics is costly.
func (m *Model) normalised(property, raw string, normalise func(string) (string, error)) (string, error) {
	key := normalisedKey{property, raw}
	if n, ok := m.normalisedCandidates[key]; ok {
		return n.value, n.err
	}
	value, err := normalise(raw)
	if m.normalisedCandidates == nil {
		m.normalisedCandidates = map[normalisedKey]normalisedValue{}
	}
	if len(m.normalisedCandidates) < normalisedLimit {
		m.normalisedCandidates[key] = normalisedValue{value, err}
	}
	return value, err
}

func noValidCandidate(reasons []string) string {
	if len(reasons) == 0 {
		return "the policy has no candidate"
	}
	return "no valid candidate: " + strings.Join(reasons, "; ")
}

// pick returns the first candidate free in target (and accepted by alsoFree), else the last one
// with the first free number added.
func (m *Model) pick(target orgsyncv1.Target, property, workerID string, candidates []string, withSuffix func(string, int) string, alsoFree func(string) bool) string {
	free := func(value string) bool {
		return !m.ids.taken(valueKey{target, property, value}, workerID) && (alsoFree == nil || alsoFree(value))
	}
	for _, value := range candidates {
		if free(value) {
			return value
		}
	}
	base := candidates[len(candidates)-1]
	suffixKey := suffixBase{target, property, base}
	for n := max(2, m.ids.nextSuffix[suffixKey]); ; n++ {
		if value := withSuffix(base, n); free(value) {
			m.ids.nextSuffix[suffixKey] = n + 1
			return value
		}
	}
}

// RestoreIdentifiers loads recorded assignments and held values, before the HR replay: the
// replay then keeps these identifiers instead of making them again. An assignment whose value
// has since been found held by a foreign account, or that is no longer valid, is dropped; the
// worker gets a new one when HR describes them.
func (m *Model) RestoreIdentifiers(assignments []Assignment, held []HeldIdentifier) (dropped int) {
	m.lock()
	defer m.mu.Unlock()
	m.epoch++
	for _, h := range held {
		m.ids.held[valueKey{h.Target, h.Property, strings.ToLower(h.Value)}] = struct{}{}
	}
	for _, a := range assignments {
		if !m.acceptable(a) {
			dropped++
			continue
		}
		m.ids.claim(a, false)
	}
	return dropped
}

// acceptable says whether a recorded or published assignment is valid for its target and free.
func (m *Model) acceptable(a Assignment) bool {
	if a.WorkerID == "" || !identifier.ValidUPN(a.UserPrincipalName) || !identifier.ValidMailNickname(a.MailNickname) {
		return false
	}
	if a.Target == orgsyncv1.Target_TARGET_AD && !identifier.ValidSAMAccountName(a.SAMAccountName) {
		return false
	}
	return m.ids.usable(a)
}

// AdoptPublished takes the identifiers of a user published on DIRECTORY before identifiers were
// recorded (an upgrade), so the first start with recording renames nobody either. It adopts only
// valid, free values of a worker without a recorded assignment, and reports whether it did.
func (m *Model) AdoptPublished(obj *orgsyncv1.DesiredObject) bool {
	user := obj.GetUser()
	if user == nil || obj.GetTombstone() || obj.GetKey() == "" {
		return false
	}
	m.lock()
	defer m.mu.Unlock()
	m.epoch++
	if _, recorded := m.ids.assigned[targetWorker{obj.GetTarget(), obj.GetKey()}]; recorded {
		return false
	}
	a := Assignment{WorkerID: obj.GetKey(), Target: obj.GetTarget(), UserPrincipalName: strings.ToLower(user.GetUserPrincipalName()), MailNickname: user.GetMailNickname()}
	if obj.GetTarget() == orgsyncv1.Target_TARGET_AD {
		a.SAMAccountName = user.GetAttributes()[identifier.PropertySAMAccountName]
	}
	if !m.hasTarget(a.Target) || !m.acceptable(a) {
		return false
	}
	m.ids.claim(a, true)
	return true
}

func (m *Model) hasTarget(target orgsyncv1.Target) bool {
	for _, t := range m.targets {
		if t == target {
			return true
		}
	}
	return false
}

// MarkHeld records that an account orgsync does not manage holds value of property in target (a
// writer's CONFLICT result). When it is the worker's assigned value, the worker gets the next
// free candidate, and MarkHeld returns the objects that changed (the worker's user). It reports
// whether anything new was learnt: a value already known to be held and not assigned is a
// repeat.
func (m *Model) MarkHeld(target orgsyncv1.Target, workerID, property, value string, now time.Time) ([]*orgsyncv1.DesiredObject, bool) {
	if value == "" {
		return nil, false
	}
	m.lock()
	defer m.mu.Unlock()
	m.epoch++
	key := valueKey{target, property, strings.ToLower(value)}
	_, known := m.ids.held[key]
	if !known {
		m.ids.held[key] = struct{}{}
		m.ids.unrecordedHeld = append(m.ids.unrecordedHeld, HeldIdentifier{Target: target, Property: property, Value: key.value})
	}
	tw := targetWorker{target, workerID}
	a, assigned := m.ids.assigned[tw]
	if !assigned || !strings.EqualFold(a.value(property), value) {
		return nil, !known
	}
	m.ids.release(a)
	changes := m.advance(now)
	st := m.workers[workerID]
	if st == nil || st.current == nil || !st.inScope {
		return changes, true
	}
	m.assignIdentifiers(st, m.workerVars(st.current.record))
	return append(changes, m.recompute(map[owner]struct{}{{kind: 'w', id: workerID}: {}}, now)...), true
}

// TakeUnrecorded returns the assignments and held values changed since the last call, for the
// caller to record durably before it publishes the objects that use them.
func (m *Model) TakeUnrecorded() ([]Assignment, []HeldIdentifier) {
	m.lock()
	defer m.mu.Unlock()
	changed := m.ids.unrecorded
	slices.SortFunc(changed, func(a, b targetWorker) int {
		return cmp.Or(strings.Compare(a.workerID, b.workerID), cmp.Compare(a.target, b.target))
	})
	changed = slices.Compact(changed)
	assignments := make([]Assignment, 0, len(changed))
	for _, tw := range changed {
		if a, ok := m.ids.assigned[tw]; ok {
			assignments = append(assignments, a)
		}
	}
	held := m.ids.unrecordedHeld
	m.ids.unrecorded = nil
	m.ids.unrecordedHeld = nil
	return assignments, held
}

// Identifiers returns a worker's assigned identifiers in target.
func (m *Model) Identifiers(target orgsyncv1.Target, workerID string) (Assignment, bool) {
	m.rlock()
	defer m.mu.RUnlock()
	a, ok := m.ids.assigned[targetWorker{target, workerID}]
	return a, ok
}

// FailedIdentifiers returns why a worker has no account in target, if that is so.
func (m *Model) FailedIdentifiers(target orgsyncv1.Target, workerID string) (IdentifierProblem, bool) {
	m.rlock()
	defer m.mu.RUnlock()
	p, ok := m.ids.failed[targetWorker{target, workerID}]
	return p, ok
}

// IdentifierProblems lists the workers without an account in a target for want of a valid
// identifier, by worker and target.
func (m *Model) IdentifierProblems() []IdentifierProblem {
	m.rlock()
	defer m.mu.RUnlock()
	return m.identifierProblems()
}

func (m *Model) identifierProblems() []IdentifierProblem {
	out := make([]IdentifierProblem, 0, len(m.ids.failed))
	for _, p := range m.ids.failed {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].WorkerID != out[j].WorkerID {
			return out[i].WorkerID < out[j].WorkerID
		}
		return out[i].Target < out[j].Target
	})
	return out
}

// hasIdentifiers says whether a worker has identifiers (and so an account) in target.
func (m *Model) hasIdentifiers(target orgsyncv1.Target, workerID string) bool {
	_, ok := m.ids.assigned[targetWorker{target, workerID}]
	return ok
}
