package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/sambadc"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
)

// TestRunAndREADMEWebhook does what the README's quickstart does: start the local stack (on free
// ports), read where it listens from what it prints, post the example hire with
// send-webhook.sh (openssl + curl), and find the user and the membership through the emulator's
// Graph API — then, once the stack has started its Samba AD DC and ad-writer, find her in Active
// Directory by employeeID, with her manager and her unit's group. Samba is required, as for
// ad-writer's tests (make deps installs it): a machine without it fails here rather than skip AD.
// When ad-writer's tests hold the machine's one DC, this waits for them.
func TestRunAndREADMEWebhook(t *testing.T) {
	if _, err := sambadc.Check(sambadc.Host{}); err != nil {
		t.Fatalf("make run's AD needs a Samba AD DC: %v", err)
	}
	// The dev token goes where orgsyncctl looks by default: here, a temporary config directory.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	out := startRun(t, "-random-ports", "-store", t.TempDir(), "-sample", "sample/company.json")

	printed := out.wait(t, time.Minute, map[string]*regexp.Regexp{
		"emulator":   regexp.MustCompile(`Graph emulator\s+(http://\S+/v1\.0)`),
		"webhooks":   regexp.MustCompile(`webhooks: (http://\S+)`),
		"loaded":     regexp.MustCompile(`loaded (\d+) sample events`),
		"token":      regexp.MustCompile(`admin token\s+(orgsync_\S+)`),
		"orgmodel":   regexp.MustCompile(`org-model\s+gRPC (\S+)`),
		"admin":      regexp.MustCompile(`admin (http://\S+/v1/dead-letters)`),
		"adStarting": regexp.MustCompile(`^(AD starting): .*takes about 10 s`),
	})
	if printed["loaded"] != "17" {
		t.Errorf("loaded %s sample events, want 17", printed["loaded"])
	}
	checkDevToken(t, printed["token"], printed["orgmodel"], printed["admin"])

	// Entra is served while the DC is being provisioned: the hire goes in now.
	cmd := exec.CommandContext(t.Context(), "./send-webhook.sh", "sample/hire-jane.json", "msg_readme")
	cmd.Env = append(cmd.Environ(), "ORGSYNC_WEBHOOK_URL="+printed["webhooks"])
	sent, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(sent), `"eventIds":["msg_readme"]`) {
		t.Fatalf("send-webhook.sh: %v\n%s", err, sent)
	}

	base := printed["emulator"]
	var user map[string]any
	eventually(t, 30*time.Second, func() bool {
		users := graphList(t, base+"/users?$filter="+url.QueryEscape("employeeId eq 'E1104'")+"&$select=id,displayName,department")
		if len(users) == 1 {
			user = users[0]
		}
		return user != nil
	})
	if user["displayName"] != "Jane Doe" || user["department"] != "Sales" {
		t.Errorf("user = %v", user)
	}
	groups := graphList(t, base+"/groups?$filter="+url.QueryEscape("mailNickname eq 'orgsync-unit-sales'")+"&$select=id")
	if len(groups) != 1 {
		t.Fatalf("Sales groups = %v", groups)
	}
	eventually(t, 30*time.Second, func() bool {
		for _, member := range graphList(t, base+"/groups/"+groups[0]["id"].(string)+"/members?$select=id") {
			if member["id"] == user["id"] {
				return true
			}
		}
		return false
	})

	began := time.Now()
	// ad-writer's tests may hold the machine's one DC for minutes.
	ad := out.wait(t, 15*time.Minute, map[string]*regexp.Regexp{
		"url":      regexp.MustCompile(`Samba AD DC\s+(ldaps://\S+)`),
		"base":     regexp.MustCompile(`Samba AD DC\s+\S+\s+base (\S+)`),
		"bind":     regexp.MustCompile(`^\s+bind (\S+)`),
		"password": regexp.MustCompile(`password file (\S+)`),
		"ca":       regexp.MustCompile(`\sCA (\S+)`),
		"readyz":   regexp.MustCompile(`ad-writer\s+health (http://\S+/readyz)`),
		"adAdmin":  regexp.MustCompile(`ad-writer\s+health \S+\s+admin (http://\S+/v1/dead-letters)`),
		"managed":  regexp.MustCompile(`ad-writer\s+.*managing (\S+)`),
	})
	t.Logf("AD up %v after the hire (provisioning, and waiting for the machine's DC when another test held it)", time.Since(began).Round(time.Second))
	eventually(t, 30*time.Second, func() bool {
		resp, err := http.Get(ad["readyz"])
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	checkAdminRoute(t, printed["token"], ad["adAdmin"])
	conn := dialDC(t, ad["url"], ad["ca"], ad["bind"], ad["password"])
	var jane *goldap.Entry
	eventually(t, 2*time.Minute, func() bool {
		jane = adUser(t, conn, ad["managed"], "E1104")
		return jane != nil && jane.GetAttributeValue("manager") != "" && len(jane.GetAttributeValues("memberOf")) > 0
	})
	want := map[string]string{"displayName": "Jane Doe", "department": "Sales", "title": "Account Executive", "l": "London", "description": "HR worker E1104, managed by orgsync"}
	for attribute, value := range want {
		if got := jane.GetAttributeValue(attribute); got != value {
			t.Errorf("AD %s = %q, want %q", attribute, got, value)
		}
	}
	if manager := adUser(t, conn, ad["managed"], "E1101"); manager == nil || !strings.EqualFold(jane.GetAttributeValue("manager"), manager.DN) {
		t.Errorf("AD manager = %q, want the account of E1101 (%v)", jane.GetAttributeValue("manager"), manager)
	}
	wantGroup := "CN=Org - Sales,OU=Groups," + ad["managed"]
	if memberOf := jane.GetAttributeValues("memberOf"); !slices.ContainsFunc(memberOf, func(dn string) bool { return strings.EqualFold(dn, wantGroup) }) {
		t.Errorf("AD memberOf = %v, want %s", memberOf, wantGroup)
	}
}

// TestRunWithoutAD shows the Entra-only path: one line says AD is skipped and why, and org-model
// publishes no desired state for AD (its policy maps no AD), while Entra gets the sample.
func TestRunWithoutAD(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	out := startRun(t, "-ad=false", "-random-ports", "-store", t.TempDir(), "-sample", "sample/company.json")
	printed := out.wait(t, time.Minute, map[string]*regexp.Regexp{
		"nats":     regexp.MustCompile(`NATS JetStream\s+(nats://\S+)`),
		"emulator": regexp.MustCompile(`Graph emulator\s+(http://\S+/v1\.0)`),
		"skipped":  regexp.MustCompile(`^(AD skipped: -ad=false; everything else runs, Entra only\.)$`),
		"loaded":   regexp.MustCompile(`loaded (\d+) sample events`),
		"console":  regexp.MustCompile(`console\s+(http://\S+)`),
		"login":    regexp.MustCompile(`dev login at \S+: choose (vera\.viewer \(viewer\)), alex\.approver \(approver\)`),
	})
	// The console is up and sends a visitor to sign in.
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirects.Get(printed["console"] + "/org")
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("console /org = %s to %q, want a redirect to /login", resp.Status, resp.Header.Get("Location"))
	}
	eventually(t, 30*time.Second, func() bool {
		return len(graphList(t, printed["emulator"]+"/users?$filter="+url.QueryEscape("employeeId eq 'E1101'"))) == 1
	})
	nc, err := nats.Connect(printed["nats"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	directory, err := js.Stream(t.Context(), "DIRECTORY")
	if err != nil {
		t.Fatal(err)
	}
	for filter, wantAny := range map[string]bool{"dir.entra.>": true, "dir.ad.>": false} {
		info, err := directory.Info(t.Context(), jetstream.WithSubjectFilter(filter))
		if err != nil {
			t.Fatal(err)
		}
		if got := len(info.State.Subjects) > 0; got != wantAny {
			t.Errorf("DIRECTORY holds %d subjects of %s, want any: %t", len(info.State.Subjects), filter, wantAny)
		}
	}
	for _, line := range out.all() {
		if strings.Contains(line, "Active Directory is up") || strings.Contains(line, "AD starting") {
			t.Errorf("printed %q with -ad=false", line)
		}
	}
}

// output is what run prints, line by line, read as it comes.
type output struct {
	lines chan string
	seen  []string
}

// startRun runs the command with args until the test ends, and returns its output.
func startRun(t *testing.T, args ...string) *output {
	t.Helper()
	stdoutReader, stdout := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, stdout)
		stdout.Close()
	}()
	out := &output{lines: make(chan string, 1000)}
	// The reader never blocks run: it takes every line until run closes its output.
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(out.lines)
		lines := bufio.NewScanner(stdoutReader)
		for lines.Scan() {
			select {
			case out.lines <- lines.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		<-readerDone
	})
	return out
}

// wait reads lines until each pattern has matched one, and returns each pattern's first group.
// It fails the test when run stops printing first, or when within has passed.
func (o *output) wait(t *testing.T, within time.Duration, patterns map[string]*regexp.Regexp) map[string]string {
	t.Helper()
	found := map[string]string{}
	match := func(line string) {
		for name, re := range patterns {
			if _, ok := found[name]; ok {
				continue
			}
			if m := re.FindStringSubmatch(line); m != nil {
				found[name] = m[1]
			}
		}
	}
	for _, line := range o.seen {
		match(line)
	}
	deadline := time.After(within)
	for len(found) < len(patterns) {
		var line string
		var ok bool
		select {
		case line, ok = <-o.lines:
		case <-deadline:
			t.Fatalf("not printed within %v; found only %v in:\n%s", within, found, strings.Join(o.seen, "\n"))
		}
		if !ok {
			t.Fatalf("run stopped printing; found only %v in:\n%s", found, strings.Join(o.seen, "\n"))
		}
		o.seen = append(o.seen, line)
		match(line)
	}
	return found
}

// all returns the lines printed so far.
func (o *output) all() []string {
	for {
		select {
		case line, ok := <-o.lines:
			if !ok {
				return o.seen
			}
			o.seen = append(o.seen, line)
		default:
			return o.seen
		}
	}
}

// dialDC connects to the printed DC over LDAPS as its administrator.
func dialDC(t *testing.T, rawURL, caFile, bindDN, passwordFile string) *goldap.Conn {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := goldap.DialURL(rawURL, goldap.DialWithTLSConfig(&tls.Config{RootCAs: roots, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	password, err := os.ReadFile(passwordFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Bind(bindDN, strings.TrimSpace(string(password))); err != nil {
		t.Fatal(err)
	}
	return conn
}

// adUser returns the user with the employeeID below base, or nil.
func adUser(t *testing.T, conn *goldap.Conn, base, employeeID string) *goldap.Entry {
	t.Helper()
	res, err := conn.Search(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=user)(employeeID="+goldap.EscapeFilter(employeeID)+"))",
		[]string{"displayName", "department", "title", "l", "description", "manager", "memberOf"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 {
		return nil
	}
	return res.Entries[0]
}

// checkDevToken checks that the printed token is the one in the default token file, that
// org-model's gRPC API and entra-writer's admin routes accept it, and refuse a call without it.
func checkDevToken(t *testing.T, token, orgModelAddr, deadLettersURL string) {
	t.Helper()
	path, err := auth.DefaultTokenFile()
	if err != nil {
		t.Fatal(err)
	}
	if stored, err := auth.ReadTokenFile(path); err != nil || stored != token {
		t.Errorf("default token file holds %q (%v), want the printed token", stored, err)
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", info.Mode().Perm())
	}
	for _, tc := range []struct {
		token string
		want  codes.Code
	}{{"", codes.Unauthenticated}, {token, codes.OK}} {
		options := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if tc.token != "" {
			options = append(options, grpc.WithPerRPCCredentials(auth.Bearer(tc.token)))
		}
		conn, err := grpc.NewClient(orgModelAddr, options...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = orgsyncv1grpc.NewOrgModelServiceClient(conn).GetStatus(t.Context(), &orgsyncv1.GetStatusRequest{})
		conn.Close()
		if status.Code(err) != tc.want {
			t.Errorf("GetStatus with token %t: %v, want %s", tc.token != "", err, tc.want)
		}
	}
	checkAdminRoute(t, token, deadLettersURL)
}

// checkAdminRoute checks that a writer's dead-letter route refuses a call without the token and
// answers one with it.
func checkAdminRoute(t *testing.T, token, deadLettersURL string) {
	t.Helper()
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {token, http.StatusOK}} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", deadLettersURL, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s with token %t: %d, want %d", deadLettersURL, tc.token != "", resp.StatusCode, tc.want)
		}
	}
}

func graphList(t *testing.T, rawURL string) []map[string]any {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Value []map[string]any `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %v", rawURL, resp.Status, err)
	}
	return page.Value
}

func eventually(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
