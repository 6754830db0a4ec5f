package authtest_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
)

const (
	clientID    = "console"
	redirectURI = "http://127.0.0.1:1/auth/callback"
)

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func authorizeParams(challenge string) url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI},
		"scope": {"openid profile"}, "state": {"state-1"}, "nonce": {"nonce-1"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
}

// login chooses user at the authorization endpoint and returns the redirect's query.
func login(t *testing.T, issuer *authtest.Issuer, params url.Values, user string) url.Values {
	t.Helper()
	form := url.Values{}
	for name, values := range params {
		form[name] = values
	}
	form.Set("user", user)
	resp, err := noRedirects.PostForm(issuer.URL()+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %s, want 302", resp.Status)
	}
	location, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := location.Scheme + "://" + location.Host + location.Path; got != redirectURI {
		t.Fatalf("redirected to %s, want %s", got, redirectURI)
	}
	return location.Query()
}

func exchange(t *testing.T, issuer *authtest.Issuer, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(issuer.URL()+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var answer map[string]any
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatalf("token answer %s: %v", body, err)
	}
	return resp.StatusCode, answer
}

func newLoginIssuer(t *testing.T) *authtest.Issuer {
	issuer := authtest.NewIssuer(t)
	issuer.AddClient(clientID, redirectURI)
	issuer.AddUser(authtest.User{Subject: "alex", Name: "Alex Approver", Roles: []auth.Role{auth.Approver}})
	return issuer
}

func TestLoginWithPKCE(t *testing.T) {
	issuer := newLoginIssuer(t)
	verifier := rand.Text() + rand.Text() // 52 characters of base32
	query := login(t, issuer, authorizeParams(challengeOf(verifier)), "alex")
	if query.Get("state") != "state-1" || query.Get("code") == "" {
		t.Fatalf("redirect query %v: want state-1 and a code", query)
	}
	status, answer := exchange(t, issuer, url.Values{
		"grant_type": {"authorization_code"}, "code": {query.Get("code")}, "redirect_uri": {redirectURI},
		"client_id": {clientID}, "code_verifier": {verifier},
	})
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, answer)
	}
	// The access token is one orgsync's services accept, with the user's subject and roles.
	v, err := auth.NewVerifier(issuer.Config())
	if err != nil {
		t.Fatal(err)
	}
	principal, err := v.Verify(t.Context(), answer["access_token"].(string))
	if err != nil {
		t.Fatalf("verifying the access token: %v", err)
	}
	want := auth.Principal{Subject: "alex", Issuer: issuer.URL(), Roles: []auth.Role{auth.Approver}}
	if diff := cmp.Diff(want, principal); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
	// The ID token is for the client, with the nonce.
	idToken, _ := answer["id_token"].(string)
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		t.Fatalf("id_token %q is not a JWT", idToken)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["aud"] != clientID || claims["nonce"] != "nonce-1" || claims["sub"] != "alex" {
		t.Errorf("id_token claims %v: want aud %s, nonce nonce-1, sub alex", claims, clientID)
	}
}

func TestTokenEndpointRefuses(t *testing.T) {
	verifier := rand.Text() + rand.Text()
	tests := []struct {
		name   string
		change func(form url.Values)
		reuse  bool
		want   string
	}{
		{"wrong code_verifier", func(f url.Values) { f.Set("code_verifier", rand.Text()+rand.Text()) }, false, "invalid_grant"},
		{"code_verifier too short", func(f url.Values) { f.Set("code_verifier", "short") }, false, "invalid_grant"},
		{"the challenge as verifier", func(f url.Values) { f.Set("code_verifier", challengeOf(verifier)) }, false, "invalid_grant"},
		{"no code_verifier", func(f url.Values) { f.Del("code_verifier") }, false, "invalid_request"},
		{"another redirect_uri", func(f url.Values) { f.Set("redirect_uri", "http://127.0.0.1:2/cb") }, false, "invalid_grant"},
		{"another client", func(f url.Values) { f.Set("client_id", "intruder") }, false, "invalid_grant"},
		{"unknown code", func(f url.Values) { f.Set("code", "made-up") }, false, "invalid_grant"},
		{"other grant type", func(f url.Values) { f.Set("grant_type", "password") }, false, "unsupported_grant_type"},
		{"code used twice", func(url.Values) {}, true, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issuer := newLoginIssuer(t)
			query := login(t, issuer, authorizeParams(challengeOf(verifier)), "alex")
			form := url.Values{
				"grant_type": {"authorization_code"}, "code": {query.Get("code")}, "redirect_uri": {redirectURI},
				"client_id": {clientID}, "code_verifier": {verifier},
			}
			if tt.reuse {
				if status, answer := exchange(t, issuer, form); status != http.StatusOK {
					t.Fatalf("first exchange: %d %v", status, answer)
				}
			}
			tt.change(form)
			status, answer := exchange(t, issuer, form)
			if status != http.StatusBadRequest || answer["error"] != tt.want {
				t.Errorf("token = %d %v, want 400 %s", status, answer, tt.want)
			}
			if _, issued := answer["access_token"]; issued {
				t.Error("an access token was issued")
			}
		})
	}
}

func TestAuthorizeRefuses(t *testing.T) {
	tests := []struct {
		name      string
		change    func(p url.Values)
		wantPage  bool   // answered on the page (400), never redirected
		wantError string // else the error sent back to the redirect URI
	}{
		{"unknown client", func(p url.Values) { p.Set("client_id", "intruder") }, true, ""},
		{"unregistered redirect_uri", func(p url.Values) { p.Set("redirect_uri", "http://evil.example/cb") }, true, ""},
		{"no PKCE", func(p url.Values) { p.Del("code_challenge") }, false, "invalid_request"},
		{"plain PKCE", func(p url.Values) { p.Set("code_challenge_method", "plain") }, false, "invalid_request"},
		{"not openid", func(p url.Values) { p.Set("scope", "profile") }, false, "invalid_scope"},
		{"implicit flow", func(p url.Values) { p.Set("response_type", "token") }, false, "unsupported_response_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issuer := newLoginIssuer(t)
			params := authorizeParams(challengeOf(rand.Text() + rand.Text()))
			tt.change(params)
			resp, err := noRedirects.Get(issuer.URL() + "/authorize?" + params.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if tt.wantPage {
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("authorize = %s, want 400 on the page", resp.Status)
				}
				return
			}
			location, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || location.Query().Get("error") != tt.wantError {
				t.Errorf("authorize = %s to %s, want a redirect with error %s", resp.Status, location, tt.wantError)
			}
		})
	}
}
