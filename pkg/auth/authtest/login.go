package authtest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/orgsync/orgsync/pkg/auth"
)

// User is a person who can log in at the issuer's authorization endpoint.
type User struct {
	// Subject is the "sub" of the user's tokens, and what orgsync records as the principal.
	Subject string
	// Name is the "name" claim.
	Name  string
	Roles []auth.Role
}

// codeTTL is how long an authorization code may wait for its exchange (RFC 6749 4.1.2 recommends
// at most 10 minutes).
const codeTTL = time.Minute

// DefaultTokenTTL is how long the tokens the token endpoint issues are valid unless TokenTTL says.
const DefaultTokenTTL = time.Hour

// grant is an authorization code waiting for its exchange.
type grant struct {
	clientID, redirectURI string
	challenge, nonce      string
	user                  User
	expires               time.Time
}

// AddUser lets user log in at the authorization endpoint.
func (i *Issuer) AddUser(user User) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.users = append(i.users, user)
}

// AddClient registers an OAuth client (public: it proves itself with PKCE, RFC 7636) and the
// redirect URIs it may use; the authorization endpoint refuses any other client or redirect URI.
func (i *Issuer) AddClient(clientID string, redirectURIs ...string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.clients[clientID] = append(i.clients[clientID], redirectURIs...)
}

// SetTokenTTL sets how long issued tokens are valid.
func (i *Issuer) SetTokenTTL(ttl time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.tokenTTL = ttl
}

// authorizeParams are the parameters of an authorization request (OIDC Core 3.1.2.1, RFC 7636 4.3).
type authorizeParams struct {
	ResponseType, ClientID, RedirectURI, Scope, State, Nonce, Challenge, ChallengeMethod string
}

func readAuthorizeParams(form url.Values) authorizeParams {
	return authorizeParams{
		ResponseType: form.Get("response_type"), ClientID: form.Get("client_id"),
		RedirectURI: form.Get("redirect_uri"), Scope: form.Get("scope"), State: form.Get("state"),
		Nonce: form.Get("nonce"), Challenge: form.Get("code_challenge"), ChallengeMethod: form.Get("code_challenge_method"),
	}
}

// check validates the request. An unknown client or redirect URI is answered on the page, never by
// redirecting (RFC 6749 4.1.2.1); other errors go back to the client's redirect URI.
func (i *Issuer) check(p authorizeParams) (redirectErr, pageErr string) {
	i.mu.Lock()
	uris, known := i.clients[p.ClientID]
	i.mu.Unlock()
	switch {
	case !known:
		return "", "unknown client_id"
	case !slices.Contains(uris, p.RedirectURI):
		return "", "redirect_uri is not registered for this client"
	case p.ResponseType != "code":
		return "unsupported_response_type", ""
	case !slices.Contains(strings.Fields(p.Scope), "openid"):
		return "invalid_scope", ""
	case p.Challenge == "" || p.ChallengeMethod != "S256":
		// This issuer requires PKCE with S256 (RFC 7636 4.4.1; "plain" is not accepted).
		return "invalid_request", ""
	}
	return "", ""
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test issuer login</title></head>
<body><main><h1>Log in to the test issuer</h1>
<p>Development and test login: choose who you are.</p>
<form method="post" action="/authorize">
{{range $name, $value := .Params}}<input type="hidden" name="{{$name}}" value="{{$value}}">
{{end}}{{range .Users}}<p><button type="submit" name="user" value="{{.Subject}}" id="login-{{.Subject}}">{{.Name}} ({{range $i, $r := .Roles}}{{if $i}}, {{end}}{{$r}}{{end}})</button></p>
{{end}}</form></main></body></html>`))

// serveAuthorize shows the login page (GET) or, once a user is chosen (POST), redirects to the
// client with a code bound to the PKCE challenge.
func (i *Issuer) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	p := readAuthorizeParams(r.Form)
	redirectErr, pageErr := i.check(p)
	if pageErr != "" {
		http.Error(w, pageErr, http.StatusBadRequest)
		return
	}
	back := func(values url.Values) {
		if p.State != "" {
			values.Set("state", p.State)
		}
		target, _ := url.Parse(p.RedirectURI)
		query := target.Query()
		for name, vals := range values {
			query[name] = vals
		}
		target.RawQuery = query.Encode()
		http.Redirect(w, r, target.String(), http.StatusFound)
	}
	if redirectErr != "" {
		back(url.Values{"error": {redirectErr}})
		return
	}
	i.mu.Lock()
	users := slices.Clone(i.users)
	i.mu.Unlock()
	if r.Method == http.MethodGet {
		params := map[string]string{}
		for name := range r.URL.Query() {
			params[name] = r.URL.Query().Get(name)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = loginPage.Execute(w, map[string]any{"Params": params, "Users": users})
		return
	}
	chosen := r.PostForm.Get("user")
	index := slices.IndexFunc(users, func(u User) bool { return u.Subject == chosen })
	if index < 0 {
		back(url.Values{"error": {"access_denied"}})
		return
	}
	code := rand.Text()
	i.mu.Lock()
	i.grants[code] = grant{clientID: p.ClientID, redirectURI: p.RedirectURI, challenge: p.Challenge,
		nonce: p.Nonce, user: users[index], expires: time.Now().Add(codeTTL)}
	i.mu.Unlock()
	back(url.Values{"code": {code}})
}

// tokenError answers the token endpoint's errors (RFC 6749 5.2).
func tokenError(w http.ResponseWriter, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = fmt.Fprintf(w, "{%q:%q,%q:%q}\n", "error", code, "error_description", description)
}

// validVerifier checks a code_verifier's form (RFC 7636 4.1: 43 to 128 unreserved characters).
func validVerifier(verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, c := range verifier {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	return true
}

// serveToken exchanges a code for tokens (RFC 6749 4.1.3), checking the PKCE verifier against the
// code's challenge (RFC 7636 4.6). A code is used once: a second exchange is refused.
func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, "invalid_request", err.Error())
		return
	}
	form := r.PostForm
	clientID := form.Get("client_id")
	if user, _, ok := r.BasicAuth(); ok {
		clientID = user
	}
	if form.Get("grant_type") != "authorization_code" {
		tokenError(w, "unsupported_grant_type", "only authorization_code is supported")
		return
	}
	code, verifier := form.Get("code"), form.Get("code_verifier")
	if code == "" || verifier == "" || clientID == "" {
		tokenError(w, "invalid_request", "code, code_verifier and client_id are required")
		return
	}
	i.mu.Lock()
	g, ok := i.grants[code]
	delete(i.grants, code)
	ttl := i.tokenTTL
	i.mu.Unlock()
	switch {
	case !ok:
		tokenError(w, "invalid_grant", "unknown or already used code")
		return
	case time.Now().After(g.expires):
		tokenError(w, "invalid_grant", "code expired")
		return
	case g.clientID != clientID:
		tokenError(w, "invalid_grant", "code was issued to another client")
		return
	case g.redirectURI != form.Get("redirect_uri"):
		tokenError(w, "invalid_grant", "redirect_uri differs from the authorization request's")
		return
	case !validVerifier(verifier):
		tokenError(w, "invalid_grant", "code_verifier is not 43 to 128 unreserved characters")
		return
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1 {
		tokenError(w, "invalid_grant", "code_verifier does not match the code_challenge")
		return
	}
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	now := time.Now()
	access := map[string]any{
		"iss": i.URL(), "sub": g.user.Subject, "aud": Audience, "name": g.user.Name,
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(), "roles": g.user.Roles,
	}
	id := map[string]any{
		"iss": i.URL(), "sub": g.user.Subject, "aud": g.clientID, "name": g.user.Name,
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(),
	}
	if g.nonce != "" {
		id["nonce"] = g.nonce
	}
	accessToken, err := signWith(i.Current(), access)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	idToken, err := signWith(i.Current(), id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, map[string]any{
		"access_token": accessToken, "token_type": "Bearer", "expires_in": int(ttl.Seconds()), "id_token": idToken,
	})
}
