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
		{"dn key", "dn", "CN=Jane Doe,OU=Staff,DC=corp", Redacted, false},
		{"dn in a value", "group", "CN=Org - Sales,OU=Groups,DC=corp", "CN=" + Redacted + ",OU=" + Redacted + ",DC=corp", true},
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

func TestRedactDN(t *testing.T) {
	for _, tc := range []struct{ name, dn, want string }{
		{"user", "CN=Jane Doe,OU=Sales,OU=Staff,DC=corp,DC=example,DC=test", "CN=" + Redacted + ",OU=" + Redacted + ",OU=" + Redacted + ",DC=corp,DC=example,DC=test"},
		{"escaped comma", `CN=Doe\, Jane,OU=Staff,DC=corp`, "CN=" + Redacted + ",OU=" + Redacted + ",DC=corp"},
		{"multi-valued rdn", "CN=Jane+UID=jdoe,DC=corp", "CN=" + Redacted + "+UID=" + Redacted + ",DC=corp"},
		{"lower case and spaces", "cn=Jane, ou=Sales, dc=corp", "cn=" + Redacted + ",ou=" + Redacted + ",dc=corp"},
		{"dc before another type is data", "CN=Jane,DC=evil,OU=Users,DC=corp", "CN=" + Redacted + ",DC=" + Redacted + ",OU=" + Redacted + ",DC=corp"},
		{"not a dn", "Jane Doe", Redacted},
		{"empty", "", Redacted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, RedactDN(tc.dn)); diff != "" {
				t.Errorf("RedactDN(%q) (-want +got):\n%s", tc.dn, diff)
			}
		})
	}
}

func TestScrubDNs(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"quoted ldap error", `ldap add "CN=Jane Doe,OU=Staff,DC=corp,DC=example": result 68 (Entry Already Exists)`,
			`ldap add "CN=` + Redacted + `,OU=` + Redacted + `,DC=corp,DC=example": result 68 (Entry Already Exists)`},
		{"quoted with an escaped comma", `user E1 at "CN=Doe\\, Jane,OU=Admins,DC=corp": not owned`,
			`user E1 at "CN=` + Redacted + `,` + Redacted + `,OU=` + Redacted + `,DC=corp": not owned`},
		{"unquoted at the end", "moved to OU=Leavers,DC=corp", "moved to OU=" + Redacted + ",DC=corp"},
		{"dn and upn", `member CN=Jane Doe,OU=Staff,DC=corp of jane@corp.example.com`, "member CN=" + Redacted + ",OU=" + Redacted + ",DC=corp of " + Redacted},
		{"no dn", "page_size=1001 is more than 1000", "page_size=1001 is more than 1000"},
		{"subject", "dir.ad.user.E1001", "dir.ad.user.E1001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Scrub(tc.text)); diff != "" {
				t.Errorf("Scrub(%q) (-want +got):\n%s", tc.text, diff)
			}
		})
	}
}

func TestDNAndNameFollowThePolicy(t *testing.T) {
	const dn = "CN=Jane Doe,OU=Staff,DC=corp"
	for _, tc := range []struct {
		policy           string
		wantDN, wantName string
	}{
		{"", "CN=" + Redacted + ",OU=" + Redacted + ",DC=corp", Redacted},
		{"redact", "CN=" + Redacted + ",OU=" + Redacted + ",DC=corp", Redacted},
		{"allow", dn, "Jane Doe"},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			t.Setenv(Variable, tc.policy)
			if got := DN(dn); got != tc.wantDN {
				t.Errorf("DN = %q, want %q", got, tc.wantDN)
			}
			if got := Name("Jane Doe"); got != tc.wantName {
				t.Errorf("Name = %q, want %q", got, tc.wantName)
			}
		})
	}
}
