// Package convergetest holds the checks every writer's tests run against their own admin
// listener: the writers serve the same routes (converge.Admin), so one table says who may call
// them.
package convergetest

import (
	"io"
	"net/http"
	"testing"

	"github.com/orgsync/orgsync/pkg/auth"
)

// Routes are the admin routes of every writer, with the role each needs and a role that is not
// enough ("" when every role is).
var Routes = []struct {
	Method, Path string
	Required     auth.Role
	Lacking      auth.Role
}{
	{"GET", "/v1/dead-letters", auth.Viewer, ""},
	{"POST", "/v1/dead-letters/replay", auth.Operator, auth.Approver},
	{"POST", "/v1/drift/reconcile", auth.Operator, auth.Viewer},
}

// Call calls a route at base with token (none when empty) and returns the status and body.
func Call(t *testing.T, base, method, path, token string) (int, []byte) {
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
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// CheckAdminAccess calls every admin route on the admin listener (adminAddr) without
// credentials, with a valid token that holds no role (noRole), with a token lacking the route's
// role, and with the role it needs and admin (tokens by role); and on the open HTTP listener
// (openAddr), where the routes must not be.
func CheckAdminAccess(t *testing.T, adminAddr, openAddr string, tokens map[auth.Role]string, noRole string) {
	admin, open := "http://"+adminAddr, "http://"+openAddr
	for _, route := range Routes {
		t.Run(route.Method+" "+route.Path, func(t *testing.T) {
			if code, _ := Call(t, admin, route.Method, route.Path, ""); code != http.StatusUnauthorized {
				t.Errorf("without credentials: %d, want 401", code)
			}
			if code, _ := Call(t, admin, route.Method, route.Path, noRole); code != http.StatusForbidden {
				t.Errorf("with a token holding no role: %d, want 403", code)
			}
			if route.Lacking != "" {
				if code, _ := Call(t, admin, route.Method, route.Path, tokens[route.Lacking]); code != http.StatusForbidden {
					t.Errorf("as %s: %d, want 403", route.Lacking, code)
				}
			}
			for _, role := range []auth.Role{route.Required, auth.Admin} {
				if code, body := Call(t, admin, route.Method, route.Path, tokens[role]); code != http.StatusOK {
					t.Errorf("as %s: %d %s, want 200", role, code, body)
				}
			}
			if code, _ := Call(t, open, route.Method, route.Path, tokens[auth.Admin]); code != http.StatusNotFound {
				t.Errorf("on the open HTTP port: %d, want 404", code)
			}
		})
	}
}
