package pii

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValue(t *testing.T) {
	for _, tc := range []struct {
		name, key, value, want string
		kept                   bool
	}{
		{"worker id", "orgsync.worker_id", "E1001", "E1001", true},
		{"given name key", "given_name", "Jane", Redacted, false},
		{"display name key", "user.displayName", "Jane Doe", Redacted, false},
		{"email key", "user.email", "jane@example.com", Redacted, false},
		{"graph filter", "url.full", "https://graph.microsoft.com/v1.0/users?$filter=employeeId%20eq%20'E1'&$count=true",
			"https://graph.microsoft.com/v1.0/users?" + Redacted, true},
		{"user by upn", "url.full", "http://127.0.0.1:1/v1.0/users/jane.doe@corp.example.com/manager/$ref",
			"http://127.0.0.1:1/v1.0/users/" + Redacted + "/manager/$ref", true},
		{"user by object id", "url.full", "http://127.0.0.1:1/v1.0/users/7f3c", "http://127.0.0.1:1/v1.0/users/7f3c", true},
		{"query", "url.query", "$filter=mail eq 'a@b.com'", Redacted, true},
		{"error message", "exception.message", "upn jane.doe@corp.example.com is taken", "upn " + Redacted + " is taken", true},
		{"encoded upn", "error", "GET /users/jane%40corp.example.com: 404", "GET /users/" + Redacted + ": 404", true},
		{"plain text", "messaging.destination.name", "dir.entra.user.E1001", "dir.entra.user.E1001", true},
		{"server address", "server.address", "graph.microsoft.com", "graph.microsoft.com", true},
		{"peer address", "network.peer.address", "127.0.0.1", "127.0.0.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, kept := Value(tc.key, tc.value)
			if diff := cmp.Diff(tc.want, got); diff != "" || kept != tc.kept {
				t.Errorf("Value(%q, %q) kept=%v (want %v), diff (-want +got):\n%s", tc.key, tc.value, kept, tc.kept, diff)
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	for _, tc := range []struct {
		value   string
		want    bool
		wantErr bool
	}{{"", false, false}, {"redact", false, false}, {"allow", true, false}, {"ALLOW", true, false}, {"yes", false, true}} {
		t.Run(tc.value, func(t *testing.T) {
			got, err := Allowed(func(string) (string, bool) { return tc.value, tc.value != "" })
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("Allowed(%q) = %v, %v", tc.value, got, err)
			}
		})
	}
}
