package budget

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgsync/orgsync/pkg/redistest"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory/directorytest"
)

// takeAll takes single writes from b until it refuses, up to limit times.
func takeAll(t *testing.T, b Budget, limit int) int {
	t.Helper()
	taken := 0
	for range limit {
		ok, err := b.TryTake(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			taken++
		}
	}
	return taken
}

func TestSharedBudgetIsSharedAcrossReplicas(t *testing.T) {
	opts, err := redis.ParseURL(redistest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	// A window so long that nothing refills during the test: only the burst is available.
	limit := Limit{Writes: 3000, Window: 150 * time.Hour, Burst: 50}
	var taken int
	for range 3 { // three replicas, each with its own connection
		client := redis.NewClient(opts)
		t.Cleanup(func() { _ = client.Close() })
		taken += takeAll(t, NewShared(client, "graph-writes:tenant", limit, nil), 40)
	}
	if taken != 50 {
		t.Errorf("three replicas sharing one budget took %d writes, want the burst of 50", taken)
	}

	// Separate in-process budgets, by contrast, each allow the whole burst.
	taken = 0
	for range 3 {
		taken += takeAll(t, NewLocal(limit), 40)
	}
	if taken != 120 {
		t.Errorf("three local budgets took %d writes, want 3×40", taken)
	}
}

func TestDirectoryChargesWritesNotReads(t *testing.T) {
	fake := directorytest.NewFake()
	limit := Limit{Writes: 1, Window: time.Hour, Burst: 2}
	budget := NewLocal(limit)
	dir := Wrap(fake, budget)
	ctx := t.Context()
	for range 5 {
		if _, err := dir.FindUserByEmployeeID(ctx, "E1"); err != nil {
			t.Fatal(err)
		}
	}
	user, err := dir.CreateUser(ctx, directory.UserAttributes{UserPrincipalName: "a@corp.example.com", EmployeeID: "E1"}, "Xy7!initial-password-Q")
	if err != nil {
		t.Fatal(err)
	}
	group, err := dir.CreateGroup(ctx, directory.GroupAttributes{DisplayName: "G", MailNickname: "g"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := budget.TryTake(ctx, 1); ok {
		t.Error("reads were charged, or writes were not: the burst of 2 should be spent by the two creates")
	}
	// The next write waits for the budget; a cancelled context gives up instead of writing.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := dir.AddMember(cancelled, group.ID, user.ID); err == nil {
		t.Error("a write went through without budget")
	}
	if got := fake.Members(group.ID); len(got) != 0 {
		t.Errorf("members = %v", got)
	}
}

// TestDirectoryContract runs the Directory contract through the budget wrapping the fake, with a
// budget too large to matter: charging writes changes nothing else the port promises.
func TestDirectoryContract(t *testing.T) {
	directorytest.RunContract(t, func(*testing.T) (directorytest.Directory, directorytest.Members, directorytest.Managers) {
		fake := directorytest.NewFake()
		fake.Subscribe(directorytest.ContractSkuID, 1, directorytest.ContractPlanA, directorytest.ContractPlanB)
		plenty := NewLocal(Limit{Writes: 1_000_000, Window: time.Second, Burst: 1_000_000})
		return Wrap(fake, plenty), fake.Members, fake.Manager
	})
}

// countingBudget grants every request and counts the writes taken.
type countingBudget struct{ taken int }

func (c *countingBudget) Wait(_ context.Context, n int) error { c.taken += n; return nil }

func (c *countingBudget) TryTake(_ context.Context, n int) (bool, error) {
	c.taken += n
	return true, nil
}

// TestDirectoryChargesEachMethod: every method of the port, called once, takes from the budget
// what it costs in Graph writes — reads nothing, a $batch removal one per item.
func TestDirectoryChargesEachMethod(t *testing.T) {
	const someID = "00000000-0000-0000-0000-000000000001"
	refs := []directory.MemberRef{{GroupID: someID, MemberID: "a"}, {GroupID: someID, MemberID: "b"}, {GroupID: someID, MemberID: "c"}}
	tests := []struct {
		method string
		call   func(ctx context.Context, dir *Directory)
		writes int
	}{
		{"FindUserByEmployeeID", func(ctx context.Context, dir *Directory) { _, _ = dir.FindUserByEmployeeID(ctx, "E1") }, 0},
		{"GetUser", func(ctx context.Context, dir *Directory) { _, _ = dir.GetUser(ctx, someID) }, 0},
		{"FindDeletedUserByEmployeeID", func(ctx context.Context, dir *Directory) { _, _ = dir.FindDeletedUserByEmployeeID(ctx, "E1") }, 0},
		{"GetUserByPrincipalName", func(ctx context.Context, dir *Directory) {
			_, _ = dir.GetUserByPrincipalName(ctx, "a@corp.example.com")
		}, 0},
		{"FindGroupByMailNickname", func(ctx context.Context, dir *Directory) { _, _ = dir.FindGroupByMailNickname(ctx, "g") }, 0},
		{"GetGroup", func(ctx context.Context, dir *Directory) { _, _ = dir.GetGroup(ctx, someID) }, 0},
		{"GetManager", func(ctx context.Context, dir *Directory) { _, _ = dir.GetManager(ctx, someID) }, 0},
		{"CreateUser", func(ctx context.Context, dir *Directory) {
			_, _ = dir.CreateUser(ctx, directory.UserAttributes{UserPrincipalName: "a@corp.example.com", EmployeeID: "E1"}, "Xy7!initial-password-Q")
		}, 1},
		{"UpdateUser", func(ctx context.Context, dir *Directory) {
			_ = dir.UpdateUser(ctx, someID, directory.UserAttributes{}, []directory.Field{directory.FieldDepartment})
		}, 1},
		{"DeleteUser", func(ctx context.Context, dir *Directory) { _ = dir.DeleteUser(ctx, someID) }, 1},
		{"RestoreUser", func(ctx context.Context, dir *Directory) { _, _ = dir.RestoreUser(ctx, someID) }, 1},
		{"CreateGroup", func(ctx context.Context, dir *Directory) {
			_, _ = dir.CreateGroup(ctx, directory.GroupAttributes{DisplayName: "G", MailNickname: "g"})
		}, 1},
		{"UpdateGroup", func(ctx context.Context, dir *Directory) {
			_ = dir.UpdateGroup(ctx, someID, directory.GroupAttributes{})
		}, 1},
		{"DeleteGroup", func(ctx context.Context, dir *Directory) { _ = dir.DeleteGroup(ctx, someID) }, 1},
		{"AddMember", func(ctx context.Context, dir *Directory) { _ = dir.AddMember(ctx, someID, "a") }, 1},
		{"AddMembers", func(ctx context.Context, dir *Directory) { _ = dir.AddMembers(ctx, someID, []string{"a", "b", "c"}) }, 1},
		{"RemoveMember", func(ctx context.Context, dir *Directory) { _ = dir.RemoveMember(ctx, someID, "a") }, 1},
		{"RemoveMembers", func(ctx context.Context, dir *Directory) { _ = dir.RemoveMembers(ctx, refs) }, len(refs)},
		{"SetManager", func(ctx context.Context, dir *Directory) { _ = dir.SetManager(ctx, someID, "a") }, 1},
		{"RemoveManager", func(ctx context.Context, dir *Directory) { _ = dir.RemoveManager(ctx, someID) }, 1},
		{"ResetPassword", func(ctx context.Context, dir *Directory) {
			_ = dir.ResetPassword(ctx, someID, directory.NewSecret("Xy7!reset-password-Q"))
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			budget := &countingBudget{}
			// Whether the call succeeds does not matter: the write is charged before it is sent.
			tt.call(t.Context(), Wrap(directorytest.NewFake(), budget))
			if budget.taken != tt.writes {
				t.Errorf("%s took %d writes from the budget, want %d", tt.method, budget.taken, tt.writes)
			}
		})
	}
}

// TestPauseIsSharedAndOnlyLengthens: a Retry-After one replica heard pauses the others; a shorter
// one heard meanwhile does not cut it short. The same holds for the in-process pause.
func TestPauseIsSharedAndOnlyLengthens(t *testing.T) {
	opts, err := redis.ParseURL(redistest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	shared := func() *SharedPause {
		client := redis.NewClient(opts)
		t.Cleanup(func() { _ = client.Close() })
		return NewSharedPause(client, "graph-writes:tenant:paused")
	}
	local := NewLocalPause()
	for name, replicas := range map[string][2]interface {
		Remaining(context.Context) (time.Duration, error)
		Pause(context.Context, time.Duration) error
	}{"redis": {shared(), shared()}, "local": {local, local}} {
		t.Run(name, func(t *testing.T) {
			first, second := replicas[0], replicas[1]
			if left, err := second.Remaining(t.Context()); err != nil || left != 0 {
				t.Fatalf("before any pause: %s left, %v; want none", left, err)
			}
			if err := first.Pause(t.Context(), time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := second.Pause(t.Context(), time.Second); err != nil {
				t.Fatal(err)
			}
			left, err := second.Remaining(t.Context())
			if err != nil || left < 50*time.Second || left > time.Minute {
				t.Errorf("after a minute's pause by one replica and a second's by another: %s left, %v; want about a minute", left, err)
			}
		})
	}
}

// TestLocalPauseEnds: a pause is over once its time has passed.
func TestLocalPauseEnds(t *testing.T) {
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	p := NewLocalPause()
	p.now = func() time.Time { return now }
	_ = p.Pause(t.Context(), 3*time.Second)
	now = now.Add(2 * time.Second)
	if left, _ := p.Remaining(t.Context()); left != time.Second {
		t.Errorf("2 s into a 3 s pause: %s left, want 1s", left)
	}
	now = now.Add(2 * time.Second)
	if left, _ := p.Remaining(t.Context()); left != 0 {
		t.Errorf("after the pause: %s left, want none", left)
	}
}

// TestSharedBudgetOutlivesRedis: with Redis unreachable the shared budget is kept in the process
// (it neither fails every write nor lets them all through), and a removal of more members than
// the burst waits for them a burst at a time instead of never being granted.
func TestSharedBudgetOutlivesRedis(t *testing.T) {
	client := redis.NewClient(&redis.Options{Network: "unix", Addr: t.TempDir() + "/nobody-listens.sock", MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	slow := Limit{Writes: 3000, Window: 150 * time.Hour, Burst: 5}
	if taken := takeAll(t, NewShared(client, "graph-writes:tenant", slow, nil), 20); taken != 5 {
		t.Errorf("took %d writes with Redis unreachable, want the burst of 5", taken)
	}
	fast := Limit{Writes: 1000, Window: time.Second, Burst: 5}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := NewShared(client, "graph-writes:other", fast, nil).Wait(ctx, 12); err != nil {
		t.Errorf("waiting for 12 writes with a burst of 5: %v", err)
	}
}
