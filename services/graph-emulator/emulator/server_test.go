package emulator_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

func TestGzipRequestBody(t *testing.T) {
	directory, client := newTestServer(t)
	encoded, err := json.Marshal(userBody("Hedy Lamarr", map[string]any{
		"@odata.type": "#microsoft.graph.user",
		"employeeId":  "E77",
		"passwordProfile": map[string]any{
			"@odata.type": "#microsoft.graph.passwordProfile",
			"password":    testPassword,
		},
		"employeeOrgData": map[string]any{"@odata.type": "#microsoft.graph.employeeOrgData", "costCenter": "CC-9"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	var compressed bytes.Buffer
	compressor := gzip.NewWriter(&compressed)
	if _, err := compressor.Write(encoded); err != nil {
		t.Fatal(err)
	}
	if err := compressor.Close(); err != nil {
		t.Fatal(err)
	}

	created := client.do(http.MethodPost, "/v1.0/users", compressed.Bytes(), header{"Content-Encoding", "gzip"})
	if created.status != http.StatusCreated {
		t.Fatalf("status %d: %s", created.status, created.raw)
	}
	stored, found := directory.UserByEmployeeID("E77")
	if !found {
		t.Fatal("UserByEmployeeID(E77) found nothing")
	}
	want := emulator.Object{
		"id":                created.body["id"],
		"accountEnabled":    true,
		"displayName":       "Hedy Lamarr",
		"mailNickname":      "hedy.lamarr",
		"userPrincipalName": "hedy.lamarr@corp.example.test",
		"employeeId":        "E77",
		"employeeOrgData":   map[string]any{"costCenter": "CC-9"},
	}
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Errorf("stored user mismatch, annotations must be dropped (-want +got):\n%s", diff)
	}

	t.Run("corrupt gzip", func(t *testing.T) {
		checkError(t, client.do(http.MethodPost, "/v1.0/users", []byte("not gzip"), header{"Content-Encoding", "gzip"}),
			graphError{400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."})
	})
}

func TestErrorEnvelope(t *testing.T) {
	fixed := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	_, client := newTestServer(t, emulator.WithClock(func() time.Time { return fixed }))
	const missing = "22222222-2222-4222-8222-222222222222"

	tests := []struct {
		name            string
		clientRequestID string
	}{
		{name: "echoes client-request-id", clientRequestID: "3f0c5d1e-aaaa-4bbb-8ccc-123456789abc"},
		{name: "without client-request-id uses the request id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []header
			if tt.clientRequestID != "" {
				headers = append(headers, header{"client-request-id", tt.clientRequestID})
			}
			got := client.do(http.MethodGet, "/v1.0/users/"+missing, nil, headers...)
			requestID := got.header.Get("request-id")
			if !guidPattern.MatchString(requestID) {
				t.Fatalf("request-id header %q is not a GUID", requestID)
			}
			wantClientRequestID := tt.clientRequestID
			if wantClientRequestID == "" {
				wantClientRequestID = requestID
			}
			want := map[string]any{"error": map[string]any{
				"code":    "Request_ResourceNotFound",
				"message": notFoundMessage(missing),
				"innerError": map[string]any{
					"date":              "2026-05-04T03:02:01Z",
					"request-id":        requestID,
					"client-request-id": wantClientRequestID,
				},
			}}
			if diff := cmp.Diff(want, got.body); diff != "" {
				t.Errorf("envelope mismatch (-want +got):\n%s", diff)
			}
			gotHeaders := map[string]string{
				"Content-Type":      got.header.Get("Content-Type"),
				"client-request-id": got.header.Get("client-request-id"),
			}
			wantHeaders := map[string]string{"Content-Type": "application/json", "client-request-id": wantClientRequestID}
			if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" {
				t.Errorf("headers mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnknownRoutes(t *testing.T) {
	_, client := newTestServer(t)
	userID := client.mustCreate("users", userBody("Ada Lovelace", nil))
	tests := []struct {
		name      string
		method    string
		target    string
		want      graphError
		wantAllow string
	}{
		{name: "unknown collection", method: http.MethodGet, target: "/v1.0/devices",
			want: graphError{400, "BadRequest", "Resource not found for the segment 'devices'."}},
		{name: "unknown navigation", method: http.MethodGet, target: "/v1.0/users/" + userID + "/calendar",
			want: graphError{400, "BadRequest", "Resource not found for the segment 'calendar'."}},
		{name: "other version", method: http.MethodGet, target: "/beta/users",
			want: graphError{400, "BadRequest", "Invalid version: 'beta'. The emulator serves Microsoft Graph under /v1.0."}},
		{name: "method not allowed", method: http.MethodPut, target: "/v1.0/users/" + userID,
			want:      graphError{405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."},
			wantAllow: "DELETE, GET, PATCH"},
		{name: "unknown group id", method: http.MethodGet, target: "/v1.0/groups/" + userID,
			want: graphError{404, "Request_ResourceNotFound", notFoundMessage(userID)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := client.do(tt.method, tt.target, nil)
			checkError(t, got, tt.want)
			if diff := cmp.Diff(tt.wantAllow, got.header.Get("Allow")); diff != "" {
				t.Errorf("Allow header mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStats(t *testing.T) {
	directory, client := newTestServer(t)
	groupID := client.mustCreate("groups", groupBody("Engineering"))
	userID := client.mustCreate("users", userBody("Ada Lovelace", nil))
	client.do(http.MethodPost, "/v1.0/users", userBody("Ada Lovelace", nil)) // duplicate
	client.mustAddMember(groupID, userID)
	client.do(http.MethodPost, "/v1.0/groups/"+groupID+"/members/$ref",
		map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + userID}) // existing member
	client.do(http.MethodPatch, "/v1.0/users/"+userID, map[string]any{"jobTitle": "Countess"})
	client.do(http.MethodGet, "/v1.0/users", nil)
	client.do(http.MethodGet, "/v1.0/users/"+userID, nil)
	client.do(http.MethodGet, "/v1.0/groups/"+groupID+"/members", nil)
	client.do(http.MethodDelete, "/v1.0/groups/"+groupID+"/members/"+userID+"/$ref", nil)
	client.do(http.MethodGet, "/v1.0/nowhere", nil)

	want := emulator.Stats{
		Requests:         11,
		WriteRequests:    7,
		SuccessfulWrites: 5,
		Operations: map[string]int{
			emulator.OpGroupCreate:  1,
			emulator.OpUserCreate:   2,
			emulator.OpMemberAdd:    2,
			emulator.OpUserUpdate:   1,
			emulator.OpListUsers:    1,
			emulator.OpUserGet:      1,
			emulator.OpListMembers:  1,
			emulator.OpMemberRemove: 1,
			emulator.OpUnknown:      1,
		},
		ErrorCodes: map[string]int{"Request_BadRequest": 2, "BadRequest": 1},
	}
	if diff := cmp.Diff(want, directory.Stats()); diff != "" {
		t.Errorf("stats mismatch (-want +got):\n%s", diff)
	}
}

func TestInspectionReturnsCopies(t *testing.T) {
	directory, client := newTestServer(t)
	userID := client.mustCreate("users", userBody("Ada Lovelace", map[string]any{
		"employeeId": "E1", "employeeOrgData": map[string]any{"costCenter": "CC-1"},
	}))
	groupID := client.mustCreate("groups", groupBody("Engineering"))
	client.mustAddMember(groupID, userID)

	user, _ := directory.UserByEmployeeID("E1")
	user["displayName"] = "changed"
	user["employeeOrgData"].(map[string]any)["costCenter"] = "changed"
	members := directory.Members(groupID)
	members[0] = "changed"

	got, _ := directory.User(userID)
	want := map[string]any{"displayName": "Ada Lovelace", "costCenter": "CC-1", "member": userID}
	gotSummary := map[string]any{
		"displayName": got["displayName"],
		"costCenter":  got["employeeOrgData"].(map[string]any)["costCenter"],
		"member":      directory.Members(groupID)[0],
	}
	if diff := cmp.Diff(want, gotSummary); diff != "" {
		t.Errorf("stored state changed through a returned copy (-want +got):\n%s", diff)
	}

	t.Run("lookups", func(t *testing.T) {
		byName, foundByName := directory.GroupByDisplayName("Engineering")
		byNickname, foundByNickname := directory.GroupByMailNickname("ENGINEERING")
		byPrincipalName, foundByPrincipalName := directory.User("ada.lovelace@corp.example.test")
		_, foundMissing := directory.UserByEmployeeID("E404")
		got := []any{byName.ID(), foundByName, byNickname.ID(), foundByNickname, byPrincipalName.ID(), foundByPrincipalName, foundMissing, len(directory.Users()), len(directory.Groups())}
		want := []any{groupID, true, groupID, true, userID, true, false, 1, 1}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("lookups mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestConcurrentWrites(t *testing.T) {
	directory, client := newTestServer(t)
	groupID := client.mustCreate("groups", groupBody("Everyone"))
	const workers = 8
	const usersPerWorker = 10
	var wg sync.WaitGroup
	for worker := range workers {
		wg.Go(func() {
			for i := range usersPerWorker {
				created, err := client.send(http.MethodPost, "/v1.0/users", userBody(fmt.Sprintf("User %d %d", worker, i), nil))
				if err != nil || created.status != http.StatusCreated {
					t.Errorf("create user: %v, status %d: %s", err, created.status, created.raw)
					return
				}
				reference := map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + created.body["id"].(string)}
				added, err := client.send(http.MethodPost, "/v1.0/groups/"+groupID+"/members/$ref", reference)
				if err != nil || added.status != http.StatusNoContent {
					t.Errorf("add member: %v, status %d: %s", err, added.status, added.raw)
					return
				}
				if _, err := client.send(http.MethodGet, "/v1.0/groups/"+groupID+"/members", nil); err != nil {
					t.Errorf("list members: %v", err)
				}
			}
		})
	}
	wg.Wait()
	counts := []int{len(directory.Users()), len(directory.Members(groupID)), directory.Stats().SuccessfulWrites}
	want := []int{workers * usersPerWorker, workers * usersPerWorker, 1 + 2*workers*usersPerWorker}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("counts mismatch (-want +got):\n%s", diff)
	}
}

// TestRetryAfterWindow: a 429 with Retry-After opens a window; calls inside it are counted, and
// with HoldThrottle refused with the time left, as Graph refuses a throttled app that calls early.
func TestRetryAfterWindow(t *testing.T) {
	server, client := newTestServer(t, emulator.WithFaults(emulator.Faults{ThrottleRate: 1, RetryAfter: 3 * time.Second}))
	first := client.do(http.MethodGet, "/v1.0/users", nil)
	if first.status != http.StatusTooManyRequests || first.header.Get("Retry-After") != "3" {
		t.Fatalf("first call: %d, Retry-After %q; want 429 with 3", first.status, first.header.Get("Retry-After"))
	}
	server.SetFaults(emulator.Faults{HoldThrottle: true})
	held := client.do(http.MethodGet, "/v1.0/users", nil)
	if retry := held.header.Get("Retry-After"); held.status != http.StatusTooManyRequests || (retry != "3" && retry != "2") {
		t.Errorf("call inside the window with HoldThrottle: %d, Retry-After %q; want 429 with the time left", held.status, retry)
	}
	server.SetFaults(emulator.Faults{})
	if counted := client.do(http.MethodGet, "/v1.0/users", nil); counted.status != http.StatusOK {
		t.Errorf("call inside the window without HoldThrottle: %d, want 200", counted.status)
	}
	if got := server.Stats().CallsInRetryAfterWindow; got != 2 {
		t.Errorf("CallsInRetryAfterWindow = %d, want 2", got)
	}
}
