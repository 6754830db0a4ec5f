package service

import (
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
)

// TestDCRestartMidRun stops the domain controller while desired state keeps arriving: the writer
// pauses (its readiness says so) and converges once the DC is back, with nothing lost.
func TestDCRestartMidRun(t *testing.T) {
	d := newDomain(t, "restart")
	svc, _ := d.startWriter(t, nil)
	before := []*orgsyncv1.DesiredObject{group("r-unit", 1), user("R0", 1, nil)}
	d.publish(t, before...)
	d.waitFor(t, 30*time.Second, before...)

	if err := dc.Stop(); err != nil {
		t.Fatal(err)
	}
	var during []*orgsyncv1.DesiredObject
	for i := range 20 {
		id := fmt.Sprintf("R%d", i+1)
		during = append(during, user(id, 1, nil), member("r-unit", orgsyncv1.MemberKind_MEMBER_KIND_USER, id, 1, false))
	}
	d.publish(t, during...)
	deadline := time.Now().Add(30 * time.Second)
	for svc.Paused() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the writer did not pause while the DC was down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := dc.Resume(); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, 2*time.Minute, during...)
	if err := svc.Paused(); err != nil {
		t.Errorf("still paused after converging: %v", err)
	}
	if diff := cmp.Diff(20, len(d.members(t, "CN=Org - r-unit,"+d.groups))); diff != "" {
		t.Errorf("members after the restart (-want +got):\n%s", diff)
	}
}

// TestDrift edits managed objects behind orgsync's back; the uSNChanged reconcile corrects them,
// or only reports them under AD_DRIFT_POLICY=report.
func TestDrift(t *testing.T) {
	tests := []struct {
		name        string
		reportOnly  bool
		wantTitle   string
		wantUAC     string
		wantMembers int
	}{
		{name: "correct", wantTitle: "Engineer", wantUAC: "512", wantMembers: 1},
		{name: "report", reportOnly: true, wantTitle: "Edited by hand", wantUAC: "514", wantMembers: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDomain(t, "drift-"+tt.name)
			svc, _ := d.startWriter(t, func(cfg *Config) { cfg.Writer.DriftReportOnly = tt.reportOnly })
			id, groupKey := "D"+tt.name[:1], "drift-"+tt.name
			objs := []*orgsyncv1.DesiredObject{group(groupKey, 1), user(id, 1, nil), member(groupKey, orgsyncv1.MemberKind_MEMBER_KIND_USER, id, 1, false)}
			d.publish(t, objs...)
			d.waitFor(t, 30*time.Second, objs...)
			if _, err := svc.Reconcile(t.Context()); err != nil { // the baseline pass
				t.Fatal(err)
			}
			userDN, groupDN := d.entry(t, "(employeeID="+id+")").DN, "CN=Org - "+groupKey+","+d.groups
			edits := map[string][]ldap.Change{
				userDN: {
					{Op: ldap.Replace, Attr: "title", Values: []string{"Edited by hand"}},
					{Op: ldap.Replace, Attr: "userAccountControl", Values: []string{strconv.Itoa(514)}},
				},
				groupDN: {{Op: ldap.Delete, Attr: "member", Values: []string{userDN}}},
			}
			for dn, changes := range edits {
				if err := d.admin.Modify(t.Context(), dn, changes); err != nil {
					t.Fatal(err)
				}
			}
			found, err := svc.Reconcile(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			e := d.entry(t, "(employeeID="+id+")", "title", "userAccountControl")
			got := map[string]any{"found": found.Changed, "title": e.Get("title"), "uac": e.Get("userAccountControl"), "members": len(d.members(t, groupDN))}
			want := map[string]any{"found": 2, "title": tt.wantTitle, "uac": tt.wantUAC, "members": tt.wantMembers}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("after reconcile (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDryRun logs the LDAP operations instead of sending them.
func TestDryRun(t *testing.T) {
	d := newDomain(t, "dryrun")
	svc, _ := d.startWriter(t, func(cfg *Config) { cfg.LDAP.DryRun = true })
	objs := []*orgsyncv1.DesiredObject{group("dry-unit", 1), user("Y1", 1, nil), member("dry-unit", orgsyncv1.MemberKind_MEMBER_KIND_USER, "Y1", 1, false)}
	d.publish(t, objs...)
	d.waitFor(t, 30*time.Second, objs...)
	entries, err := d.admin.Search(t.Context(), d.root, "(|(employeeID=Y1)(sAMAccountName=dry-unit))", []string{"cn"})
	if err != nil {
		t.Fatal(err)
	}
	ops := svc.Operations()
	got := map[string]int64{"entries": int64(len(entries)), "add": ops["add"], "modify": ops["modify"]}
	want := map[string]int64{"entries": 0, "add": 2, "modify": 2} // group + user; password + member
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dry run (-want +got):\n%s", diff)
	}
}

// TestOwnership leaves alone accounts without orgsync's marker or outside the managed OUs.
func TestOwnership(t *testing.T) {
	d := newDomain(t, "ownership")
	outside := "OU=ownership-outside," + dc.BaseDN
	for _, dn := range []string{outside} {
		if err := d.admin.AddEntry(t.Context(), dn, map[string][]string{"objectClass": {"top", "organizationalUnit"}}); err != nil && ldap.Code(err) != ldap.ResultEntryExists {
			t.Fatal(err)
		}
	}
	handMade := map[string]string{"O1": "CN=Hand Made O1," + d.users, "O2": "CN=Hand Made O2," + outside}
	for id, dn := range handMade {
		if err := d.admin.AddEntry(t.Context(), dn, map[string][]string{
			"objectClass": {"top", "person", "organizationalPerson", "user"}, "sAMAccountName": {"hand" + id}, "employeeID": {id}, "title": {"Kept"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	svc, _ := d.startWriter(t, nil)
	_ = svc
	objs := []*orgsyncv1.DesiredObject{user("O1", 1, nil), user("O2", 1, nil)}
	d.publish(t, objs...)
	results := d.waitFor(t, 30*time.Second, objs...)
	for id, dn := range handMade {
		e := d.entry(t, "(employeeID="+id+")", "title")
		got := map[string]string{"outcome": results["ad.user."+id].GetOutcome().String(), "dn": e.DN, "title": e.Get("title")}
		want := map[string]string{"outcome": "OUTCOME_SKIPPED", "dn": dn, "title": "Kept"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", id, diff)
		}
	}
}

// TestMustChangePassword makes a new user change the initial password at first logon.
func TestMustChangePassword(t *testing.T) {
	tests := []struct {
		name       string
		mustChange bool
		wantZero   bool
	}{
		{name: "policy on", mustChange: true, wantZero: true},
		{name: "policy off", mustChange: false, wantZero: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDomain(t, "pwd-"+strconv.FormatBool(tt.mustChange))
			d.startWriter(t, func(cfg *Config) { cfg.Writer.MustChangePassword = tt.mustChange })
			id := "P" + strconv.FormatBool(tt.mustChange)[:1]
			objs := []*orgsyncv1.DesiredObject{user(id, 1, nil)}
			d.publish(t, objs...)
			d.waitFor(t, 30*time.Second, objs...)
			got := d.entry(t, "(employeeID="+id+")", "pwdLastSet").Get("pwdLastSet") == "0"
			if diff := cmp.Diff(tt.wantZero, got); diff != "" {
				t.Errorf("pwdLastSet=0 (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConnections binds over LDAPS and over StartTLS, and refuses a DC whose certificate does not
// chain to the configured CA.
func TestConnections(t *testing.T) {
	otherCA := filepath.Join(t.TempDir(), "other-ca.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
		"-keyout", filepath.Join(t.TempDir(), "k.pem"), "-out", otherCA).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v: %s", err, out)
	}
	tests := []struct {
		name, url, ca string
		wantErr       bool
	}{
		{name: "LDAPS", url: dc.URL, ca: dc.CAFile},
		{name: "StartTLS", url: "ldap://127.0.0.1:389", ca: dc.CAFile},
		{name: "unknown CA", url: dc.URL, ca: otherCA, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, err := ldap.New(ldap.Config{URL: tt.url, BindDN: dc.BindDN, BindPassword: adminPassword, CAFile: tt.ca}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			err = client.Ping(t.Context())
			if (err != nil) != tt.wantErr {
				t.Errorf("Ping: %v, want error %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), adminPassword) {
				t.Errorf("the error shows the bind password")
			}
		})
	}
}

// TestCreateInterruptedBeforeThePassword: a writer killed between adding an account (disabled,
// without a password) and the modify that sets its password leaves the account so. The
// redelivered desired state must set the password before it enables the account, not enable an
// account that has none (Samba allows that) — found by the chaos run (deploy/scale).
func TestCreateInterruptedBeforeThePassword(t *testing.T) {
	d := newDomain(t, "interrupted")
	dn := "CN=Worker K1," + d.users
	if err := d.admin.AddEntry(t.Context(), dn, map[string][]string{
		"objectClass": {"top", "person", "organizationalPerson", "user"}, "userAccountControl": {"514"},
		"adminDescription": {"managed-by:orgsync"}, "employeeID": {"K1"}, "sAMAccountName": {"k1"},
	}); err != nil {
		t.Fatal(err)
	}
	d.startWriter(t, nil)
	objs := []*orgsyncv1.DesiredObject{user("K1", 1, nil)}
	d.publish(t, objs...)
	results := d.waitFor(t, 30*time.Second, objs...)
	var password string
	select {
	case password = <-d.generated:
	case <-time.After(5 * time.Second):
		t.Fatal("no password was generated for the account")
	}
	e := d.entry(t, "(employeeID=K1)", "userAccountControl", "msDS-KeyVersionNumber")
	got := map[string]string{
		"dn": e.DN, "userAccountControl": e.Get("userAccountControl"), "msDS-KeyVersionNumber": e.Get("msDS-KeyVersionNumber"),
		"operations": strings.Join(results["ad.user.K1"].GetOperations(), " "), "bind": fmt.Sprint(bind(t, "k1@corp.example.test", password)),
	}
	want := map[string]string{
		"dn": dn, "userAccountControl": "512", "msDS-KeyVersionNumber": "2", "operations": "user.password user.update", "bind": "<nil>",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the interrupted account (-want +got):\n%s", diff)
	}
}

// TestRemovesAMemberMovedMeanwhile: the writer knows a member by the DN it last saw; another
// replica (here: the administrator) moves the member. Samba answers a removal by the old DN
// with 53, as for a value already gone; the member must still be removed — found by the chaos
// run (deploy/scale).
func TestRemovesAMemberMovedMeanwhile(t *testing.T) {
	d := newDomain(t, "moved", "Moved")
	d.startWriter(t, nil)
	objs := []*orgsyncv1.DesiredObject{group("mv-unit", 1), user("M1", 1, nil), member("mv-unit", orgsyncv1.MemberKind_MEMBER_KIND_USER, "M1", 1, false)}
	d.publish(t, objs...)
	d.waitFor(t, 30*time.Second, objs...)
	if err := d.admin.ModifyDN(t.Context(), "CN=Worker M1,"+d.users, "CN=Worker M1", d.ou("Moved")); err != nil {
		t.Fatal(err)
	}
	removal := member("mv-unit", orgsyncv1.MemberKind_MEMBER_KIND_USER, "M1", 2, true)
	d.publish(t, removal)
	d.waitFor(t, 30*time.Second, removal)
	if diff := cmp.Diff([]string(nil), d.members(t, "CN=Org - mv-unit,"+d.groups)); diff != "" {
		t.Errorf("members after the removal (-want +got):\n%s", diff)
	}
}

// TestStandbyTakesOver: of two replicas one holds the lease and writes; the other stands by. The
// active one stops in the middle of a load; the standby takes over within seconds (the stopping
// replica lets the lease go) and the load converges in AD, with nothing lost.
func TestStandbyTakesOver(t *testing.T) {
	d := newDomain(t, "standby")
	first, stopFirst := d.startWriter(t, nil)
	waitActive := func(svc *Service, within time.Duration) time.Duration {
		start := time.Now()
		for !svc.Active() && time.Since(start) < within {
			time.Sleep(10 * time.Millisecond)
		}
		if !svc.Active() {
			t.Fatalf("no replica became active within %v", within)
		}
		return time.Since(start)
	}
	waitActive(first, 10*time.Second)
	second, _ := d.startWriter(t, nil)

	load := []*orgsyncv1.DesiredObject{group("sb-unit", 1)}
	for i := range 40 {
		id := fmt.Sprintf("SB%d", i)
		load = append(load, user(id, 1, nil), member("sb-unit", orgsyncv1.MemberKind_MEMBER_KIND_USER, id, 1, false))
	}
	d.publish(t, load...)
	deadline := time.Now().Add(time.Minute)
	for len(d.results(t)) < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if second.Active() {
		t.Fatal("the standby is active while the first replica holds the lease")
	}
	written := len(d.results(t))
	stopFirst()
	took := waitActive(second, 10*time.Second)
	t.Logf("took over %v after the active replica stopped, %d of %d objects written by then", took.Round(time.Millisecond), written, len(load))
	d.waitFor(t, 2*time.Minute, load...)
	if got := len(d.members(t, "CN=Org - sb-unit,"+d.groups)); got != 40 {
		t.Errorf("%d members after the takeover, want 40", got)
	}
}
