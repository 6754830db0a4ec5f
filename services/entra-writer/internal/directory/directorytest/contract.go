package directorytest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
)

// Directory is the writer's port, restated here so the suite does not import the writer.
type Directory interface {
	FindUserByEmployeeID(ctx context.Context, employeeID string) (*directory.User, error)
	GetUser(ctx context.Context, id string) (*directory.User, error)
	CreateUser(ctx context.Context, attrs directory.UserAttributes, password string) (*directory.User, error)
	UpdateUser(ctx context.Context, id string, attrs directory.UserAttributes, fields []directory.Field) error
	DeleteUser(ctx context.Context, id string) error
	FindDeletedUserByEmployeeID(ctx context.Context, employeeID string) (*directory.User, error)
	RestoreUser(ctx context.Context, id string) (*directory.User, error)
	FindGroupByMailNickname(ctx context.Context, mailNickname string) (*directory.Group, error)
	GetGroup(ctx context.Context, id string) (*directory.Group, error)
	CreateGroup(ctx context.Context, attrs directory.GroupAttributes) (*directory.Group, error)
	UpdateGroup(ctx context.Context, id string, attrs directory.GroupAttributes) error
	DeleteGroup(ctx context.Context, id string) error
	AddMember(ctx context.Context, groupID, memberID string) error
	AddMembers(ctx context.Context, groupID string, memberIDs []string) error
	RemoveMember(ctx context.Context, groupID, memberID string) error
	RemoveMembers(ctx context.Context, refs []directory.MemberRef) []error
	SetManager(ctx context.Context, userID, managerID string) error
	RemoveManager(ctx context.Context, userID string) error
	GetManager(ctx context.Context, userID string) (string, error)
	GetUserByPrincipalName(ctx context.Context, principalName string) (*directory.User, error)
	RevokeSignInSessions(ctx context.Context, userID string) error
	// AssignGroupLicenses adds licences to a group (or changes an assigned SKU's disabled plans)
	// and removes others, in one assignLicense call; the group's members get them in the background.
	AssignGroupLicenses(ctx context.Context, groupID string, add []directory.License, remove []string) error
	// GroupLicenseErrors lists the group's members whose licence from it is in error.
	GroupLicenseErrors(ctx context.Context, groupID string) ([]directory.LicenseError, error)
	CreateTemporaryAccessPass(ctx context.Context, userID string, start time.Time, lifetimeMinutes int, usableOnce bool) (*directory.AccessPass, error)
	DeleteTemporaryAccessPass(ctx context.Context, userID, passID string) error
	SendMail(ctx context.Context, senderID string, mail directory.Mail) error
	ResetPassword(ctx context.Context, userID string, password directory.Secret) error
}

// Managers returns a user's manager id, read from the directory's own state.
type Managers func(userID string) (string, bool)

// Members lists a group's member ids, read from the directory's own state.
type Members func(groupID string) []string

// The subscription a directory under contract has: ContractSkuID, one prepaid unit, the service
// plans ContractPlanA and ContractPlanB; its tenant has no usage location of its own.
const (
	ContractSkuID = "6fd2c87f-b296-42f0-b197-1e91e994b900"
	ContractPlanA = "efb87545-963c-4e0d-99df-69c6916d9eb0"
	ContractPlanB = "57ff2da0-773e-42df-b2af-ffb7a2317929"
)

// ignoreSessions leaves out of a comparison the time Graph sets on its own.
var ignoreSessions = cmpopts.IgnoreFields(directory.User{}, "SignInSessionsValidFrom")

// RunContract checks that a Directory behaves as Graph does. newDirectory returns an empty one.
func RunContract(t *testing.T, newDirectory func(t *testing.T) (Directory, Members, Managers)) {
	hire := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	jane := directory.UserAttributes{
		AccountEnabled: true, DisplayName: "Jane Doe", GivenName: "Jane", Surname: "Doe",
		UserPrincipalName: "jane.doe@corp.example.com", MailNickname: "jane.doe", JobTitle: "Account Executive",
		Department: "Sales", CompanyName: "Example Ltd", EmployeeID: "E1001", EmployeeType: "Employee",
		EmployeeHireDate: &hire, CostCenter: "CC-100", BusinessPhones: []string{"+44 20 7946 0000"},
	}

	t.Run("user lifecycle", func(t *testing.T) {
		dir, _, _ := newDirectory(t)
		ctx := t.Context()
		if u, err := dir.FindUserByEmployeeID(ctx, "E1001"); err != nil || u != nil {
			t.Fatalf("find before create = %v, %v; want nothing", u, err)
		}
		created, err := dir.CreateUser(ctx, jane, "Xy7!initial-password-Q")
		if err != nil {
			t.Fatal(err)
		}
		if created.ID == "" {
			t.Fatal("created user has no id")
		}
		found, err := dir.FindUserByEmployeeID(ctx, "E1001")
		if err != nil || found == nil {
			t.Fatalf("find after create = %v, %v", found, err)
		}
		if found.SignInSessionsValidFrom == nil {
			t.Error("a new user has no signInSessionsValidFromDateTime; Graph sets it at the create")
		}
		if diff := cmp.Diff(directory.User{ID: created.ID, UserAttributes: jane}, *found, ignoreSessions); diff != "" {
			t.Errorf("found user (-want +got):\n%s", diff)
		}

		moved := jane
		moved.Department, moved.JobTitle, moved.CostCenter = "Finance", "", "CC-200"
		fields := directory.UserChanges(jane, moved)
		if err := dir.UpdateUser(ctx, created.ID, moved, fields); err != nil {
			t.Fatal(err)
		}
		got, err := dir.GetUser(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(directory.User{ID: created.ID, UserAttributes: moved}, *got, ignoreSessions); diff != "" {
			t.Errorf("after update (-want +got):\n%s", diff)
		}

		if err := dir.DeleteUser(ctx, created.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := dir.GetUser(ctx, created.ID); directory.ClassOf(err) != directory.ClassNotFound {
			t.Errorf("get after delete: %v, want not found", err)
		}
		// Deleted users are kept, with their userPrincipalName, and can be restored.
		if _, err := dir.CreateUser(ctx, moved, "Xy7!initial-password-Q"); err == nil {
			t.Error("a deleted user's userPrincipalName was free to take")
		}
		deleted, err := dir.FindDeletedUserByEmployeeID(ctx, "E1001")
		if err != nil || deleted == nil || deleted.ID != created.ID {
			t.Fatalf("find deleted = %v, %v", deleted, err)
		}
		restored, err := dir.RestoreUser(ctx, deleted.ID)
		if err != nil || restored.ID != created.ID || restored.Department != "Finance" {
			t.Fatalf("restore = %v, %v", restored, err)
		}
		if found, err := dir.FindUserByEmployeeID(ctx, "E1001"); err != nil || found == nil {
			t.Errorf("find after restore = %v, %v", found, err)
		}
		if none, err := dir.FindDeletedUserByEmployeeID(ctx, "E1001"); none != nil || err != nil {
			t.Errorf("still among the deleted: %v, %v", none, err)
		}
	})

	t.Run("mapped properties are written, kept when not named, and cleared with null", func(t *testing.T) {
		dir, _, _ := newDirectory(t)
		ctx := t.Context()
		// Every mapped property gets a value at create: none may be dropped on the way.
		withAll := jane
		withAll.Mapped = map[string]string{}
		for i, name := range directory.MappedProperties {
			withAll.Mapped[name] = fmt.Sprintf("%s value %d", name, i)
		}
		withAll.Mapped["usageLocation"], withAll.Mapped["preferredLanguage"] = "GB", "en-GB"
		created, err := dir.CreateUser(ctx, withAll, "Xy7!initial-password-Q")
		if err != nil {
			t.Fatal(err)
		}
		got, err := dir.GetUser(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(withAll.Mapped, got.Mapped); diff != "" {
			t.Errorf("mapped properties after create (-want +got):\n%s", diff)
		}

		// A later policy names only some: those it names change or clear, the others stay.
		named := jane
		named.Mapped = map[string]string{"city": "", "extensionAttribute3": "", "extensionAttribute5": "changed", "usageLocation": "FR"}
		fields := directory.UserChanges(got.UserAttributes, named)
		if err := dir.UpdateUser(ctx, created.ID, named, fields); err != nil {
			t.Fatal(err)
		}
		want := maps.Clone(withAll.Mapped)
		delete(want, "city")
		delete(want, "extensionAttribute3")
		want["extensionAttribute5"], want["usageLocation"] = "changed", "FR"
		if got, err = dir.GetUser(ctx, created.ID); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got.Mapped); diff != "" {
			t.Errorf("mapped properties after update (-want +got):\n%s", diff)
		}
		if again := directory.UserChanges(got.UserAttributes, named); len(again) != 0 {
			t.Errorf("changes after the update = %v, want none", again)
		}

		bad := jane
		bad.Mapped = map[string]string{"usageLocation": "Britain"}
		err = dir.UpdateUser(ctx, created.ID, bad, directory.UserChanges(got.UserAttributes, bad))
		var dirErr *directory.Error
		if !errors.As(err, &dirErr) || dirErr.Class != directory.ClassInvalid || dirErr.Property != "usageLocation" {
			t.Errorf("usageLocation %q: %v, want invalid, naming the property", "Britain", err)
		}
	})

	t.Run("duplicate userPrincipalName is refused", func(t *testing.T) {
		dir, _, _ := newDirectory(t)
		if _, err := dir.CreateUser(t.Context(), jane, "Xy7!initial-password-Q"); err != nil {
			t.Fatal(err)
		}
		other := jane
		other.EmployeeID = "E2002"
		_, err := dir.CreateUser(t.Context(), other, "Xy7!initial-password-Q")
		var dirErr *directory.Error
		if !errors.As(err, &dirErr) || dirErr.Status != 400 || dirErr.Code != "Request_BadRequest" ||
			dirErr.Class != directory.ClassConflict || dirErr.Property != "userPrincipalName" {
			t.Errorf("duplicate UPN: %v; want a 400 Request_BadRequest conflict about userPrincipalName", err)
		}
	})

	t.Run("userPrincipalName with diacritics is invalid", func(t *testing.T) {
		dir, _, _ := newDirectory(t)
		other := jane
		other.UserPrincipalName = "renée.ødegård@corp.example.com"
		_, err := dir.CreateUser(t.Context(), other, "Xy7!initial-password-Q")
		var dirErr *directory.Error
		if !errors.As(err, &dirErr) || dirErr.Status != 400 || dirErr.Code != "Request_BadRequest" ||
			dirErr.Class != directory.ClassInvalid || dirErr.Property != "userPrincipalName" {
			t.Errorf("UPN with diacritics: %v; want a 400 Request_BadRequest invalid value of userPrincipalName", err)
		}
	})

	t.Run("groups and idempotent memberships", func(t *testing.T) {
		dir, members, _ := newDirectory(t)
		ctx := t.Context()
		user, err := dir.CreateUser(ctx, jane, "Xy7!initial-password-Q")
		if err != nil {
			t.Fatal(err)
		}
		sales := directory.GroupAttributes{DisplayName: "Org - Sales", Description: "Members of org unit Sales", MailNickname: "orgsync-unit-sales"}
		group, err := dir.CreateGroup(ctx, sales)
		if err != nil {
			t.Fatal(err)
		}
		found, err := dir.FindGroupByMailNickname(ctx, "orgsync-unit-sales")
		if err != nil || found == nil || found.ID != group.ID {
			t.Fatalf("find group = %v, %v", found, err)
		}
		if g, err := dir.FindGroupByMailNickname(ctx, "orgsync-unit-none"); err != nil || g != nil {
			t.Errorf("find missing group = %v, %v", g, err)
		}
		renamed := sales
		renamed.DisplayName = "Org - Sales EMEA"
		if err := dir.UpdateGroup(ctx, group.ID, renamed); err != nil {
			t.Fatal(err)
		}
		if got, err := dir.GetGroup(ctx, group.ID); err != nil || got.DisplayName != "Org - Sales EMEA" {
			t.Errorf("renamed group = %v, %v", got, err)
		}

		for attempt := range 2 {
			if err := dir.AddMember(ctx, group.ID, user.ID); err != nil {
				t.Fatalf("add member, attempt %d: %v", attempt+1, err)
			}
		}
		if diff := cmp.Diff([]string{user.ID}, members(group.ID)); diff != "" {
			t.Errorf("members (-want +got):\n%s", diff)
		}
		if err := dir.AddMember(ctx, group.ID, "11111111-2222-3333-4444-555555555555"); directory.ClassOf(err) != directory.ClassNotFound {
			t.Errorf("add unknown member: %v, want not found", err)
		}
		nested, err := dir.CreateGroup(ctx, directory.GroupAttributes{DisplayName: "Org - Commercial", MailNickname: "orgsync-rollup-commercial"})
		if err != nil {
			t.Fatal(err)
		}
		if err := dir.AddMember(ctx, nested.ID, group.ID); err != nil {
			t.Errorf("nest group: %v", err)
		}
		for attempt := range 2 {
			if err := dir.RemoveMember(ctx, group.ID, user.ID); err != nil {
				t.Fatalf("remove member, attempt %d: %v", attempt+1, err)
			}
		}
		if got := members(group.ID); len(got) != 0 {
			t.Errorf("members after remove = %v", got)
		}
		if err := dir.DeleteGroup(ctx, nested.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := dir.GetGroup(ctx, nested.ID); directory.ClassOf(err) != directory.ClassNotFound {
			t.Errorf("get deleted group: %v", err)
		}
	})

	t.Run("bind adds members all or nothing", func(t *testing.T) {
		dir, members, _ := newDirectory(t)
		ctx := t.Context()
		group, err := dir.CreateGroup(ctx, directory.GroupAttributes{DisplayName: "Org - Sales", MailNickname: "orgsync-unit-sales"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for i := range 3 {
			attrs := jane
			attrs.EmployeeID = fmt.Sprintf("E%d", i)
			attrs.UserPrincipalName = fmt.Sprintf("user%d@corp.example.com", i)
			attrs.MailNickname = fmt.Sprintf("user%d", i)
			user, err := dir.CreateUser(ctx, attrs, "Xy7!initial-password-Q")
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, user.ID)
		}
		if err := dir.AddMembers(ctx, group.ID, ids[:2]); err != nil {
			t.Fatal(err)
		}
		defer func() {
			// Removing in one batch: a member, another member, and one that is not a member.
			refs := []directory.MemberRef{{GroupID: group.ID, MemberID: ids[0]}, {GroupID: group.ID, MemberID: ids[1]}, {GroupID: group.ID, MemberID: ids[2]}}
			for i, err := range dir.RemoveMembers(ctx, refs) {
				if err != nil {
					t.Errorf("batch removal %d: %v", i, err)
				}
			}
			if got := members(group.ID); len(got) != 0 {
				t.Errorf("members after the batch removal = %v", got)
			}
		}()
		err = dir.AddMembers(ctx, group.ID, ids[1:])
		var dirErr *directory.Error
		if !errors.As(err, &dirErr) || dirErr.Status != 400 || dirErr.Code != "Request_BadRequest" {
			t.Errorf("bind with an existing member: %v, want 400 Request_BadRequest", err)
		}
		if diff := cmp.Diff(ids[:2], members(group.ID), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("a failed bind changed the members (-want +got):\n%s", diff)
		}
	})

	t.Run("revoking sign-in sessions moves signInSessionsValidFrom forward", func(t *testing.T) {
		dir, _, _ := newDirectory(t)
		ctx := t.Context()
		created, err := dir.CreateUser(ctx, jane, "Xy7!initial-password-Q")
		if err != nil {
			t.Fatal(err)
		}
		before, err := dir.GetUser(ctx, created.ID)
		if err != nil || before.SignInSessionsValidFrom == nil {
			t.Fatalf("read before the revocation = %+v, %v; want signInSessionsValidFrom set", before, err)
		}
		time.Sleep(5 * time.Millisecond) // the two instants must differ
		if err := dir.RevokeSignInSessions(ctx, created.ID); err != nil {
			t.Fatalf("revoking: %v", err)
		}
		after, err := dir.GetUser(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.SignInSessionsValidFrom == nil || !after.SignInSessionsValidFrom.After(*before.SignInSessionsValidFrom) {
			t.Errorf("signInSessionsValidFrom after the revocation = %v, want after %v", after.SignInSessionsValidFrom, before.SignInSessionsValidFrom)
		}
		if err := dir.RevokeSignInSessions(ctx, "00000000-0000-4000-8000-00000000dead"); directory.ClassOf(err) != directory.ClassNotFound {
			t.Errorf("revoking an unknown user's sessions: %v, want not found", err)
		}
	})

	t.Run("temporary access pass: created with its secret, refused outside the lifetimes, deleted", func(t *testing.T) {
		dir, _, _ := newDirectory(t)
		ctx := t.Context()
		created, err := dir.CreateUser(ctx, jane, "Xy7!initial-password-Q")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now().UTC().Truncate(time.Second)
		pass, err := dir.CreateTemporaryAccessPass(ctx, created.ID, start, 60, true)
		if err != nil {
			t.Fatalf("creating a pass: %v", err)
		}
		if pass.ID == "" || pass.Secret.Empty() || pass.LifetimeMinutes != 60 || !pass.IsUsableOnce || !pass.Start.Equal(start) {
			t.Errorf("pass = id %q, secret empty %v, %d minutes, once %v, start %v; want an id, a secret, 60, true, %v",
				pass.ID, pass.Secret.Empty(), pass.LifetimeMinutes, pass.IsUsableOnce, pass.Start, start)
		}
		if shown := fmt.Sprintf("%v %+v %s", pass.Secret, *pass, pass.Secret); strings.Contains(shown, pass.Secret.Reveal()) {
			t.Errorf("printing the pass shows its secret: %s", shown)
		}
		if _, err := dir.CreateTemporaryAccessPass(ctx, created.ID, start, 5, true); directory.ClassOf(err) != directory.ClassInvalid {
			t.Errorf("a 5-minute pass: %v, want invalid", err)
		}
		if _, err := dir.CreateTemporaryAccessPass(ctx, "00000000-0000-4000-8000-00000000dead", start, 60, true); directory.ClassOf(err) != directory.ClassNotFound {
			t.Errorf("a pass for an unknown user: %v, want not found", err)
		}
		if err := dir.DeleteTemporaryAccessPass(ctx, created.ID, pass.ID); err != nil {
			t.Errorf("deleting the pass: %v", err)
		}
		if err := dir.DeleteTemporaryAccessPass(ctx, created.ID, pass.ID); err != nil {
			t.Errorf("deleting the pass again: %v, want success", err)
		}
	})

	t.Run("password reset: a complex password is set, a weak one refused without being named", func(t *testing.T) {
		dir, _, _ := newDirectory(t)
		ctx := t.Context()
		created, err := dir.CreateUser(ctx, jane, "Xy7!initial-password-Q")
		if err != nil {
			t.Fatal(err)
		}
		if err := dir.ResetPassword(ctx, created.ID, directory.NewSecret("Fresh-Reset-7k2m")); err != nil {
			t.Errorf("resetting to a complex password: %v", err)
		}
		for _, weak := range []string{"Ab1!", "onlylowercase2", "NOLOWERCASEORDIGITS!"} {
			err := dir.ResetPassword(ctx, created.ID, directory.NewSecret(weak))
			if directory.ClassOf(err) != directory.ClassInvalid {
				t.Errorf("resetting to %q: %v, want invalid", weak, err)
			}
			if err != nil && strings.Contains(err.Error(), weak) {
				t.Errorf("the refusal names the password: %v", err)
			}
		}
		if err := dir.ResetPassword(ctx, "00000000-0000-4000-8000-00000000dead", directory.NewSecret("Fresh-Reset-7k2m")); directory.ClassOf(err) != directory.ClassNotFound {
			t.Errorf("resetting an unknown user's password: %v, want not found", err)
		}
		after, err := dir.GetUser(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(jane, after.UserAttributes); diff != "" {
			t.Errorf("the reset changed the user's attributes (-want +got):\n%s", diff)
		}
	})

	t.Run("send mail: from a mailbox, refused without one or without recipients", func(t *testing.T) {
		dir, _, _ := newDirectory(t)
		ctx := t.Context()
		withMailbox := jane
		withMailbox.Mail = "jane.doe@corp.example.com"
		sender, err := dir.CreateUser(ctx, withMailbox, "Xy7!initial-password-Q")
		if err != nil {
			t.Fatal(err)
		}
		noMailbox := jane
		noMailbox.UserPrincipalName, noMailbox.MailNickname, noMailbox.EmployeeID, noMailbox.Mail = "no.mailbox@corp.example.com", "no.mailbox", "E-NOMAIL", ""
		other, err := dir.CreateUser(ctx, noMailbox, "Xy7!initial-password-Q")
		if err != nil {
			t.Fatal(err)
		}
		message := directory.Mail{To: []string{"manager@corp.example.test"}, Subject: "Welcome", Body: "Hello"}
		if err := dir.SendMail(ctx, sender.ID, message); err != nil {
			t.Errorf("sending from a mailbox: %v", err)
		}
		if err := dir.SendMail(ctx, withMailbox.UserPrincipalName, message); err != nil {
			t.Errorf("sending from a mailbox named by userPrincipalName: %v", err)
		}
		if err := dir.SendMail(ctx, other.ID, message); directory.ClassOf(err) != directory.ClassInvalid {
			t.Errorf("sending from a user without a mailbox: %v, want invalid", err)
		}
		if err := dir.SendMail(ctx, sender.ID, directory.Mail{Subject: "Welcome", Body: "Hello"}); directory.ClassOf(err) != directory.ClassInvalid {
			t.Errorf("sending without recipients: %v, want invalid", err)
		}
	})

	t.Run("group licences: assigned, refused, in error per member, removed", func(t *testing.T) {
		dir, _, _ := newDirectory(t)
		ctx := t.Context()
		group, err := dir.CreateGroup(ctx, directory.GroupAttributes{DisplayName: "Licensed", MailNickname: "orgsync-licensed"})
		if err != nil {
			t.Fatal(err)
		}
		var members []string
		for i, location := range []string{"GB", "GB", ""} {
			attrs := jane
			attrs.EmployeeID, attrs.MailNickname = fmt.Sprintf("L%d", i), fmt.Sprintf("licensed%d", i)
			attrs.UserPrincipalName = attrs.MailNickname + "@corp.example.com"
			if location != "" {
				attrs.Mapped = map[string]string{"usageLocation": location}
			}
			u, err := dir.CreateUser(ctx, attrs, "Xy7!initial-password-Q")
			if err != nil {
				t.Fatal(err)
			}
			if err := dir.AddMember(ctx, group.ID, u.ID); err != nil {
				t.Fatal(err)
			}
			members = append(members, u.ID)
		}
		for name, call := range map[string]func() error{
			"unknown SKU": func() error {
				return dir.AssignGroupLicenses(ctx, group.ID, []directory.License{{SkuID: "00000000-0000-4000-8000-000000000001"}}, nil)
			},
			"plan not of the SKU": func() error {
				return dir.AssignGroupLicenses(ctx, group.ID, []directory.License{{SkuID: ContractSkuID, DisabledPlans: []string{"00000000-0000-4000-8000-000000000002"}}}, nil)
			},
			"removing a SKU the group does not have": func() error { return dir.AssignGroupLicenses(ctx, group.ID, nil, []string{ContractSkuID}) },
		} {
			if err := call(); directory.ClassOf(err) != directory.ClassInvalid {
				t.Errorf("%s: %v, want invalid", name, err)
			}
		}
		licensed := []directory.License{{SkuID: ContractSkuID, DisabledPlans: []string{ContractPlanB}}}
		if err := dir.AssignGroupLicenses(ctx, group.ID, licensed, nil); err != nil {
			t.Fatalf("assigning: %v", err)
		}
		got, err := dir.GetGroup(ctx, group.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(licensed, got.Licenses); diff != "" {
			t.Errorf("the group's licences (-want +got):\n%s", diff)
		}
		licenseErrors, err := dir.GroupLicenseErrors(ctx, group.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []directory.LicenseError{
			{UserID: members[1], SkuID: ContractSkuID, Error: "CountViolation"},
			{UserID: members[2], SkuID: ContractSkuID, Error: "ProhibitedInUsageLocationViolation"},
		}
		if diff := cmp.Diff(want, licenseErrors, cmpopts.SortSlices(func(a, b directory.LicenseError) bool { return a.UserID < b.UserID })); diff != "" {
			t.Errorf("members in error (-want +got):\n%s", diff)
		}
		if err := dir.AssignGroupLicenses(ctx, group.ID, nil, []string{ContractSkuID}); err != nil {
			t.Fatalf("removing: %v", err)
		}
		if got, _ := dir.GetGroup(ctx, group.ID); len(got.Licenses) != 0 {
			t.Errorf("licences after the removal: %v", got.Licenses)
		}
		if licenseErrors, err := dir.GroupLicenseErrors(ctx, group.ID); err != nil || len(licenseErrors) != 0 {
			t.Errorf("members in error after the removal: %v, %v", licenseErrors, err)
		}
	})

	t.Run("manager and lookup by principal name", func(t *testing.T) {
		dir, _, managers := newDirectory(t)
		ctx := t.Context()
		boss := jane
		boss.EmployeeID, boss.UserPrincipalName, boss.MailNickname = "E0", "boss@corp.example.com", "boss"
		bossUser, err := dir.CreateUser(ctx, boss, "Xy7!initial-password-Q")
		if err != nil {
			t.Fatal(err)
		}
		janeUser, err := dir.CreateUser(ctx, jane, "Xy7!initial-password-Q")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := dir.GetManager(ctx, janeUser.ID); err != nil || got != "" {
			t.Errorf("manager before one is set = %q, %v; want none", got, err)
		}
		if err := dir.SetManager(ctx, janeUser.ID, bossUser.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := dir.GetManager(ctx, janeUser.ID); err != nil || !strings.EqualFold(got, bossUser.ID) {
			t.Errorf("manager read back = %q, %v; want %s", got, err, bossUser.ID)
		}
		if got, ok := managers(janeUser.ID); !ok || got != bossUser.ID {
			t.Errorf("manager = %q, %v", got, ok)
		}
		if err := dir.RemoveManager(ctx, janeUser.ID); err != nil {
			t.Fatalf("removing the manager: %v", err)
		}
		if got, err := dir.GetManager(ctx, janeUser.ID); err != nil || got != "" {
			t.Errorf("manager after removal = %q, %v; want none", got, err)
		}
		if got, ok := managers(janeUser.ID); ok {
			t.Errorf("manager after removal = %q; want none", got)
		}
		if err := dir.RemoveManager(ctx, janeUser.ID); err != nil {
			t.Errorf("removing a manager that is not there: %v; want success", err)
		}
		found, err := dir.GetUserByPrincipalName(ctx, "JANE.DOE@corp.example.com")
		if err != nil || found == nil || found.ID != janeUser.ID || found.EmployeeID != "E1001" {
			t.Errorf("by principal name = %v, %v", found, err)
		}
		if none, err := dir.GetUserByPrincipalName(ctx, "nobody@corp.example.com"); none != nil || err != nil {
			t.Errorf("unknown principal name = %v, %v", none, err)
		}
	})
}
