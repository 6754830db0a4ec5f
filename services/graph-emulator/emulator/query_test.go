package emulator_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

var emulatorWithAllUserProperties = []emulator.Option{emulator.WithAllUserProperties()}

// seedPeople creates four users and returns their ids in creation order.
func seedPeople(client *testClient) []string {
	return []string{
		client.mustCreate("users", userBody("Ada Lovelace", map[string]any{"employeeId": "E1", "department": "Engineering", "accountEnabled": true})),
		client.mustCreate("users", userBody("Sean OBrien", map[string]any{"employeeId": "E2", "displayName": "Seán O'Brien", "department": "Sales"})),
		client.mustCreate("users", userBody("Grace Hopper", map[string]any{"employeeId": "E3", "department": "Engineering", "accountEnabled": false,
			"employeeOrgData": map[string]any{"costCenter": "CC-1"}})),
		client.mustCreate("users", userBody("Alan Turing", map[string]any{"employeeId": "E4", "department": "engineering"})),
	}
}

func TestListUsersFilter(t *testing.T) {
	_, client := newTestServer(t)
	ids := seedPeople(client)
	tests := []struct {
		name   string
		filter string
		want   []string
	}{
		{name: "employeeId", filter: "employeeId eq 'E3'", want: []string{ids[2]}},
		{name: "userPrincipalName ignores case", filter: "userPrincipalName eq 'ALAN.TURING@corp.example.test'", want: []string{ids[3]}},
		{name: "displayName with escaped quote", filter: "displayName eq 'Seán O''Brien'", want: []string{ids[1]}},
		{name: "mailNickname", filter: "mailNickname eq 'ada.lovelace'", want: []string{ids[0]}},
		{name: "id", filter: "id eq '" + ids[1] + "'", want: []string{ids[1]}},
		{name: "and", filter: "department eq 'Engineering' and accountEnabled eq true", want: []string{ids[0], ids[3]}},
		{name: "parenthesised and", filter: "(department eq 'engineering') and (employeeId eq 'E4')", want: []string{ids[3]}},
		{name: "nested property", filter: "employeeOrgData/costCenter eq 'CC-1'", want: []string{ids[2]}},
		{name: "null matches an unset property", filter: "jobTitle eq null and employeeId eq 'E1'", want: []string{ids[0]}},
		{name: "no match", filter: "employeeId eq 'E404'", want: []string{}},
		{name: "keywords ignore case", filter: "employeeId EQ 'E2' AND department eq 'sales'", want: []string{ids[1]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := client.do(http.MethodGet, withQuery("/v1.0/users", "$filter", tt.filter), nil)
			if got.status != http.StatusOK {
				t.Fatalf("status %d: %s", got.status, got.raw)
			}
			if diff := cmp.Diff(tt.want, idsOf(got)); diff != "" {
				t.Errorf("ids mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListUsersUnsupportedFilter(t *testing.T) {
	_, client := newTestServer(t)
	tests := []struct {
		name       string
		filter     string
		wantInText string
	}{
		{name: "ne", filter: "employeeId ne 'E1'", wantInText: "operator 'ne' is not supported"},
		{name: "or", filter: "employeeId eq 'E1' or employeeId eq 'E2'", wantInText: "operator 'or' is not supported"},
		{name: "endsWith", filter: "endsWith(displayName,'A')", wantInText: "function or lambda operator 'endsWith' is not supported"},
		{name: "lambda", filter: "proxyAddresses/any(p:p eq 'smtp:a@b.c')", wantInText: "function or lambda operator 'proxyAddresses/any' is not supported"},
		{name: "unterminated string", filter: "employeeId eq 'E1", wantInText: "unterminated string literal at offset 14"},
		{name: "number literal", filter: "employeeId eq 42", wantInText: "literal 42 is not supported"},
		{name: "missing literal", filter: "employeeId eq", wantInText: "expected a literal but the filter ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errorOf(client.do(http.MethodGet, withQuery("/v1.0/users", "$filter", tt.filter), nil))
			if got.Status != http.StatusBadRequest || got.Code != "Request_UnsupportedQuery" || !strings.Contains(got.Message, tt.wantInText) {
				t.Errorf("got %+v; want 400 Request_UnsupportedQuery mentioning %q", got, tt.wantInText)
			}
		})
	}
}

func TestListUsersSelectTopCount(t *testing.T) {
	_, client := newTestServer(t)
	ids := seedPeople(client)

	t.Run("select", func(t *testing.T) {
		got := client.do(http.MethodGet, withQuery("/v1.0/users", "$select", "employeeId, displayName,jobTitle", "$filter", "employeeId eq 'E1'"), nil)
		want := map[string]any{
			"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(employeeId,displayName,jobTitle)",
			"value": []any{
				map[string]any{"id": ids[0], "employeeId": "E1", "displayName": "Ada Lovelace", "jobTitle": nil},
			},
		}
		if diff := cmp.Diff(want, got.body); diff != "" {
			t.Errorf("answer mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("top pages with nextLink", func(t *testing.T) {
		var pages [][]string
		target := withQuery("/v1.0/users", "$top", "3", "$select", "id")
		for target != "" && len(pages) < 10 {
			page := client.do(http.MethodGet, target, nil)
			if page.status != http.StatusOK {
				t.Fatalf("GET %s: status %d: %s", target, page.status, page.raw)
			}
			pages = append(pages, idsOf(page))
			target, _ = page.body["@odata.nextLink"].(string)
			if target != "" && !strings.HasPrefix(target, client.baseURL+"/v1.0/users?") {
				t.Fatalf("nextLink %q does not point back at the emulator", target)
			}
		}
		want := [][]string{{ids[0], ids[1], ids[2]}, {ids[3]}}
		if diff := cmp.Diff(want, pages); diff != "" {
			t.Errorf("pages mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("a page survives deletion of the previous page's last item", func(t *testing.T) {
		first := client.do(http.MethodGet, withQuery("/v1.0/users", "$top", "2"), nil)
		next, _ := first.body["@odata.nextLink"].(string)
		extra := client.mustCreate("users", userBody("Late Comer", nil))
		t.Cleanup(func() { client.do(http.MethodDelete, "/v1.0/users/"+extra, nil) })
		client.do(http.MethodDelete, "/v1.0/users/"+ids[1], nil)
		second := client.do(http.MethodGet, next, nil)
		if diff := cmp.Diff([]string{ids[2], ids[3]}, idsOf(second)); diff != "" {
			t.Errorf("second page mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("count needs ConsistencyLevel", func(t *testing.T) {
		target := withQuery("/v1.0/users", "$count", "true", "$filter", "department eq 'engineering'", "$top", "1")
		checkError(t, client.do(http.MethodGet, target, nil), graphError{400, "Request_BadRequest", "$count is not currently supported."})
		got := client.do(http.MethodGet, target, nil, eventualConsistency)
		if diff := cmp.Diff(float64(3), got.body["@odata.count"]); diff != "" {
			t.Errorf("@odata.count mismatch (-want +got):\n%s", diff)
		}
		if _, hasNext := got.body["@odata.nextLink"]; !hasNext {
			t.Errorf("no @odata.nextLink on a partial page: %s", got.raw)
		}
	})

	t.Run("invalid options", func(t *testing.T) {
		tests := []struct {
			name   string
			target string
			want   graphError
		}{
			{"top zero", withQuery("/v1.0/users", "$top", "0"), graphError{400, "Request_BadRequest", "Invalid page size specified: '0'. Must be between 1 and 999 inclusive."}},
			{"top too large", withQuery("/v1.0/users", "$top", "1000"), graphError{400, "Request_BadRequest", "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."}},
			{"orderby", withQuery("/v1.0/users", "$orderby", "displayName"), graphError{400, "Request_UnsupportedQuery", "The query option '$orderby' is not supported by the emulator for this request."}},
			{"filter on an entity", withQuery("/v1.0/users/"+ids[0], "$filter", "id eq 'x'"), graphError{400, "Request_UnsupportedQuery", "The query option '$filter' is not supported by the emulator for this request."}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				checkError(t, client.do(http.MethodGet, tt.target, nil), tt.want)
			})
		}
	})
}

func TestDefaultPageSizeIsGraphs(t *testing.T) {
	directory, client := newTestServer(t)
	for i := range 101 {
		client.mustCreate("groups", groupBody("Group "+string(rune('A'+i%26))+strings.Repeat("x", i/26)))
	}
	first := client.do(http.MethodGet, "/v1.0/groups", nil)
	if got := len(idsOf(first)); got != 100 {
		t.Errorf("first page holds %d groups; want 100", got)
	}
	next, _ := first.body["@odata.nextLink"].(string)
	second := client.do(http.MethodGet, next, nil)
	want := []string{directory.Groups()[100].ID()}
	if diff := cmp.Diff(want, idsOf(second)); diff != "" {
		t.Errorf("second page mismatch (-want +got):\n%s", diff)
	}
}
