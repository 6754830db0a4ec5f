package writer

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap/ldaptest"
)

// testLeaver is testUser disabled, with access ended at accessEnded (nil: leaver security off).
func testLeaver(id string, revision uint64, accessEnded *time.Time) *orgsyncv1.DesiredObject {
	obj := testUser(id, "Engineer", revision)
	obj.GetUser().AccountEnabled = false
	if accessEnded != nil {
		obj.GetUser().AccessRevokedAt = timestamppb.New(*accessEnded)
	}
	return obj
}

func TestLeaverPasswordResetWithTheDisable(t *testing.T) {
	ctx := t.Context()
	dir := ldaptest.NewFake(testUsers, testGroups)
	var logs bytes.Buffer
	var passwords []string
	newWriter := func() *Writer {
		return New(dir, nil, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Options{
			BaseDN: testBase, UsersOU: testUsers, GroupsOU: testGroups,
			NewPassword: func() (string, error) {
				password := "Leaver-Pa55-" + strings.Repeat("x", len(passwords)+1)
				passwords = append(passwords, password)
				return password, nil
			},
		})
	}
	w := newWriter()
	dn := "CN=Worker E7," + testUsers
	keyVersion := func() string {
		t.Helper()
		entries, err := dir.Search(ctx, dn, "(objectClass=user)", []string{keyVersionAttribute})
		if err != nil || len(entries) != 1 {
			t.Fatalf("reading %s: %v, %d entries", dn, err, len(entries))
		}
		return entries[0].Get(keyVersionAttribute)
	}
	if _, err := w.Apply(ctx, testUser("E7", "Engineer", 1), 1); err != nil {
		t.Fatal(err)
	}
	if keyVersion() != "2" {
		t.Fatalf("after the create msDS-KeyVersionNumber = %s, want 2", keyVersion())
	}
	accessEnded := time.Now()

	t.Run("the disable and the reset are one write", func(t *testing.T) {
		result, err := w.Apply(ctx, testLeaver("E7", 2, &accessEnded), 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"user.update", OpPasswordReset}; !slices.Equal(result.GetOperations(), want) {
			t.Errorf("operations = %v, want %v", result.GetOperations(), want)
		}
		if keyVersion() != "3" || dir.Entry(dn).Get("userAccountControl") != "514" {
			t.Errorf("after the leave: key version %s, userAccountControl %s; want 3 and 514", keyVersion(), dir.Entry(dn).Get("userAccountControl"))
		}
	})

	t.Run("a restarted writer does not reset again", func(t *testing.T) {
		restarted := newWriter()
		for revision := uint64(2); revision <= 3; revision++ {
			result, err := restarted.Apply(ctx, testLeaver("E7", revision, &accessEnded), 1)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(result.GetOperations(), OpPasswordReset) {
				t.Errorf("revision %d reset the password again: %v", revision, result.GetOperations())
			}
		}
		if keyVersion() != "3" {
			t.Errorf("key version %s, want still 3", keyVersion())
		}
	})

	t.Run("an account disabled before leaver security was on gets the reset alone", func(t *testing.T) {
		if _, err := w.Apply(ctx, testUser("E8", "Engineer", 1), 1); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Apply(ctx, testLeaver("E8", 2, nil), 1); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Second)
		result, err := w.Apply(ctx, testLeaver("E8", 3, &later), 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{OpPasswordReset}; !slices.Equal(result.GetOperations(), want) {
			t.Errorf("operations = %v, want %v", result.GetOperations(), want)
		}
	})

	for _, password := range passwords {
		if strings.Contains(logs.String(), password) {
			t.Errorf("a generated password is in the logs")
		}
	}
}
