package emulator_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// graphRefusal is an error answer with Graph's "details": which property, and why.
type graphRefusal struct {
	Status  int
	Code    string
	Message string
	Details []refusalDetail
}

type refusalDetail struct {
	Code   string `json:"code"`
	Target string `json:"target"`
}

func refusalOf(t *testing.T, r response) graphRefusal {
	t.Helper()
	var envelope struct {
		Error struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Details []refusalDetail `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.raw), &envelope); err != nil {
		t.Fatalf("error answer is not Graph's envelope: %v\n%s", err, r.raw)
	}
	return graphRefusal{Status: r.status, Code: envelope.Error.Code, Message: envelope.Error.Message, Details: envelope.Error.Details}
}

func invalidValue(property, resource string) graphRefusal {
	return graphRefusal{400, "Request_BadRequest",
		"Invalid value specified for property '" + property + "' of resource '" + resource + "'.",
		[]refusalDetail{{"InvalidValue", property}}}
}

var invalidPrincipalName = graphRefusal{400, "Request_BadRequest", "Property userPrincipalName is invalid.",
	[]refusalDetail{{"InvalidValue", "userPrincipalName"}}}

func withUPN(principalName string) map[string]any {
	return userBody("Grace Hopper", map[string]any{"userPrincipalName": principalName})
}

// TestUserValidation checks every rule Graph applies to a user's properties, on create: what it
// refuses, with its answer, and the edge values it still accepts.
func TestUserValidation(t *testing.T) {
	alias64 := strings.Repeat("a", 64)
	domain48 := strings.Repeat("d", 44) + ".com"
	tests := []struct {
		name string
		body map[string]any
		// want is the refusal; nil means the create succeeds.
		want *graphRefusal
	}{
		{"UPN with diacritics", withUPN("renée.ødegård@corp.example.test"), &invalidPrincipalName},
		{"UPN with a space", withUPN("grace hopper@corp.example.test"), &invalidPrincipalName},
		{"UPN with two @", withUPN("grace@hopper@corp.example.test"), &invalidPrincipalName},
		{"UPN without @", withUPN("grace.corp.example.test"), &invalidPrincipalName},
		{"UPN with a period before @", withUPN("grace.@corp.example.test"), &invalidPrincipalName},
		{"UPN with a comma", withUPN("grace,hopper@corp.example.test"), &invalidPrincipalName},
		{"UPN alias of 65 characters", withUPN(alias64 + "a@corp.example.test"), &invalidPrincipalName},
		{"UPN domain of 49 characters", withUPN("grace@d" + domain48), &invalidPrincipalName},
		{"UPN domain with an underscore", withUPN("grace@corp_example.test"), &invalidPrincipalName},
		{"UPN domain with an empty label", withUPN("grace@corp..test"), &invalidPrincipalName},
		{"UPN alias of 64 and domain of 48 (113)", withUPN(alias64 + "@" + domain48), nil},
		{"UPN with every allowed symbol", withUPN("o'neil.a-b_c!d#e^f~g@corp.example.test"), nil},
		{"mailNickname with a space", userBody("Grace Hopper", map[string]any{"mailNickname": "grace hopper"}), ptr(invalidValue("mailNickname", "User"))},
		{"mailNickname with @", userBody("Grace Hopper", map[string]any{"mailNickname": "grace@hopper"}), ptr(invalidValue("mailNickname", "User"))},
		{"mailNickname with brackets", userBody("Grace Hopper", map[string]any{"mailNickname": "grace[1]"}), ptr(invalidValue("mailNickname", "User"))},
		{"mailNickname with a diacritic", userBody("Grace Hopper", map[string]any{"mailNickname": "renée"}), ptr(invalidValue("mailNickname", "User"))},
		{"mailNickname of 65 characters", userBody("Grace Hopper", map[string]any{"mailNickname": strings.Repeat("g", 65)}), ptr(invalidValue("mailNickname", "User"))},
		{"mailNickname of 64 characters", userBody("Grace Hopper", map[string]any{"mailNickname": strings.Repeat("g", 64)}), nil},
		{"mail without @", userBody("Grace Hopper", map[string]any{"mail": "grace.corp.example.test"}), ptr(invalidValue("mail", "User"))},
		{"mail with a space", userBody("Grace Hopper", map[string]any{"mail": "grace hopper@corp.example.test"}), ptr(invalidValue("mail", "User"))},
		{"mail with two @", userBody("Grace Hopper", map[string]any{"mail": "a@b@corp.example.test"}), ptr(invalidValue("mail", "User"))},
		{"mail well formed", userBody("Grace Hopper", map[string]any{"mail": "grace+navy@corp.example.test"}), nil},
		{"employeeId of 17 characters", userBody("Grace Hopper", map[string]any{"employeeId": strings.Repeat("1", 17)}), ptr(invalidValue("employeeId", "User"))},
		{"employeeId of 16 characters", userBody("Grace Hopper", map[string]any{"employeeId": strings.Repeat("1", 16)}), nil},
		{"employeeId not a string", userBody("Grace Hopper", map[string]any{"employeeId": 12}), ptr(invalidValue("employeeId", "User"))},
		{"displayName of 257 characters", userBody("Grace Hopper", map[string]any{"displayName": strings.Repeat("é", 257)}), ptr(invalidValue("displayName", "User"))},
		{"displayName of 256 characters (runes, not bytes)", userBody("Grace Hopper", map[string]any{"displayName": strings.Repeat("é", 256)}), nil},
		{"givenName of 65 characters", userBody("Grace Hopper", map[string]any{"givenName": strings.Repeat("g", 65)}), ptr(invalidValue("givenName", "User"))},
		{"surname of 65 characters", userBody("Grace Hopper", map[string]any{"surname": strings.Repeat("s", 65)}), ptr(invalidValue("surname", "User"))},
		{"jobTitle of 129 characters", userBody("Grace Hopper", map[string]any{"jobTitle": strings.Repeat("j", 129)}), ptr(invalidValue("jobTitle", "User"))},
		{"jobTitle of 128 characters", userBody("Grace Hopper", map[string]any{"jobTitle": strings.Repeat("j", 128)}), nil},
		{"department of 65 characters", userBody("Grace Hopper", map[string]any{"department": strings.Repeat("d", 65)}), ptr(invalidValue("department", "User"))},
		{"companyName of 65 characters", userBody("Grace Hopper", map[string]any{"companyName": strings.Repeat("c", 65)}), ptr(invalidValue("companyName", "User"))},
		{"password too short", userBody("Grace Hopper", map[string]any{"passwordProfile": map[string]any{"password": "Ab1!"}}),
			&graphRefusal{400, "Request_BadRequest", "The specified password does not comply with password complexity requirements. Please provide a different password.",
				[]refusalDetail{{"InvalidValue", "passwordProfile"}}}},
		{"password of two kinds of characters", userBody("Grace Hopper", map[string]any{"passwordProfile": map[string]any{"password": "abcdefgh12"}}),
			&graphRefusal{400, "Request_BadRequest", "The specified password does not comply with password complexity requirements. Please provide a different password.",
				[]refusalDetail{{"InvalidValue", "passwordProfile"}}}},
		{"missing mailNickname", func() map[string]any { b := userBody("Grace Hopper", nil); delete(b, "mailNickname"); return b }(),
			&graphRefusal{400, "Request_BadRequest", "Property mailNickname value is required but is empty or missing.", nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			directory, client := newTestServer(t)
			answer := client.do(http.MethodPost, "/v1.0/users", tt.body)
			if tt.want == nil {
				if answer.status != http.StatusCreated {
					t.Fatalf("create refused: status %d: %s", answer.status, answer.raw)
				}
				return
			}
			if diff := cmp.Diff(*tt.want, refusalOf(t, answer)); diff != "" {
				t.Errorf("refusal mismatch (-want +got):\n%s", diff)
			}
			if got := len(directory.Users()); got != 0 {
				t.Errorf("directory holds %d users after a refused create; want 0", got)
			}
		})
	}
}

// TestDuplicatePrincipalName checks Graph's answer for a userPrincipalName another user holds,
// live or deleted: the ObjectConflict detail names the property.
func TestDuplicatePrincipalName(t *testing.T) {
	want := graphRefusal{400, "Request_BadRequest", "Another object with the same value for property userPrincipalName already exists.",
		[]refusalDetail{{"ObjectConflict", "userPrincipalName"}}}
	_, client := newTestServer(t)
	heldID := client.mustCreate("users", userBody("Held Name", nil))
	otherID := client.mustCreate("users", userBody("Other Name", nil))
	deletedID := client.mustCreate("users", userBody("Gone Name", nil))
	client.do(http.MethodDelete, "/v1.0/users/"+deletedID, nil)

	tests := []struct {
		name   string
		method string
		target string
		body   map[string]any
	}{
		{"create, same case", http.MethodPost, "/v1.0/users", withUPN("held.name@corp.example.test")},
		{"create, other case", http.MethodPost, "/v1.0/users", withUPN("HELD.name@corp.example.test")},
		{"create, held by a deleted user", http.MethodPost, "/v1.0/users", withUPN("gone.name@corp.example.test")},
		{"rename", http.MethodPatch, "/v1.0/users/" + otherID, map[string]any{"userPrincipalName": "held.name@corp.example.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(want, refusalOf(t, client.do(tt.method, tt.target, tt.body))); diff != "" {
				t.Errorf("refusal mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if heldID == "" {
		t.Fatal("no id for the holder")
	}
}

// TestUpdateValidation checks that a PATCH meets the same rules, and that null clears an
// optional property.
func TestUpdateValidation(t *testing.T) {
	_, client := newTestServer(t)
	id := client.mustCreate("users", userBody("Alan Turing", map[string]any{"jobTitle": "Mathematician"}))
	tests := []struct {
		name string
		body map[string]any
		want *graphRefusal
	}{
		{"UPN with diacritics", map[string]any{"userPrincipalName": "alän@corp.example.test"}, &invalidPrincipalName},
		{"mailNickname with a colon", map[string]any{"mailNickname": "alan:turing"}, ptr(invalidValue("mailNickname", "User"))},
		{"employeeId too long", map[string]any{"employeeId": "12345678901234567"}, ptr(invalidValue("employeeId", "User"))},
		{"department too long", map[string]any{"department": strings.Repeat("d", 65)}, ptr(invalidValue("department", "User"))},
		{"mail malformed", map[string]any{"mail": "alan@"}, ptr(invalidValue("mail", "User"))},
		{"weak password", map[string]any{"passwordProfile": map[string]any{"password": "turing"}},
			&graphRefusal{400, "Request_BadRequest", "The specified password does not comply with password complexity requirements. Please provide a different password.",
				[]refusalDetail{{"InvalidValue", "passwordProfile"}}}},
		{"password with an undeclared profile property", map[string]any{"passwordProfile": map[string]any{"password": "Another-Secret-7", "mustChange": true}},
			&graphRefusal{400, "Request_BadRequest", "Property 'mustChange' does not exist as a declared property or extension property.",
				[]refusalDetail{{"InvalidValue", "mustChange"}}}},
		{"forceChangePasswordNextSignIn not a boolean", map[string]any{"passwordProfile": map[string]any{"password": "Another-Secret-7", "forceChangePasswordNextSignIn": "yes"}},
			ptr(invalidValue("passwordProfile.forceChangePasswordNextSignIn", "User"))},
		{"password reset forced to change", map[string]any{"passwordProfile": map[string]any{"password": "Another-Secret-7", "forceChangePasswordNextSignIn": true}}, nil},
		{"jobTitle cleared with null", map[string]any{"jobTitle": nil}, nil},
		{"employeeId of 16", map[string]any{"employeeId": "1234567890123456"}, nil},
		{"usageLocation of two letters", map[string]any{"usageLocation": "GB"}, nil},
		{"usageLocation spelled out", map[string]any{"usageLocation": "Britain"}, ptr(invalidValue("usageLocation", "User"))},
		{"usageLocation cleared with null", map[string]any{"usageLocation": nil}, nil},
		{"preferredLanguage tag", map[string]any{"preferredLanguage": "en-GB"}, nil},
		{"preferredLanguage spelled out", map[string]any{"preferredLanguage": "English"}, ptr(invalidValue("preferredLanguage", "User"))},
		{"mobilePhone too long", map[string]any{"mobilePhone": strings.Repeat("1", 65)}, ptr(invalidValue("mobilePhone", "User"))},
		{"extension attributes", map[string]any{"onPremisesExtensionAttributes": map[string]any{"extensionAttribute1": "a", "extensionAttribute15": nil}}, nil},
		{"extensionAttribute16", map[string]any{"onPremisesExtensionAttributes": map[string]any{"extensionAttribute16": "a"}},
			&graphRefusal{400, "Request_BadRequest", "Property 'extensionAttribute16' does not exist as a declared property or extension property.",
				[]refusalDetail{{"InvalidValue", "extensionAttribute16"}}}},
		{"extension attribute too long", map[string]any{"onPremisesExtensionAttributes": map[string]any{"extensionAttribute2": strings.Repeat("x", 1025)}},
			ptr(invalidValue("onPremisesExtensionAttributes.extensionAttribute2", "User"))},
		{"extension attributes not an object", map[string]any{"onPremisesExtensionAttributes": "a"}, ptr(invalidValue("onPremisesExtensionAttributes", "User"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer := client.do(http.MethodPatch, "/v1.0/users/"+id, tt.body)
			if tt.want == nil {
				if answer.status != http.StatusNoContent {
					t.Fatalf("PATCH refused: status %d: %s", answer.status, answer.raw)
				}
				return
			}
			if diff := cmp.Diff(*tt.want, refusalOf(t, answer)); diff != "" {
				t.Errorf("refusal mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGroupValidation checks a group's required properties and limits.
func TestGroupValidation(t *testing.T) {
	withGroup := func(name string, value any) map[string]any {
		body := groupBody("Engineering")
		body[name] = value
		return body
	}
	tests := []struct {
		name string
		body map[string]any
		want graphRefusal
	}{
		{"missing securityEnabled", func() map[string]any { b := groupBody("Engineering"); delete(b, "securityEnabled"); return b }(),
			graphRefusal{400, "Request_BadRequest", "Property securityEnabled value is required but is empty or missing.", nil}},
		{"mailEnabled not a boolean", withGroup("mailEnabled", "no"), invalidValue("mailEnabled", "Group")},
		{"mailNickname with a space", withGroup("mailNickname", "eng team"), invalidValue("mailNickname", "Group")},
		{"displayName of 257 characters", withGroup("displayName", strings.Repeat("e", 257)), invalidValue("displayName", "Group")},
		{"description of 1025 characters", withGroup("description", strings.Repeat("e", 1025)), invalidValue("description", "Group")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, client := newTestServer(t)
			if diff := cmp.Diff(tt.want, refusalOf(t, client.do(http.MethodPost, "/v1.0/groups", tt.body))); diff != "" {
				t.Errorf("refusal mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVerifiedDomains checks that an emulator configured with verified domains refuses a
// userPrincipalName in another domain, and that by default every domain is accepted.
func TestVerifiedDomains(t *testing.T) {
	unverified := graphRefusal{400, "Request_BadRequest",
		"The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
		[]refusalDetail{{"InvalidValue", "userPrincipalName"}}}
	tests := []struct {
		name string
		opts []emulator.Option
		upn  string
		want *graphRefusal
	}{
		{"verified domain", []emulator.Option{emulator.WithVerifiedDomains("corp.example.test")}, "grace@CORP.example.test", nil},
		{"unverified domain", []emulator.Option{emulator.WithVerifiedDomains("corp.example.test")}, "grace@other.example.test", &unverified},
		{"no verified domains configured", nil, "grace@other.example.test", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, client := newTestServer(t, tt.opts...)
			answer := client.do(http.MethodPost, "/v1.0/users", withUPN(tt.upn))
			if tt.want == nil {
				if answer.status != http.StatusCreated {
					t.Fatalf("create refused: status %d: %s", answer.status, answer.raw)
				}
				return
			}
			if diff := cmp.Diff(*tt.want, refusalOf(t, answer)); diff != "" {
				t.Errorf("refusal mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBatchValidation checks that a $batch item is validated like the same request on its own,
// with the same error body, while the other items succeed.
func TestBatchValidation(t *testing.T) {
	directory, client := newTestServer(t)
	answer := client.do(http.MethodPost, "/v1.0/$batch", map[string]any{"requests": []any{
		map[string]any{"id": "1", "method": "POST", "url": "/users", "headers": map[string]string{"Content-Type": "application/json"},
			"body": withUPN("renée@corp.example.test")},
		map[string]any{"id": "2", "method": "POST", "url": "/users", "headers": map[string]string{"Content-Type": "application/json"},
			"body": userBody("Ada Lovelace", nil)},
	}})
	if answer.status != http.StatusOK {
		t.Fatalf("$batch: status %d: %s", answer.status, answer.raw)
	}
	var batch struct {
		Responses []struct {
			ID     string          `json:"id"`
			Status int             `json:"status"`
			Body   json.RawMessage `json:"body"`
		} `json:"responses"`
	}
	if err := json.Unmarshal([]byte(answer.raw), &batch); err != nil {
		t.Fatal(err)
	}
	statuses := map[string]int{}
	for _, item := range batch.Responses {
		statuses[item.ID] = item.Status
		if item.ID == "1" {
			got := refusalOf(t, response{status: item.Status, raw: string(item.Body)})
			if diff := cmp.Diff(invalidPrincipalName, got); diff != "" {
				t.Errorf("item 1 refusal mismatch (-want +got):\n%s", diff)
			}
		}
	}
	if diff := cmp.Diff(map[string]int{"1": 400, "2": 201}, statuses); diff != "" {
		t.Errorf("item statuses mismatch (-want +got):\n%s", diff)
	}
	if got := len(directory.Users()); got != 1 {
		t.Errorf("directory holds %d users; want 1 (Ada)", got)
	}
}

func ptr[T any](value T) *T { return &value }

// TestExtensionAttributesChangeOneByOne: a PATCH of onPremisesExtensionAttributes changes the
// attributes it names and keeps the others; null clears one.
func TestExtensionAttributesChangeOneByOne(t *testing.T) {
	server, client := newTestServer(t)
	id := client.mustCreate("users", userBody("Ada Lovelace", map[string]any{
		"onPremisesExtensionAttributes": map[string]any{"extensionAttribute1": "one", "extensionAttribute2": "two"},
	}))
	answer := client.do(http.MethodPatch, "/v1.0/users/"+id, map[string]any{
		"onPremisesExtensionAttributes": map[string]any{"extensionAttribute2": nil, "extensionAttribute3": "three"},
	})
	if answer.status != http.StatusNoContent {
		t.Fatalf("PATCH: status %d: %s", answer.status, answer.raw)
	}
	user, _ := server.User(id)
	want := map[string]any{"extensionAttribute1": "one", "extensionAttribute3": "three"}
	if diff := cmp.Diff(want, user["onPremisesExtensionAttributes"]); diff != "" {
		t.Errorf("extension attributes (-want +got):\n%s", diff)
	}
}
