package service

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/pkg/converge"
	"github.com/orgsync/orgsync/pkg/converge/convergetest"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
)

// TestAdminRoutesAccess calls every admin route without credentials, with a valid token that
// lacks the role, and with the role the route needs; the routes are not on the open HTTP port.
func TestAdminRoutesAccess(t *testing.T) {
	d := newDomain(t, "admin")
	authCfg, tokens := authtest.RoleTokens(t)
	issuer := authtest.NewIssuer(t)
	authCfg.Issuer, authCfg.Audience = issuer.URL(), authtest.Audience
	svc, _ := d.startWriter(t, func(cfg *Config) { cfg.Server.Auth = authCfg })
	convergetest.CheckAdminAccess(t, svc.AdminAddr(), svc.HTTPAddr(), tokens, issuer.Token("someone"))
}

// TestDeadLettersListedAndReplayed: an account orgsync does not manage holds the sAMAccountName a
// worker's desired state asks for. The DC refuses the create; ad-writer reports it once as
// FAILED, parks it as a dead letter (listed with the attribute, counted in its status) and goes
// on. Once the foreign account is gone, a replay by an operator creates the worker's account.
func TestDeadLettersListedAndReplayed(t *testing.T) {
	d := newDomain(t, "deadletters")
	outside := "OU=deadletters-outside," + dc.BaseDN
	if err := d.admin.AddEntry(t.Context(), outside, map[string][]string{"objectClass": {"top", "organizationalUnit"}}); err != nil && ldap.Code(err) != ldap.ResultEntryExists {
		t.Fatal(err)
	}
	foreign := "CN=Foreign DL," + outside
	if err := d.admin.AddEntry(t.Context(), foreign, map[string][]string{
		"objectClass": {"top", "person", "organizationalPerson", "user"}, "sAMAccountName": {"deadlettersam"},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.admin.DeleteEntry(t.Context(), foreign) })
	authCfg, tokens := authtest.RoleTokens(t)
	svc, _ := d.startWriter(t, func(cfg *Config) { cfg.Server.Auth = authCfg })
	admin := "http://" + svc.AdminAddr()

	refused := user("DL1", 1, func(u *orgsyncv1.DesiredUser) { u.Attributes["sAMAccountName"] = "deadlettersam" })
	ok := user("DL2", 1, nil)
	d.publish(t, refused, ok)
	d.waitFor(t, 60*time.Second, ok)

	var letters []converge.Letter
	deadline := time.Now().Add(60 * time.Second)
	for len(letters) == 0 && time.Now().Before(deadline) {
		code, body := convergetest.Call(t, admin, "GET", "/v1/dead-letters", tokens[auth.Viewer])
		if code != http.StatusOK {
			t.Fatalf("listing dead letters: %d %s", code, body)
		}
		if err := json.Unmarshal(body, &letters); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(letters) != 1 || letters[0].Path != "ad.user.DL1" || letters[0].Revision != 1 || letters[0].Property != "sAMAccountName" || letters[0].Error == "" {
		t.Fatalf("dead letters = %+v, want DL1 revision 1 about sAMAccountName, with the DC's reason", letters)
	}
	if r := d.results(t)["ad.user.DL1"]; r.GetOutcome() != orgsyncv1.Outcome_OUTCOME_FAILED || r.GetErrorClass() != orgsyncv1.ErrorClass_ERROR_CLASS_CONFLICT {
		t.Errorf("result of DL1 = %v %v, want FAILED, CONFLICT", r.GetOutcome(), r.GetErrorClass())
	}

	// orgsyncctl status reads the writers' statuses from the status bucket.
	var status *orgsyncv1.ServiceStatus
	deadline = time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		statuses, err := stream.ReadStatuses(t.Context(), d.js)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range statuses {
			if s.GetService() == Name {
				status = s
			}
		}
		if status.GetDeadLetters() == 1 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := map[string]any{"state": status.GetState(), "ready": status.GetReady(), "dead letters": status.GetDeadLetters()}
	if diff := cmp.Diff(map[string]any{"state": "running", "ready": true, "dead letters": int64(1)}, got); diff != "" {
		t.Errorf("status of ad-writer (-want +got):\n%s", diff)
	}

	if err := d.admin.DeleteEntry(t.Context(), foreign); err != nil {
		t.Fatal(err)
	}
	code, body := convergetest.Call(t, admin, "POST", "/v1/dead-letters/replay", tokens[auth.Operator])
	if code != http.StatusOK || string(body) != "{\"replayed\":1,\"obsolete\":0}\n" {
		t.Fatalf("replay: %d %s", code, body)
	}
	deadline = time.Now().Add(60 * time.Second)
	for d.results(t)["ad.user.DL1"].GetOutcome() != orgsyncv1.Outcome_OUTCOME_APPLIED {
		if time.Now().After(deadline) {
			t.Fatalf("DL1 after the replay: %v", d.results(t)["ad.user.DL1"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := d.entry(t, "(employeeID=DL1)", "sAMAccountName").Get("sAMAccountName"); got != "deadlettersam" {
		t.Errorf("sAMAccountName of DL1 = %q", got)
	}
	if code, body := convergetest.Call(t, admin, "GET", "/v1/dead-letters", tokens[auth.Viewer]); code != http.StatusOK || string(body) != "null\n" {
		t.Errorf("dead letters after the replay: %d %s, want none", code, body)
	}
}
