package emulator_test

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGroupLifecycle(t *testing.T) {
	directory, client := newTestServer(t)
	body := groupBody("Engineering Staff")
	body["description"] = "Everyone in engineering"
	created := client.do(http.MethodPost, "/v1.0/groups", body)
	if created.status != http.StatusCreated {
		t.Fatalf("POST /groups: status %d: %s", created.status, created.raw)
	}
	id, _ := created.body["id"].(string)
	want := map[string]any{
		"@odata.context":  "https://graph.microsoft.com/v1.0/$metadata#groups/$entity",
		"id":              id,
		"displayName":     "Engineering Staff",
		"description":     "Everyone in engineering",
		"mailEnabled":     false,
		"mailNickname":    "engineering-staff",
		"securityEnabled": true,
	}
	if diff := cmp.Diff(want, created.body); diff != "" {
		t.Errorf("POST /groups answer mismatch (-want +got):\n%s", diff)
	}

	t.Run("get", func(t *testing.T) {
		got := client.do(http.MethodGet, "/v1.0/groups/"+id, nil)
		if diff := cmp.Diff(want, got.body); diff != "" {
			t.Errorf("GET /groups/{id} mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("patch", func(t *testing.T) {
		patched := client.do(http.MethodPatch, "/v1.0/groups/"+id, map[string]any{"description": "Engineers", "@odata.type": "#microsoft.graph.group"})
		if patched.status != http.StatusNoContent {
			t.Fatalf("PATCH: status %d: %s", patched.status, patched.raw)
		}
		group, _ := directory.Group(id)
		if diff := cmp.Diff("Engineers", group["description"]); diff != "" {
			t.Errorf("description mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("list by mailNickname", func(t *testing.T) {
		got := client.do(http.MethodGet, withQuery("/v1.0/groups", "$filter", "mailNickname eq 'engineering-staff'"), nil)
		if diff := cmp.Diff([]string{id}, idsOf(got)); diff != "" {
			t.Errorf("ids mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if deleted := client.do(http.MethodDelete, "/v1.0/groups/"+id, nil); deleted.status != http.StatusNoContent {
			t.Fatalf("DELETE: status %d: %s", deleted.status, deleted.raw)
		}
		checkError(t, client.do(http.MethodGet, "/v1.0/groups/"+id, nil),
			graphError{404, "Request_ResourceNotFound", notFoundMessage(id)})
	})
}

func TestCreateGroupRefusals(t *testing.T) {
	without := func(name string) map[string]any {
		body := groupBody("Sales")
		delete(body, name)
		return body
	}
	tests := []struct {
		name string
		body map[string]any
		want graphError
	}{
		{"missing displayName", without("displayName"), graphError{400, "Request_BadRequest", "Property displayName value is required but is empty or missing."}},
		{"missing mailEnabled", without("mailEnabled"), graphError{400, "Request_BadRequest", "Property mailEnabled value is required but is empty or missing."}},
		{"missing mailNickname", without("mailNickname"), graphError{400, "Request_BadRequest", "Property mailNickname value is required but is empty or missing."}},
		{"missing securityEnabled", without("securityEnabled"), graphError{400, "Request_BadRequest", "Property securityEnabled value is required but is empty or missing."}},
		{"mailNickname with a space", func() map[string]any {
			body := groupBody("Sales")
			body["mailNickname"] = "sales team"
			return body
		}(), graphError{400, "Request_BadRequest", "Invalid value specified for property 'mailNickname' of resource 'Group'."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, client := newTestServer(t)
			checkError(t, client.do(http.MethodPost, "/v1.0/groups", tt.body), tt.want)
		})
	}
}

func TestMembers(t *testing.T) {
	directory, client := newTestServer(t)
	groupID := client.mustCreate("groups", groupBody("Engineering"))
	nestedGroupID := client.mustCreate("groups", groupBody("Platform Team"))
	userID := client.mustCreate("users", userBody("Ada Lovelace", map[string]any{"employeeId": "E1"}))
	secondUserID := client.mustCreate("users", userBody("Alan Turing", nil))
	const unknownID = "11111111-1111-4111-8111-111111111111"
	reference := func(id string) map[string]any {
		return map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + id}
	}
	addPath := "/v1.0/groups/" + groupID + "/members/$ref"

	steps := []struct {
		name       string
		method     string
		target     string
		body       any
		wantStatus int
		wantError  *graphError
	}{
		{name: "add user", method: http.MethodPost, target: addPath, body: reference(userID), wantStatus: 204},
		{name: "add nested group", method: http.MethodPost, target: addPath, body: reference(nestedGroupID), wantStatus: 204},
		{name: "add user by users URL on another host", method: http.MethodPost, target: addPath,
			body: map[string]any{"@odata.id": "http://127.0.0.1:1/v1.0/users/" + secondUserID}, wantStatus: 204},
		{name: "add existing member", method: http.MethodPost, target: addPath, body: reference(userID),
			wantError: &graphError{400, "Request_BadRequest", "One or more added object references already exist for the following modified properties: 'members'."}},
		{name: "add unknown object", method: http.MethodPost, target: addPath, body: reference(unknownID),
			wantError: &graphError{404, "Request_ResourceNotFound", notFoundMessage(unknownID)}},
		{name: "add to unknown group", method: http.MethodPost, target: "/v1.0/groups/" + unknownID + "/members/$ref", body: reference(userID),
			wantError: &graphError{404, "Request_ResourceNotFound", notFoundMessage(unknownID)}},
		{name: "add without @odata.id", method: http.MethodPost, target: addPath, body: map[string]any{"id": userID},
			wantError: &graphError{400, "Request_BadRequest", "The request body must carry the member's URL in '@odata.id', such as https://graph.microsoft.com/v1.0/directoryObjects/{id}."}},
		{name: "add via escaped $ref", method: http.MethodPost, target: "/v1.0/groups/" + groupID + "/members/%24ref", body: reference(userID),
			wantError: &graphError{400, "Request_BadRequest", "One or more added object references already exist for the following modified properties: 'members'."}},
		{name: "remove user", method: http.MethodDelete, target: "/v1.0/groups/" + groupID + "/members/" + secondUserID + "/$ref", wantStatus: 204},
		{name: "remove non-member", method: http.MethodDelete, target: "/v1.0/groups/" + groupID + "/members/" + secondUserID + "/$ref",
			wantError: &graphError{404, "Request_ResourceNotFound", "One or more removed object references do not exist for the following modified properties: 'members'."}},
		{name: "remove unknown object", method: http.MethodDelete, target: "/v1.0/groups/" + groupID + "/members/" + unknownID + "/$ref",
			wantError: &graphError{404, "Request_ResourceNotFound", notFoundMessage(unknownID)}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			got := client.do(step.method, step.target, step.body)
			if step.wantError != nil {
				checkError(t, got, *step.wantError)
				return
			}
			if got.status != step.wantStatus {
				t.Errorf("status %d, want %d: %s", got.status, step.wantStatus, got.raw)
			}
		})
	}

	t.Run("list members carries @odata.type", func(t *testing.T) {
		got := client.do(http.MethodGet, withQuery("/v1.0/groups/"+groupID+"/members", "$select", "id,displayName"), nil)
		want := map[string]any{
			"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects(id,displayName)",
			"value": []any{
				map[string]any{"@odata.type": "#microsoft.graph.user", "id": userID, "displayName": "Ada Lovelace"},
				map[string]any{"@odata.type": "#microsoft.graph.group", "id": nestedGroupID, "displayName": "Platform Team"},
			},
		}
		if diff := cmp.Diff(want, got.body); diff != "" {
			t.Errorf("members mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("list members filtered and counted", func(t *testing.T) {
		got := client.do(http.MethodGet, withQuery("/v1.0/groups/"+groupID+"/members", "$filter", "employeeId eq 'E1'", "$count", "true"), nil, eventualConsistency)
		if diff := cmp.Diff([]string{userID}, idsOf(got)); diff != "" {
			t.Errorf("ids mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(float64(1), got.body["@odata.count"]); diff != "" {
			t.Errorf("@odata.count mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("members of an unknown group", func(t *testing.T) {
		checkError(t, client.do(http.MethodGet, "/v1.0/groups/"+unknownID+"/members", nil),
			graphError{404, "Request_ResourceNotFound", notFoundMessage(unknownID)})
	})

	t.Run("deleting a member removes it from its groups", func(t *testing.T) {
		client.do(http.MethodDelete, "/v1.0/groups/"+nestedGroupID, nil)
		client.do(http.MethodDelete, "/v1.0/users/"+userID, nil)
		if diff := cmp.Diff([]string{}, directory.Members(groupID)); diff != "" {
			t.Errorf("members mismatch (-want +got):\n%s", diff)
		}
		got := client.do(http.MethodGet, "/v1.0/groups/"+groupID+"/members", nil)
		if diff := cmp.Diff([]string{}, idsOf(got)); diff != "" {
			t.Errorf("listed members mismatch (-want +got):\n%s", diff)
		}
	})
}
