package emulator_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

func refs(ids ...string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = "https://graph.microsoft.com/v1.0/directoryObjects/" + id
	}
	return out
}

func TestMembersBind(t *testing.T) {
	directory, client := newTestServer(t)
	group := client.mustCreate("groups", groupBody("Sales"))
	var users []string
	for i := range 22 {
		users = append(users, client.mustCreate("users", userBody(fmt.Sprintf("User %d", i), nil)))
	}

	bound := client.do(http.MethodPatch, "/v1.0/groups/"+group, map[string]any{"members@odata.bind": refs(users[:20]...)})
	if bound.status != http.StatusNoContent {
		t.Fatalf("bind 20: %d %s", bound.status, bound.raw)
	}
	if diff := cmp.Diff(users[:20], directory.Members(group)); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if got := directory.Stats().Operations[emulator.OpMemberBind]; got != 1 {
		t.Errorf("member.bind operations = %d, want 1", got)
	}

	tests := []struct {
		name string
		ids  []string
		want graphError
	}{
		{name: "one already a member fails the whole request", ids: []string{users[20], users[0]},
			want: graphError{400, "Request_BadRequest", "One or more added object references already exist for the following modified properties: 'members'."}},
		{name: "unknown object", ids: []string{users[20], "00000000-0000-0000-0000-000000000000"},
			want: graphError{404, "Request_ResourceNotFound", notFoundMessage("00000000-0000-0000-0000-000000000000")}},
		{name: "more than 20", ids: slices.Repeat([]string{users[20]}, 21),
			want: graphError{400, "Request_BadRequest", "A maximum of 20 members can be added in a single request; this one has 21."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkError(t, client.do(http.MethodPatch, "/v1.0/groups/"+group, map[string]any{"members@odata.bind": refs(tt.ids...)}), tt.want)
			if got := len(directory.Members(group)); got != 20 {
				t.Errorf("a refused bind changed the members: %d", got)
			}
		})
	}
}

func TestManager(t *testing.T) {
	directory, client := newTestServer(t)
	boss := client.mustCreate("users", userBody("Boss Person", nil))
	jane := client.mustCreate("users", userBody("Jane Doe", nil))

	checkError(t, client.do(http.MethodGet, "/v1.0/users/"+jane+"/manager", nil), graphError{404, "Request_ResourceNotFound", notFoundMessage("manager")})
	set := client.do(http.MethodPut, "/v1.0/users/"+jane+"/manager/$ref", map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/users/" + boss})
	if set.status != http.StatusNoContent {
		t.Fatalf("set manager: %d %s", set.status, set.raw)
	}
	if got, _ := directory.ManagerOf(jane); got != boss {
		t.Errorf("ManagerOf = %q, want %q", got, boss)
	}
	got := client.do(http.MethodGet, "/v1.0/users/"+jane+"/manager?$select=id,displayName", nil)
	if got.body["id"] != boss || got.body["displayName"] != "Boss Person" {
		t.Errorf("GET manager = %v", got.body)
	}
	checkError(t, client.do(http.MethodPut, "/v1.0/users/"+jane+"/manager/$ref", map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/users/" + jane}),
		graphError{400, "Request_BadRequest", "A user cannot be their own manager."})
	if removed := client.do(http.MethodDelete, "/v1.0/users/"+jane+"/manager/$ref", nil); removed.status != http.StatusNoContent {
		t.Errorf("remove manager: %d", removed.status)
	}
	if _, ok := directory.ManagerOf(jane); ok {
		t.Error("manager still set")
	}
}

func TestFaults(t *testing.T) {
	t.Run("throttling answers 429 with Retry-After and applies nothing", func(t *testing.T) {
		directory, client := newTestServer(t, emulator.WithFaults(emulator.Faults{ThrottleRate: 1, RetryAfter: 7 * time.Second}))
		got := client.do(http.MethodPost, "/v1.0/users", userBody("Jane Doe", nil))
		if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") != "7" || got.header.Get("x-ms-throttle-scope") == "" {
			t.Errorf("answer = %d %v", got.status, got.header)
		}
		if len(directory.Users()) != 0 {
			t.Error("a throttled create was applied")
		}
		directory.SetFaults(emulator.Faults{})
		if got := client.do(http.MethodPost, "/v1.0/users", userBody("Jane Doe", nil)); got.status != http.StatusCreated {
			t.Errorf("after faults stop: %d", got.status)
		}
		if n := directory.Stats().ErrorCodes[emulator.CodeTooManyRequests]; n != 1 {
			t.Errorf("TooManyRequests counted %d times", n)
		}
	})
	t.Run("a lost answer still applies the write", func(t *testing.T) {
		directory, client := newTestServer(t, emulator.WithFaults(emulator.Faults{LostAnswerRate: 1}))
		if got := client.do(http.MethodPost, "/v1.0/users", userBody("Jane Doe", nil)); got.status != http.StatusInternalServerError {
			t.Errorf("status = %d", got.status)
		}
		if len(directory.Users()) != 1 {
			t.Error("the write was not applied")
		}
	})
	t.Run("server errors at a rate", func(t *testing.T) {
		directory, client := newTestServer(t, emulator.WithFaults(emulator.Faults{ServerErrorRate: 0.5, Seed: 42}))
		failed := 0
		for range 200 {
			if got := client.do(http.MethodGet, "/v1.0/users", nil); got.status >= 500 {
				failed++
			}
		}
		if failed < 60 || failed > 140 {
			t.Errorf("%d of 200 failed at rate 0.5", failed)
		}
		codes := directory.Stats().ErrorCodes
		if codes[emulator.CodeServiceUnavailable] == 0 || codes[emulator.CodeGeneralException] == 0 {
			t.Errorf("want both 503 and 500 answers, got %v", codes)
		}
	})
	t.Run("replication lag hides new objects for a while", func(t *testing.T) {
		_, client := newTestServer(t, emulator.WithFaults(emulator.Faults{ReplicationLag: 300 * time.Millisecond}))
		id := client.mustCreate("users", userBody("Jane Doe", map[string]any{"employeeId": "E1"}))
		group := client.mustCreate("groups", groupBody("Sales"))
		checkError(t, client.do(http.MethodGet, "/v1.0/users/"+id, nil), graphError{404, "Request_ResourceNotFound", notFoundMessage(id)})
		if found := idsOf(client.do(http.MethodGet, withQuery("/v1.0/users", "$filter", "employeeId eq 'E1'"), nil)); len(found) != 0 {
			t.Errorf("a lagging user was found: %v", found)
		}
		time.Sleep(350 * time.Millisecond)
		if got := client.do(http.MethodGet, "/v1.0/users/"+id, nil); got.status != http.StatusOK {
			t.Errorf("after the lag: %d", got.status)
		}
		client.mustAddMember(group, id)
	})
}

func TestWriteQuota(t *testing.T) {
	directory, client := newTestServer(t, emulator.WithFaults(emulator.Faults{WriteQuota: 3, QuotaWindow: time.Hour}))
	for i := range 3 {
		client.mustCreate("users", userBody(fmt.Sprintf("User %d", i), nil))
	}
	over := client.do(http.MethodPost, "/v1.0/users", userBody("User 3", nil))
	if over.status != http.StatusTooManyRequests || over.header.Get("Retry-After") != "3600" {
		t.Errorf("fourth write = %d, Retry-After %q", over.status, over.header.Get("Retry-After"))
	}
	if got := client.do(http.MethodGet, "/v1.0/users", nil); got.status != http.StatusOK {
		t.Errorf("reads are not charged: %d", got.status)
	}
	if len(directory.Users()) != 3 {
		t.Errorf("users = %d", len(directory.Users()))
	}
}

func TestBatch(t *testing.T) {
	directory, client := newTestServer(t)
	group := client.mustCreate("groups", groupBody("Sales"))
	var users []string
	for i := range 3 {
		id := client.mustCreate("users", userBody(fmt.Sprintf("User %d", i), nil))
		client.mustAddMember(group, id)
		users = append(users, id)
	}
	before := directory.Stats()
	steps := []map[string]any{
		{"id": "1", "method": "DELETE", "url": "/groups/" + group + "/members/" + users[0] + "/$ref"},
		{"id": "2", "method": "DELETE", "url": "/groups/" + group + "/members/" + users[0] + "/$ref"},
		{"id": "3", "method": "GET", "url": "/users/" + users[1] + "?$select=id,displayName"},
		{"id": "4", "method": "DELETE", "url": "/groups/" + group + "/members/" + users[2] + "/$ref", "dependsOn": []string{"2"}},
	}
	got := client.do(http.MethodPost, "/v1.0/$batch", map[string]any{"requests": steps})
	if got.status != http.StatusOK {
		t.Fatalf("batch: %d %s", got.status, got.raw)
	}
	statuses := map[string]float64{}
	for _, r := range got.body["responses"].([]any) {
		item := r.(map[string]any)
		statuses[item["id"].(string)] = item["status"].(float64)
	}
	if diff := cmp.Diff(map[string]float64{"1": 204, "2": 404, "3": 200, "4": 424}, statuses); diff != "" {
		t.Errorf("item statuses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(users[1:], directory.Members(group)); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	after := directory.Stats()
	if after.Requests-before.Requests != 1 || after.WriteRequests-before.WriteRequests != 2 {
		t.Errorf("a batch of 2 attempted writes counted %d requests and %d writes; want 1 and 2",
			after.Requests-before.Requests, after.WriteRequests-before.WriteRequests)
	}

	t.Run("per-item 429", func(t *testing.T) {
		directory.SetFaults(emulator.Faults{ThrottleRate: 0.5, RetryAfter: 2 * time.Second, Seed: 7})
		defer directory.SetFaults(emulator.Faults{})
		var items []map[string]any
		for i := range 20 {
			items = append(items, map[string]any{"id": fmt.Sprint(i), "method": "GET", "url": "/users/" + users[1]})
		}
		var got response
		for range 20 { // the envelope itself may be throttled too
			if got = client.do(http.MethodPost, "/v1.0/$batch", map[string]any{"requests": items}); got.status == http.StatusOK {
				break
			}
		}
		throttled := 0
		for _, r := range got.body["responses"].([]any) {
			item := r.(map[string]any)
			if item["status"].(float64) == 429 {
				throttled++
				if item["headers"].(map[string]any)["Retry-After"] != "2" {
					t.Errorf("429 item without Retry-After: %v", item)
				}
			}
		}
		if throttled == 0 || throttled == 20 {
			t.Errorf("%d of 20 items throttled; want some, not all", throttled)
		}
	})
	t.Run("more than 20", func(t *testing.T) {
		items := make([]map[string]any, 21)
		for i := range items {
			items[i] = map[string]any{"id": fmt.Sprint(i), "method": "GET", "url": "/users"}
		}
		checkError(t, client.do(http.MethodPost, "/v1.0/$batch", map[string]any{"requests": items}),
			graphError{400, "BadRequest", "Number of batch request steps exceeds the maximum of 20."})
	})
}
