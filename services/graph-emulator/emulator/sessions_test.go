package emulator_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

func TestRevokeSignInSessions(t *testing.T) {
	clock := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	directory, client := newTestServer(t, emulator.WithClock(func() time.Time { return clock }))
	created := client.do(http.MethodPost, "/v1.0/users", userBody("Ada Lovelace", nil))
	if created.status != http.StatusCreated {
		t.Fatalf("POST /users: status %d: %s", created.status, created.raw)
	}
	id, _ := created.body["id"].(string)
	if _, shown := created.body["signInSessionsValidFromDateTime"]; shown {
		t.Errorf("the create answer shows signInSessionsValidFromDateTime, which Graph returns only on $select")
	}
	if validFrom, _ := directory.SignInSessionsValidFrom(id); !validFrom.Equal(clock) {
		t.Errorf("a new user's sessions are valid from %v, want its creation %v", validFrom, clock)
	}
	sessionIssued := clock.Add(time.Hour)
	if !directory.SignInSessionValid(id, sessionIssued) {
		t.Fatalf("a session issued after the create is not valid")
	}

	clock = clock.Add(2 * time.Hour)
	t.Run("revoke resets signInSessionsValidFromDateTime and answers true", func(t *testing.T) {
		answer := client.do(http.MethodPost, "/v1.0/users/"+id+"/revokeSignInSessions", nil)
		if answer.status != http.StatusOK {
			t.Fatalf("revokeSignInSessions: status %d: %s", answer.status, answer.raw)
		}
		want := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": true}
		if diff := cmp.Diff(want, answer.body); diff != "" {
			t.Errorf("answer mismatch (-want +got):\n%s", diff)
		}
		if validFrom, _ := directory.SignInSessionsValidFrom(id); !validFrom.Equal(clock) {
			t.Errorf("sessions valid from %v, want the revocation %v", validFrom, clock)
		}
		if directory.SignInSessionValid(id, sessionIssued) {
			t.Errorf("a session issued before the revocation is still valid")
		}
		if !directory.SignInSessionValid(id, clock.Add(time.Minute)) {
			t.Errorf("a session issued after the revocation is not valid")
		}
	})

	t.Run("the property is read with $select", func(t *testing.T) {
		got := client.do(http.MethodGet, "/v1.0/users/"+id+"?$select=id,signInSessionsValidFromDateTime", nil)
		if got.body["signInSessionsValidFromDateTime"] != clock.Format(time.RFC3339Nano) {
			t.Errorf("GET $select: signInSessionsValidFromDateTime = %v, want %s", got.body["signInSessionsValidFromDateTime"], clock.Format(time.RFC3339Nano))
		}
	})

	t.Run("by userPrincipalName", func(t *testing.T) {
		answer := client.do(http.MethodPost, "/v1.0/users/ada.lovelace@corp.example.test/revokeSignInSessions", nil)
		if answer.status != http.StatusOK {
			t.Fatalf("revokeSignInSessions by UPN: status %d: %s", answer.status, answer.raw)
		}
	})

	t.Run("unknown user is 404", func(t *testing.T) {
		answer := client.do(http.MethodPost, "/v1.0/users/00000000-0000-4000-8000-000000000000/revokeSignInSessions", nil)
		if answer.status != http.StatusNotFound || errorOf(answer).Code != "Request_ResourceNotFound" {
			t.Errorf("unknown user: status %d code %q, want 404 Request_ResourceNotFound", answer.status, errorOf(answer).Code)
		}
	})

	t.Run("GET is not allowed", func(t *testing.T) {
		if answer := client.do(http.MethodGet, "/v1.0/users/"+id+"/revokeSignInSessions", nil); answer.status != http.StatusMethodNotAllowed {
			t.Errorf("GET revokeSignInSessions: status %d, want 405", answer.status)
		}
	})

	t.Run("a disabled account has no valid session", func(t *testing.T) {
		client.do(http.MethodPatch, "/v1.0/users/"+id, map[string]any{"accountEnabled": false})
		if directory.SignInSessionValid(id, clock.Add(time.Hour)) {
			t.Errorf("a disabled account's session is valid")
		}
	})

	// Two revocations and the unknown user's 404.
	if got := directory.Stats().Operations[emulator.OpRevokeSessions]; got != 3 {
		t.Errorf("Stats counts %d revocation requests, want 3", got)
	}
}
