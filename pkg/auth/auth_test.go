package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/pkg/envconfig"
)

func newVerifier(t *testing.T, cfg auth.Config) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOIDCTokens(t *testing.T) {
	issuer := authtest.NewIssuer(t)
	other := authtest.NewIssuer(t)
	v := newVerifier(t, issuer.Config())
	unpublished := authtest.NewKey(t, "key-unpublished")

	claims := func(change func(map[string]any)) map[string]any {
		c := issuer.Claims("user-1", auth.Approver)
		change(c)
		return c
	}
	valid := issuer.Token("user-1", auth.Approver)
	tests := []struct {
		name    string
		token   string
		wantErr string // "" means accepted
	}{
		{"valid", valid, ""},
		{"expired", issuer.Sign(claims(func(c map[string]any) { c["exp"] = time.Now().Add(-5 * time.Minute).Unix() })), "expired"},
		{"expired within clock skew", issuer.Sign(claims(func(c map[string]any) { c["exp"] = time.Now().Add(-5 * time.Second).Unix() })), ""},
		{"wrong issuer claim", issuer.Sign(claims(func(c map[string]any) { c["iss"] = other.URL() })), "different provider"},
		{"signed by another issuer", other.Sign(claims(func(c map[string]any) { c["iss"] = issuer.URL() })), "signature"},
		{"wrong audience", issuer.Sign(claims(func(c map[string]any) { c["aud"] = "api://someone-else" })), "audience"},
		{"tampered signature", tamperSignature(valid), "signature"},
		{"tampered payload", tamperPayload(t, valid), "signature"},
		{"unknown key id", authtest.SignWith(t, unpublished, issuer.Claims("user-1", auth.Admin)), "signature"},
		{"alg none", unsigned(t, issuer.Claims("user-1", auth.Admin)), "alg"},
		{"garbage with two dots", "a.b.c", "malformed"},
		{"unknown static token", "orgsync_nope", "not a known API token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			principal, err := v.Verify(t.Context(), tt.token)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				want := auth.Principal{Subject: "user-1", Issuer: issuer.URL(), Roles: []auth.Role{auth.Approver}}
				if diff := cmp.Diff(want, principal); diff != "" {
					t.Errorf("principal (-want +got):\n%s", diff)
				}
				return
			}
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Verify = %v, want ErrInvalidToken", err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.wantErr)) {
				t.Errorf("error %q does not say %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Errorf("error contains the token")
			}
		})
	}
}

func TestOIDCKeyRotation(t *testing.T) {
	issuer := authtest.NewIssuer(t)
	v := newVerifier(t, issuer.Config())
	before := issuer.Token("user-1", auth.Viewer)
	if _, err := v.Verify(t.Context(), before); err != nil {
		t.Fatalf("token before rotation: %v", err)
	}
	fetches := issuer.JWKSFetches()
	issuer.Rotate()
	// A token signed with the new key names a key id the verifier has not seen: it fetches the
	// key set again and accepts it.
	if err := verifyEventually(t, v, issuer.Token("user-2", auth.Viewer)); err != nil {
		t.Fatalf("token after rotation: %v", err)
	}
	if got := issuer.JWKSFetches(); got <= fetches {
		t.Errorf("JWKS fetched %d times after rotation, want more than %d", got, fetches)
	}
	// The previous key is still published during the rotation.
	if _, err := v.Verify(t.Context(), before); err != nil {
		t.Errorf("token signed with the previous key: %v", err)
	}
	// Once a token with the next key makes the verifier fetch the key set again, the retired key
	// is gone from it.
	issuer.Rotate()
	if err := verifyEventually(t, v, issuer.Token("user-3", auth.Viewer)); err != nil {
		t.Fatalf("token after the second rotation: %v", err)
	}
	// go-oidc stores the fetched keys just after it hands them out, so the retired key may still
	// be accepted for a moment.
	var err error
	for range 100 {
		if _, err = v.Verify(t.Context(), before); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("token signed with a retired key = %v, want ErrInvalidToken", err)
	}
}

// verifyEventually verifies a token signed with a key the verifier has not seen yet. go-oidc
// answers a lookup that starts while its previous JWKS fetch is still being cleared up with that
// fetch's keys, so a rotation a few microseconds after a fetch may need a second try; a real
// rotation is never that close to a fetch.
func verifyEventually(t *testing.T, v *auth.Verifier, token string) error {
	t.Helper()
	var err error
	for range 100 {
		if _, err = v.Verify(t.Context(), token); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

func TestOIDCRoles(t *testing.T) {
	issuer := authtest.NewIssuer(t)
	tests := []struct {
		name  string
		cfg   func(*auth.Config)
		claim map[string]any
		want  []auth.Role
	}{
		{"list", nil, map[string]any{"roles": []string{"viewer", "operator", "unrelated"}}, []auth.Role{auth.Viewer, auth.Operator}},
		{"string", nil, map[string]any{"roles": "approver"}, []auth.Role{auth.Approver}},
		{"missing", nil, map[string]any{"roles": nil}, nil},
		{"other claim", func(c *auth.Config) { c.RolesClaim = "groups" },
			map[string]any{"groups": []string{"admin"}, "roles": []string{"viewer"}}, []auth.Role{auth.Admin}},
		{"nested claim", func(c *auth.Config) { c.RolesClaim = "realm_access.roles" },
			map[string]any{"realm_access": map[string]any{"roles": []string{"operator"}}}, []auth.Role{auth.Operator}},
		{"role map: only mapped values count", func(c *auth.Config) {
			c.RolesClaim = "groups"
			c.RoleMap = map[string][]auth.Role{"6f1c-approvers": {auth.Approver}, "9a2b-ops": {auth.Operator, auth.Viewer}}
		}, map[string]any{"groups": []string{"9a2b-ops", "admin", "unmapped"}}, []auth.Role{auth.Operator, auth.Viewer}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := issuer.Config()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			v := newVerifier(t, cfg)
			claims := issuer.Claims("user-1")
			for k, val := range tt.claim {
				claims[k] = val
			}
			principal, err := v.Verify(t.Context(), issuer.Sign(claims))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, principal.Roles); diff != "" {
				t.Errorf("roles (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIssuerUnavailable(t *testing.T) {
	issuer := authtest.NewIssuer(t)
	cfg := issuer.Config()
	cfg.Issuer = "http://127.0.0.1:1" // nothing listens there
	v := newVerifier(t, cfg)
	if _, err := v.Verify(t.Context(), issuer.Token("user-1", auth.Viewer)); !errors.Is(err, auth.ErrIssuerUnavailable) {
		t.Errorf("Verify = %v, want ErrIssuerUnavailable", err)
	}
}

func TestStaticTokens(t *testing.T) {
	path, tokens := authtest.Tokens(t, map[string][]auth.Role{"ci": {auth.Operator}, "dashboards": {auth.Viewer}})
	v := newVerifier(t, auth.Config{TokensFile: path})
	tests := []struct {
		name    string
		token   string
		want    auth.Principal
		wantErr error
	}{
		{"right token", tokens["ci"], auth.Principal{Subject: "ci", TokenName: "ci", Roles: []auth.Role{auth.Operator}}, nil},
		{"another right token", tokens["dashboards"], auth.Principal{Subject: "dashboards", TokenName: "dashboards", Roles: []auth.Role{auth.Viewer}}, nil},
		{"wrong token", tokens["ci"] + "x", auth.Principal{}, auth.ErrInvalidToken},
		{"the hash is not the token", auth.HashToken(tokens["ci"]), auth.Principal{}, auth.ErrInvalidToken},
		{"a JWT without OIDC configured", "a.b.c", auth.Principal{}, auth.ErrInvalidToken},
		{"empty", "", auth.Principal{}, auth.ErrNoCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tt.token)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNothingConfiguredRefusesEveryone(t *testing.T) {
	v := newVerifier(t, auth.Config{})
	if _, err := v.Verify(context.Background(), "orgsync_anything"); !errors.Is(err, auth.ErrNotConfigured) {
		t.Errorf("Verify = %v, want ErrNotConfigured", err)
	}
}

func TestRoleHierarchy(t *testing.T) {
	allowed := map[auth.Role][]auth.Role{
		auth.Viewer:   {auth.Viewer},
		auth.Approver: {auth.Viewer, auth.Approver},
		auth.Operator: {auth.Viewer, auth.Operator},
		auth.Admin:    {auth.Viewer, auth.Approver, auth.Operator, auth.Admin},
	}
	for held, want := range allowed {
		var got []auth.Role
		for _, required := range auth.Roles {
			if (auth.Principal{Roles: []auth.Role{held}}).Has(required) {
				got = append(got, required)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s may do (-want +got):\n%s", held, diff)
		}
	}
	if (auth.Principal{}).Has(auth.Viewer) {
		t.Error("a principal without roles may view")
	}
}

func TestConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	badTokens := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badTokens, []byte("tokens:\n  - name: ci\n    sha256: secret-token\n    roles: [root]\n  - sha256: "+auth.HashToken("x")+"\n    roles: [viewer]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	goodTokens, _ := authtest.Tokens(t, map[string][]auth.Role{"ci": {auth.Operator}})
	tests := []struct {
		name    string
		vars    map[string]string
		want    auth.Config
		wantErr []string
	}{
		{"nothing", nil, auth.Config{RolesClaim: "roles", ClockSkew: auth.DefaultClockSkew}, nil},
		{"oidc and tokens", map[string]string{
			"ORGSYNC_AUTH_OIDC_ISSUER": "https://login.microsoftonline.com/tenant/v2.0", "ORGSYNC_AUTH_OIDC_AUDIENCE": "api://orgsync",
			"ORGSYNC_AUTH_OIDC_ROLES_CLAIM": "groups", "ORGSYNC_AUTH_OIDC_ROLE_MAP": "g1=approver, g1=operator,g2=admin",
			"ORGSYNC_AUTH_TOKENS_FILE": goodTokens,
		}, auth.Config{
			Issuer: "https://login.microsoftonline.com/tenant/v2.0", Audience: "api://orgsync", RolesClaim: "groups",
			RoleMap:   map[string][]auth.Role{"g1": {auth.Approver, auth.Operator}, "g2": {auth.Admin}},
			ClockSkew: auth.DefaultClockSkew, TokensFile: goodTokens,
		}, nil},
		{"issuer without audience, over http", map[string]string{"ORGSYNC_AUTH_OIDC_ISSUER": "http://idp.example.com"},
			auth.Config{}, []string{"ORGSYNC_AUTH_OIDC_ISSUER: \"http://idp.example.com\": http is only allowed on a loopback host", "ORGSYNC_AUTH_OIDC_AUDIENCE: must be set"}},
		{"bad role map", map[string]string{"ORGSYNC_AUTH_OIDC_ROLE_MAP": "g1=root,nonsense"},
			auth.Config{}, []string{"ORGSYNC_AUTH_OIDC_ROLE_MAP: entry for \"g1\": unknown role: \"root\"", "entry \"nonsense\" is not claimValue=role"}},
		{"bad tokens file", map[string]string{"ORGSYNC_AUTH_TOKENS_FILE": badTokens},
			auth.Config{}, []string{"tokens[0] (ci): sha256 must be 64 hex digits", "tokens[1]: name is missing"}},
		{"missing tokens file", map[string]string{"ORGSYNC_AUTH_TOKENS_FILE": filepath.Join(dir, "absent")},
			auth.Config{}, []string{"ORGSYNC_AUTH_TOKENS_FILE: reading the tokens file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := envconfig.New(envconfig.Map(tt.vars))
			got := auth.ConfigFromEnv(env)
			err := env.Err()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("config (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "secret-token") {
				t.Errorf("error repeats what was in the sha256 field: %q", err)
			}
		})
	}
}

// tamperSignature flips a bit of the signature.
func tamperSignature(token string) string {
	parts := strings.Split(token, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[len(sig)/2] ^= 0x01
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	return strings.Join(parts, ".")
}

// tamperPayload raises the token's roles to admin and keeps the original signature.
func tamperPayload(t *testing.T, token string) string {
	parts := strings.Split(token, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	claims["roles"] = []string{"admin"}
	raw, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// unsigned builds an "alg: none" JWT with an empty signature.
func unsigned(t *testing.T, claims map[string]any) string {
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}
