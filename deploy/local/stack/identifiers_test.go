package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
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

// TestUPNHeldByForeignAccountGivesNextCandidate: an account orgsync does not manage already holds
// the UPN a new hire's first candidate gives. entra-writer's create is refused by the Graph
// emulator with Graph's ObjectConflict, the writer reports CONFLICT on userPrincipalName,
// org-model takes the next candidate, and the hire's account is created with it; the foreign
// account is left as it was.
func TestUPNHeldByForeignAccountGivesNextCandidate(t *testing.T) {
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
	client := &http.Client{Timeout: 10 * time.Second}
	foreign, err := json.Marshal(map[string]any{
		"accountEnabled": true, "displayName": "Someone Else", "mailNickname": "someone.else",
		"userPrincipalName": "jane.doe@corp.example.com",
		"passwordProfile":   map[string]any{"password": "Foreign-Passw0rd!"},
	})
	if err != nil {
		t.Fatal(err)
	}
	created, err := client.Post("http://"+s.EmulatorAddr()+"/v1.0/users", "application/json", bytes.NewReader(foreign))
	if err != nil {
		t.Fatal(err)
	}
	created.Body.Close()
	if created.StatusCode != http.StatusCreated {
		t.Fatalf("creating the foreign account: %d", created.StatusCode)
	}

	hire := event("worker.created", map[string]any{
		"workerId": "E2002", "name": map[string]any{"givenName": "Jane", "familyName": "Doe"},
		"workEmail": "jane.doe@corp.example.com", "employmentType": "employee",
		"hireDate": "2026-03-01", "startDate": "2026-03-01",
	})
	resp, body, err := stack.Post(ctx, client, s.WebhookURL(), "msg_hire_jane_taken", hire)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("hire webhook: %d %s", resp.StatusCode, body)
	}
	eventually(t, func() bool {
		_, ok := s.Emulator.UserByEmployeeID("E2002")
		return ok
	})
	user, _ := s.Emulator.UserByEmployeeID("E2002")
	upn, _ := user["userPrincipalName"].(string)
	if upn == "" || upn == "jane.doe@corp.example.com" || !strings.HasSuffix(upn, "@corp.example.com") {
		t.Errorf("hire's UPN = %q, want the next candidate after jane.doe@corp.example.com", upn)
	}
	t.Logf("the hire was given %s", upn)
	holder, ok := s.Emulator.User("jane.doe@corp.example.com")
	if !ok || holder["displayName"] != "Someone Else" || holder["employeeId"] != nil {
		t.Errorf("the foreign account was changed: %v", holder)
	}
}
