package stack_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/orgsync/orgsync/deploy/local/stack"
)

// TestWorkEmailWithDiacriticsYieldsValidUPN sends a hire whose work e-mail has diacritics through
// hr-ingest's webhook; the account reaches the Graph emulator with the folded UPN and
// mailNickname, and without the mail Graph would refuse.
func TestWorkEmailWithDiacriticsYieldsValidUPN(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s, err := stack.Start(ctx, stack.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("stack: %v", err)
		}
	})
	hire := event("worker.created", map[string]any{
		"workerId": "E2001", "name": map[string]any{"givenName": "Renée", "familyName": "Ødegård"},
		"workEmail": "renée.ødegård@corp.example.com", "employmentType": "employee",
		"hireDate": "2026-03-01", "startDate": "2026-03-01",
	})
	resp, body, err := stack.Post(ctx, &http.Client{Timeout: 10 * time.Second}, s.WebhookURL(), "msg_hire_renee", hire)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("hire webhook: %d %s", resp.StatusCode, body)
	}
	eventually(t, func() bool {
		_, ok := s.Emulator.UserByEmployeeID("E2001")
		return ok
	})
	user, _ := s.Emulator.UserByEmployeeID("E2001")
	for prop, want := range map[string]any{
		"userPrincipalName": "renee.odegard@corp.example.com", "mailNickname": "renee.odegard", "displayName": "Renée Ødegård", "mail": nil,
	} {
		if got := user[prop]; got != want {
			t.Errorf("user %s = %v, want %v", prop, got, want)
		}
	}
}
