package service

import (
	"io"
	"net/http"
	"testing"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// TestAdminRoutesAccess calls every admin route without credentials, with a valid token that
// lacks the role, and with the role the route needs; the routes are not on the open HTTP port.
func TestAdminRoutesAccess(t *testing.T) {
	p := newPipeline(t, emulator.Faults{})
	authCfg, tokens := authtest.RoleTokens(t)
	issuer := authtest.NewIssuer(t)
	authCfg.Issuer, authCfg.Audience = issuer.URL(), authtest.Audience
	svc := p.startWriterWith(t, func(cfg *Config) { cfg.Server.Auth = authCfg }, nil)

	routes := []struct {
		method, path string
		required     auth.Role
		lacking      auth.Role
	}{
		{"GET", "/v1/dead-letters", auth.Viewer, ""},
		{"POST", "/v1/dead-letters/replay", auth.Operator, auth.Approver},
		{"POST", "/v1/drift/reconcile", auth.Operator, auth.Viewer},
	}
	do := func(t *testing.T, base, method, path, token string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	admin, open := "http://"+svc.AdminAddr(), "http://"+svc.HTTPAddr()
	for _, route := range routes {
		t.Run(route.method+" "+route.path, func(t *testing.T) {
			if code := do(t, admin, route.method, route.path, ""); code != http.StatusUnauthorized {
				t.Errorf("without credentials: %d, want 401", code)
			}
			if code := do(t, admin, route.method, route.path, issuer.Token("someone")); code != http.StatusForbidden {
				t.Errorf("with a token holding no role: %d, want 403", code)
			}
			if route.lacking != "" {
				if code := do(t, admin, route.method, route.path, tokens[route.lacking]); code != http.StatusForbidden {
					t.Errorf("as %s: %d, want 403", route.lacking, code)
				}
			}
			for _, role := range []auth.Role{route.required, auth.Admin} {
				if code := do(t, admin, route.method, route.path, tokens[role]); code != http.StatusOK {
					t.Errorf("as %s: %d, want 200", role, code)
				}
			}
			if code := do(t, open, route.method, route.path, tokens[auth.Admin]); code != http.StatusNotFound {
				t.Errorf("on the open HTTP port: %d, want 404", code)
			}
		})
	}
}
