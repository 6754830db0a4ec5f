// Package authtest gives tests of orgsync's services real credentials: an in-process OIDC issuer
// (discovery document and JWKS over HTTP, ES256 keys that rotate) and static API token files.
//
// It is meant for orgsync's own tests, not for outside use.
package authtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/orgsync/orgsync/pkg/auth"
)

// Audience is the audience the issuer's tokens carry unless a test says otherwise.
const Audience = "api://orgsync-test"

// Key is a signing key with its key id.
type Key struct {
	ID      string
	Private *ecdsa.PrivateKey
}

// NewKey generates an ES256 key.
func NewKey(t testing.TB, id string) Key {
	t.Helper()
	private, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Key{ID: id, Private: private}
}

// Issuer is an OIDC issuer on an httptest server. Its JWKS publishes the current key and the
// one before it, as an issuer does during a rotation.
type Issuer struct {
	t      testing.TB
	server *httptest.Server

	mu        sync.Mutex
	generated int
	current   Key
	previous  *Key
	jwksHits  int
}

// NewIssuer starts an issuer, closed when the test ends.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	issuer := &Issuer{t: t}
	issuer.current = issuer.nextKey()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                issuer.URL(),
			"jwks_uri":                              issuer.URL() + "/jwks",
			"authorization_endpoint":                issuer.URL() + "/authorize",
			"token_endpoint":                        issuer.URL() + "/token",
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		issuer.mu.Lock()
		issuer.jwksHits++
		keys := []jose.JSONWebKey{publicJWK(issuer.current)}
		if issuer.previous != nil {
			keys = append(keys, publicJWK(*issuer.previous))
		}
		issuer.mu.Unlock()
		writeJSON(w, jose.JSONWebKeySet{Keys: keys})
	})
	issuer.server = httptest.NewServer(mux)
	t.Cleanup(issuer.server.Close)
	return issuer
}

func (i *Issuer) nextKey() Key {
	i.generated++
	return NewKey(i.t, fmt.Sprintf("key-%d", i.generated))
}

// URL is the issuer URL (the "iss" of its tokens).
func (i *Issuer) URL() string { return i.server.URL }

// Rotate makes a new key current; the old one stays published until the next rotation.
func (i *Issuer) Rotate() Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	previous := i.current
	i.previous = &previous
	i.current = i.nextKey()
	return i.current
}

// Current is the key new tokens are signed with.
func (i *Issuer) Current() Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.current
}

// JWKSFetches counts the requests for the key set.
func (i *Issuer) JWKSFetches() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.jwksHits
}

// Claims returns valid claims for subject with roles: this issuer, Audience, issued now, expiring
// in 5 minutes.
func (i *Issuer) Claims(subject string, roles ...auth.Role) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": i.URL(), "sub": subject, "aud": Audience,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "roles": roles,
	}
}

// Token signs valid claims for subject with roles with the current key.
func (i *Issuer) Token(subject string, roles ...auth.Role) string {
	return i.Sign(i.Claims(subject, roles...))
}

// Sign signs claims with the current key.
func (i *Issuer) Sign(claims map[string]any) string { return SignWith(i.t, i.Current(), claims) }

// Config is an auth.Config that trusts this issuer for Audience.
func (i *Issuer) Config() auth.Config {
	return auth.Config{Issuer: i.URL(), Audience: Audience}
}

// SignWith signs claims as a compact JWT with key (ES256, kid in the header).
func SignWith(t testing.TB, key Key, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key.Private},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.ID))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	compact, err := signed.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return compact
}

func publicJWK(key Key) jose.JSONWebKey {
	return jose.JSONWebKey{Key: &key.Private.PublicKey, KeyID: key.ID, Algorithm: string(jose.ES256), Use: "sig"}
}

func writeJSON(w http.ResponseWriter, body any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// Tokens writes a static tokens file granting each name its roles, and returns its path and the
// token of each name.
func Tokens(t testing.TB, grants map[string][]auth.Role) (path string, tokens map[string]string) {
	t.Helper()
	tokens = map[string]string{}
	var file auth.TokensFile
	for name, roles := range grants {
		token, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = token
		file.Tokens = append(file.Tokens, auth.StaticToken{Name: name, SHA256: auth.HashToken(token), Roles: roles})
	}
	data, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tokens
}

// RoleTokens writes a tokens file with one token per role, named after it, and returns the config
// using it and the tokens by role. (A valid token holding no role at all comes from an Issuer:
// Token(subject) without roles.)
func RoleTokens(t testing.TB) (auth.Config, map[auth.Role]string) {
	t.Helper()
	grants := map[string][]auth.Role{}
	for _, role := range auth.Roles {
		grants[string(role)] = []auth.Role{role}
	}
	path, byName := Tokens(t, grants)
	tokens := map[auth.Role]string{}
	for name, token := range byName {
		tokens[auth.Role(name)] = token
	}
	return auth.Config{TokensFile: path}, tokens
}
