package emulator_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

const testPassword = "Correct-Horse-9"

// testClient talks to an emulator over real HTTP.
type testClient struct {
	t       *testing.T
	baseURL string
}

func newTestServer(t *testing.T, opts ...emulator.Option) (*emulator.Server, *testClient) {
	t.Helper()
	directory := emulator.New(opts...)
	httpServer := httptest.NewServer(directory)
	t.Cleanup(httpServer.Close)
	return directory, &testClient{t: t, baseURL: httpServer.URL}
}

type response struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// header is one request header for testClient.do.
type header struct{ name, value string }

// do sends a request and fails the test if it cannot. target is a path such as "/v1.0/users"
// or an absolute URL; body is marshalled to JSON unless it is a string or []byte, which are sent
// as they are. Call it only from the test's goroutine.
func (c *testClient) do(method, target string, body any, headers ...header) response {
	c.t.Helper()
	answer, err := c.send(method, target, body, headers...)
	if err != nil {
		c.t.Fatal(err)
	}
	return answer
}

// send is do for any goroutine: it returns the problem instead of failing the test.
func (c *testClient) send(method, target string, body any, headers ...header) (response, error) {
	var reader io.Reader
	switch typed := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(typed)
	case []byte:
		reader = bytes.NewReader(typed)
	default:
		encoded, err := json.Marshal(typed)
		if err != nil {
			return response{}, fmt.Errorf("marshal request body: %w", err)
		}
		reader = bytes.NewReader(encoded)
	}
	if !strings.HasPrefix(target, "http") {
		target = c.baseURL + target
	}
	request, err := http.NewRequestWithContext(c.t.Context(), method, target, reader)
	if err != nil {
		return response{}, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		request.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		request.Header.Set(h.name, h.value)
	}
	answer, err := http.DefaultClient.Do(request)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, target, err)
	}
	defer answer.Body.Close()
	raw, err := io.ReadAll(answer.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read response: %w", method, target, err)
	}
	result := response{status: answer.StatusCode, header: answer.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &result.body); err != nil {
			return response{}, fmt.Errorf("%s %s: response is not a JSON object: %w\n%s", method, target, err, raw)
		}
	}
	return result, nil
}

// withQuery returns path with the given name, value pairs as its query string.
func withQuery(path string, pairs ...string) string {
	values := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		values.Add(pairs[i], pairs[i+1])
	}
	return path + "?" + values.Encode()
}

var eventualConsistency = header{"ConsistencyLevel", "eventual"}

func userBody(name string, extra map[string]any) map[string]any {
	body := map[string]any{
		"accountEnabled":    true,
		"displayName":       name,
		"mailNickname":      strings.ReplaceAll(strings.ToLower(name), " ", "."),
		"userPrincipalName": strings.ReplaceAll(strings.ToLower(name), " ", ".") + "@corp.example.test",
		"passwordProfile":   map[string]any{"password": testPassword, "forceChangePasswordNextSignIn": true},
	}
	for key, value := range extra {
		body[key] = value
	}
	return body
}

func groupBody(name string) map[string]any {
	return map[string]any{
		"displayName":     name,
		"mailEnabled":     false,
		"mailNickname":    strings.ReplaceAll(strings.ToLower(name), " ", "-"),
		"securityEnabled": true,
	}
}

// mustCreate posts body to collection ("users" or "groups") and returns the new object's id.
func (c *testClient) mustCreate(collection string, body map[string]any) string {
	c.t.Helper()
	created := c.do(http.MethodPost, "/v1.0/"+collection, body)
	if created.status != http.StatusCreated {
		c.t.Fatalf("POST /%s: status %d: %s", collection, created.status, created.raw)
	}
	id, _ := created.body["id"].(string)
	return id
}

func (c *testClient) mustAddMember(groupID, memberID string) {
	c.t.Helper()
	added := c.do(http.MethodPost, "/v1.0/groups/"+groupID+"/members/$ref",
		map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + memberID})
	if added.status != http.StatusNoContent {
		c.t.Fatalf("add member %s to %s: status %d: %s", memberID, groupID, added.status, added.raw)
	}
}

// graphError is the part of an error answer a test compares.
type graphError struct {
	Status  int
	Code    string
	Message string
}

func errorOf(r response) graphError {
	envelope, _ := r.body["error"].(map[string]any)
	code, _ := envelope["code"].(string)
	message, _ := envelope["message"].(string)
	return graphError{Status: r.status, Code: code, Message: message}
}

func checkError(t *testing.T, r response, want graphError) {
	t.Helper()
	if diff := cmp.Diff(want, errorOf(r)); diff != "" {
		t.Errorf("error answer mismatch (-want +got):\n%s\nbody: %s", diff, r.raw)
	}
}

// idsOf returns the "id" of every item in a collection answer.
func idsOf(r response) []string {
	values, _ := r.body["value"].([]any)
	ids := []string{}
	for _, value := range values {
		item, _ := value.(map[string]any)
		ids = append(ids, fmt.Sprint(item["id"]))
	}
	return ids
}

func notFoundMessage(id string) string {
	return "Resource '" + id + "' does not exist or one of its queried reference-property objects are not present."
}
