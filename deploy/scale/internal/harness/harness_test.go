package harness

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// fakeDirectory is a Graph directory held in maps, for testing Compare.
type fakeDirectory struct {
	users    []emulator.Object
	groups   []emulator.Object
	members  map[string][]string
	managers map[string]string
}

func (f fakeDirectory) Users() []emulator.Object           { return f.users }
func (f fakeDirectory) Groups() []emulator.Object          { return f.groups }
func (f fakeDirectory) Members(groupID string) []string    { return f.members[groupID] }
func (f fakeDirectory) ManagerOf(id string) (string, bool) { m, ok := f.managers[id]; return m, ok }

func desiredUser(worker, manager string, enabled bool) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{Key: worker, Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{
		WorkerId: worker, EmployeeId: worker, AccountEnabled: enabled, DisplayName: "Name " + worker,
		UserPrincipalName: strings.ToLower(worker) + "@corp.example.test", MailNickname: strings.ToLower(worker), ManagerWorkerId: manager,
	}}}
}

func graphUser(id, worker string, enabled bool) emulator.Object {
	return emulator.Object{"id": id, "employeeId": worker, "accountEnabled": enabled, "displayName": "Name " + worker,
		"userPrincipalName": strings.ToLower(worker) + "@corp.example.test", "mailNickname": strings.ToLower(worker)}
}

func TestCompare(t *testing.T) {
	desired := []*orgsyncv1.DesiredObject{
		desiredUser("E1", "", true),
		desiredUser("E2", "E1", true),
		desiredUser("E3", "E1", false),
		{Key: "unit-sales", Object: &orgsyncv1.DesiredObject_Group{Group: &orgsyncv1.DesiredGroup{GroupKey: "unit-sales", DisplayName: "Org - Sales", MailNickname: "orgsync-unit-sales"}}},
		{Key: "unit-sales/E1", Object: &orgsyncv1.DesiredObject_Membership{Membership: &orgsyncv1.DesiredMembership{GroupKey: "unit-sales", MemberKind: orgsyncv1.MemberKind_MEMBER_KIND_USER, MemberKey: "E1"}}},
		{Key: "unit-sales/E2", Object: &orgsyncv1.DesiredObject_Membership{Membership: &orgsyncv1.DesiredMembership{GroupKey: "unit-sales", MemberKind: orgsyncv1.MemberKind_MEMBER_KIND_USER, MemberKey: "E2"}}},
	}
	converged := func() fakeDirectory {
		return fakeDirectory{
			users:    []emulator.Object{graphUser("o1", "E1", true), graphUser("o2", "E2", true), graphUser("o3", "E3", false)},
			groups:   []emulator.Object{{"id": "g1", "displayName": "Org - Sales", "mailNickname": "orgsync-unit-sales"}},
			members:  map[string][]string{"g1": {"o1", "o2"}},
			managers: map[string]string{"o2": "o1", "o3": "o1"},
		}
	}
	tests := []struct {
		name   string
		change func(*fakeDirectory)
		want   []string
	}{
		{name: "converged", change: func(*fakeDirectory) {}},
		{name: "duplicate account", change: func(d *fakeDirectory) { d.users = append(d.users, graphUser("o4", "E2", true)) },
			want: []string{"user E2: 2 accounts"}},
		{name: "stray user and group", change: func(d *fakeDirectory) {
			d.users = append(d.users, graphUser("o9", "E9", true))
			d.groups = append(d.groups, emulator.Object{"id": "g9", "displayName": "Old", "mailNickname": "orgsync-unit-old"})
		}, want: []string{`group "orgsync-unit-old": not desired`, `user "E9": not desired (1 accounts)`}},
		{name: "missing and stray members", change: func(d *fakeDirectory) { d.members["g1"] = []string{"o1", "o3"} },
			want: []string{"member E2 of unit-sales: missing", "member E3 of unit-sales: not desired"}},
		{name: "wrong attribute, state and manager", change: func(d *fakeDirectory) {
			d.users[2]["displayName"] = "Old Name"
			d.users[1]["accountEnabled"] = false
			delete(d.managers, "o3")
		}, want: []string{
			`user E2: accountEnabled false, want true`,
			`user E3: displayName "Old Name", want "Name E3"; manager "", want "E1"`,
		}},
		{name: "missing user", change: func(d *fakeDirectory) { d.users = d.users[:2]; delete(d.managers, "o3") },
			want: []string{"user E3: missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := converged()
			tt.change(&dir)
			got := Compare(dir, desired)
			if diff := cmp.Diff(tt.want, got.Lines); diff != "" {
				t.Errorf("differences (-want +got):\n%s", diff)
			}
			if got.Equal() != (len(tt.want) == 0) {
				t.Errorf("Equal() = %v with %d differences", got.Equal(), len(got.Lines))
			}
		})
	}
}

// TestProcKillRestart checks that Kill reaches the whole process group and Start runs the same
// command again, with the counters the chaos summary prints.
func TestProcKillRestart(t *testing.T) {
	shell, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		signal      syscall.Signal
		wantKills   int
		wantCrashes int
	}{
		{name: "kill -9", signal: syscall.SIGKILL, wantKills: 1},
		{name: "graceful", signal: syscall.SIGTERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// The child sleeps in a grandchild: a kill that missed the group would leave it.
			p := &Proc{Name: "sleeper", Path: shell, Args: []string{"-c", "sleep 60 & wait"}, LogPath: filepath.Join(dir, "log")}
			var group Group
			group.Add(p)
			t.Cleanup(func() { _ = group.Close() })
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			if err := p.Kill(tt.signal); err != nil {
				t.Fatal(err)
			}
			if p.Running() {
				t.Fatal("still running after Kill")
			}
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			if err := p.WaitReady(t.Context(), 5*time.Second); err != nil {
				t.Fatal(err)
			}
			starts, kills, crashes := p.Counts()
			if diff := cmp.Diff([3]int{2, tt.wantKills, tt.wantCrashes}, [3]int{starts, kills, crashes}); diff != "" {
				t.Errorf("starts, kills, crashes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name  string
		pairs []string
		want  []string
	}{
		{name: "pairs", pairs: []string{"A", "1", "B", "two words"}, want: []string{"A=1", "B=two words"}},
		{name: "odd count drops the last name", pairs: []string{"A", "1", "B"}, want: []string{"A=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Env(tt.pairs...)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
