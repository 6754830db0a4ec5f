package emulator_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// deltaResult is a whole delta round as a client sees it.
type deltaResult struct {
	items     []map[string]any
	pages     int
	deltaLink string
	// preferenceApplied is the Preference-Applied header of every page.
	preferenceApplied []string
}

// followDelta requests target and every @odata.nextLink after it until a page carries the
// @odata.deltaLink, failing the test on any other answer.
func (c *testClient) followDelta(target string, headers ...header) deltaResult {
	c.t.Helper()
	var result deltaResult
	for target != "" {
		page := c.do(http.MethodGet, target, nil, headers...)
		if page.status != http.StatusOK {
			c.t.Fatalf("GET %s: status %d: %s", target, page.status, page.raw)
		}
		result.pages++
		result.preferenceApplied = append(result.preferenceApplied, page.header.Get("Preference-Applied"))
		values, ok := page.body["value"].([]any)
		if !ok {
			c.t.Fatalf("GET %s: no value array: %s", target, page.raw)
		}
		for _, value := range values {
			result.items = append(result.items, value.(map[string]any))
		}
		next, _ := page.body["@odata.nextLink"].(string)
		result.deltaLink, _ = page.body["@odata.deltaLink"].(string)
		if (next == "") == (result.deltaLink == "") {
			c.t.Fatalf("GET %s: page %d carries nextLink %q and deltaLink %q; want exactly one", target, result.pages, next, result.deltaLink)
		}
		if result.pages > 50 {
			c.t.Fatalf("GET %s: more than 50 pages", target)
		}
		target = next
	}
	return result
}

// byID compares delta items regardless of their order, which Graph does not promise.
var byID = cmpopts.SortSlices(func(a, b map[string]any) bool { return fmt.Sprint(a["id"]) < fmt.Sprint(b["id"]) })

func removedItem(id, reason string) map[string]any {
	return map[string]any{"id": id, "@removed": map[string]any{"reason": reason}}
}

func memberEntry(odataType, id string) map[string]any {
	return map[string]any{"@odata.type": "#microsoft.graph." + odataType, "id": id}
}

func removedMemberEntry(odataType, id string) map[string]any {
	entry := memberEntry(odataType, id)
	entry["@removed"] = map[string]any{"reason": "deleted"}
	return entry
}

// TestUsersDeltaRounds runs rounds in order, each from the deltaLink of the one before.
func TestUsersDeltaRounds(t *testing.T) {
	_, client := newTestServer(t)
	ada := client.mustCreate("users", userBody("Ada Lovelace", map[string]any{"jobTitle": "Countess"}))
	grace := client.mustCreate("users", userBody("Grace Hopper", nil))
	alan := client.mustCreate("users", userBody("Alan Turing", nil))
	var barbara string

	deltaLink := withQuery("/v1.0/users/delta", "$select", "displayName,jobTitle")
	tests := []struct {
		name    string
		changes func(t *testing.T)
		want    func() []map[string]any
	}{
		{
			name:    "initial round returns every user with the selected properties",
			changes: func(*testing.T) {},
			want: func() []map[string]any {
				return []map[string]any{
					{"id": ada, "displayName": "Ada Lovelace", "jobTitle": "Countess"},
					{"id": grace, "displayName": "Grace Hopper", "jobTitle": nil},
					{"id": alan, "displayName": "Alan Turing", "jobTitle": nil},
				}
			},
		},
		{
			name: "a created, an updated and a soft-deleted user",
			changes: func(t *testing.T) {
				barbara = client.mustCreate("users", userBody("Barbara Liskov", nil))
				if got := client.do(http.MethodPatch, "/v1.0/users/"+grace, map[string]any{"jobTitle": "Rear Admiral"}); got.status != http.StatusNoContent {
					t.Fatalf("PATCH: %d %s", got.status, got.raw)
				}
				if got := client.do(http.MethodDelete, "/v1.0/users/"+alan, nil); got.status != http.StatusNoContent {
					t.Fatalf("DELETE: %d %s", got.status, got.raw)
				}
			},
			want: func() []map[string]any {
				return []map[string]any{
					{"id": barbara, "displayName": "Barbara Liskov", "jobTitle": nil},
					{"id": grace, "displayName": "Grace Hopper", "jobTitle": "Rear Admiral"},
					removedItem(alan, "changed"),
				}
			},
		},
		{
			name:    "nothing changed",
			changes: func(*testing.T) {},
			want:    func() []map[string]any { return nil },
		},
		{
			name: "a restored user comes back",
			changes: func(t *testing.T) {
				if got := client.do(http.MethodPost, "/v1.0/directory/deletedItems/"+alan+"/restore", nil); got.status != http.StatusOK {
					t.Fatalf("restore: %d %s", got.status, got.raw)
				}
			},
			want: func() []map[string]any {
				return []map[string]any{{"id": alan, "displayName": "Alan Turing", "jobTitle": nil}}
			},
		},
		{
			name: "a PATCH that changes nothing visible is not a change",
			changes: func(t *testing.T) {
				body := map[string]any{"passwordProfile": map[string]any{"password": testPassword + "x"}}
				if got := client.do(http.MethodPatch, "/v1.0/users/"+ada, body); got.status != http.StatusNoContent {
					t.Fatalf("PATCH: %d %s", got.status, got.raw)
				}
			},
			want: func() []map[string]any { return nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.changes(t)
			got := client.followDelta(deltaLink)
			if diff := cmp.Diff(tt.want(), got.items, byID, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("items mismatch (-want +got):\n%s", diff)
			}
			deltaLink = got.deltaLink
		})
	}
}

// TestUsersDeltaManager follows a user's manager link through rounds that select manager: Graph
// reports it in "manager@delta", a list whose entry carries "@removed" when the link was taken away.
func TestUsersDeltaManager(t *testing.T) {
	_, client := newTestServer(t)
	ada := client.mustCreate("users", userBody("Ada Lovelace", nil))
	grace := client.mustCreate("users", userBody("Grace Hopper", nil))
	alan := client.mustCreate("users", userBody("Alan Turing", nil))
	setManager := func(t *testing.T, userID, managerID string) {
		t.Helper()
		ref := map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/users/" + managerID}
		if got := client.do(http.MethodPut, "/v1.0/users/"+userID+"/manager/$ref", ref); got.status != http.StatusNoContent {
			t.Fatalf("PUT manager: %d %s", got.status, got.raw)
		}
	}
	setManager(t, ada, grace)

	deltaLink := withQuery("/v1.0/users/delta", "$select", "displayName,manager")
	withoutManager := withQuery("/v1.0/users/delta", "$select", "displayName")
	tests := []struct {
		name    string
		changes func(t *testing.T)
		want    []map[string]any
	}{
		{
			name:    "initial round names each user's manager, and nothing for a user without one",
			changes: func(*testing.T) {},
			want: []map[string]any{
				{"id": ada, "displayName": "Ada Lovelace", "manager@delta": []any{memberEntry("user", grace)}},
				{"id": grace, "displayName": "Grace Hopper"},
				{"id": alan, "displayName": "Alan Turing"},
			},
		},
		{
			name:    "a changed manager is the new one",
			changes: func(t *testing.T) { setManager(t, ada, alan) },
			want:    []map[string]any{{"id": ada, "displayName": "Ada Lovelace", "manager@delta": []any{memberEntry("user", alan)}}},
		},
		{
			name: "a removed manager is marked removed",
			changes: func(t *testing.T) {
				if got := client.do(http.MethodDelete, "/v1.0/users/"+ada+"/manager/$ref", nil); got.status != http.StatusNoContent {
					t.Fatalf("DELETE manager: %d %s", got.status, got.raw)
				}
			},
			want: []map[string]any{{"id": ada, "displayName": "Ada Lovelace", "manager@delta": []any{removedMemberEntry("user", alan)}}},
		},
		{
			name: "a deleted manager takes the link with it",
			changes: func(t *testing.T) {
				setManager(t, grace, alan)
				withoutManager = client.followDelta(withoutManager).deltaLink
				if got := client.do(http.MethodDelete, "/v1.0/users/"+alan, nil); got.status != http.StatusNoContent {
					t.Fatalf("DELETE user: %d %s", got.status, got.raw)
				}
			},
			want: []map[string]any{
				{"id": grace, "displayName": "Grace Hopper", "manager@delta": []any{removedMemberEntry("user", alan)}},
				removedItem(alan, "changed"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.changes(t)
			got := client.followDelta(deltaLink)
			if diff := cmp.Diff(tt.want, got.items, byID, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("items mismatch (-want +got):\n%s", diff)
			}
			deltaLink = got.deltaLink
		})
	}
	// A round that does not select manager does not report a manager change as a user change.
	if got := client.followDelta(withoutManager); len(got.items) != 1 || got.items[0]["id"] != alan {
		t.Errorf("a round without manager in $select returned %v; want only the deleted user", got.items)
	}
}

func TestUsersDeltaDefaultProperties(t *testing.T) {
	_, client := newTestServer(t)
	ada := client.mustCreate("users", userBody("Ada Lovelace", map[string]any{"employeeId": "E1"}))
	got := client.followDelta("/v1.0/users/delta")
	want := []map[string]any{{
		"id": ada, "businessPhones": []any{}, "displayName": "Ada Lovelace", "givenName": nil, "jobTitle": nil,
		"mail": nil, "mobilePhone": nil, "officeLocation": nil, "preferredLanguage": nil, "surname": nil,
		"userPrincipalName": "ada.lovelace@corp.example.test",
	}}
	if diff := cmp.Diff(want, got.items); diff != "" {
		t.Errorf("without $select, delta returns Graph's default user properties (-want +got):\n%s", diff)
	}
}

func TestUsersDeltaPaging(t *testing.T) {
	_, client := newTestServer(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, client.mustCreate("users", userBody(fmt.Sprintf("User %d", i), nil)))
	}
	tests := []struct {
		name                  string
		prefer                string
		wantPages             int
		wantPreferenceApplied string
	}{
		{name: "maxpagesize 2", prefer: "odata.maxpagesize=2", wantPages: 3, wantPreferenceApplied: "odata.maxpagesize=2"},
		{name: "maxpagesize among other preferences", prefer: "return=minimal, odata.maxpagesize=4", wantPages: 2, wantPreferenceApplied: "odata.maxpagesize=4"},
		{name: "no preference pages at 100", wantPages: 1},
		{name: "unreadable preference is ignored", prefer: "odata.maxpagesize=many", wantPages: 1},
		{name: "maxpagesize above the maximum is capped", prefer: "odata.maxpagesize=5000", wantPages: 1, wantPreferenceApplied: "odata.maxpagesize=999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []header
			if tt.prefer != "" {
				headers = append(headers, header{"Prefer", tt.prefer})
			}
			got := client.followDelta(withQuery("/v1.0/users/delta", "$select", "displayName"), headers...)
			if got.pages != tt.wantPages {
				t.Errorf("pages = %d, want %d", got.pages, tt.wantPages)
			}
			if diff := cmp.Diff(ids, idsOfItems(got.items)); diff != "" {
				t.Errorf("ids mismatch, in creation order without duplicates (-want +got):\n%s", diff)
			}
			for page, applied := range got.preferenceApplied {
				if applied != tt.wantPreferenceApplied {
					t.Errorf("page %d: Preference-Applied = %q, want %q", page+1, applied, tt.wantPreferenceApplied)
				}
			}
		})
	}

	t.Run("changes made during a round are reported by the next round", func(t *testing.T) {
		prefer := header{"Prefer", "odata.maxpagesize=2"}
		first := client.do(http.MethodGet, withQuery("/v1.0/users/delta", "$select", "displayName"), nil, prefer)
		next, _ := first.body["@odata.nextLink"].(string)
		if next == "" || !strings.Contains(next, "$skiptoken=") {
			t.Fatalf("first page has no nextLink with a $skiptoken: %s", first.raw)
		}
		// ids[0] was returned already and ids[3] not yet; the new user did not exist at the start.
		client.do(http.MethodPatch, "/v1.0/users/"+ids[0], map[string]any{"displayName": "Renamed 0"})
		client.do(http.MethodPatch, "/v1.0/users/"+ids[3], map[string]any{"displayName": "Renamed 3"})
		created := client.mustCreate("users", userBody("Late Comer", nil))
		rest := client.followDelta(next, prefer)
		if diff := cmp.Diff(ids[2:], idsOfItems(rest.items)); diff != "" {
			t.Errorf("rest of the round (-want +got):\n%s", diff)
		}
		again := client.followDelta(rest.deltaLink, prefer)
		want := []map[string]any{
			{"id": ids[0], "displayName": "Renamed 0"},
			{"id": ids[3], "displayName": "Renamed 3"},
			{"id": created, "displayName": "Late Comer"},
		}
		if diff := cmp.Diff(want, again.items, byID); diff != "" {
			t.Errorf("next round (-want +got):\n%s", diff)
		}
	})
}

func idsOfItems(items []map[string]any) []string {
	ids := []string{}
	for _, item := range items {
		ids = append(ids, fmt.Sprint(item["id"]))
	}
	return ids
}

// TestGroupsDeltaRounds runs rounds in order, each from the deltaLink of the one before.
func TestGroupsDeltaRounds(t *testing.T) {
	_, client := newTestServer(t)
	ada := client.mustCreate("users", userBody("Ada Lovelace", nil))
	grace := client.mustCreate("users", userBody("Grace Hopper", nil))
	alan := client.mustCreate("users", userBody("Alan Turing", nil))
	barbara := client.mustCreate("users", userBody("Barbara Liskov", nil))
	engineering := client.mustCreate("groups", groupBody("Engineering"))
	empty := client.mustCreate("groups", groupBody("Empty"))
	client.mustAddMember(engineering, ada)
	client.mustAddMember(engineering, grace)

	deltaLink := withQuery("/v1.0/groups/delta()", "$select", "displayName,members")
	tests := []struct {
		name    string
		changes func(t *testing.T)
		want    []map[string]any
	}{
		{
			name:    "initial round lists every member",
			changes: func(*testing.T) {},
			want: []map[string]any{
				{"id": engineering, "displayName": "Engineering", "members@delta": []any{memberEntry("user", ada), memberEntry("user", grace)}},
				{"id": empty, "displayName": "Empty", "members@delta": []any{}},
			},
		},
		{
			name: "members added by bind and $batch and removed by $ref",
			changes: func(t *testing.T) {
				bind := map[string]any{"members@odata.bind": refs(alan, empty)}
				if got := client.do(http.MethodPatch, "/v1.0/groups/"+engineering, bind); got.status != http.StatusNoContent {
					t.Fatalf("bind: %d %s", got.status, got.raw)
				}
				if got := client.do(http.MethodDelete, "/v1.0/groups/"+engineering+"/members/"+grace+"/$ref", nil); got.status != http.StatusNoContent {
					t.Fatalf("remove: %d %s", got.status, got.raw)
				}
				steps := []map[string]any{{
					"id": "1", "method": "POST", "url": "/groups/" + empty + "/members/$ref",
					"headers": map[string]string{"Content-Type": "application/json"},
					"body":    map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + barbara},
				}}
				got := client.do(http.MethodPost, "/v1.0/$batch", map[string]any{"requests": steps})
				if status := got.body["responses"].([]any)[0].(map[string]any)["status"]; status != float64(http.StatusNoContent) {
					t.Fatalf("batch: %s", got.raw)
				}
			},
			want: []map[string]any{
				{"id": engineering, "displayName": "Engineering", "members@delta": []any{
					memberEntry("user", alan), memberEntry("group", empty), removedMemberEntry("user", grace),
				}},
				{"id": empty, "displayName": "Empty", "members@delta": []any{memberEntry("user", barbara)}},
			},
		},
		{
			name: "a deleted group, and the membership it loses reported with a property change",
			changes: func(t *testing.T) {
				client.do(http.MethodPatch, "/v1.0/groups/"+empty, map[string]any{"displayName": "Was Empty"})
				if got := client.do(http.MethodDelete, "/v1.0/groups/"+empty, nil); got.status != http.StatusNoContent {
					t.Fatalf("delete group: %d %s", got.status, got.raw)
				}
				client.do(http.MethodPatch, "/v1.0/groups/"+engineering, map[string]any{"description": "Builders"})
			},
			want: []map[string]any{
				{"id": engineering, "displayName": "Engineering", "members@delta": []any{removedMemberEntry("group", empty)}},
				removedItem(empty, "deleted"),
			},
		},
		{
			name: "a soft-deleted user leaves its groups",
			changes: func(t *testing.T) {
				client.do(http.MethodDelete, "/v1.0/users/"+ada, nil)
			},
			want: []map[string]any{
				{"id": engineering, "displayName": "Engineering", "members@delta": []any{removedMemberEntry("user", ada)}},
			},
		},
		{
			name:    "nothing changed",
			changes: func(*testing.T) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.changes(t)
			got := client.followDelta(deltaLink)
			if diff := cmp.Diff(tt.want, got.items, byID, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("items mismatch (-want +got):\n%s", diff)
			}
			deltaLink = got.deltaLink
		})
	}
}

func TestGroupsDeltaSelection(t *testing.T) {
	_, client := newTestServer(t)
	ada := client.mustCreate("users", userBody("Ada Lovelace", nil))
	grace := client.mustCreate("users", userBody("Grace Hopper", nil))
	engineering := client.mustCreate("groups", groupBody("Engineering"))
	sales := client.mustCreate("groups", groupBody("Sales"))
	client.mustAddMember(engineering, ada)

	tests := []struct {
		name        string
		target      string
		wantInitial []map[string]any
		// wantNext is the round after grace joins Engineering and Sales is renamed.
		wantNext []map[string]any
	}{
		{
			name:   "without $select every property and the members",
			target: "/v1.0/groups/delta",
			wantInitial: []map[string]any{
				{"id": engineering, "displayName": "Engineering", "mailEnabled": false, "mailNickname": "engineering", "securityEnabled": true,
					"members@delta": []any{memberEntry("user", ada)}},
				{"id": sales, "displayName": "Sales", "mailEnabled": false, "mailNickname": "sales", "securityEnabled": true,
					"members@delta": []any{}},
			},
			wantNext: []map[string]any{
				{"id": engineering, "displayName": "Engineering", "mailEnabled": false, "mailNickname": "engineering", "securityEnabled": true,
					"members@delta": []any{memberEntry("user", grace)}},
				{"id": sales, "displayName": "Sales Team", "mailEnabled": false, "mailNickname": "sales", "securityEnabled": true},
			},
		},
		{
			name:   "without members in $select membership is not tracked",
			target: withQuery("/v1.0/groups/delta", "$select", "displayName"),
			wantInitial: []map[string]any{
				{"id": engineering, "displayName": "Engineering"},
				{"id": sales, "displayName": "Sales"},
			},
			wantNext: []map[string]any{{"id": sales, "displayName": "Sales Team"}},
		},
		{
			name:   "members alone",
			target: withQuery("/v1.0/groups/delta", "$select", "members"),
			wantInitial: []map[string]any{
				{"id": engineering, "members@delta": []any{memberEntry("user", ada)}},
				{"id": sales, "members@delta": []any{}},
			},
			wantNext: []map[string]any{
				{"id": engineering, "members@delta": []any{memberEntry("user", grace)}},
				{"id": sales},
			},
		},
	}
	deltaLinks := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name+", initial round", func(t *testing.T) {
			got := client.followDelta(tt.target)
			if diff := cmp.Diff(tt.wantInitial, got.items, byID); diff != "" {
				t.Errorf("initial round (-want +got):\n%s", diff)
			}
			deltaLinks[tt.name] = got.deltaLink
		})
	}
	client.mustAddMember(engineering, grace)
	client.do(http.MethodPatch, "/v1.0/groups/"+sales, map[string]any{"displayName": "Sales Team"})
	for _, tt := range tests {
		t.Run(tt.name+", next round", func(t *testing.T) {
			deltaLink, ok := deltaLinks[tt.name]
			if !ok || deltaLink == "" {
				t.Fatalf("the initial round of %s gave no deltaLink to continue from", tt.name)
			}
			got := client.followDelta(deltaLink)
			if diff := cmp.Diff(tt.wantNext, got.items, byID); diff != "" {
				t.Errorf("next round (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeltaSpellingsAndLatest(t *testing.T) {
	_, client := newTestServer(t)
	client.mustCreate("users", userBody("Ada Lovelace", nil))
	client.mustCreate("groups", groupBody("Engineering"))
	tests := []struct {
		name      string
		path      string
		wantLink  string
		wantItems int
	}{
		{name: "users delta()", path: "/v1.0/users/delta()", wantLink: "/v1.0/users/delta()?$deltatoken=", wantItems: 1},
		{name: "groups delta()", path: "/v1.0/groups/delta()", wantLink: "/v1.0/groups/delta()?$deltatoken=", wantItems: 1},
		{name: "any case", path: "/v1.0/Users/Delta", wantLink: "/v1.0/Users/Delta?$deltatoken=", wantItems: 1},
		{name: "qualified name", path: "/v1.0/users/microsoft.graph.delta()", wantLink: "/v1.0/users/microsoft.graph.delta()?$deltatoken=", wantItems: 1},
		{name: "latest", path: "/v1.0/users/delta()?$deltatoken=latest", wantLink: "/v1.0/users/delta()?$deltatoken=", wantItems: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := client.followDelta(tt.path)
			link, err := url.Parse(got.deltaLink)
			if err != nil {
				t.Fatalf("deltaLink %q: %v", got.deltaLink, err)
			}
			if pathAndQuery := link.EscapedPath() + "?" + link.RawQuery; !strings.HasPrefix(pathAndQuery, tt.wantLink) {
				t.Errorf("deltaLink = %q, want it to start with %q", got.deltaLink, tt.wantLink)
			}
			if len(got.items) != tt.wantItems {
				t.Errorf("items = %v, want %d", got.items, tt.wantItems)
			}
		})
	}

	t.Run("latest then a change", func(t *testing.T) {
		latest := client.followDelta(withQuery("/v1.0/users/delta", "$deltatoken", "latest", "$select", "displayName"))
		grace := client.mustCreate("users", userBody("Grace Hopper", nil))
		got := client.followDelta(latest.deltaLink)
		if diff := cmp.Diff([]map[string]any{{"id": grace, "displayName": "Grace Hopper"}}, got.items); diff != "" {
			t.Errorf("items mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestDeltaRefusals(t *testing.T) {
	_, client := newTestServer(t)
	client.mustCreate("users", userBody("Ada Lovelace", nil))
	client.mustCreate("users", userBody("Alan Turing", nil))
	usersToken := tokenOf(t, client.followDelta("/v1.0/users/delta").deltaLink, "$deltatoken")
	firstPage := client.do(http.MethodGet, "/v1.0/users/delta", nil, header{"Prefer", "odata.maxpagesize=1"})
	nextLink, _ := firstPage.body["@odata.nextLink"].(string)
	pagedToken := tokenOf(t, nextLink, "$skiptoken")
	_, otherClient := newTestServer(t)
	otherToken := tokenOf(t, otherClient.followDelta("/v1.0/users/delta").deltaLink, "$deltatoken")

	tests := []struct {
		name   string
		target string
		want   graphError
	}{
		{name: "garbage token", target: withQuery("/v1.0/users/delta", "$deltatoken", "not-a-token!"),
			want: graphError{400, "Request_BadRequest", "Invalid $deltatoken 'not-a-token!': it is not a token the emulator issued for users/delta; use the @odata.deltaLink of the previous round as it is."}},
		{name: "garbage skip token", target: withQuery("/v1.0/groups/delta()", "$skiptoken", "e30"),
			want: graphError{400, "Request_BadRequest", "Invalid $skiptoken 'e30': it is not a token the emulator issued for groups/delta; use the @odata.nextLink of the previous page as it is."}},
		{name: "users token on groups", target: withQuery("/v1.0/groups/delta", "$deltatoken", usersToken),
			want: graphError{400, "Request_BadRequest", "Invalid $deltatoken '" + usersToken + "': it is not a token the emulator issued for groups/delta; use the @odata.deltaLink of the previous round as it is."}},
		{name: "skip token as delta token", target: withQuery("/v1.0/users/delta", "$deltatoken", pagedToken),
			want: graphError{400, "Request_BadRequest", "Invalid $deltatoken '" + pagedToken + "': it is not a token the emulator issued for users/delta; use the @odata.deltaLink of the previous round as it is."}},
		{name: "token of another emulator", target: withQuery("/v1.0/users/delta", "$deltatoken", otherToken),
			want: graphError{400, "syncStateNotFound", "The sync state generation is not found. The delta token is expired and data must be synchronized again."}},
		{name: "$select with a token", target: withQuery("/v1.0/users/delta", "$deltatoken", usersToken, "$select", "displayName"),
			want: graphError{400, "Request_BadRequest", "$select cannot be combined with a $skiptoken or $deltatoken, which carries the $select of the first request; use @odata.nextLink and @odata.deltaLink as they are."}},
		{name: "both tokens", target: withQuery("/v1.0/users/delta", "$deltatoken", usersToken, "$skiptoken", pagedToken),
			want: graphError{400, "Request_BadRequest", "A delta request takes $skiptoken or $deltatoken, not both."}},
		{name: "unsupported query option", target: withQuery("/v1.0/users/delta", "$orderby", "displayName"),
			want: graphError{400, "Request_UnsupportedQuery", "The query option '$orderby' is not supported by the emulator for this request."}},
		{name: "not a GET", target: "/v1.0/groups/delta",
			want: graphError{405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodGet
			if tt.want.Status == http.StatusMethodNotAllowed {
				method = http.MethodPost
			}
			got := client.do(method, tt.target, nil)
			checkError(t, got, tt.want)
			if envelope, _ := got.body["error"].(map[string]any); envelope["innerError"] == nil {
				t.Errorf("error envelope without innerError: %s", got.raw)
			}
		})
	}
}

// tokenOf returns the value of option in link.
func tokenOf(t *testing.T, link, option string) string {
	t.Helper()
	parsed, err := url.Parse(link)
	if err != nil {
		t.Fatalf("link %q: %v", link, err)
	}
	token := parsed.Query().Get(option)
	if token == "" {
		t.Fatalf("link %q has no %s", link, option)
	}
	return token
}

func TestDeltaStats(t *testing.T) {
	directory, client := newTestServer(t)
	client.mustCreate("users", userBody("Ada Lovelace", nil))
	before := directory.Stats()
	client.followDelta("/v1.0/users/delta()")
	client.followDelta("/v1.0/groups/delta")
	client.do(http.MethodGet, withQuery("/v1.0/users/delta", "$deltatoken", "garbage"), nil)
	after := directory.Stats()
	got := []int{
		after.Requests - before.Requests,
		after.WriteRequests - before.WriteRequests,
		after.Operations[emulator.OpUsersDelta] - before.Operations[emulator.OpUsersDelta],
		after.Operations[emulator.OpGroupsDelta] - before.Operations[emulator.OpGroupsDelta],
	}
	if diff := cmp.Diff([]int{3, 0, 2, 1}, got); diff != "" {
		t.Errorf("requests, writes, users delta and groups delta counted (-want +got):\n%s", diff)
	}
}
