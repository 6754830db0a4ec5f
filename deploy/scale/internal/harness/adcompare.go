package harness

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// ADLayout is where the runs' ad-writers keep orgsync's objects: one managed OU (Root) holding the
// users' default OU, the groups' OU, the leavers' OU and Staff, the tree the policy maps users
// into (one OU per second-level org unit, see PolicyWithAD).
type ADLayout struct {
	BaseDN                       string
	Root                         string
	Users, Groups, Leavers       string
	Staff                        string
	UnitOUs                      []string
	MarkerAttribute, MarkerValue string
}

// NewADLayout returns the layout below baseDN with an OU below Staff for each of unitNames. The
// names are used as they are in DNs and in the policy's CEL (which cannot escape them), so they
// must not hold a character DNs escape (synth's "Sales 12" do not).
func NewADLayout(baseDN string, unitNames []string) ADLayout {
	root := "OU=Orgsync," + baseDN
	l := ADLayout{
		BaseDN: baseDN, Root: root,
		Users: "OU=Users," + root, Groups: "OU=Groups," + root, Leavers: "OU=Leavers," + root, Staff: "OU=Staff," + root,
		// ad-writer's defaults: the chaos run does not change them.
		MarkerAttribute: "adminDescription", MarkerValue: "managed-by:orgsync",
	}
	for _, name := range unitNames {
		l.UnitOUs = append(l.UnitOUs, "OU="+name+","+l.Staff)
	}
	return l
}

// OUs are the layout's organisational units, parents first.
func (l ADLayout) OUs() []string {
	return append([]string{l.Root, l.Users, l.Groups, l.Leavers, l.Staff}, l.UnitOUs...)
}

// WriterEnv is ad-writer's AD_* configuration for the layout (the LDAP_* part comes from the DC).
func (l ADLayout) WriterEnv() []string {
	return Env("AD_BASE_DN", l.BaseDN, "AD_USERS_OU", l.Users, "AD_GROUPS_OU", l.Groups, "AD_LEAVERS_OU", l.Leavers,
		"AD_MANAGED_OUS", l.Root, "AD_MARKER_ATTRIBUTE", l.MarkerAttribute, "AD_MARKER_VALUE", l.MarkerValue)
}

// PolicyWithAD is PolicyYAML with a mapping for target ad, so that org-model publishes the AD
// desired state too: every user goes to the OU of its second-level org unit below layout.Staff
// (Staff itself for the root unit's workers), so a move between those units is a ModifyDN across
// OUs.
func PolicyWithAD(layout ADLayout) string {
	parent := `(unit_path.size() > 1 ? "OU=" + unit_path[1] + "," : "") + "` + layout.Staff + `"`
	return PolicyYAML + "mapping:\n  ad:\n    parentDistinguishedName: '" + strings.ReplaceAll(parent, "'", "''") + "'\n"
}

// ADEntry is a user or group read from the DC: its DN, its attributes by lower-case name, and for
// a group every member DN (all ranges).
type ADEntry struct {
	DN      string
	Attrs   map[string][]string
	Members []string
}

// Get returns the first value of the attribute name (any case), or "".
func (e ADEntry) Get(name string) string {
	if values := e.Attrs[strings.ToLower(name)]; len(values) > 0 {
		return values[0]
	}
	return ""
}

// ADSnapshot is every user and group below a layout's Root.
type ADSnapshot struct {
	Users  []ADEntry
	Groups []ADEntry
}

// uacDisabled is userAccountControl's ACCOUNTDISABLE bit.
const uacDisabled = 0x2

// groupTypeGlobalSecurity is the groupType of the global security groups ad-writer creates.
const groupTypeGlobalSecurity = "-2147483646"

// adUserAttributes are the AD attributes of a desired user by ad-writer's contract
// (docs/ad-writer.md), "" meaning absent. The manager, the enabled state and the OU are compared
// apart.
func adUserAttributes(u *orgsyncv1.DesiredUser) map[string]string {
	sam := u.GetAttributes()["sAMAccountName"]
	if sam == "" {
		sam = u.GetMailNickname()
	}
	if len(sam) > 20 {
		sam = sam[:20]
	}
	employeeID := u.GetEmployeeId()
	if employeeID == "" {
		employeeID = u.GetWorkerId()
	}
	attrs := map[string]string{
		"sAMAccountName": sam, "userPrincipalName": u.GetUserPrincipalName(), "givenName": u.GetGivenName(),
		"sn": u.GetSurname(), "displayName": u.GetDisplayName(), "mail": u.GetMail(), "title": u.GetJobTitle(),
		"department": u.GetDepartment(), "company": u.GetCompanyName(), "physicalDeliveryOfficeName": u.GetOfficeLocation(),
		"telephoneNumber": u.GetBusinessPhone(), "employeeID": employeeID, "employeeType": u.GetEmployeeType(),
		"division": u.GetDivision(),
	}
	for name, value := range u.GetAttributes() {
		if name != "parentDistinguishedName" {
			attrs[name] = value
		}
	}
	return attrs
}

// userParent is the OU a desired user lives in: the leavers' OU for a disabled leaver, else the
// mapped parentDistinguishedName, else the users' OU.
func (l ADLayout) userParent(u *orgsyncv1.DesiredUser) string {
	if !u.GetAccountEnabled() && u.GetEmployeeLeaveDateTime() != nil && l.Leavers != "" {
		return l.Leavers
	}
	if parent := u.GetAttributes()["parentDistinguishedName"]; parent != "" {
		return parent
	}
	return l.Users
}

func groupSAM(groupKey string) string {
	if len(groupKey) > 64 {
		return groupKey[:64]
	}
	return groupKey
}

// dnKey normalises a DN for comparison: attribute types and values lower-cased, escaping and
// spacing as go-ldap parses them.
func dnKey(dn string) string {
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return strings.ToLower(dn)
	}
	parts := make([]string, 0, len(parsed.RDNs))
	for _, rdn := range parsed.RDNs {
		values := make([]string, 0, len(rdn.Attributes))
		for _, a := range rdn.Attributes {
			values = append(values, strings.ToLower(a.Type)+"="+strings.ToLower(a.Value))
		}
		sort.Strings(values)
		parts = append(parts, strings.Join(values, "+"))
	}
	return strings.Join(parts, ",")
}

// parentKey is dnKey of dn's parent.
func parentKey(dn string) string {
	key := dnKey(dn)
	parsed, err := goldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) == 0 {
		return key
	}
	return dnKey((&goldap.DN{RDNs: parsed.RDNs[1:]}).String())
}

// CompareAD checks that the DC holds exactly the desired state for target ad below layout.Root:
// every desired user once (by employeeID) with ad-writer's attributes, enabled state, OU, marker,
// initial password and manager (compared by employeeID); every desired group once (by sAMAccountName = group key)
// as a global security group named by its display name in the groups' OU; exactly the desired
// members of each (users by employeeID, groups by key); no other user or group. A user not
// desired but disabled in the leavers' OU is counted as retired, not stray: ad-writer never
// deletes an account, it disables a removed worker's and moves it there.
func CompareAD(snap ADSnapshot, desired []*orgsyncv1.DesiredObject, layout ADLayout) Diff {
	var d Diff
	usersByEmployee := map[string][]ADEntry{}
	refOf := map[string]string{} // dnKey → "user:"+employeeID or "group:"+key
	for _, u := range snap.Users {
		employeeID := u.Get("employeeID")
		usersByEmployee[employeeID] = append(usersByEmployee[employeeID], u)
		refOf[dnKey(u.DN)] = "user:" + employeeID
	}
	groupsBySAM := map[string][]ADEntry{}
	for _, g := range snap.Groups {
		sam := strings.ToLower(g.Get("sAMAccountName"))
		groupsBySAM[sam] = append(groupsBySAM[sam], g)
		refOf[dnKey(g.DN)] = "group:" + sam
	}
	workerEmployee := map[string]string{}
	for _, obj := range desired {
		if u := obj.GetUser(); u != nil {
			employeeID := u.GetEmployeeId()
			if employeeID == "" {
				employeeID = u.GetWorkerId()
			}
			workerEmployee[u.GetWorkerId()] = employeeID
		}
	}
	wantUsers := map[string]bool{}
	wantGroups := map[string]bool{}
	groupKeys := map[string]string{}        // sAMAccountName (lower case) → group key
	members := map[string]map[string]bool{} // group sAMAccountName → member refs
	marked := func(e ADEntry) bool { return e.Get(layout.MarkerAttribute) == layout.MarkerValue }
	for _, obj := range desired {
		switch {
		case obj.GetUser() != nil:
			want := obj.GetUser()
			employeeID := workerEmployee[want.GetWorkerId()]
			d.Users++
			wantUsers[employeeID] = true
			got := usersByEmployee[employeeID]
			switch {
			case len(got) == 0:
				d.add(&d.Missing, "user %s: missing", employeeID)
				continue
			case len(got) > 1:
				d.add(&d.Duplicate, "user %s: %d accounts", employeeID, len(got))
			}
			parent := layout.userParent(want)
			user := got[0]
			for _, candidate := range got {
				if parentKey(candidate.DN) == dnKey(parent) {
					user = candidate
				}
			}
			var wrong []string
			for name, value := range adUserAttributes(want) {
				if have := user.Get(name); have != value {
					wrong = append(wrong, fmt.Sprintf("%s %q, want %q", name, have, value))
				}
			}
			uac, _ := strconv.Atoi(user.Get("userAccountControl"))
			if enabled := uac&uacDisabled == 0; enabled != want.GetAccountEnabled() {
				wrong = append(wrong, fmt.Sprintf("enabled %v, want %v", enabled, want.GetAccountEnabled()))
			}
			if parentKey(user.DN) != dnKey(parent) {
				wrong = append(wrong, fmt.Sprintf("DN %q, want below %q", user.DN, parent))
			}
			if !marked(user) {
				wrong = append(wrong, fmt.Sprintf("%s %q, want %q", layout.MarkerAttribute, user.Get(layout.MarkerAttribute), layout.MarkerValue))
			}
			// ad-writer adds an account without a password and sets the initial one in a second
			// write; the DC counts password sets in msDS-KeyVersionNumber, so an account still at
			// 1 lost that write (and may have been enabled without a password).
			if user.Get("msDS-KeyVersionNumber") == "1" {
				wrong = append(wrong, "initial password never set (msDS-KeyVersionNumber 1)")
			}
			manager := ""
			if dn := user.Get("manager"); dn != "" {
				manager = strings.TrimPrefix(refOf[dnKey(dn)], "user:")
				if manager == "" {
					manager = "outside: " + dn
				}
			}
			if wantManager := workerEmployee[want.GetManagerWorkerId()]; manager != wantManager {
				wrong = append(wrong, fmt.Sprintf("manager %q, want %q", manager, wantManager))
			}
			if len(wrong) > 0 {
				sort.Strings(wrong)
				d.add(&d.Wrong, "user %s: %s", employeeID, strings.Join(wrong, "; "))
			}
		case obj.GetGroup() != nil:
			want := obj.GetGroup()
			d.Groups++
			sam := strings.ToLower(groupSAM(want.GetGroupKey()))
			wantGroups[sam] = true
			groupKeys[sam] = want.GetGroupKey()
			if members[sam] == nil {
				members[sam] = map[string]bool{}
			}
			got := groupsBySAM[sam]
			switch {
			case len(got) == 0:
				d.add(&d.Missing, "group %s: missing", want.GetGroupKey())
				continue
			case len(got) > 1:
				d.add(&d.Duplicate, "group %s: %d groups", want.GetGroupKey(), len(got))
			}
			name := want.GetDisplayName()
			if name == "" {
				name = groupSAM(want.GetGroupKey())
			}
			group := got[0]
			var wrong []string
			for attr, value := range map[string]string{"displayName": name, "description": want.GetDescription(), "groupType": groupTypeGlobalSecurity} {
				if have := group.Get(attr); have != value {
					wrong = append(wrong, fmt.Sprintf("%s %q, want %q", attr, have, value))
				}
			}
			if wantDN := "CN=" + goldap.EscapeDN(name) + "," + layout.Groups; dnKey(group.DN) != dnKey(wantDN) {
				wrong = append(wrong, fmt.Sprintf("DN %q, want %q", group.DN, wantDN))
			}
			if !marked(group) {
				wrong = append(wrong, fmt.Sprintf("%s %q, want %q", layout.MarkerAttribute, group.Get(layout.MarkerAttribute), layout.MarkerValue))
			}
			if len(wrong) > 0 {
				sort.Strings(wrong)
				d.add(&d.Wrong, "group %s: %s", want.GetGroupKey(), strings.Join(wrong, "; "))
			}
		case obj.GetMembership() != nil:
			m := obj.GetMembership()
			d.Memberships++
			member := "user:" + workerEmployee[m.GetMemberKey()]
			if m.GetMemberKind() == orgsyncv1.MemberKind_MEMBER_KIND_GROUP {
				member = "group:" + strings.ToLower(groupSAM(m.GetMemberKey()))
			}
			sam := strings.ToLower(groupSAM(m.GetGroupKey()))
			if members[sam] == nil {
				members[sam] = map[string]bool{}
			}
			members[sam][member] = true
		}
	}
	for employeeID, users := range usersByEmployee {
		if wantUsers[employeeID] {
			continue
		}
		for _, u := range users {
			uac, _ := strconv.Atoi(u.Get("userAccountControl"))
			if uac&uacDisabled != 0 && parentKey(u.DN) == dnKey(layout.Leavers) && marked(u) {
				d.Retired++
				continue
			}
			d.add(&d.Stray, "user %q: not desired (%s)", employeeID, u.DN)
		}
	}
	for sam, groups := range groupsBySAM {
		if !wantGroups[sam] {
			d.add(&d.Stray, "group %q: not desired (%d groups)", sam, len(groups))
		}
	}
	// Members of groups that are not desired at all are not listed: their group is stray already.
	for sam, want := range members {
		key := groupKeys[sam]
		if key == "" {
			key = sam // a membership of a group that is not desired itself
		}
		groups := groupsBySAM[sam]
		if len(groups) == 0 {
			for member := range want {
				d.add(&d.Missing, "member %s of %s: group missing", member, key)
			}
			continue
		}
		got := map[string]bool{}
		for _, dn := range groups[0].Members {
			member, known := refOf[dnKey(dn)]
			if !known {
				member = "outside:" + dn
			}
			if got[member] {
				d.add(&d.Duplicate, "member %s of %s: twice", member, key)
			}
			got[member] = true
			if !want[member] {
				d.add(&d.Stray, "member %s of %s: not desired", member, key)
			}
		}
		for member := range want {
			if !got[member] {
				d.add(&d.Missing, "member %s of %s: missing", member, key)
			}
		}
	}
	sort.Strings(d.Lines)
	return d
}
