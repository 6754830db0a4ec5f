package web

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
	"github.com/orgsync/orgsync/services/console/internal/login"
	"github.com/orgsync/orgsync/services/console/internal/session"
)

// console is the console's handler on an httptest server, signing people in at a test issuer,
// with org-model at an address where nothing listens (the pages that need it answer 503).
type console struct {
	server *httptest.Server
	issuer *authtest.Issuer
}

func newConsole(t *testing.T) console {
	t.Helper()
	issuer := authtest.NewIssuer(t)
	for _, role := range auth.Roles {
		issuer.AddUser(authtest.User{Subject: string(role) + "-user", Name: "A " + string(role), Roles: []auth.Role{role}})
	}
	verifier, err := auth.NewVerifier(issuer.Config())
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.New([]byte(rand.Text()+rand.Text()), false)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := console{issuer: issuer}
	var handler http.Handler
	c.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(c.server.Close)
	h, err := New(Config{
		OrgModel: orgsyncv1grpc.NewOrgModelServiceClient(conn), Verifier: verifier, Sessions: sessions,
		Login: login.New(login.Config{Issuer: issuer.URL(), ClientID: "console", RedirectURL: c.server.URL + "/auth/callback", Scopes: []string{"profile"}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	handler = h
	issuer.AddClient("console", c.server.URL+"/auth/callback")
	return c
}

// browser is an HTTP client with cookies that chooses who it is at the issuer's login page.
func (c console) signIn(t *testing.T, subject string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.Get(c.server.URL + "/approvals")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The issuer's login page: post its hidden fields with the chosen user.
	form := url.Values{}
	for _, m := range regexp.MustCompile(`type="hidden" name="([^"]+)" value="([^"]*)"`).FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	form.Set("user", subject)
	resp, err = client.PostForm(c.issuer.URL()+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/approvals" {
		t.Fatalf("after signing in, at %s, want /approvals", resp.Request.URL)
	}
	return client
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// csrf reads the CSRF token from a signed-in page.
func csrf(t *testing.T, client *http.Client, pageURL string) string {
	t.Helper()
	resp, err := client.Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(string(page))
	if m == nil {
		t.Fatalf("no CSRF token on %s (%s)", pageURL, resp.Status)
	}
	return m[1]
}

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	c := newConsole(t)
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/org", "/login", "/static/console.css", "/nowhere"} {
		t.Run(path, func(t *testing.T) {
			resp, err := noRedirects.Get(c.server.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Content-Security-Policy"); got != CSP {
				t.Errorf("CSP = %q", got)
			}
			if !strings.Contains(CSP, "script-src 'self'") || strings.Contains(CSP, "unsafe-inline") {
				t.Errorf("CSP %q allows inline script", CSP)
			}
			if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
}

func TestTemplatesHaveNoInlineScriptOrStyle(t *testing.T) {
	entries, err := templateFiles.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	inline := regexp.MustCompile(`<script>|<script [^>]*>[^<]|<style|style="|\son[a-z]+="`)
	for _, entry := range entries {
		data, _ := templateFiles.ReadFile("templates/" + entry.Name())
		if m := inline.FindString(string(data)); m != "" {
			t.Errorf("%s has inline script or style (%q), which the CSP blocks", entry.Name(), m)
		}
	}
}

func TestSignInSetsASessionAndChecksRolesAndCSRF(t *testing.T) {
	c := newConsole(t)
	viewer := c.signIn(t, "viewer-user")
	approver := c.signIn(t, "approver-user")
	operator := c.signIn(t, "operator-user")

	cookies := viewer.Jar.Cookies(mustURL(t, c.server.URL))
	if len(cookies) != 1 || cookies[0].Name != sessionCookie {
		t.Fatalf("cookies after sign-in: %v", cookies)
	}
	viewerToken := csrf(t, viewer, c.server.URL+"/approvals")
	approverToken := csrf(t, approver, c.server.URL+"/approvals")
	operatorToken := csrf(t, operator, c.server.URL+"/approvals")
	post := func(client *http.Client, path string, form url.Values, origin string) int {
		req, _ := http.NewRequest(http.MethodPost, c.server.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name   string
		client *http.Client
		path   string
		form   url.Values
		origin string
		want   int
	}{
		{"viewer approving, with their own CSRF token", viewer, "/approvals/b-1/approve", url.Values{"csrf": {viewerToken}}, "", http.StatusForbidden},
		{"viewer replaying dead letters", viewer, "/health/writers/entra-writer/replay", url.Values{"csrf": {viewerToken}}, "", http.StatusForbidden},
		{"approver without a CSRF token", approver, "/approvals/b-1/approve", url.Values{}, "", http.StatusForbidden},
		{"approver with another session's CSRF token", approver, "/approvals/b-1/approve", url.Values{"csrf": {viewerToken}}, "", http.StatusForbidden},
		{"approver from another site", approver, "/approvals/b-1/approve", url.Values{"csrf": {approverToken}}, "https://evil.example", http.StatusForbidden},
		// Allowed through the console's checks: org-model (unreachable here) answers.
		{"approver with their token", approver, "/approvals/b-1/approve", url.Values{"csrf": {approverToken}}, "", http.StatusServiceUnavailable},
		{"nobody signed in", &http.Client{}, "/approvals/b-1/approve", url.Values{}, "", http.StatusUnauthorized},
		// Delegations and helpdesk requests: operator forms, approver decisions.
		{"viewer delegating", viewer, "/workers/E1/delegations", url.Values{"csrf": {viewerToken}}, "", http.StatusForbidden},
		{"approver delegating", approver, "/workers/E1/delegations", url.Values{"csrf": {approverToken}}, "", http.StatusForbidden},
		{"viewer ending a delegation", viewer, "/delegations/d-1/end", url.Values{"csrf": {viewerToken}}, "", http.StatusForbidden},
		{"viewer requesting access", viewer, "/workers/E1/access-requests", url.Values{"csrf": {viewerToken}}, "", http.StatusForbidden},
		{"operator approving a request", operator, "/access-requests/r-1/approve", url.Values{"csrf": {operatorToken}}, "", http.StatusForbidden},
		{"operator delegating without a CSRF token", operator, "/workers/E1/delegations", url.Values{}, "", http.StatusForbidden},
		{"operator delegating", operator, "/workers/E1/delegations", url.Values{"csrf": {operatorToken}}, "", http.StatusServiceUnavailable},
		{"operator requesting access", operator, "/workers/E1/access-requests", url.Values{"csrf": {operatorToken}}, "", http.StatusServiceUnavailable},
		{"approver rejecting a request", approver, "/access-requests/r-1/reject", url.Values{"csrf": {approverToken}}, "", http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := post(tt.client, tt.path, tt.form, tt.origin); got != tt.want {
				t.Errorf("POST %s = %d, want %d", tt.path, got, tt.want)
			}
		})
	}
}

func TestSignInRefusesAForeignCallback(t *testing.T) {
	c := newConsole(t)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	// A callback this browser never started (login CSRF) is refused.
	resp, err := client.Get(c.server.URL + "/auth/callback?code=stolen&state=whatever")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("foreign callback = %s, want 400", resp.Status)
	}
	if cookies := jar.Cookies(mustURL(t, c.server.URL)); len(cookies) != 0 {
		t.Errorf("cookies after a foreign callback: %v", cookies)
	}
}

func TestSafeNext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/workers/E1", "/workers/E1"},
		{"https://evil.example/", "/org"},
		{"//evil.example/", "/org"},
		{`/\evil.example`, "/org"},
		{"", "/org"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := safeNext(tt.in); got != tt.want {
				t.Errorf("safeNext(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
