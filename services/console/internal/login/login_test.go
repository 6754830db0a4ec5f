package login

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
)

const redirectURL = "http://127.0.0.1:1/auth/callback"

// code runs the issuer's login for the authorization URL of Start and returns the callback
// request the browser would make.
func code(t *testing.T, issuer *authtest.Issuer, authURL string) *http.Request {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	form := u.Query()
	form.Set("user", "alex")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(issuer.URL()+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return httptest.NewRequest(http.MethodGet, resp.Header.Get("Location"), nil)
}

func TestFlow(t *testing.T) {
	issuer := authtest.NewIssuer(t)
	issuer.AddClient("console", redirectURL)
	issuer.AddUser(authtest.User{Subject: "alex", Name: "Alex Approver", Roles: []auth.Role{auth.Approver}})
	flow := New(Config{Issuer: issuer.URL(), ClientID: "console", RedirectURL: redirectURL, Scopes: []string{"profile"}})

	tests := []struct {
		name   string
		change func(p *Pending, callback *http.Request)
		want   error
	}{
		{"signed in", func(*Pending, *http.Request) {}, nil},
		{"another browser's state", func(p *Pending, _ *http.Request) { p.State = "other" }, ErrBadCallback},
		{"another verifier (PKCE)", func(p *Pending, _ *http.Request) { p.Verifier = otherFirst(p.Verifier) }, ErrExchange},
		{"another nonce", func(p *Pending, _ *http.Request) { p.Nonce = "other" }, ErrExchange},
		{"refused at the issuer", func(_ *Pending, r *http.Request) {
			r.URL.RawQuery = "error=access_denied&state=" + r.URL.Query().Get("state")
		}, ErrDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authURL, pending, err := flow.Start(t.Context(), "/org")
			if err != nil {
				t.Fatal(err)
			}
			if q := mustQuery(t, authURL); q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") != pending.Nonce {
				t.Fatalf("authorization URL %s: want a S256 challenge and the nonce", authURL)
			}
			callback := code(t, issuer, authURL)
			tt.change(&pending, callback)
			identity, err := flow.Finish(callback, pending)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Finish = %v, want %v", err, tt.want)
			}
			if tt.want == nil && (identity.Subject != "alex" || identity.Name != "Alex Approver" || identity.AccessToken == "" || identity.Expiry.IsZero()) {
				t.Errorf("identity %+v", identity)
			}
		})
	}
}

func TestIssuerUnavailable(t *testing.T) {
	flow := New(Config{Issuer: "http://127.0.0.1:1", ClientID: "console", RedirectURL: redirectURL})
	if _, _, err := flow.Start(t.Context(), "/org"); !errors.Is(err, ErrIssuerUnavailable) {
		t.Errorf("Start = %v, want ErrIssuerUnavailable", err)
	}
}

// otherFirst changes the first character of s.
func otherFirst(s string) string {
	if s[0] == 'a' {
		return "b" + s[1:]
	}
	return "a" + s[1:]
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}
