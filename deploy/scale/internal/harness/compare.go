package harness

import (
	"fmt"
	"sort"
	"strings"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// Directory is what the comparison needs of a Graph directory; *emulator.Server has it.
type Directory interface {
	Users() []emulator.Object
	Groups() []emulator.Object
	Members(groupID string) []string
	ManagerOf(userID string) (string, bool)
}

var _ Directory = (*emulator.Server)(nil)

// Diff is the difference between a desired state and a directory.
type Diff struct {
	// Users, Groups and Memberships count the desired objects of each kind.
	Users, Groups, Memberships int
	// Missing, Duplicate, Stray, Wrong count desired objects absent, present more than once,
	// present but not desired, and present with a wrong attribute or manager.
	Missing, Duplicate, Stray, Wrong int
	// Retired counts AD accounts present but not desired that ad-writer disabled and moved to the
	// leavers' OU (it never deletes an account); they are not a difference.
	Retired int
	// Lines describe every difference, sorted.
	Lines []string
}

// Equal reports whether the directory holds exactly the desired state.
func (d Diff) Equal() bool { return len(d.Lines) == 0 }

func (d *Diff) add(counter *int, format string, args ...any) {
	*counter++
	d.Lines = append(d.Lines, fmt.Sprintf(format, args...))
}

// userAttributes are the Graph properties compared, with their desired values.
func userAttributes(u *orgsyncv1.DesiredUser) map[string]string {
	return map[string]string{
		"displayName": u.GetDisplayName(), "givenName": u.GetGivenName(), "surname": u.GetSurname(),
		"userPrincipalName": u.GetUserPrincipalName(), "mailNickname": u.GetMailNickname(),
		"jobTitle": u.GetJobTitle(), "department": u.GetDepartment(), "companyName": u.GetCompanyName(),
		"officeLocation": u.GetOfficeLocation(), "employeeType": u.GetEmployeeType(),
	}
}

// Compare checks that dir holds exactly desired: every desired user once (by employeeId) with its
// attributes, enabled state and manager; every desired group once (by mailNickname) with its
// display name; exactly the desired members of each; no other user or group.
func Compare(dir Directory, desired []*orgsyncv1.DesiredObject) Diff {
	var d Diff
	usersByEmployee := map[string][]emulator.Object{}
	employeeOf := map[string]string{} // object id → employeeId
	for _, u := range dir.Users() {
		employeeID := u.String("employeeId")
		usersByEmployee[employeeID] = append(usersByEmployee[employeeID], u)
		employeeOf[u.ID()] = employeeID
	}
	groupsByNickname := map[string][]emulator.Object{}
	for _, g := range dir.Groups() {
		nickname := strings.ToLower(g.String("mailNickname"))
		groupsByNickname[nickname] = append(groupsByNickname[nickname], g)
	}
	wantUsers := map[string]bool{}
	wantGroups := map[string]bool{}
	groupNickname := map[string]string{} // group key → nickname
	workerEmployee := map[string]string{}
	members := map[string]map[string]bool{} // group key → member employeeId / "group:"+nickname
	for _, obj := range desired {
		switch {
		case obj.GetUser() != nil:
			workerEmployee[obj.GetUser().GetWorkerId()] = obj.GetUser().GetEmployeeId()
		case obj.GetGroup() != nil:
			groupNickname[obj.GetGroup().GetGroupKey()] = strings.ToLower(obj.GetGroup().GetMailNickname())
		}
	}
	for _, obj := range desired {
		switch {
		case obj.GetUser() != nil:
			want := obj.GetUser()
			d.Users++
			wantUsers[want.GetEmployeeId()] = true
			got := usersByEmployee[want.GetEmployeeId()]
			switch {
			case len(got) == 0:
				d.add(&d.Missing, "user %s: missing", want.GetEmployeeId())
				continue
			case len(got) > 1:
				d.add(&d.Duplicate, "user %s: %d accounts", want.GetEmployeeId(), len(got))
			}
			user := got[0]
			var wrong []string
			for name, value := range userAttributes(want) {
				if user.String(name) != value {
					wrong = append(wrong, fmt.Sprintf("%s %q, want %q", name, user.String(name), value))
				}
			}
			if enabled, _ := user["accountEnabled"].(bool); enabled != want.GetAccountEnabled() {
				wrong = append(wrong, fmt.Sprintf("accountEnabled %v, want %v", enabled, want.GetAccountEnabled()))
			}
			managerID, _ := dir.ManagerOf(user.ID())
			if wantManager := workerEmployee[want.GetManagerWorkerId()]; employeeOf[managerID] != wantManager {
				wrong = append(wrong, fmt.Sprintf("manager %q, want %q", employeeOf[managerID], wantManager))
			}
			if len(wrong) > 0 {
				sort.Strings(wrong)
				d.add(&d.Wrong, "user %s: %s", want.GetEmployeeId(), strings.Join(wrong, "; "))
			}
		case obj.GetGroup() != nil:
			want := obj.GetGroup()
			d.Groups++
			nickname := strings.ToLower(want.GetMailNickname())
			wantGroups[nickname] = true
			got := groupsByNickname[nickname]
			switch {
			case len(got) == 0:
				d.add(&d.Missing, "group %s: missing", want.GetGroupKey())
				continue
			case len(got) > 1:
				d.add(&d.Duplicate, "group %s: %d groups", want.GetGroupKey(), len(got))
			}
			if name := got[0].String("displayName"); name != want.GetDisplayName() {
				d.add(&d.Wrong, "group %s: displayName %q, want %q", want.GetGroupKey(), name, want.GetDisplayName())
			}
		case obj.GetMembership() != nil:
			m := obj.GetMembership()
			d.Memberships++
			member := workerEmployee[m.GetMemberKey()]
			if m.GetMemberKind() == orgsyncv1.MemberKind_MEMBER_KIND_GROUP {
				member = "group:" + groupNickname[m.GetMemberKey()]
			}
			if members[m.GetGroupKey()] == nil {
				members[m.GetGroupKey()] = map[string]bool{}
			}
			members[m.GetGroupKey()][member] = true
		}
	}
	groupNicknameOf := map[string]string{}
	for nickname, groups := range groupsByNickname {
		for _, g := range groups {
			groupNicknameOf[g.ID()] = nickname
		}
		if !wantGroups[nickname] {
			d.add(&d.Stray, "group %q: not desired", nickname)
		}
	}
	for employeeID, users := range usersByEmployee {
		if !wantUsers[employeeID] {
			d.add(&d.Stray, "user %q: not desired (%d accounts)", employeeID, len(users))
		}
	}
	for key, nickname := range groupNickname {
		groups := groupsByNickname[nickname]
		if len(groups) == 0 {
			for member := range members[key] {
				d.add(&d.Missing, "member %s of %s: group missing", member, key)
			}
			continue
		}
		got := map[string]bool{}
		for _, id := range dir.Members(groups[0].ID()) {
			member, isUser := employeeOf[id]
			if !isUser {
				member = "group:" + groupNicknameOf[id]
			}
			if got[member] {
				d.add(&d.Duplicate, "member %s of %s: twice", member, key)
			}
			got[member] = true
			if !members[key][member] {
				d.add(&d.Stray, "member %s of %s: not desired", member, key)
			}
		}
		for member := range members[key] {
			if !got[member] {
				d.add(&d.Missing, "member %s of %s: missing", member, key)
			}
		}
	}
	sort.Strings(d.Lines)
	return d
}
