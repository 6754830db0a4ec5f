// Package policy loads org-model's part of the policy file (ORGSYNC_CONFIG): which workers are in scope, the
// UPN domains orgsync owns, identifier templates, attribute mapping per target, group templates,
// lifecycle settings and the mass-change guard. Expressions in it are CEL, compiled and
// type-checked at load, so a bad file stops the service at start with the file, the line and the
// reason of every problem in it (Errors), not only the first. A Policy is immutable after loading and safe for concurrent use.
package policy

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"gopkg.in/yaml.v3"

	"github.com/orgsync/orgsync/pkg/policyfile"
	"github.com/orgsync/orgsync/pkg/targetattr"
)

// LeaverMode says what happens to a leaver's account on the end date.
type LeaverMode string

// Leaver modes.
const (
	// LeaverDisable disables the account and sets employeeLeaveDateTime.
	LeaverDisable LeaverMode = "disable"
	// LeaverLeaveDateOnly only sets employeeLeaveDateTime and leaves disabling to another process,
	// as some HR integrations do.
	LeaverLeaveDateOnly LeaverMode = "leaveDateOnly"
)

// Policy is a loaded policy file.
type Policy struct {
	// File is where the policy came from, for messages.
	File string
	// Location is the policy's time zone: an HR date begins at midnight there.
	Location *time.Location
	// Scope decides which workers orgsync manages; nil manages all.
	Scope *Expr
	// UPNDomains are the UPN domains that belong to orgsync; the first is used for new UPNs.
	UPNDomains  []string
	Identifiers Identifiers
	// Mapping holds the attribute expressions per target ("entra", "ad") and attribute name.
	Mapping   map[string]map[string]*Expr
	Groups    Groups
	Lifecycle Lifecycle
	Guard     Guard
	// Hierarchies are the org trees derived from worker attributes, by HR source name.
	Hierarchies map[string]*Hierarchy
}

// Identifiers holds the ordered candidate templates of generated identifiers. Each candidate
// yields a local part (or name), normalised and validated for its directory; an empty or invalid
// result is skipped; when every valid candidate is taken the last one gets a number: jane.doe,
// jane.doe2, ….
type Identifiers struct {
	UserPrincipalName []*Expr
	// SAMAccountName candidates are cut to 20 characters, suffix included.
	SAMAccountName []*Expr
	// Regenerate says when identifiers, once assigned and recorded, are made again.
	Regenerate Regenerate
}

// Regenerate says when a worker's recorded identifiers are made again from the candidates.
type Regenerate string

// Regeneration modes.
const (
	// RegenerateNever keeps identifiers once assigned, whatever changes in HR or the policy.
	RegenerateNever Regenerate = "never"
	// RegenerateOnNameChange makes them again when the worker's name changes.
	RegenerateOnNameChange Regenerate = "onNameChange"
)

// Groups says which groups exist and how they are named.
type Groups struct {
	Unit     UnitGroupTemplate
	Rollup   UnitGroupTemplate
	Managers ManagerGroups
	Rules    []RuleGroup
	// Licenses are the licences Entra group-based licensing gives the members of a group, by
	// group key (unit-<unit>, all-<unit> for the roll-up, rule-<key>, managers-people, managers-units). A key
	// present with no licence makes orgsync remove every licence from the group; a key absent
	// leaves the group's licences alone (groups.licenses; docs/access.md).
	Licenses map[string][]GroupLicense
}

// GroupLicense is one licence a group gives its members: a subscribed SKU, less some of its
// service plans, all by GUID (lower-case).
type GroupLicense struct {
	SkuID         string
	DisabledPlans []string
}

// guidPattern is a GUID as Graph writes SKU and service plan ids.
var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$`)

// UnitGroupTemplate names the groups made for each org unit (unit: direct members; rollup: the
// unit's group and its sub-units' roll-up groups).
type UnitGroupTemplate struct {
	Enabled      bool
	DisplayName  *Expr
	Description  *Expr
	MailNickname *Expr
}

// ManagerGroups are the two manager groups: people managers (anyone with an active direct
// report) and unit managers (anyone HR names as an org unit's manager).
type ManagerGroups struct {
	Enabled                bool
	PeopleManagersName     string
	UnitManagersName       string
	PeopleManagersNickname string
	UnitManagersNickname   string
}

// RuleGroup is a group whose members a CEL filter over the worker selects.
type RuleGroup struct {
	Key          string
	DisplayName  string
	Description  string
	MailNickname string
	Filter       *Expr
}

// Lifecycle holds the joiner-mover-leaver settings.
type Lifecycle struct {
	// PreCreateDays is how many days before the start date a future hire's account is created
	// (disabled).
	PreCreateDays int
	LeaverMode    LeaverMode
	// MembershipGrace is how long after the end a leaver keeps group memberships.
	MembershipGrace time.Duration
	// DisableAtStartOfEndDate disables at 00:00 of the end date; by default a leaver works their
	// last day and is disabled at the end of it.
	DisableAtStartOfEndDate bool
	// RevokeAccess says which disabled leavers also lose what they were issued before: their
	// Entra sign-in sessions are revoked and their AD password is set to a random value
	// (lifecycle.revokeAccess; docs/access.md).
	RevokeAccess AccessRevocation
	// FirstDayCredential asks for a Temporary Access Pass for each new hire on their first day
	// (lifecycle.firstDayCredential; docs/access.md).
	FirstDayCredential FirstDayCredential
}

// FirstDayCredential is the policy of the first-day Temporary Access Pass.
type FirstDayCredential struct {
	// Enabled turns it on; off by default.
	Enabled bool
	// LifetimeMinutes is the pass's lifetime: 10 to 43200 (Graph's bounds; the tenant's own
	// Temporary Access Pass policy may allow less). Default 480.
	LifetimeMinutes int
	// UsableOnce makes the pass good for one sign-in; default true.
	UsableOnce bool
}

// AccessRevocation says when a leaver's disable also revokes their sessions and password.
type AccessRevocation int

// Access revocation settings; the zero value is the default.
const (
	// RevokeAccessOnTermination ("terminations"): when HR terminates the worker or gives an end
	// date.
	RevokeAccessOnTermination AccessRevocation = iota
	// RevokeAccessOnAnyLeave ("allLeavers"): also when the account is disabled because the worker
	// is no longer in their source's full export (the policy's cut-off).
	RevokeAccessOnAnyLeave
	// RevokeAccessNever ("never"): a leaver is only disabled.
	RevokeAccessNever
)

var accessRevocationNames = map[string]AccessRevocation{
	"terminations": RevokeAccessOnTermination, "allLeavers": RevokeAccessOnAnyLeave, "never": RevokeAccessNever,
}

// Covers says whether a leave ends access: terminated says HR terminated the worker or gave an
// end date (rather than the worker vanishing from a full export).
func (r AccessRevocation) Covers(terminated bool) bool {
	switch r {
	case RevokeAccessOnAnyLeave:
		return true
	case RevokeAccessOnTermination:
		return terminated
	}
	return false
}

// Guard holds the mass-change thresholds: a batch that would disable or remove more than
// MaxChanges, or more than MaxShare of the accounts or memberships, within Window, is held.
type Guard struct {
	MaxChanges int
	MaxShare   float64
	// MinChangesForShare keeps the share rule from holding a single leaver in a small company.
	MinChangesForShare int
	Window             time.Duration
}

// Load reads and compiles the policy file at path.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return Parse(path, data)
}

// Default is the policy in force without a policy file: the UPN domain and group name prefix
// come from the environment (UPN_DOMAIN, GROUP_NAME_PREFIX); everything else is the built-in
// default.
func Default(upnDomain, groupNamePrefix string) (*Policy, error) {
	var b strings.Builder
	if upnDomain != "" {
		fmt.Fprintf(&b, "upnDomains: [%s]\n", strconv.Quote(upnDomain))
	}
	fmt.Fprintf(&b, "groups:\n  unit:\n    displayName: %s\n", yamlQuote(strconv.Quote(groupNamePrefix)+" + unit.name"))
	return Parse("<default policy>", []byte(b.String()))
}

func yamlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Built-in defaults, as CEL.
const (
	defaultUPNEmail = `worker.work_email.lowerAscii().endsWith("@" + domain) ? worker.work_email.lowerAscii().split("@")[0] : ""`
	defaultUPNName  = `coalesce([trimDots(mailSafe(first_name) + "." + mailSafe(worker.name.family_name)), mailSafe(worker.worker_id)])`
	defaultSAM      = `coalesce([left(mailSafe(first_name), 1) + mailSafe(worker.name.family_name), mailSafe(worker.worker_id)])`

	defaultUnitName        = `"Org - " + unit.name`
	defaultUnitDescription = `"Members of org unit " + unit_path.join(" > ") + " (managed by orgsync)"`
	defaultUnitNickname    = `"orgsync-unit-" + mailSafe(unit.org_unit_id)`

	defaultRollupName        = `"Org - " + unit.name + " (all)"`
	defaultRollupDescription = `"Everyone in org unit " + unit_path.join(" > ") + " and below (managed by orgsync)"`
	defaultRollupNickname    = `"orgsync-all-" + mailSafe(unit.org_unit_id)`
)

// Error is a problem with the policy file, at a line (the one type every parser of the shared
// policy file uses, policyfile.Error).
type Error = policyfile.Error

// Errors is every problem found in a policy file, in line order, so that one start (or one
// Plan) shows them all; errors.As finds each *Error in it (policyfile.Errors).
type Errors = policyfile.Errors

// Parse compiles a policy file's contents; name is the file's name for messages. It is for the
// policy the service runs (the operator's file): its expressions passed the static cost estimate,
// so only those with a comprehension, the only kind that can cost more than its input is long,
// pay for cost tracking at run time.
func Parse(name string, data []byte) (*Policy, error) {
	return parse(&parser{problems: policyfile.Problems{File: name}}, data)
}

// ParseUntrusted compiles a policy a caller sent (a Plan of a policy): every expression runs
// under the runtime cost limit, whatever it is.
func ParseUntrusted(name string, data []byte) (*Policy, error) {
	return parse(&parser{problems: policyfile.Problems{File: name}, trackAllCosts: true}, data)
}

func parse(p *parser, data []byte) (*Policy, error) {
	root, err := policyfile.Decode(p.problems.File, data)
	if err != nil {
		return nil, err
	}
	pol, err := p.policy(root)
	if err != nil {
		return nil, err
	}
	if err := p.problems.Err(); err != nil {
		return nil, err
	}
	return pol, nil
}

type parser struct {
	// trackAllCosts puts every expression, not only those with a comprehension, under the
	// runtime cost limit (ParseUntrusted).
	trackAllCosts bool
	// envs are built once per parse.
	workerEnv *cel.Env
	unitEnv   *cel.Env
	// problems are the problems found so far, and name the file: a part of the file that fails
	// (a section, an attribute, a rule, a candidate) is recorded and the parse goes on with the
	// next part.
	problems policyfile.Problems
	// memos numbers the memoised expressions of the parse (memoSet).
	memos *memoSet
}

func (p *parser) fail(n *yaml.Node, format string, args ...any) error {
	return p.problems.At(n, format, args...)
}

// keep records err (when there is one) and says whether there was none, so a caller can go on
// with the next independent part of the file.
func (p *parser) keep(err error) bool { return p.problems.Keep(err) }

// fields checks that n is a mapping with only the allowed keys and returns the values by key.
func (p *parser) fields(n *yaml.Node, what string, allowed ...string) (map[string]*yaml.Node, error) {
	return p.problems.Fields(n, what, allowed...)
}

func (p *parser) scalar(n *yaml.Node, what string) (string, error) {
	return p.problems.Scalar(n, what)
}

func (p *parser) intValue(n *yaml.Node, what string, lo, hi int) (int, error) {
	s, err := p.scalar(n, what)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, p.fail(n, "%s must be a whole number from %d to %d, not %q", what, lo, hi, s)
	}
	return v, nil
}

func (p *parser) boolValue(n *yaml.Node, what string) (bool, error) {
	s, err := p.scalar(n, what)
	if err != nil {
		return false, err
	}
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, p.fail(n, "%s must be true or false, not %q", what, s)
}

func (p *parser) durationValue(n *yaml.Node, what string) (time.Duration, error) {
	s, err := p.scalar(n, what)
	if err != nil {
		return 0, err
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.Atoi(days); err == nil && d >= 0 {
			return time.Duration(d) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, p.fail(n, "%s must be a duration such as 30d, 12h or 90m, not %q", what, s)
	}
	return d, nil
}

func (p *parser) stringList(n *yaml.Node, what string) ([]*yaml.Node, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.fail(n, "%s must be a list", what)
	}
	for _, item := range n.Content {
		if item.Kind != yaml.ScalarNode {
			return nil, p.fail(item, "each item of %s must be a single value", what)
		}
	}
	return n.Content, nil
}

// compile type-checks a CEL expression in env and checks its result type.
func (p *parser) compile(n *yaml.Node, what string, env *cel.Env, want *cel.Type) (*Expr, error) {
	src, err := p.scalar(n, what)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(src) == "" {
		return nil, p.fail(n, "%s is empty", what)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		first := iss.Errors()[0]
		line := n.Line
		if first.Location != nil && first.Location.Line() > 1 {
			line += first.Location.Line() - 1
			if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				line++
			}
		}
		return nil, p.fail(&yaml.Node{Line: line}, "%s: CEL: %s (in %q)", what, first.Message, src)
	}
	if !ast.OutputType().IsExactType(want) {
		return nil, p.fail(n, "%s must be a %s expression, but %q is a %s", what, want, src, ast.OutputType())
	}
	// Reject at load what is sure to be too costly for some input: nested comprehensions over
	// lists, repeated splits of long strings. What passes is still bounded at run time.
	estimate, err := env.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		return nil, p.fail(n, "%s: CEL cost estimate: %v", what, err)
	}
	if estimate.Max > CostLimit {
		return nil, p.fail(n, "%s: CEL: the expression %s, over the limit of %d per evaluation (in %q); avoid comprehensions nested over lists or split strings",
			what, costString(estimate.Max), CostLimit, src)
	}
	// Cost tracking is most of an evaluation's allocations (docs/BENCHMARKS.md): an expression
	// without a comprehension costs at most in proportion to its input, which the estimate above
	// and hr-ingest's field lengths bound, so it runs untracked unless the policy came from a caller.
	loops := len(celast.MatchDescendants(celast.NavigateAST(ast.NativeRep()), celast.KindMatcher(celast.ComprehensionKind))) > 0
	programOpts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if loops || p.trackAllCosts {
		programOpts = append(programOpts,
			cel.CostLimit(CostLimit),
			cel.CostTracking(actualCosts{}),
			cel.InterruptCheckFrequency(interruptEvery),
		)
	}
	prg, err := env.Program(ast, programOpts...)
	if err != nil {
		return nil, p.fail(n, "%s: CEL: %v", what, err)
	}
	expr := &Expr{Source: src, At: fmt.Sprintf("%s:%d", p.problems.File, n.Line), What: what, program: prg, loops: loops}
	if env == p.workerEnv {
		if expr.memo = memoInputsOf(ast.NativeRep(), loops); expr.memo != nil {
			if p.memos == nil {
				p.memos = &memoSet{}
			}
			expr.memo.set, expr.memo.slot = p.memos, p.memos.slots
			p.memos.slots++
		}
	}
	return expr, nil
}

// costString renders an estimated cost; CEL's "unbounded" is the largest uint64.
func costString(cost uint64) string {
	if cost == math.MaxUint64 {
		return "has no cost bound"
	}
	return "may cost up to " + strconv.FormatUint(cost, 10)
}

// builtin compiles a built-in default expression.
func (p *parser) builtin(src string, env *cel.Env, want *cel.Type) *Expr {
	expr, err := p.compile(&yaml.Node{Kind: yaml.ScalarNode, Value: src}, "built-in default", env, want)
	if err != nil {
		panic(fmt.Sprintf("built-in policy expression %q does not compile: %v", src, err))
	}
	expr.At = "built-in"
	return expr
}

func (p *parser) policy(root *yaml.Node) (*Policy, error) {
	var err error
	if p.workerEnv, err = newEnv(workerVarDecls...); err != nil {
		return nil, fmt.Errorf("policy: CEL environment: %w", err)
	}
	if p.unitEnv, err = newEnv(unitVarDecls...); err != nil {
		return nil, fmt.Errorf("policy: CEL environment: %w", err)
	}
	// The file is shared: "sources" belongs to hr-ingest, which checks it (org-model reads only
	// each source's hierarchy); any other unknown top-level key is a mistake.
	top, err := p.fields(root, "the policy", "timezone", "scope", "upnDomains", "identifiers", "mapping", "groups", "lifecycle", "guard", "sources")
	if err != nil {
		return nil, err
	}
	pol := &Policy{
		File:      p.problems.File,
		Location:  time.UTC,
		Mapping:   map[string]map[string]*Expr{},
		Lifecycle: Lifecycle{PreCreateDays: 7, LeaverMode: LeaverDisable, FirstDayCredential: FirstDayCredential{LifetimeMinutes: 480, UsableOnce: true}},
		Guard:     Guard{MaxChanges: 500, MaxShare: 0.2, MinChangesForShare: 10, Window: time.Hour},
	}
	if n, ok := top["timezone"]; ok {
		name, err := p.scalar(n, "timezone")
		if p.keep(err) {
			if pol.Location, err = time.LoadLocation(name); err != nil || name == "" || name == "Local" {
				pol.Location = time.UTC
				p.keep(p.fail(n, "timezone %q is not an IANA time zone such as Europe/London", name))
			}
		}
	}
	if n, ok := top["scope"]; ok {
		pol.Scope, err = p.compile(n, "scope", p.workerEnv, cel.BoolType)
		p.keep(err)
	}
	if n, ok := top["upnDomains"]; ok {
		items, err := p.stringList(n, "upnDomains")
		p.keep(err)
		for _, item := range items {
			d := strings.ToLower(strings.TrimSpace(item.Value))
			if d == "" || strings.ContainsAny(d, "@ /") || !strings.Contains(d, ".") {
				p.keep(p.fail(item, "%q is not a domain name such as corp.example.com", item.Value))
				continue
			}
			pol.UPNDomains = append(pol.UPNDomains, d)
		}
	}
	// Each section stands alone: a problem in one does not hide the problems of the next.
	p.keep(p.identifiers(top["identifiers"], pol))
	p.keep(p.mapping(top["mapping"], pol))
	p.keep(p.groups(top["groups"], pol))
	p.keep(p.lifecycle(top["lifecycle"], pol))
	p.keep(p.guard(top["guard"], pol))
	p.keep(p.sources(top["sources"], pol))
	return pol, nil
}

func (p *parser) exprList(n *yaml.Node, what string, env *cel.Env) ([]*Expr, error) {
	items, err := p.stringList(n, what)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, p.fail(n, "%s needs at least one candidate", what)
	}
	out := make([]*Expr, 0, len(items))
	for _, item := range items {
		expr, err := p.compile(item, what, env, cel.StringType)
		if p.keep(err) {
			out = append(out, expr)
		}
	}
	return out, nil
}

func (p *parser) identifiers(n *yaml.Node, pol *Policy) error {
	pol.Identifiers = Identifiers{
		UserPrincipalName: []*Expr{p.builtin(defaultUPNEmail, p.workerEnv, cel.StringType), p.builtin(defaultUPNName, p.workerEnv, cel.StringType)},
		SAMAccountName:    []*Expr{p.builtin(defaultSAM, p.workerEnv, cel.StringType)},
		Regenerate:        RegenerateNever,
	}
	if n == nil {
		return nil
	}
	f, err := p.fields(n, "identifiers", "userPrincipalName", "sAMAccountName", "regenerate", "regenerateOnNameChange")
	if err != nil {
		return err
	}
	if v, ok := f["userPrincipalName"]; ok {
		if pol.Identifiers.UserPrincipalName, err = p.exprList(v, "identifiers.userPrincipalName", p.workerEnv); err != nil {
			return err
		}
	}
	if v, ok := f["sAMAccountName"]; ok {
		if pol.Identifiers.SAMAccountName, err = p.exprList(v, "identifiers.sAMAccountName", p.workerEnv); err != nil {
			return err
		}
	}
	if v, ok := f["regenerate"]; ok {
		mode, err := p.scalar(v, "identifiers.regenerate")
		if err != nil {
			return err
		}
		if pol.Identifiers.Regenerate = Regenerate(mode); pol.Identifiers.Regenerate != RegenerateNever && pol.Identifiers.Regenerate != RegenerateOnNameChange {
			return p.fail(v, "identifiers.regenerate must be %q or %q, not %q", RegenerateNever, RegenerateOnNameChange, mode)
		}
	}
	// regenerateOnNameChange is the older spelling of regenerate: onNameChange.
	if v, ok := f["regenerateOnNameChange"]; ok {
		if _, both := f["regenerate"]; both {
			return p.fail(v, "identifiers.regenerateOnNameChange and identifiers.regenerate say the same thing: keep regenerate")
		}
		on, err := p.boolValue(v, "identifiers.regenerateOnNameChange")
		if err != nil {
			return err
		}
		if on {
			pol.Identifiers.Regenerate = RegenerateOnNameChange
		}
	}
	return nil
}

func (p *parser) mapping(n *yaml.Node, pol *Policy) error {
	if n == nil {
		return nil
	}
	f, err := p.fields(n, "mapping", "entra", "ad")
	if err != nil {
		return err
	}
	for target, known := range map[string]func(string) bool{"entra": targetattr.IsEntra, "ad": targetattr.IsAD} {
		v, ok := f[target]
		if !ok {
			continue
		}
		attrs, err := p.fields(v, "mapping."+target)
		if err != nil {
			return err
		}
		pol.Mapping[target] = map[string]*Expr{}
		for i := 0; i+1 < len(v.Content); i += 2 {
			key := v.Content[i]
			if !known(key.Value) {
				p.keep(p.fail(key, "unknown %s attribute %q in mapping.%s", target, key.Value, target))
				continue
			}
			value, ok := attrs[key.Value]
			if !ok {
				continue // a duplicate key, already reported
			}
			expr, err := p.compile(value, "mapping."+target+"."+key.Value, p.workerEnv, cel.StringType)
			if p.keep(err) {
				pol.Mapping[target][key.Value] = expr
			}
		}
	}
	return nil
}

func (p *parser) unitTemplate(n *yaml.Node, what string, t *UnitGroupTemplate, canDisable bool) error {
	if n == nil {
		return nil
	}
	allowed := []string{"displayName", "description", "mailNickname"}
	if canDisable {
		allowed = append(allowed, "enabled")
	}
	f, err := p.fields(n, what, allowed...)
	if err != nil {
		return err
	}
	if canDisable {
		// Naming the template at all turns the group on, unless enabled says otherwise.
		t.Enabled = true
	}
	if v, ok := f["enabled"]; ok {
		if t.Enabled, err = p.boolValue(v, what+".enabled"); err != nil {
			return err
		}
	}
	for key, dst := range map[string]**Expr{"displayName": &t.DisplayName, "description": &t.Description, "mailNickname": &t.MailNickname} {
		if v, ok := f[key]; ok {
			if *dst, err = p.compile(v, what+"."+key, p.unitEnv, cel.StringType); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *parser) groups(n *yaml.Node, pol *Policy) error {
	g := &pol.Groups
	g.Unit = UnitGroupTemplate{Enabled: true,
		DisplayName: p.builtin(defaultUnitName, p.unitEnv, cel.StringType), Description: p.builtin(defaultUnitDescription, p.unitEnv, cel.StringType),
		MailNickname: p.builtin(defaultUnitNickname, p.unitEnv, cel.StringType)}
	g.Rollup = UnitGroupTemplate{
		DisplayName: p.builtin(defaultRollupName, p.unitEnv, cel.StringType), Description: p.builtin(defaultRollupDescription, p.unitEnv, cel.StringType),
		MailNickname: p.builtin(defaultRollupNickname, p.unitEnv, cel.StringType)}
	g.Managers = ManagerGroups{PeopleManagersName: "People managers", UnitManagersName: "Org unit managers",
		PeopleManagersNickname: "orgsync-people-managers", UnitManagersNickname: "orgsync-unit-managers"}
	if n == nil {
		return nil
	}
	f, err := p.fields(n, "groups", "unit", "rollup", "managers", "rules", "licenses")
	if err != nil {
		return err
	}
	p.keep(p.unitTemplate(f["unit"], "groups.unit", &g.Unit, false))
	p.keep(p.unitTemplate(f["rollup"], "groups.rollup", &g.Rollup, true))
	if v, ok := f["managers"]; ok {
		mf, err := p.fields(v, "groups.managers", "enabled", "peopleManagers", "unitManagers")
		if err != nil {
			return err
		}
		g.Managers.Enabled = true
		if e, ok := mf["enabled"]; ok {
			if g.Managers.Enabled, err = p.boolValue(e, "groups.managers.enabled"); err != nil {
				return err
			}
		}
		if e, ok := mf["peopleManagers"]; ok {
			if g.Managers.PeopleManagersName, err = p.scalar(e, "groups.managers.peopleManagers"); err != nil {
				return err
			}
		}
		if e, ok := mf["unitManagers"]; ok {
			if g.Managers.UnitManagersName, err = p.scalar(e, "groups.managers.unitManagers"); err != nil {
				return err
			}
		}
	}
	if v, ok := f["licenses"]; ok {
		p.groupLicenses(v, g)
	}
	if v, ok := f["rules"]; ok {
		if v.Kind != yaml.SequenceNode {
			return p.fail(v, "groups.rules must be a list")
		}
		seen := map[string]bool{}
		for _, item := range v.Content {
			if rule, ok := p.ruleGroup(item, seen); ok {
				g.Rules = append(g.Rules, rule)
			}
		}
	}
	return nil
}

// groupLicenses reads groups.licenses: group keys to lists of {skuId, disabledPlans}. Every
// problem is recorded, each with its line.
func (p *parser) groupLicenses(n *yaml.Node, g *Groups) {
	if n.Kind != yaml.MappingNode {
		p.keep(p.fail(n, "groups.licenses must map group keys to lists of licences"))
		return
	}
	g.Licenses = map[string][]GroupLicense{}
	guid := func(node *yaml.Node, what string) (string, bool) {
		value, err := p.scalar(node, what)
		if !p.keep(err) {
			return "", false
		}
		if !guidPattern.MatchString(value) {
			return "", p.keep(p.fail(node, "%s must be a GUID (as Graph's subscribedSkus lists it), not %q", what, value))
		}
		return strings.ToLower(value), true
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		keyNode, list := n.Content[i], n.Content[i+1]
		groupKey := keyNode.Value
		what := "groups.licenses." + groupKey
		if list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
			g.Licenses[groupKey] = nil
			continue
		}
		if list.Kind != yaml.SequenceNode {
			p.keep(p.fail(list, "%s must be a list of licences ({skuId, disabledPlans})", what))
			continue
		}
		licenses := []GroupLicense{}
		for _, item := range list.Content {
			lf, err := p.fields(item, what+" item", "skuId", "disabledPlans")
			if !p.keep(err) {
				continue
			}
			skuNode, ok := lf["skuId"]
			if !ok {
				p.keep(p.fail(item, "%s: a licence needs a skuId", what))
				continue
			}
			license := GroupLicense{}
			if license.SkuID, ok = guid(skuNode, what+".skuId"); !ok {
				continue
			}
			if plans, given := lf["disabledPlans"]; given {
				if plans.Kind != yaml.SequenceNode {
					p.keep(p.fail(plans, "%s.disabledPlans must be a list of service plan ids", what))
					continue
				}
				for _, planNode := range plans.Content {
					if plan, ok := guid(planNode, what+".disabledPlans"); ok {
						license.DisabledPlans = append(license.DisabledPlans, plan)
					}
				}
			}
			if slices.ContainsFunc(licenses, func(l GroupLicense) bool { return l.SkuID == license.SkuID }) {
				p.keep(p.fail(skuNode, "%s names SKU %s twice", what, license.SkuID))
				continue
			}
			licenses = append(licenses, license)
		}
		g.Licenses[groupKey] = licenses
	}
}

// ruleGroup reads one item of groups.rules; a problem is recorded and the item left out.
func (p *parser) ruleGroup(item *yaml.Node, seen map[string]bool) (RuleGroup, bool) {
	var rule RuleGroup
	rf, err := p.fields(item, "a rule group", "key", "displayName", "description", "mailNickname", "filter")
	if !p.keep(err) {
		return rule, false
	}
	keyNode, ok := rf["key"]
	if !ok {
		return rule, p.keep(p.fail(item, "a rule group needs a key"))
	}
	if rule.Key, err = p.scalar(keyNode, "groups.rules.key"); !p.keep(err) {
		return rule, false
	}
	if rule.Key == "" || MailSafe(rule.Key) != rule.Key {
		return rule, p.keep(p.fail(keyNode, "rule group key %q must be lower-case letters, digits and dashes", rule.Key))
	}
	if seen[rule.Key] {
		return rule, p.keep(p.fail(keyNode, "rule group key %q is used twice", rule.Key))
	}
	seen[rule.Key] = true
	ok = true
	rule.DisplayName, rule.MailNickname = "Rule - "+rule.Key, "orgsync-rule-"+rule.Key
	for _, field := range []struct {
		key string
		dst *string
	}{{"displayName", &rule.DisplayName}, {"description", &rule.Description}, {"mailNickname", &rule.MailNickname}} {
		if e, found := rf[field.key]; found {
			value, err := p.scalar(e, "groups.rules."+field.key)
			if ok = p.keep(err) && ok; err == nil {
				*field.dst = value
			}
		}
	}
	filter, found := rf["filter"]
	if !found {
		return rule, p.keep(p.fail(item, "rule group %q needs a filter", rule.Key))
	}
	if rule.Filter, err = p.compile(filter, "groups.rules["+rule.Key+"].filter", p.workerEnv, cel.BoolType); !p.keep(err) {
		return rule, false
	}
	return rule, ok
}

func (p *parser) lifecycle(n *yaml.Node, pol *Policy) error {
	if n == nil {
		return nil
	}
	f, err := p.fields(n, "lifecycle", "preCreateDays", "leaverMode", "membershipGrace", "disableAt", "revokeAccess", "firstDayCredential")
	if err != nil {
		return err
	}
	l := &pol.Lifecycle
	if v, ok := f["preCreateDays"]; ok {
		days, err := p.intValue(v, "lifecycle.preCreateDays", 0, 365)
		if p.keep(err) {
			l.PreCreateDays = days
		}
	}
	if v, ok := f["leaverMode"]; ok {
		mode, err := p.scalar(v, "lifecycle.leaverMode")
		switch {
		case !p.keep(err):
		case LeaverMode(mode) != LeaverDisable && LeaverMode(mode) != LeaverLeaveDateOnly:
			p.keep(p.fail(v, "lifecycle.leaverMode must be %q or %q, not %q", LeaverDisable, LeaverLeaveDateOnly, mode))
		default:
			l.LeaverMode = LeaverMode(mode)
		}
	}
	if v, ok := f["membershipGrace"]; ok {
		grace, err := p.durationValue(v, "lifecycle.membershipGrace")
		if p.keep(err) {
			l.MembershipGrace = grace
		}
	}
	if v, ok := f["disableAt"]; ok {
		at, err := p.scalar(v, "lifecycle.disableAt")
		switch {
		case !p.keep(err):
		case at == "startOfEndDate":
			l.DisableAtStartOfEndDate = true
		case at == "endOfEndDate":
		default:
			p.keep(p.fail(v, "lifecycle.disableAt must be startOfEndDate or endOfEndDate, not %q", at))
		}
	}
	if v, ok := f["revokeAccess"]; ok {
		name, err := p.scalar(v, "lifecycle.revokeAccess")
		revocation, known := accessRevocationNames[name]
		switch {
		case !p.keep(err):
		case !known:
			p.keep(p.fail(v, "lifecycle.revokeAccess must be terminations, allLeavers or never, not %q", name))
		default:
			l.RevokeAccess = revocation
		}
	}
	if v, ok := f["firstDayCredential"]; ok {
		p.firstDayCredential(v, &l.FirstDayCredential)
	}
	return nil
}

// firstDayCredential reads lifecycle.firstDayCredential: enabled, lifetimeMinutes, usableOnce.
func (p *parser) firstDayCredential(n *yaml.Node, c *FirstDayCredential) {
	f, err := p.fields(n, "lifecycle.firstDayCredential", "enabled", "lifetimeMinutes", "usableOnce")
	if !p.keep(err) {
		return
	}
	if v, ok := f["enabled"]; ok {
		on, err := p.boolValue(v, "lifecycle.firstDayCredential.enabled")
		if p.keep(err) {
			c.Enabled = on
		}
	}
	if v, ok := f["lifetimeMinutes"]; ok {
		minutes, err := p.intValue(v, "lifecycle.firstDayCredential.lifetimeMinutes", 10, 43200)
		if p.keep(err) {
			c.LifetimeMinutes = minutes
		}
	}
	if v, ok := f["usableOnce"]; ok {
		once, err := p.boolValue(v, "lifecycle.firstDayCredential.usableOnce")
		if p.keep(err) {
			c.UsableOnce = once
		}
	}
}

func (p *parser) guard(n *yaml.Node, pol *Policy) error {
	if n == nil {
		return nil
	}
	f, err := p.fields(n, "guard", "maxChanges", "maxShare", "minChangesForShare", "window")
	if err != nil {
		return err
	}
	g := &pol.Guard
	if v, ok := f["maxChanges"]; ok {
		changes, err := p.intValue(v, "guard.maxChanges", 0, 1<<30)
		if p.keep(err) {
			g.MaxChanges = changes
		}
	}
	if v, ok := f["maxShare"]; ok {
		if s, err := p.scalar(v, "guard.maxShare"); p.keep(err) {
			share, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
			if err == nil && strings.HasSuffix(s, "%") {
				share /= 100
			}
			if err != nil || share < 0 || share > 1 {
				p.keep(p.fail(v, "guard.maxShare must be a share such as 0.2 or 20%%, not %q", s))
			} else {
				g.MaxShare = share
			}
		}
	}
	if v, ok := f["minChangesForShare"]; ok {
		changes, err := p.intValue(v, "guard.minChangesForShare", 0, 1<<30)
		if p.keep(err) {
			g.MinChangesForShare = changes
		}
	}
	if v, ok := f["window"]; ok {
		window, err := p.durationValue(v, "guard.window")
		if p.keep(err) {
			g.Window = window
		}
	}
	return nil
}
