package model

import (
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/identifier"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

var employeeTypes = map[orgsyncv1.EmploymentType]string{
	orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_EMPLOYEE:   "Employee",
	orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_CONTRACTOR: "Contractor",
	orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_INTERN:     "Intern",
	orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_TEMPORARY:  "Temporary",
}

// Entra attributes that are fields of DesiredUser; other mapped attributes go to attributes.
var userFields = map[string]func(*orgsyncv1.DesiredUser, string){
	"displayName":    func(u *orgsyncv1.DesiredUser, v string) { u.DisplayName = v },
	"givenName":      func(u *orgsyncv1.DesiredUser, v string) { u.GivenName = v },
	"surname":        func(u *orgsyncv1.DesiredUser, v string) { u.Surname = v },
	"mail":           func(u *orgsyncv1.DesiredUser, v string) { u.Mail = v },
	"jobTitle":       func(u *orgsyncv1.DesiredUser, v string) { u.JobTitle = v },
	"department":     func(u *orgsyncv1.DesiredUser, v string) { u.Department = v },
	"companyName":    func(u *orgsyncv1.DesiredUser, v string) { u.CompanyName = v },
	"officeLocation": func(u *orgsyncv1.DesiredUser, v string) { u.OfficeLocation = v },
	"employeeType":   func(u *orgsyncv1.DesiredUser, v string) { u.EmployeeType = v },
	"costCenter":     func(u *orgsyncv1.DesiredUser, v string) { u.CostCenter = v },
	"division":       func(u *orgsyncv1.DesiredUser, v string) { u.Division = v },
	"businessPhone":  func(u *orgsyncv1.DesiredUser, v string) { u.BusinessPhone = v },
}

// mappedAttribute is an attribute the policy maps in a target, with the DesiredUser field it sets
// (Entra's user fields, userFields), or nil when it goes to the user's attributes.
type mappedAttribute struct {
	name string
	expr *policy.Expr
	set  func(*orgsyncv1.DesiredUser, string)
}

// targetMapping is what the policy maps in a target, by attribute name: listed once rather than
// looked up for every user, and in an order, so that of two failing expressions the same one is
// reported each time.
type targetMapping struct {
	attributes []mappedAttribute
	// others counts the attributes that go to the user's attributes.
	others int
}

func mappingOf(pol *policy.Policy, target orgsyncv1.Target) *targetMapping {
	mapping, exprs := &targetMapping{}, pol.Mapping[TargetName(target)]
	for _, name := range slices.Sorted(maps.Keys(exprs)) {
		attribute := mappedAttribute{name: name, expr: exprs[name]}
		if target == orgsyncv1.Target_TARGET_ENTRA {
			attribute.set = userFields[name]
		}
		if attribute.set == nil {
			mapping.others++
		}
		mapping.attributes = append(mapping.attributes, attribute)
	}
	return mapping
}

// workerComputation is what computing workers' objects uses besides the model, which it only
// reads, so that many workers can be computed at once (computeInParallel): the memo, and scratch
// space reused from one worker to the next. One goroutine uses it at a time.
type workerComputation struct {
	memo *policy.Memo
	// evalError is the last expression error met, for the model's evalErrors.
	evalError string
	vars      policy.WorkerVars
	groupKeys []string
	// hireDates are the hire date timestamps made so far: the users hired on one day share one
	// (desired objects are never changed in place).
	hireDates map[dateKey]*timestamppb.Timestamp
	// managers, when set, remembers resolveManager's answers for one computation, in which the
	// model does not change: a manager's reports ask the same question (computeInParallel).
	managers map[targetWorker]string
}

type dateKey struct{ year, month, day int32 }

// hireDatesLimit bounds the hire date timestamps a workerComputation shares.
const hireDatesLimit = 1 << 14

// hireDate is dateTimestamp(d), shared with the users hired the same day.
func (c *workerComputation) hireDate(d *orgsyncv1.Date) *timestamppb.Timestamp {
	key := dateKey{d.GetYear(), d.GetMonth(), d.GetDay()}
	if ts, ok := c.hireDates[key]; ok {
		return ts
	}
	ts := dateTimestamp(d)
	if c.hireDates == nil {
		c.hireDates = map[dateKey]*timestamppb.Timestamp{}
	}
	if len(c.hireDates) < hireDatesLimit {
		c.hireDates[key] = ts
	}
	return ts
}

// computeWorker appends a worker's user and memberships in every target at now to out. It only
// reads the model; expression errors go to c.evalError.
func (m *Model) computeWorker(out []*orgsyncv1.DesiredObject, st *workerState, now time.Time, c *workerComputation) []*orgsyncv1.DesiredObject {
	if st == nil || st.current == nil || !st.inScope {
		return out
	}
	d := lifecycleDates(st, st.current, m.pol)
	phase := d.phase(now)
	if phase == PhaseNone {
		return out
	}
	w := st.current.record
	vars := &c.vars
	m.fillWorkerVars(vars, w, c.memo)
	groupKeys := c.groupKeys[:0]
	if phase == PhaseActive || phase == PhaseLeft {
		groupKeys = m.groupsOf(groupKeys, st, vars, phase, now, c)
		c.groupKeys = groupKeys
	}
	groupKeys = m.grantedGroups(st, groupKeys, phase, now, c)
	for _, target := range m.targets {
		ids, ok := m.ids.assigned[targetWorker{target, st.id}]
		if !ok {
			// No valid identifier: no account in this target, and so no memberships
			// (IdentifierProblems says why).
			continue
		}
		block := &userObject{}
		m.desiredUser(&block.user, target, st.source, ids, vars, phase, d, now, c)
		block.payload.User = &block.user
		block.object.Target, block.object.Key, block.object.Object = target, st.id, &block.payload
		out = append(out, &block.object)
		for _, groupKey := range groupKeys {
			out = append(out, membership(target, groupKey, orgsyncv1.MemberKind_MEMBER_KIND_USER, st.id))
		}
	}
	return out
}

// userObject and membershipObject hold the messages of one desired object together, so that
// making it takes one allocation instead of three: a full computation makes hundreds of
// thousands, and the messages live and die together.
type userObject struct {
	object  orgsyncv1.DesiredObject
	payload orgsyncv1.DesiredObject_User
	user    orgsyncv1.DesiredUser
}

type membershipObject struct {
	object  orgsyncv1.DesiredObject
	payload orgsyncv1.DesiredObject_Membership
	member  orgsyncv1.DesiredMembership
}

func membership(target orgsyncv1.Target, groupKey string, kind orgsyncv1.MemberKind, memberKey string) *orgsyncv1.DesiredObject {
	block := &membershipObject{}
	block.member.GroupKey, block.member.MemberKind, block.member.MemberKey = groupKey, kind, memberKey
	block.payload.Membership = &block.member
	block.object.Target, block.object.Key, block.object.Object = target, groupKey+"/"+memberKey, &block.payload
	return &block.object
}

// groupsOf appends to keys the groups a worker with memberships belongs to directly, in a stable
// order.
func (m *Model) groupsOf(keys []string, st *workerState, vars *policy.WorkerVars, phase Phase, now time.Time, c *workerComputation) []string {
	// vars are the worker's (fillWorkerVars): their unit is the record's.
	if unit := vars.Unit; unit != nil && !unit.GetDeleted() {
		keys = append(keys, m.cachedGroupKey(unit.GetOrgUnitId()))
	}
	if m.pol.Groups.Managers.Enabled && phase == PhaseActive {
		if m.isPeopleManager(st.id, now) {
			keys = append(keys, PeopleManagersGroup)
		}
		if m.managesUnit(st.id) {
			keys = append(keys, UnitManagersGroup)
		}
	}
	for _, rule := range m.pol.Groups.Rules {
		in, err := rule.Filter.Bool(vars)
		if err != nil {
			c.evalError = err.Error()
			continue
		}
		if in {
			keys = append(keys, RuleGroupKey(rule.Key))
		}
	}
	return keys
}

// isPeopleManager says whether HR names the worker as the manager of someone with an account.
func (m *Model) isPeopleManager(workerID string, now time.Time) bool {
	for _, report := range m.reportsOf.of(workerID) {
		if m.hasAccount(m.workers[report], now) {
			return true
		}
	}
	return false
}

func (m *Model) managesUnit(workerID string) bool {
	for unitID := range m.unitsManagedBy[workerID] {
		if !m.units[unitID].GetDeleted() {
			return true
		}
	}
	return false
}

// resolvedManager is m.resolveManager, remembered in c.managers when it is set.
func (c *workerComputation) resolvedManager(m *Model, target orgsyncv1.Target, managerID string, now time.Time) string {
	if c.managers == nil || managerID == "" {
		return m.resolveManager(target, managerID, now)
	}
	key := targetWorker{target, managerID}
	resolved, ok := c.managers[key]
	if !ok {
		resolved = m.resolveManager(target, managerID, now)
		c.managers[key] = resolved
	}
	return resolved
}

// resolveManager is the manager link of a worker in target: their manager, or, when the manager
// has left, the nearest manager above who has not; empty when HR's manager is unknown so far or
// has no account in target for want of a valid identifier (the link is made once they have).
func (m *Model) resolveManager(target orgsyncv1.Target, managerID string, now time.Time) string {
	seen := map[string]bool{}
	for managerID != "" && !seen[managerID] {
		seen[managerID] = true
		st := m.workers[managerID]
		if st == nil || st.current == nil {
			return ""
		}
		if m.hasAccount(st, now) {
			if !m.hasIdentifiers(target, managerID) {
				return ""
			}
			return managerID
		}
		managerID = st.current.record.GetManagerWorkerId()
	}
	return ""
}

// desiredUser fills user, a zero DesiredUser, with the worker's user in target; hrSource is the
// source of the worker's newest record.
func (m *Model) desiredUser(user *orgsyncv1.DesiredUser, target orgsyncv1.Target, hrSource string, ids Assignment, vars *policy.WorkerVars, phase Phase, d dates, now time.Time, c *workerComputation) {
	w := vars.Worker
	name := w.GetName()
	displayName := name.GetDisplayName()
	if displayName == "" {
		displayName = strings.TrimSpace(policy.FirstName(name) + " " + name.GetFamilyName())
	}
	department := w.GetDepartment()
	if department == "" {
		department = vars.Unit.GetName()
	}
	enabled := phase == PhaseActive || (phase == PhaseLeft || phase == PhaseGone) && m.pol.Lifecycle.LeaverMode == policy.LeaverLeaveDateOnly
	*user = orgsyncv1.DesiredUser{
		WorkerId:          w.GetWorkerId(),
		AccountEnabled:    enabled,
		DisplayName:       displayName,
		GivenName:         policy.FirstName(name),
		Surname:           name.GetFamilyName(),
		UserPrincipalName: ids.UserPrincipalName,
		MailNickname:      ids.MailNickname,
		Mail:              w.GetWorkEmail(),
		JobTitle:          w.GetJobTitle(),
		Department:        department,
		CompanyName:       w.GetCompany(),
		OfficeLocation:    w.GetLocation(),
		EmployeeId:        w.GetWorkerId(),
		EmployeeType:      employeeTypes[w.GetEmploymentType()],
		EmployeeHireDate:  c.hireDate(w.GetHireDate()),
		ManagerWorkerId:   c.resolvedManager(m, target, w.GetManagerWorkerId(), now),
		CostCenter:        w.GetCostCenter(),
		Division:          w.GetDivision(),
		BusinessPhone:     w.GetPhoneNumber(),
		HrSource:          hrSource,
	}
	if !d.leave.IsZero() {
		user.EmployeeLeaveDateTime = timestamppb.New(d.leave)
	}
	if !enabled && (phase == PhaseLeft || phase == PhaseGone) && m.pol.Lifecycle.RevokeAccess.Covers(d.terminated) {
		// HR's time of the leave, not the time of this computation: the same after a restart or
		// a replay, so the writers do not revoke again (see DesiredUser.access_revoked_at).
		user.AccessRevokedAt = timestamppb.New(d.leave)
	}
	if first := m.pol.Lifecycle.FirstDayCredential; first.Enabled && target == orgsyncv1.Target_TARGET_ENTRA && phase == PhaseActive && !d.start.IsZero() {
		// The first day's start, HR's date: the same after a restart or a replay, so the writer
		// does not make a second pass for it (see DesiredUser.first_day_credential).
		user.FirstDayCredential = &orgsyncv1.FirstDayCredential{
			FirstDayAt: timestamppb.New(d.start), LifetimeMinutes: int32(first.LifetimeMinutes), IsUsableOnce: first.UsableOnce,
		}
	}
	user.HelpdeskCredential = m.grants.helpdeskCredential(w.GetWorkerId(), target, enabled)
	mapping := m.mappings[target]
	if target == orgsyncv1.Target_TARGET_AD {
		user.Attributes = make(map[string]string, 1+mapping.others)
		user.Attributes[identifier.PropertySAMAccountName] = ids.SAMAccountName
	}
	for _, attribute := range mapping.attributes {
		value, err := attribute.expr.String(vars)
		if err != nil {
			c.evalError = err.Error()
			continue
		}
		if attribute.set != nil {
			attribute.set(user, value)
			continue
		}
		if user.Attributes == nil {
			user.Attributes = make(map[string]string, mapping.others)
		}
		user.Attributes[attribute.name] = value
	}
	if target == orgsyncv1.Target_TARGET_ENTRA && user.GetMail() != "" && !identifier.ValidMail(user.GetMail()) {
		// Graph refuses the whole user for a mail it cannot store (diacritics in a work
		// e-mail): the account is made without it, and status says why.
		user.Mail = ""
		c.evalError = "mail left unset in entra: the work e-mail is not an address Graph accepts (ASCII only, one @, a host name)"
	}
}

// dateTimestamp is midnight UTC of an HR date, or nil when it is unset.
func dateTimestamp(d *orgsyncv1.Date) *timestamppb.Timestamp {
	if d.GetYear() == 0 {
		return nil
	}
	return timestamppb.New(time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, time.UTC))
}

// computeUnit is a unit's group, its roll-up group, and the roll-up nesting, in every target.
// An expression that fails sets *evalError. It only reads the model when the unit's chain and its
// parent's are cached already (computeInParallel).
func (m *Model) computeUnit(unitID string, evalError *string) []*orgsyncv1.DesiredObject {
	unit, ok := m.units[unitID]
	if !ok || unit.GetDeleted() {
		return nil
	}
	_, names := m.cachedUnitChain(unitID)
	vars := &policy.UnitVars{Unit: unit, UnitPath: names, Context: m.ctx}
	var out []*orgsyncv1.DesiredObject
	for _, target := range m.targets {
		out = append(out, &orgsyncv1.DesiredObject{Target: target, Key: GroupKey(unitID), Object: &orgsyncv1.DesiredObject_Group{
			Group: m.licensed(target, unitGroup(GroupKey(unitID), orgsyncv1.GroupKind_GROUP_KIND_ORG_UNIT, m.pol.Groups.Unit, vars, evalError)),
		}})
		if !m.pol.Groups.Rollup.Enabled {
			continue
		}
		out = append(out,
			&orgsyncv1.DesiredObject{Target: target, Key: RollupGroupKey(unitID), Object: &orgsyncv1.DesiredObject_Group{
				Group: m.licensed(target, unitGroup(RollupGroupKey(unitID), orgsyncv1.GroupKind_GROUP_KIND_ROLLUP, m.pol.Groups.Rollup, vars, evalError)),
			}},
			membership(target, RollupGroupKey(unitID), orgsyncv1.MemberKind_MEMBER_KIND_GROUP, GroupKey(unitID)))
		if parentID := unit.GetParentOrgUnitId(); m.nestable(unitID, parentID) {
			out = append(out, membership(target, RollupGroupKey(parentID), orgsyncv1.MemberKind_MEMBER_KIND_GROUP, RollupGroupKey(unitID)))
		}
	}
	return out
}

// nestable says whether a unit's roll-up group can be nested in its parent's: the parent exists,
// is not removed, and is not below the unit (a cycle).
func (m *Model) nestable(unitID, parentID string) bool {
	parent, ok := m.units[parentID]
	if !ok || parent.GetDeleted() {
		return false
	}
	ids, _ := m.cachedUnitChain(parentID)
	for _, id := range ids {
		if id == unitID {
			return false
		}
	}
	return true
}

func unitGroup(groupKey string, kind orgsyncv1.GroupKind, t policy.UnitGroupTemplate, vars *policy.UnitVars, evalError *string) *orgsyncv1.DesiredGroup {
	eval := func(expr *policy.Expr, fallback string) string {
		value, err := expr.String(vars)
		if err != nil || value == "" {
			if err != nil {
				*evalError = err.Error()
			}
			return fallback
		}
		return value
	}
	return &orgsyncv1.DesiredGroup{
		GroupKey:     groupKey,
		Kind:         kind,
		DisplayName:  eval(t.DisplayName, groupKey),
		Description:  eval(t.Description, ""),
		MailNickname: policy.MailSafe(eval(t.MailNickname, "orgsync-"+groupKey)),
		OrgUnitId:    vars.Unit.GetOrgUnitId(),
	}
}

// licensed is g as target has it: in Entra, with the licences the policy attaches to its key
// (groups.licenses); AD has no licences. g itself is not changed (it may serve every target).
func (m *Model) licensed(target orgsyncv1.Target, g *orgsyncv1.DesiredGroup) *orgsyncv1.DesiredGroup {
	licenses, managed := m.pol.Groups.Licenses[g.GetGroupKey()]
	if !managed || target != orgsyncv1.Target_TARGET_ENTRA {
		return g
	}
	withLicenses := proto.CloneOf(g)
	withLicenses.ManageLicenses = true
	for _, license := range licenses {
		withLicenses.Licenses = append(withLicenses.Licenses, &orgsyncv1.GroupLicense{SkuId: license.SkuID, DisabledPlanIds: slices.Clone(license.DisabledPlans)})
	}
	return withLicenses
}

// computeGlobal is the manager and rule groups in every target.
func (m *Model) computeGlobal() []*orgsyncv1.DesiredObject {
	var groups []*orgsyncv1.DesiredGroup
	if mg := m.pol.Groups.Managers; mg.Enabled {
		groups = append(groups,
			&orgsyncv1.DesiredGroup{GroupKey: PeopleManagersGroup, Kind: orgsyncv1.GroupKind_GROUP_KIND_MANAGERS, DisplayName: mg.PeopleManagersName,
				Description: "Everyone with direct reports (managed by orgsync)", MailNickname: mg.PeopleManagersNickname},
			&orgsyncv1.DesiredGroup{GroupKey: UnitManagersGroup, Kind: orgsyncv1.GroupKind_GROUP_KIND_MANAGERS, DisplayName: mg.UnitManagersName,
				Description: "The managers of org units (managed by orgsync)", MailNickname: mg.UnitManagersNickname})
	}
	for _, rule := range m.pol.Groups.Rules {
		description := rule.Description
		if description == "" {
			description = "Workers selected by the rule " + rule.Filter.Source + " (managed by orgsync)"
		}
		groups = append(groups, &orgsyncv1.DesiredGroup{GroupKey: RuleGroupKey(rule.Key), Kind: orgsyncv1.GroupKind_GROUP_KIND_RULE,
			DisplayName: rule.DisplayName, Description: description, MailNickname: rule.MailNickname})
	}
	var out []*orgsyncv1.DesiredObject
	for _, target := range m.targets {
		for _, g := range groups {
			out = append(out, &orgsyncv1.DesiredObject{Target: target, Key: g.GetGroupKey(), Object: &orgsyncv1.DesiredObject_Group{Group: m.licensed(target, g)}})
		}
	}
	return out
}
