package writer

import (
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory/directorytest"
)

// leaver is user(revision) disabled, with its access ended at accessEnded.
func leaver(revision uint64, accessEnded time.Time) *orgsyncv1.DesiredObject {
	obj := user(revision, "Sales")
	obj.GetUser().AccountEnabled = false
	obj.GetUser().AccessRevokedAt = timestamppb.New(accessEnded)
	return obj
}

func TestLeaverSessionsRevokedWithTheDisable(t *testing.T) {
	ctx := t.Context()
	fake := directorytest.NewFake()
	w := New(fake, nil, slog.New(slog.DiscardHandler))
	apply := func(obj *orgsyncv1.DesiredObject, attempt int) (*orgsyncv1.WriterResult, error) {
		t.Helper()
		return w.Apply(ctx, proto.Clone(obj).(*orgsyncv1.DesiredObject), attempt)
	}
	if _, err := apply(user(1, "Sales"), 1); err != nil {
		t.Fatal(err)
	}
	accessEnded := time.Now()
	time.Sleep(2 * time.Millisecond)

	t.Run("the disable and the revocation are one convergence", func(t *testing.T) {
		result, err := apply(leaver(2, accessEnded), 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"user.update", OpRevokeSessions}; !slices.Equal(result.GetOperations(), want) {
			t.Errorf("operations = %v, want %v", result.GetOperations(), want)
		}
		if fake.Writes[OpRevokeSessions] != 1 {
			t.Errorf("%d revocations, want 1", fake.Writes[OpRevokeSessions])
		}
	})

	t.Run("applying again (a restart, a redelivery, a later revision) does not revoke again", func(t *testing.T) {
		restarted := New(fake, nil, slog.New(slog.DiscardHandler))
		for revision := uint64(2); revision <= 3; revision++ {
			result, err := restarted.Apply(ctx, leaver(revision, accessEnded), 1)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(result.GetOperations(), OpRevokeSessions) {
				t.Errorf("revision %d revoked again: %v", revision, result.GetOperations())
			}
		}
		if fake.Writes[OpRevokeSessions] != 1 {
			t.Errorf("%d revocations, want still 1", fake.Writes[OpRevokeSessions])
		}
	})

	t.Run("a rehire and a second leave revoke again", func(t *testing.T) {
		if _, err := apply(user(4, "Sales"), 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		result, err := apply(leaver(5, time.Now()), 1)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(result.GetOperations(), OpRevokeSessions) || fake.Writes[OpRevokeSessions] != 2 {
			t.Errorf("second leave: operations %v, %d revocations; want a second revocation", result.GetOperations(), fake.Writes[OpRevokeSessions])
		}
	})
}

func TestLeaverRevocationFailureIsRetried(t *testing.T) {
	ctx := t.Context()
	fake := directorytest.NewFake()
	w := New(fake, nil, slog.New(slog.DiscardHandler))
	if _, err := w.Apply(ctx, user(1, "Sales"), 1); err != nil {
		t.Fatal(err)
	}
	accessEnded := time.Now()
	time.Sleep(2 * time.Millisecond)
	unavailable := &directory.Error{Op: OpRevokeSessions, Class: directory.ClassTransient, Status: 503, Code: "serviceUnavailable"}
	fake.Fail = func(op string) error {
		if op == OpRevokeSessions {
			return unavailable
		}
		return nil
	}
	_, err := w.Apply(ctx, leaver(2, accessEnded), 1)
	if !errors.Is(err, unavailable) {
		t.Fatalf("apply with the revocation failing: %v, want the directory's error", err)
	}
	if delay, retry := retryDelay(err, 1); !retry || delay <= 0 {
		t.Errorf("a failed revocation is not retried: delay %v, retry %v", delay, retry)
	}
	if got, _ := fake.GetUser(ctx, "00000000-0000-0000-0000-000000000001"); got.AccountEnabled {
		t.Fatalf("the account was not disabled before the revocation")
	}

	fake.Fail = nil
	result, err := w.Apply(ctx, leaver(2, accessEnded), 2)
	if err != nil {
		t.Fatal(err)
	}
	// The account is already disabled: the retry sees sessions older than the end of access.
	if want := []string{OpRevokeSessions}; !slices.Equal(result.GetOperations(), want) {
		t.Errorf("retry operations = %v, want %v", result.GetOperations(), want)
	}
}

func TestLeaverWithoutAccessRevokedAtKeepsSessions(t *testing.T) {
	ctx := t.Context()
	fake := directorytest.NewFake()
	w := New(fake, nil, slog.New(slog.DiscardHandler))
	if _, err := w.Apply(ctx, user(1, "Sales"), 1); err != nil {
		t.Fatal(err)
	}
	disabled := user(2, "Sales")
	disabled.GetUser().AccountEnabled = false // the policy turned leaver security off
	result, err := w.Apply(ctx, disabled, 1)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(result.GetOperations(), OpRevokeSessions) || fake.Writes[OpRevokeSessions] != 0 {
		t.Errorf("sessions revoked without access_revoked_at: %v", result.GetOperations())
	}
}
