package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// TestDelegationAndHelpdeskCommands drives the delegation and helpdesk commands against a real
// org-model: a delegation explained as such and ended; a helpdesk request its requester cannot
// approve and an approver can.
func TestDelegationAndHelpdeskCommands(t *testing.T) {
	f := startFixture(t, server.TLSConfig{})
	nc, err := nats.Connect(f.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	e2 := &orgsyncv1.HREvent{EventId: "e-E2", Source: "test", OccurredAt: timestamppb.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)),
		Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{WorkerId: "E2", OrgUnitId: "commercial",
			Name: &orgsyncv1.PersonName{GivenName: "John", FamilyName: "Roe"}, EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE}}}
	hrSubject, _ := subject.HRSubject(e2)
	if _, err := stream.NewPublisher(js).Publish(t.Context(), hrSubject, e2.EventId, e2); err != nil {
		t.Fatal(err)
	}
	tokenFiles := map[auth.Role]string{}
	for role, token := range f.tokens {
		path := filepath.Join(t.TempDir(), string(role))
		if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
		tokenFiles[role] = path
	}
	as := func(role auth.Role, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(t.Context(), append([]string{"--addr", f.addr, "--token-file", tokenFiles[role]}, args...), &out)
		return out.String(), err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := as(auth.Viewer, "worker", "E2"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("E2 not known within 10s")
		}
	}
	contains := func(out string, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out, err := as(auth.Operator, "delegate", "E2", "--from", "E1", "--start", "2026-03-02", "--end", "2026-03-09", "--reason", "cover")
	contains(out, err, "created by token operator: E2 gets the memberships of E1 from 2026-03-02 until 2026-03-09 (active)")
	delegationID := regexp.MustCompile(`d-[0-9a-f]+`).FindString(out)
	out, err = as(auth.Viewer, "explain", "unit-sales", "E2")
	contains(out, err, "because  delegated from E1 until 2026-03-09 (delegation "+delegationID+")")
	out, err = as(auth.Viewer, "delegations", "--worker", "E2")
	contains(out, err, delegationID+"  E2        E1    2026-03-02  2026-03-09  active  token operator  -         cover")
	if _, err := as(auth.Viewer, "delegate", "E2", "--from", "E1", "--start", "2026-03-02", "--end", "2026-03-09", "--reason", "x"); err == nil ||
		!strings.Contains(err.Error(), "PermissionDenied") && !strings.Contains(err.Error(), "role") {
		t.Errorf("a viewer's delegation: %v", err)
	}
	if _, err := as(auth.Operator, "delegate", "E2", "--from", "E2", "--start", "2026-03-02", "--end", "2026-03-09", "--reason", "x"); err == nil ||
		!strings.Contains(err.Error(), "cannot be delegated their own memberships") {
		t.Errorf("delegating to oneself: %v", err)
	}
	if _, err := as(auth.Operator, "delegate", "E2", "--from", "E1", "--start", "2026-03-02", "--end", "9 March"); err == nil ||
		!strings.Contains(err.Error(), `--end "9 March" is not a date YYYY-MM-DD`) {
		t.Errorf("a bad date: %v", err)
	}
	out, err = as(auth.Operator, "end-delegation", delegationID)
	contains(out, err, "delegation "+delegationID+" ended by token operator")

	out, err = as(auth.Admin, "request-access", "E1", "--group", "unit-commercial", "--until", "2026-03-10", "--reason", "INC-1")
	contains(out, err, "by token admin: E1 in unit-commercial until 2026-03-10; waits for a second person's approval until 2026-03-03T09:00:00Z")
	requestID := regexp.MustCompile(`r-[0-9a-f]+`).FindString(out)
	if _, err := as(auth.Admin, "approve-request", requestID); err == nil || !strings.Contains(err.Error(), "cannot approve or reject their own request") {
		t.Errorf("the requester's own approval: %v", err)
	}
	out, err = as(auth.Approver, "approve-request", requestID)
	contains(out, err, "request "+requestID+" approved by token approver")
	out, err = as(auth.Viewer, "explain", "unit-commercial", "E1")
	contains(out, err, "because  temporary access until 2026-03-10 (helpdesk request "+requestID+")")
	out, err = as(auth.Viewer, "requests")
	contains(out, err, "approved  token admin")

	out, err = as(auth.Operator, "request-access", "E1", "--tap", "--lifetime", "30m", "--reason", "INC-2: lost phone")
	contains(out, err, "by token operator: a Temporary Access Pass (30 min, one sign-in) for E1; waits for a second person's approval")
	passID := regexp.MustCompile(`r-[0-9a-f]+`).FindString(out)
	out, err = as(auth.Operator, "request-access", "E1", "--password-reset", "--reason", "INC-3: locked out")
	contains(out, err, "by token operator: a password reset for E1; waits")
	out, err = as(auth.Approver, "approve-request", passID)
	contains(out, err, "request "+passID+" approved by token approver")
	out, err = as(auth.Viewer, "requests")
	contains(out, err, passID+"  temporary-access-pass")
	contains(out, err, "password-reset")
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--tap", "--password-reset", "--reason", "x"}, "--tap and --password-reset: ask for one at a time"},
		{[]string{"--tap", "--group", "unit-sales", "--reason", "x"}, "--group and --until are for a temporary membership"},
		{[]string{"--password-reset", "--lifetime", "1h", "--reason", "x"}, "--lifetime is for --tap"},
		{[]string{"--tap", "--lifetime", "2d", "--reason", "x"}, "invalid value"},
		{[]string{"--tap", "--lifetime", "5m", "--reason", "x"}, "lifetime_minutes must be between 10 and 1440"},
	} {
		if _, err := as(auth.Operator, append([]string{"request-access", "E1"}, bad.args...)...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("request-access E1 %v: %v, want an error naming %q", bad.args, err, bad.want)
		}
	}
}
