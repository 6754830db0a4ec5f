package writer

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory/directorytest"
)

// TestRecordOnlyPassesReadsAndDropsWrites: in a report-only reconcile every read reaches the
// directory and no write does; creates and restores are refused, every other write is dropped as
// if done.
func TestRecordOnlyPassesReadsAndDropsWrites(t *testing.T) {
	const someID = "00000000-0000-0000-0000-000000000001"
	refs := []directory.MemberRef{{GroupID: someID, MemberID: "a"}, {GroupID: someID, MemberID: "b"}}
	type outcome int
	const (
		read outcome = iota
		dropped
		refused
	)
	tests := []struct {
		method string
		call   func(ctx context.Context, dir Directory) error
		want   outcome
	}{
		{"FindUserByEmployeeID", func(ctx context.Context, dir Directory) error {
			_, err := dir.FindUserByEmployeeID(ctx, "E1")
			return err
		}, read},
		{"GetUser", func(ctx context.Context, dir Directory) error { _, err := dir.GetUser(ctx, someID); return err }, read},
		{"FindDeletedUserByEmployeeID", func(ctx context.Context, dir Directory) error {
			_, err := dir.FindDeletedUserByEmployeeID(ctx, "E1")
			return err
		}, read},
		{"GetUserByPrincipalName", func(ctx context.Context, dir Directory) error {
			_, err := dir.GetUserByPrincipalName(ctx, "a@corp.example.com")
			return err
		}, read},
		{"FindGroupByMailNickname", func(ctx context.Context, dir Directory) error {
			_, err := dir.FindGroupByMailNickname(ctx, "g")
			return err
		}, read},
		{"GetGroup", func(ctx context.Context, dir Directory) error { _, err := dir.GetGroup(ctx, someID); return err }, read},
		{"GetManager", func(ctx context.Context, dir Directory) error { _, err := dir.GetManager(ctx, someID); return err }, read},
		{"CreateUser", func(ctx context.Context, dir Directory) error {
			_, err := dir.CreateUser(ctx, directory.UserAttributes{UserPrincipalName: "a@corp.example.com", EmployeeID: "E1"}, "Xy7!initial-password-Q")
			return err
		}, refused},
		{"RestoreUser", func(ctx context.Context, dir Directory) error { _, err := dir.RestoreUser(ctx, someID); return err }, refused},
		{"ResetPassword", func(ctx context.Context, dir Directory) error {
			return dir.ResetPassword(ctx, someID, directory.NewSecret("Xy7!reset-password-Q"))
		}, refused},
		{"CreateGroup", func(ctx context.Context, dir Directory) error {
			_, err := dir.CreateGroup(ctx, directory.GroupAttributes{DisplayName: "G", MailNickname: "g"})
			return err
		}, refused},
		{"UpdateUser", func(ctx context.Context, dir Directory) error {
			return dir.UpdateUser(ctx, someID, directory.UserAttributes{}, []directory.Field{directory.FieldDepartment})
		}, dropped},
		{"DeleteUser", func(ctx context.Context, dir Directory) error { return dir.DeleteUser(ctx, someID) }, dropped},
		{"UpdateGroup", func(ctx context.Context, dir Directory) error {
			return dir.UpdateGroup(ctx, someID, directory.GroupAttributes{})
		}, dropped},
		{"DeleteGroup", func(ctx context.Context, dir Directory) error { return dir.DeleteGroup(ctx, someID) }, dropped},
		{"AddMember", func(ctx context.Context, dir Directory) error { return dir.AddMember(ctx, someID, "a") }, dropped},
		{"AddMembers", func(ctx context.Context, dir Directory) error { return dir.AddMembers(ctx, someID, []string{"a"}) }, dropped},
		{"RemoveMember", func(ctx context.Context, dir Directory) error { return dir.RemoveMember(ctx, someID, "a") }, dropped},
		{"RemoveMembers", func(ctx context.Context, dir Directory) error {
			errs := dir.RemoveMembers(ctx, refs)
			if len(errs) != len(refs) {
				return fmt.Errorf("%d errors for %d refs", len(errs), len(refs))
			}
			return errors.Join(errs...)
		}, dropped},
		{"SetManager", func(ctx context.Context, dir Directory) error { return dir.SetManager(ctx, someID, "a") }, dropped},
		{"RemoveManager", func(ctx context.Context, dir Directory) error { return dir.RemoveManager(ctx, someID) }, dropped},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			fake := directorytest.NewFake()
			var reached []string
			fake.Fail = func(op string) error {
				reached = append(reached, op)
				return nil
			}
			err := tt.call(t.Context(), recordOnly{dir: fake})
			switch tt.want {
			case read:
				if len(reached) == 0 {
					t.Errorf("%s did not reach the directory", tt.method)
				}
			case dropped, refused:
				if len(reached) != 0 {
					t.Errorf("%s reached the directory (%v) in a report-only reconcile", tt.method, reached)
				}
			}
			switch {
			case tt.want == refused && !errors.Is(err, errReportOnly):
				t.Errorf("%s = %v, want the report-only refusal", tt.method, err)
			case tt.want == dropped && err != nil:
				t.Errorf("%s = %v, want success", tt.method, err)
			}
		})
	}
}
