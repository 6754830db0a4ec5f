// Package authtest gives tests of orgsync's services real credentials: an in-process OIDC issuer
// (discovery document and JWKS over HTTP, ES256 keys that rotate, and a login: an authorization
// endpoint where a test user is chosen and a token endpoint that requires PKCE) and static API
// token files.
//
// It is meant for orgsync's own tests and the local stack's dev login, not for outside use.
package authtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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
	key, err := newKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newKey(id string) (Key, error) {
	private, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("generating key %s: %w", id, err)
	}
	return Key{ID: id, Private: private}, nil
}

// Issuer is an OIDC issuer on an httptest server. Its JWKS publishes the current key and the
// one before it, as an issuer does during a rotation. Its authorization endpoint lets a user added
// with AddUser log in to a client added with AddClient; it is safe for concurrent use.
type Issuer struct {
	// t is nil for a dev issuer (NewDevIssuer).
	t      testing.TB
	server *httptest.Server

	mu        sync.Mutex
	generated int
	current   Key
	previous  *Key
	jwksHits  int
	users     []User
	clients   map[string][]string
	grants    map[string]grant
	tokenTTL  time.Duration
}

// NewIssuer starts an issuer, closed when the test ends.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	issuer, err := start(t, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(issuer.server.Close)
	return issuer
}

// NewDevIssuer starts an issuer on addr (host:port; port 0 picks one) for the local stack's dev
// login, outside a test. Close stops it.
func NewDevIssuer(addr string) (*Issuer, error) { return start(nil, addr) }

// Close stops the issuer's server.
func (i *Issuer) Close() { i.server.Close() }

func start(t testing.TB, addr string) (*Issuer, error) {
	issuer := &Issuer{t: t, clients: map[string][]string{}, grants: map[string]grant{}}
	var err error
	if issuer.current, err = issuer.nextKey(); err != nil {
		return nil, err
	}
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
	mux.HandleFunc("GET /authorize", issuer.serveAuthorize)
	mux.HandleFunc("POST /authorize", issuer.serveAuthorize)
	mux.HandleFunc("POST /token", issuer.serveToken)
	if addr == "" {
		issuer.server = httptest.NewServer(mux)
		return issuer, nil
	}
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("test issuer listener: %w", err)
	}
	issuer.server = &httptest.Server{Listener: listener, Config: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	issuer.server.Start()
	return issuer, nil
}

func (i *Issuer) nextKey() (Key, error) {
	i.generated++
	return newKey(fmt.Sprintf("key-%d", i.generated))
}

// URL is the issuer URL (the "iss" of its tokens).
func (i *Issuer) URL() string { return i.server.URL }

// Rotate makes a new key current; the old one stays published until the next rotation.
func (i *Issuer) Rotate() Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	previous := i.current
	next, err := i.nextKey()
	if err != nil {
		i.t.Fatal(err)
	}
	i.previous = &previous
	i.current = next
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
	compact, err := signWith(key, claims)
	if err != nil {
		t.Fatal(err)
	}
	return compact
}

func signWith(key Key, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key.Private},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.ID))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	compact, err := signed.CompactSerialize()
	if err != nil {
		return "", errors.Join(errors.New("serialising the JWT"), err)
	}
	return compact, nil
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
