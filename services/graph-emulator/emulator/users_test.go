package emulator_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var guidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUserLifecycle(t *testing.T) {
	directory, client := newTestServer(t)
	created := client.do(http.MethodPost, "/v1.0/users", userBody("Ada Lovelace", map[string]any{
		"givenName":        "Ada",
		"surname":          "Lovelace",
		"employeeId":       "E1001",
		"department":       "Engineering",
		"employeeHireDate": "2024-03-01T00:00:00Z",
		"employeeOrgData":  map[string]any{"costCenter": "CC-42", "division": "R&D"},
	}))
	if created.status != http.StatusCreated {
		t.Fatalf("POST /users: status %d: %s", created.status, created.raw)
	}
	id, _ := created.body["id"].(string)
	if !guidPattern.MatchString(id) {
		t.Fatalf("id %q is not a lowercase GUID", id)
	}

	t.Run("create answers the stored object", func(t *testing.T) {
		want := map[string]any{
			"@odata.context":    "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
			"id":                id,
			"accountEnabled":    true,
			"displayName":       "Ada Lovelace",
			"mailNickname":      "ada.lovelace",
			"userPrincipalName": "ada.lovelace@corp.example.test",
			"givenName":         "Ada",
			"surname":           "Lovelace",
			"employeeId":        "E1001",
			"department":        "Engineering",
			"employeeHireDate":  "2024-03-01T00:00:00Z",
			"employeeOrgData":   map[string]any{"costCenter": "CC-42", "division": "R&D"},
		}
		if diff := cmp.Diff(want, created.body); diff != "" {
			t.Errorf("POST /users answer mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("get without select returns the default properties", func(t *testing.T) {
		got := client.do(http.MethodGet, "/v1.0/users/"+id, nil)
		want := map[string]any{
			"@odata.context":    "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
			"id":                id,
			"businessPhones":    []any{},
			"displayName":       "Ada Lovelace",
			"givenName":         "Ada",
			"jobTitle":          nil,
			"mail":              nil,
			"mobilePhone":       nil,
			"officeLocation":    nil,
			"preferredLanguage": nil,
			"surname":           "Lovelace",
			"userPrincipalName": "ada.lovelace@corp.example.test",
		}
		if diff := cmp.Diff(want, got.body); diff != "" {
			t.Errorf("GET /users/{id} mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("get by userPrincipalName ignores case", func(t *testing.T) {
		got := client.do(http.MethodGet, "/v1.0/users/Ada.Lovelace@CORP.example.test", nil)
		if diff := cmp.Diff(id, got.body["id"]); diff != "" {
			t.Errorf("id mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("patch merges properties", func(t *testing.T) {
		patched := client.do(http.MethodPatch, "/v1.0/users/"+id, map[string]any{
			"@odata.type": "#microsoft.graph.user",
			"jobTitle":    "Analyst",
			"department":  nil,
			"employeeOrgData": map[string]any{
				"@odata.type": "#microsoft.graph.employeeOrgData",
				"costCenter":  "CC-7",
			},
		})
		if patched.status != http.StatusNoContent || patched.raw != "" {
			t.Fatalf("PATCH: status %d, body %q; want 204 and no body", patched.status, patched.raw)
		}
		got := client.do(http.MethodGet, withQuery("/v1.0/users/"+id, "$select", "jobTitle,department,employeeOrgData,employeeId"), nil)
		want := map[string]any{
			"@odata.context":  "https://graph.microsoft.com/v1.0/$metadata#users(jobTitle,department,employeeOrgData,employeeId)/$entity",
			"id":              id,
			"jobTitle":        "Analyst",
			"department":      nil,
			"employeeOrgData": map[string]any{"costCenter": "CC-7"},
			"employeeId":      "E1001",
		}
		if diff := cmp.Diff(want, got.body); diff != "" {
			t.Errorf("GET after PATCH mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("delete removes the user", func(t *testing.T) {
		deleted := client.do(http.MethodDelete, "/v1.0/users/"+id, nil)
		if deleted.status != http.StatusNoContent {
			t.Fatalf("DELETE: status %d: %s", deleted.status, deleted.raw)
		}
		checkError(t, client.do(http.MethodGet, "/v1.0/users/"+id, nil),
			graphError{Status: http.StatusNotFound, Code: "Request_ResourceNotFound", Message: notFoundMessage(id)})
		if _, found := directory.User(id); found {
			t.Error("User(id) still finds the deleted user")
		}
		checkError(t, client.do(http.MethodDelete, "/v1.0/users/"+id, nil),
			graphError{Status: http.StatusNotFound, Code: "Request_ResourceNotFound", Message: notFoundMessage(id)})
	})
}

func TestCreateUserRefusals(t *testing.T) {
	without := func(name string) map[string]any {
		body := userBody("Grace Hopper", nil)
		delete(body, name)
		return body
	}
	tests := []struct {
		name string
		body any
		want graphError
	}{
		{
			name: "missing accountEnabled",
			body: without("accountEnabled"),
			want: graphError{400, "Request_BadRequest", "Property accountEnabled value is required but is empty or missing."},
		},
		{
			name: "missing displayName",
			body: without("displayName"),
			want: graphError{400, "Request_BadRequest", "Property displayName value is required but is empty or missing."},
		},
		{
			name: "empty mailNickname",
			body: userBody("Grace Hopper", map[string]any{"mailNickname": ""}),
			want: graphError{400, "Request_BadRequest", "Property mailNickname value is required but is empty or missing."},
		},
		{
			name: "missing userPrincipalName",
			body: without("userPrincipalName"),
			want: graphError{400, "Request_BadRequest", "Property userPrincipalName value is required but is empty or missing."},
		},
		{
			name: "missing passwordProfile",
			body: without("passwordProfile"),
			want: graphError{400, "Request_BadRequest", "Property passwordProfile value is required but is empty or missing."},
		},
		{
			name: "missing password",
			body: userBody("Grace Hopper", map[string]any{"passwordProfile": map[string]any{"forceChangePasswordNextSignIn": true}}),
			want: graphError{400, "Request_BadRequest", "Property passwordProfile.password value is required but is empty or missing."},
		},
		{
			name: "weak password",
			body: userBody("Grace Hopper", map[string]any{"passwordProfile": map[string]any{"password": "password"}}),
			want: graphError{400, "Request_BadRequest", "The specified password does not comply with password complexity requirements. Please provide a different password."},
		},
		{
			name: "accountEnabled not a boolean",
			body: userBody("Grace Hopper", map[string]any{"accountEnabled": "yes"}),
			want: graphError{400, "Request_BadRequest", "Invalid value specified for property 'accountEnabled' of resource 'User'."},
		},
		{
			name: "mailNickname with a diacritic",
			body: userBody("Grace Hopper", map[string]any{"mailNickname": "grâce"}),
			want: graphError{400, "Request_BadRequest", "Invalid value specified for property 'mailNickname' of resource 'User'."},
		},
		{
			name: "userPrincipalName without a domain",
			body: userBody("Grace Hopper", map[string]any{"userPrincipalName": "grace"}),
			want: graphError{400, "Request_BadRequest", "Property userPrincipalName is invalid."},
		},
		{
			name: "userPrincipalName taken, in another case",
			body: userBody("Grace Hopper", map[string]any{"userPrincipalName": "TAKEN@corp.example.test"}),
			want: graphError{400, "Request_BadRequest", "Another object with the same value for property userPrincipalName already exists."},
		},
		{
			name: "malformed JSON",
			body: `{"displayName": `,
			want: graphError{400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."},
		},
		{
			name: "JSON array instead of object",
			body: `[]`,
			want: graphError{400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."},
		},
		{
			name: "an @odata.bind other than a group's members is refused",
			body: userBody("Grace Hopper", map[string]any{"manager@odata.bind": "https://graph.microsoft.com/v1.0/users/x"}),
			want: graphError{400, "Request_BadRequest", "'manager@odata.bind' is not supported here; bind members with a PATCH of the group."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			directory, client := newTestServer(t)
			client.mustCreate("users", userBody("Taken", nil))
			checkError(t, client.do(http.MethodPost, "/v1.0/users", tt.body), tt.want)
			if got := len(directory.Users()); got != 1 {
				t.Errorf("directory holds %d users after a refused create; want 1", got)
			}
		})
	}
}

func TestUpdateUserRefusals(t *testing.T) {
	_, client := newTestServer(t)
	client.mustCreate("users", userBody("Taken", nil))
	id := client.mustCreate("users", userBody("Alan Turing", nil))
	tests := []struct {
		name   string
		target string
		body   any
		want   graphError
	}{
		{
			name:   "userPrincipalName taken",
			target: id,
			body:   map[string]any{"userPrincipalName": "taken@CORP.example.test"},
			want:   graphError{400, "Request_BadRequest", "Another object with the same value for property userPrincipalName already exists."},
		},
		{
			name:   "displayName cleared",
			target: id,
			body:   map[string]any{"displayName": nil},
			want:   graphError{400, "Request_BadRequest", "Property displayName value is required but is empty or missing."},
		},
		{
			name:   "unknown user",
			target: "00000000-0000-4000-8000-000000000000",
			body:   map[string]any{"jobTitle": "x"},
			want:   graphError{404, "Request_ResourceNotFound", notFoundMessage("00000000-0000-4000-8000-000000000000")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkError(t, client.do(http.MethodPatch, "/v1.0/users/"+tt.target, tt.body), tt.want)
		})
	}

	t.Run("renaming to its own name in another case is allowed", func(t *testing.T) {
		renamed := client.do(http.MethodPatch, "/v1.0/users/"+id, map[string]any{"userPrincipalName": "Alan.Turing@corp.example.test"})
		if renamed.status != http.StatusNoContent {
			t.Fatalf("PATCH: status %d: %s", renamed.status, renamed.raw)
		}
		got := client.do(http.MethodGet, "/v1.0/users/alan.turing@corp.example.test", nil)
		if diff := cmp.Diff("Alan.Turing@corp.example.test", got.body["userPrincipalName"]); diff != "" {
			t.Errorf("userPrincipalName mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestPasswordIsNeverReturned(t *testing.T) {
	directory, client := newTestServer(t, emulatorWithAllUserProperties...)
	created := client.do(http.MethodPost, "/v1.0/users", userBody("Katherine Johnson", nil))
	id, _ := created.body["id"].(string)
	client.do(http.MethodPatch, "/v1.0/users/"+id, map[string]any{"passwordProfile": map[string]any{"password": "Another-Secret-7"}})

	answers := map[string]response{
		"create":           created,
		"get":              client.do(http.MethodGet, "/v1.0/users/"+id, nil),
		"get with select":  client.do(http.MethodGet, withQuery("/v1.0/users/"+id, "$select", "passwordProfile,displayName"), nil),
		"list":             client.do(http.MethodGet, "/v1.0/users", nil),
		"list with select": client.do(http.MethodGet, withQuery("/v1.0/users", "$select", "passwordProfile"), nil),
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			if answer.status >= 300 {
				t.Fatalf("status %d: %s", answer.status, answer.raw)
			}
			for _, secret := range []string{testPassword, "Another-Secret-7"} {
				if strings.Contains(answer.raw, secret) {
					t.Errorf("answer contains the password %q: %s", secret, answer.raw)
				}
			}
		})
	}
	t.Run("inspection", func(t *testing.T) {
		user, _ := directory.User(id)
		if _, present := user["passwordProfile"]; present {
			t.Errorf("stored user keeps passwordProfile: %v", user)
		}
	})
}

// TestPasswordReset: a PATCH of passwordProfile sets a new password (kept as a hash: the
// emulator can tell a test whether a candidate is the password, never show it) and its
// forceChangePasswordNextSignIn; a refused one changes nothing; the flags alone keep the password.
func TestPasswordReset(t *testing.T) {
	directory, client := newTestServer(t)
	id := client.mustCreate("users", userBody("Dorothy Vaughan", nil))
	created, ok := directory.PasswordProfile(id)
	if !ok || created.Changes != 1 || !created.ForceChangePasswordNextSignIn || !directory.PasswordIs(id, testPassword) {
		t.Fatalf("after the create: %+v (known %v), the initial password matches %v", created, ok, directory.PasswordIs(id, testPassword))
	}
	const reset = "Reset-Secret-42"
	answer := client.do(http.MethodPatch, "/v1.0/users/"+id, map[string]any{"passwordProfile": map[string]any{
		"@odata.type": "#microsoft.graph.passwordProfile", "password": reset, "forceChangePasswordNextSignIn": true}})
	if answer.status != http.StatusNoContent {
		t.Fatalf("reset: %d %s", answer.status, answer.raw)
	}
	after, _ := directory.PasswordProfile(id)
	switch {
	case !directory.PasswordIs(id, reset) || directory.PasswordIs(id, testPassword):
		t.Errorf("after the reset the new password matches %v, the old %v; want true, false", directory.PasswordIs(id, reset), directory.PasswordIs(id, testPassword))
	case after.Changes != 2 || !after.ForceChangePasswordNextSignIn || after.SetAt.Before(created.SetAt):
		t.Errorf("profile after the reset = %+v, want 2 changes, forced to change, set at or after %v", after, created.SetAt)
	}

	refused := client.do(http.MethodPatch, "/v1.0/users/"+id, map[string]any{"passwordProfile": map[string]any{"password": "weakweak"}})
	if refused.status != http.StatusBadRequest || strings.Contains(refused.raw, "weakweak") {
		t.Errorf("a weak password: %d %s; want 400 not naming it", refused.status, refused.raw)
	}
	if !directory.PasswordIs(id, reset) {
		t.Error("a refused reset changed the password")
	}

	flags := client.do(http.MethodPatch, "/v1.0/users/"+id, map[string]any{"passwordProfile": map[string]any{"forceChangePasswordNextSignIn": false}})
	if flags.status != http.StatusNoContent {
		t.Fatalf("flags only: %d %s", flags.status, flags.raw)
	}
	if profile, _ := directory.PasswordProfile(id); !directory.PasswordIs(id, reset) || profile.ForceChangePasswordNextSignIn || profile.Changes != 2 {
		t.Errorf("after a PATCH of the flag alone: %+v, password kept %v", profile, directory.PasswordIs(id, reset))
	}
	if _, ok := directory.PasswordProfile("00000000-0000-4000-8000-00000000dead"); ok || directory.PasswordIs("00000000-0000-4000-8000-00000000dead", reset) {
		t.Error("an unknown user has a password profile")
	}
}
