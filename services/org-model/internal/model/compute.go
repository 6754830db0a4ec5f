package model

import (
	"strings"
	"time"

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

// computeWorker is a worker's user and memberships in every target at now.
func (m *Model) computeWorker(st *workerState, now time.Time) []*orgsyncv1.DesiredObject {
	phase := m.phase(st, now)
	if phase == PhaseNone {
		return nil
	}
	w := st.current.record
	vars := m.workerVars(w)
	var groupKeys []string
	if phase == PhaseActive || phase == PhaseLeft {
		groupKeys = m.groupsOf(st, vars, phase, now)
	}
	groupKeys = m.grantedGroups(st, groupKeys, phase, now)
	d := lifecycleDates(st, st.current, m.pol)
	out := make([]*orgsyncv1.DesiredObject, 0, len(m.targets)*(1+len(groupKeys)))
	for _, target := range m.targets {
		ids, ok := m.ids.assigned[targetWorker{target, st.id}]
		if !ok {
			// No valid identifier: no account in this target, and so no memberships
			// (IdentifierProblems says why).
			continue
		}
		block := &userObject{}
		m.desiredUser(&block.user, target, st, ids, vars, phase, d, now)
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

// groupsOf lists the groups a worker with memberships belongs to directly, in a stable order.
func (m *Model) groupsOf(st *workerState, vars *policy.WorkerVars, phase Phase, now time.Time) []string {
	var keys []string
	if unit, ok := m.units[st.current.record.GetOrgUnitId()]; ok && !unit.GetDeleted() {
		keys = append(keys, GroupKey(unit.GetOrgUnitId()))
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
			m.evalErrors["worker "+st.id] = err.Error()
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
	for report := range m.reportsOf[workerID] {
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

// desiredUser fills user, a zero DesiredUser, with the worker's user in target.
func (m *Model) desiredUser(user *orgsyncv1.DesiredUser, target orgsyncv1.Target, st *workerState, ids Assignment, vars *policy.WorkerVars, phase Phase, d dates, now time.Time) {
	w := st.current.record
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
		EmployeeHireDate:  dateTimestamp(w.GetHireDate()),
		ManagerWorkerId:   m.resolveManager(target, w.GetManagerWorkerId(), now),
		CostCenter:        w.GetCostCenter(),
		Division:          w.GetDivision(),
		BusinessPhone:     w.GetPhoneNumber(),
	}
	if !d.leave.IsZero() {
		user.EmployeeLeaveDateTime = timestamppb.New(d.leave)
	}
	targetName := TargetName(target)
	if target == orgsyncv1.Target_TARGET_AD {
		user.Attributes = map[string]string{identifier.PropertySAMAccountName: ids.SAMAccountName}
	}
	for attribute, expr := range m.pol.Mapping[targetName] {
		value, err := expr.String(vars)
		if err != nil {
			m.evalErrors["worker "+st.id] = err.Error()
			continue
		}
		if set, ok := userFields[attribute]; ok && target == orgsyncv1.Target_TARGET_ENTRA {
			set(user, value)
			continue
		}
		if user.Attributes == nil {
			user.Attributes = map[string]string{}
		}
		user.Attributes[attribute] = value
	}
	if target == orgsyncv1.Target_TARGET_ENTRA && user.GetMail() != "" && !identifier.ValidMail(user.GetMail()) {
		// Graph refuses the whole user for a mail it cannot store (diacritics in a work
		// e-mail): the account is made without it, and status says why.
		user.Mail = ""
		m.evalErrors["worker "+st.id] = "mail left unset in entra: the work e-mail is not an address Graph accepts (ASCII only, one @, a host name)"
	}
}

func dateTimestamp(d *orgsyncv1.Date) *timestamppb.Timestamp {
	if d.GetYear() == 0 {
		return nil
	}
	return timestamppb.New(time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, time.UTC))
}

// computeUnit is a unit's group, its roll-up group, and the roll-up nesting, in every target.
func (m *Model) computeUnit(unitID string) []*orgsyncv1.DesiredObject {
	delete(m.evalErrors, "unit "+unitID)
	unit, ok := m.units[unitID]
	if !ok || unit.GetDeleted() {
		return nil
	}
	_, names := m.cachedUnitChain(unitID)
	vars := &policy.UnitVars{Unit: unit, UnitPath: names, Context: m.ctx}
	var out []*orgsyncv1.DesiredObject
	for _, target := range m.targets {
		out = append(out, &orgsyncv1.DesiredObject{Target: target, Key: GroupKey(unitID), Object: &orgsyncv1.DesiredObject_Group{
			Group: m.unitGroup(GroupKey(unitID), orgsyncv1.GroupKind_GROUP_KIND_ORG_UNIT, m.pol.Groups.Unit, vars),
		}})
		if !m.pol.Groups.Rollup.Enabled {
			continue
		}
		out = append(out,
			&orgsyncv1.DesiredObject{Target: target, Key: RollupGroupKey(unitID), Object: &orgsyncv1.DesiredObject_Group{
				Group: m.unitGroup(RollupGroupKey(unitID), orgsyncv1.GroupKind_GROUP_KIND_ROLLUP, m.pol.Groups.Rollup, vars),
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

func (m *Model) unitGroup(groupKey string, kind orgsyncv1.GroupKind, t policy.UnitGroupTemplate, vars *policy.UnitVars) *orgsyncv1.DesiredGroup {
	eval := func(expr *policy.Expr, fallback string) string {
		value, err := expr.String(vars)
		if err != nil || value == "" {
			if err != nil {
				m.evalErrors["unit "+vars.Unit.GetOrgUnitId()] = err.Error()
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
			out = append(out, &orgsyncv1.DesiredObject{Target: target, Key: g.GetGroupKey(), Object: &orgsyncv1.DesiredObject_Group{Group: g}})
		}
	}
	return out
}
