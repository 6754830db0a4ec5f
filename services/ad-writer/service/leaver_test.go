package service

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
	"github.com/orgsync/orgsync/services/ad-writer/internal/writer"
)

// lockedBuffer collects a replica's log for the test to read.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLoggingWriter is startWriter with the replica's debug log in logs.
func (d *domain) startLoggingWriter(tb testing.TB, logs *lockedBuffer) func() {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, d.config(nil), slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := svc.Run(ctx); err != nil {
			tb.Errorf("ad-writer: %v", err)
		}
	})
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	tb.Cleanup(stop)
	return stop
}

// TestTerminationResetsThePassword runs a leaver through ad-writer against Samba: the revision
// that disables the account sets its password to a random value in the same modify — the old
// password no longer binds even when someone enables the account again behind orgsync's back —
// the reset is audited without the password, nothing logs it, and a restarted writer applying a
// later revision of the leaver does not reset it again.
func TestTerminationResetsThePassword(t *testing.T) {
	d := newDomain(t, "leaver")
	logs := &lockedBuffer{}
	stop := d.startLoggingWriter(t, logs)
	const id, principal = "LV1", "lv1@corp.example.test"
	hire := user(id, 1, nil)
	d.publish(t, hire)
	d.waitFor(t, time.Minute, hire)
	initial := <-d.generated
	if err := bind(t, principal, initial); err != nil {
		t.Fatalf("the new hire cannot bind with the initial password: %v", err)
	}
	keyVersion := func() string {
		return d.entry(t, "(employeeID="+id+")", "msDS-KeyVersionNumber").Get("msDS-KeyVersionNumber")
	}
	versionBefore := keyVersion()

	accessEnded := time.Now().Add(-time.Second)
	leaver := func(revision uint64, jobTitle string) *orgsyncv1.DesiredObject {
		return user(id, revision, func(u *orgsyncv1.DesiredUser) {
			u.AccountEnabled, u.JobTitle = false, jobTitle
			u.EmployeeLeaveDateTime = timestamppb.New(accessEnded)
			u.AccessRevokedAt = timestamppb.New(accessEnded)
		})
	}
	terminated := leaver(2, "Engineer")
	terminated.Cause = &orgsyncv1.Cause{Reason: "termination", HrEventId: "ev-terminate-LV1"}
	results := d.waitFor(t, time.Minute, func() *orgsyncv1.DesiredObject { d.publish(t, terminated); return terminated }())
	ops := results["ad.user.LV1"].GetOperations()
	if !slices.Contains(ops, "user.update") || !slices.Contains(ops, writer.OpPasswordReset) {
		t.Errorf("the termination's result: operations %v, want the disable (user.update) and %s in one convergence", ops, writer.OpPasswordReset)
	}
	var reset string
	select {
	case reset = <-d.generated:
	default:
		t.Fatal("no password was generated for the reset")
	}
	e := d.entry(t, "(employeeID="+id+")", "userAccountControl", "pwdLastSet")
	if e.Get("userAccountControl") != "514" {
		t.Errorf("userAccountControl = %s, want 514 (disabled)", e.Get("userAccountControl"))
	}
	if set, ok := ldap.ParseFileTime(e.Get("pwdLastSet")); !ok || set.Before(accessEnded) {
		t.Errorf("pwdLastSet %v (%v) is not after the end of access %v", set, ok, accessEnded)
	}
	if got := keyVersion(); got == versionBefore {
		t.Errorf("msDS-KeyVersionNumber still %s: the password was not set", got)
	}

	// Someone enables the account again by hand: the old password still does not work.
	if err := d.admin.Modify(t.Context(), e.DN, []ldap.Change{{Op: ldap.Replace, Attr: "userAccountControl", Values: []string{"512"}}}); err != nil {
		t.Fatal(err)
	}
	if err := bind(t, principal, initial); err == nil {
		t.Error("the leaver's old password still binds")
	}
	if err := bind(t, principal, reset); err != nil {
		t.Errorf("the account does not have the random password the writer set: %v", err)
	}
	if err := d.admin.Modify(t.Context(), e.DN, []ldap.Change{{Op: ldap.Replace, Attr: "userAccountControl", Values: []string{"514"}}}); err != nil {
		t.Fatal(err)
	}

	// A restart, and a later revision of the leaver: no second reset.
	versionAfterReset := keyVersion()
	stop()
	d.startLoggingWriter(t, logs)
	corrected := leaver(3, "Former engineer")
	results = d.waitFor(t, time.Minute, func() *orgsyncv1.DesiredObject { d.publish(t, corrected); return corrected }())
	if ops := results["ad.user.LV1"].GetOperations(); slices.Contains(ops, writer.OpPasswordReset) {
		t.Errorf("the restarted writer reset the password again: %v", ops)
	}
	if got := keyVersion(); got != versionAfterReset {
		t.Errorf("msDS-KeyVersionNumber %s after the restart, want still %s", got, versionAfterReset)
	}

	audit := streamtest.AuditRecords(t, d.js, "audit.ad.user."+id)
	resets := 0
	for _, record := range audit {
		if slices.Contains(record.GetOperations(), writer.OpPasswordReset) {
			resets++
			if record.GetRevision() != 2 || record.GetCause().GetHrEventId() != "ev-terminate-LV1" {
				t.Errorf("the reset's audit record names revision %d, HR event %q; want 2, ev-terminate-LV1", record.GetRevision(), record.GetCause().GetHrEventId())
			}
		}
		text := prototext.Format(record)
		for _, password := range []string{initial, reset} {
			if strings.Contains(text, password) {
				t.Errorf("an audit record holds a generated password")
			}
		}
	}
	if resets != 1 {
		t.Errorf("%d audit records of a password reset, want 1", resets)
	}
	for _, password := range []string{initial, reset, string(ldap.UnicodePwd(reset))} {
		if strings.Contains(logs.String(), password) {
			t.Errorf("the writer's log holds a generated password")
		}
	}
}
