package emulator_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

func TestTemporaryAccessPass(t *testing.T) {
	clock := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	directory, client := newTestServer(t, emulator.WithClock(func() time.Time { return clock }))
	id := client.mustCreate("users", userBody("Ada Lovelace", nil))
	methods := "/v1.0/users/" + id + "/authentication/temporaryAccessPassMethods"

	start := clock.Add(time.Hour)
	created := client.do(http.MethodPost, methods, map[string]any{"startDateTime": start.Format(time.RFC3339), "lifetimeInMinutes": 120, "isUsableOnce": true})
	if created.status != http.StatusCreated {
		t.Fatalf("create: status %d: %s", created.status, created.raw)
	}
	secret, _ := created.body["temporaryAccessPass"].(string)
	if len(secret) != 8 {
		t.Fatalf("the create's answer carries temporaryAccessPass %q, want an 8-character pass", secret)
	}
	stored, ok := directory.AccessPass(id)
	if !ok || stored.Secret != secret || !stored.Start.Equal(start) || stored.LifetimeInMinutes != 120 || !stored.IsUsableOnce {
		t.Errorf("stored pass %+v, want the created one (start %v, 120 minutes, once)", stored, start)
	}
	if created.body["methodUsabilityReason"] != "NotYetValid" || created.body["isUsable"] != false {
		t.Errorf("a pass starting later: isUsable %v, reason %v; want false, NotYetValid", created.body["isUsable"], created.body["methodUsabilityReason"])
	}

	t.Run("the list hides the pass", func(t *testing.T) {
		listed := client.do(http.MethodGet, methods, nil)
		values, _ := listed.body["value"].([]any)
		if listed.status != http.StatusOK || len(values) != 1 {
			t.Fatalf("list: status %d, %d passes: %s", listed.status, len(values), listed.raw)
		}
		item, _ := values[0].(map[string]any)
		if item["temporaryAccessPass"] != nil || item["id"] != stored.ID {
			t.Errorf("listed pass %v: want id %s and temporaryAccessPass null", item, stored.ID)
		}
	})

	t.Run("a second pass replaces the first", func(t *testing.T) {
		again := client.do(http.MethodPost, methods, map[string]any{"isUsableOnce": true})
		if again.status != http.StatusCreated {
			t.Fatalf("second create: status %d: %s", again.status, again.raw)
		}
		if again.body["lifetimeInMinutes"] != float64(60) {
			t.Errorf("a pass without lifetime has %v minutes, want the policy's default 60", again.body["lifetimeInMinutes"])
		}
		listed := client.do(http.MethodGet, methods, nil)
		if got := idsOf(listed); len(got) != 1 || got[0] != again.body["id"] {
			t.Errorf("passes after a second create: %v, want only %v", got, again.body["id"])
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for name, body := range map[string]map[string]any{
			"lifetime under the policy's minimum": {"lifetimeInMinutes": 30},
			"lifetime over the policy's maximum":  {"lifetimeInMinutes": 600},
			"lifetime over 30 days":               {"lifetimeInMinutes": 50000},
			"startDateTime not a date":            {"startDateTime": "tomorrow"},
		} {
			t.Run(name, func(t *testing.T) {
				answer := client.do(http.MethodPost, methods, body)
				if answer.status != http.StatusBadRequest {
					t.Errorf("status %d, want 400: %s", answer.status, answer.raw)
				}
			})
		}
		unknown := client.do(http.MethodPost, "/v1.0/users/00000000-0000-0000-0000-000000000000/authentication/temporaryAccessPassMethods", map[string]any{})
		checkError(t, unknown, graphError{Status: 404, Code: emulator.CodeResourceNotFound, Message: notFoundMessage("00000000-0000-0000-0000-000000000000")})
	})

	t.Run("a one-time policy refuses a multi-use pass", func(t *testing.T) {
		_, strict := newTestServer(t, emulator.WithAccessPassPolicy(emulator.AccessPassPolicy{MinimumLifetimeInMinutes: 60, MaximumLifetimeInMinutes: 480, DefaultLifetimeInMinutes: 60, IsUsableOnce: true}))
		user := strict.mustCreate("users", userBody("Alan Turing", nil))
		answer := strict.do(http.MethodPost, "/v1.0/users/"+user+"/authentication/temporaryAccessPassMethods", map[string]any{"isUsableOnce": false})
		if answer.status != http.StatusBadRequest {
			t.Errorf("multi-use pass under a one-time policy: status %d, want 400", answer.status)
		}
	})

	t.Run("delete", func(t *testing.T) {
		current, _ := directory.AccessPass(id)
		if answer := client.do(http.MethodDelete, methods+"/"+current.ID, nil); answer.status != http.StatusNoContent {
			t.Fatalf("delete: status %d: %s", answer.status, answer.raw)
		}
		if _, ok := directory.AccessPass(id); ok {
			t.Errorf("the pass is still there after its delete")
		}
		if answer := client.do(http.MethodDelete, methods+"/"+current.ID, nil); answer.status != http.StatusNotFound {
			t.Errorf("second delete: status %d, want 404", answer.status)
		}
	})
}

func TestSendMail(t *testing.T) {
	directory, client := newTestServer(t)
	sender := client.mustCreate("users", userBody("Onboarding Desk", map[string]any{"mail": "onboarding@corp.example.test"}))
	noMailbox := client.mustCreate("users", userBody("No Mailbox", nil))
	message := map[string]any{"message": map[string]any{
		"subject": "Welcome", "body": map[string]any{"contentType": "Text", "content": "Hello"},
		"toRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "manager@corp.example.test"}}},
	}, "SaveToSentItems": false}

	answer := client.do(http.MethodPost, "/v1.0/users/"+sender+"/sendMail", message)
	if answer.status != http.StatusAccepted || answer.raw != "" {
		t.Fatalf("sendMail: status %d, body %q; want 202 without a body", answer.status, answer.raw)
	}
	want := []emulator.SentMail{{From: sender, ToRecipients: []string{"manager@corp.example.test"}, Subject: "Welcome", BodyContentType: "Text", Body: "Hello", SenderPrincipalName: "onboarding.desk@corp.example.test"}}
	if diff := cmp.Diff(want, directory.SentMail()); diff != "" {
		t.Errorf("captured mail (-want +got):\n%s", diff)
	}
	captured := directory.SentMail()
	captured[0].ToRecipients[0] = "changed"
	if directory.SentMail()[0].ToRecipients[0] != "manager@corp.example.test" {
		t.Errorf("SentMail returns the emulator's own slices, not copies")
	}

	t.Run("refusals", func(t *testing.T) {
		noRecipients := map[string]any{"message": map[string]any{"subject": "Welcome", "body": map[string]any{"contentType": "Text", "content": "Hello"}}}
		checkError(t, client.do(http.MethodPost, "/v1.0/users/"+sender+"/sendMail", noRecipients), graphError{Status: 400, Code: "ErrorInvalidRecipients",
			Message: "At least one recipient is not valid., A message can't be sent because it contains no recipients."})
		checkError(t, client.do(http.MethodPost, "/v1.0/users/"+noMailbox+"/sendMail", message), graphError{Status: 404, Code: "MailboxNotEnabledForRESTAPI",
			Message: "The mailbox is either inactive, soft-deleted, or is hosted on-premise."})
		if got := client.do(http.MethodPost, "/v1.0/users/nobody@corp.example.test/sendMail", message); got.status != http.StatusNotFound {
			t.Errorf("unknown sender: status %d, want 404", got.status)
		}
		if got := len(directory.SentMail()); got != 1 {
			t.Errorf("%d messages captured, want only the accepted one", got)
		}
	})
}
