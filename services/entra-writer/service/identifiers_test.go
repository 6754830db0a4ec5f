package service

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/converge"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// resultsUntil reads RESULTS until done says they are complete, or fails the test after timeout.
func (p pipeline) resultsUntil(tb testing.TB, timeout time.Duration, done func(map[string]*orgsyncv1.WriterResult) bool) map[string]*orgsyncv1.WriterResult {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		results := map[string]*orgsyncv1.WriterResult{}
		err := stream.ReadLatest(context.Background(), p.js, stream.Results, "results.entra.>", func(msg jetstream.Msg) error {
			var r orgsyncv1.WriterResult
			if err := stream.Decode(msg, &r); err != nil {
				return err
			}
			results[strings.TrimPrefix(msg.Subject(), "results.")] = &r
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		if done(results) {
			return results
		}
		if time.Now().After(deadline) {
			tb.Fatalf("results not complete after %v: %v", timeout, results)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func desiredUser(workerID, principalName, managerWorkerID string, revision uint64) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: workerID, Revision: revision,
		Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{
			WorkerId: workerID, EmployeeId: workerID, AccountEnabled: true, DisplayName: "Worker " + workerID,
			UserPrincipalName: principalName, MailNickname: strings.ToLower(workerID), ManagerWorkerId: managerWorkerID,
		}}}
}

// TestGraphRefusalsThroughTheSDK runs issue 14's accounts through msgraph-sdk-go against the
// emulator: a manager whose userPrincipalName has diacritics is FAILED/INVALID about
// userPrincipalName after one create request, dead-lettered; a userPrincipalName held by an
// account orgsync does not manage is FAILED/CONFLICT about it; the manager's report is created
// and enabled without the link, which is made when HR fixes the manager; the rest goes on.
func TestGraphRefusalsThroughTheSDK(t *testing.T) {
	p := newPipeline(t, emulator.Faults{})
	foreign := graphCall(t, p, http.MethodPost, "/users", map[string]any{
		"accountEnabled": true, "displayName": "Someone Else", "mailNickname": "taken",
		"userPrincipalName": "taken@corp.example.com", "passwordProfile": map[string]any{"password": "Foreign-Passw0rd!"},
	})
	p.startWriter(t, nil)
	p.publish(t, []*orgsyncv1.DesiredObject{
		desiredUser("E1", "renée.ødegård@corp.example.com", "", 1),
		desiredUser("E2", "e2@corp.example.com", "E1", 1),
		desiredUser("E3", "taken@corp.example.com", "", 1),
		desiredUser("E4", "e4@corp.example.com", "", 1),
	})
	outcome := func(results map[string]*orgsyncv1.WriterResult, key string) orgsyncv1.Outcome {
		return results["entra.user."+key].GetOutcome()
	}
	results := p.resultsUntil(t, 30*time.Second, func(results map[string]*orgsyncv1.WriterResult) bool {
		return outcome(results, "E1") == orgsyncv1.Outcome_OUTCOME_FAILED && outcome(results, "E3") == orgsyncv1.Outcome_OUTCOME_FAILED &&
			outcome(results, "E2") == orgsyncv1.Outcome_OUTCOME_APPLIED && outcome(results, "E4") == orgsyncv1.Outcome_OUTCOME_APPLIED
	})

	type failure struct {
		Class    orgsyncv1.ErrorClass
		Code     string
		Property string
	}
	failureOf := func(key string) failure {
		r := results["entra.user."+key]
		return failure{r.GetErrorClass(), r.GetErrorCode(), r.GetProperty()}
	}
	if got, want := failureOf("E1"), (failure{orgsyncv1.ErrorClass_ERROR_CLASS_INVALID, "Request_BadRequest", "userPrincipalName"}); got != want {
		t.Errorf("E1 failure = %+v, want %+v", got, want)
	}
	if msg := results["entra.user.E1"].GetErrorMessage(); !strings.Contains(msg, "Property userPrincipalName is invalid.") || strings.Contains(msg, "renée") {
		t.Errorf("E1 error message = %q; want Graph's message, without the value", msg)
	}
	if got, want := failureOf("E3"), (failure{orgsyncv1.ErrorClass_ERROR_CLASS_CONFLICT, "Request_BadRequest", "userPrincipalName"}); got != want {
		t.Errorf("E3 failure = %+v, want %+v", got, want)
	}
	// One create request each for E1 to E4, and the foreign account's: no refused create was
	// repeated before its FAILED result.
	if got := p.emulator.Stats().Operations[emulator.OpUserCreate]; got != 5 {
		t.Errorf("user.create requests = %d, want 5", got)
	}
	letters, err := converge.NewBox(p.js, orgsyncv1.Target_TARGET_ENTRA).List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var parked []string
	for _, letter := range letters {
		parked = append(parked, letter.Path+" "+letter.Property)
	}
	slices.Sort(parked)
	if want := []string{"entra.user.E1 userPrincipalName", "entra.user.E3 userPrincipalName"}; !slices.Equal(parked, want) {
		t.Errorf("dead letters = %v, want %v", parked, want)
	}

	report := results["entra.user.E2"]
	if !report.GetManagerLinkPending() {
		t.Errorf("E2 result = %v; want the manager link pending", report)
	}
	account, found := p.emulator.User(report.GetObjectId())
	if !found || account["accountEnabled"] != true {
		t.Errorf("E2's account = %v (found %v); want it created and enabled", account, found)
	}
	if manager, linked := p.emulator.ManagerOf(report.GetObjectId()); linked {
		t.Errorf("E2 linked to %q while its manager has no account", manager)
	}
	if holder, _ := p.emulator.User(foreign["id"].(string)); holder["userPrincipalName"] != "taken@corp.example.com" {
		t.Errorf("the foreign account was changed: %v", holder)
	}

	// HR fixes the manager's name: the account is created and the waiting report linked.
	p.publish(t, []*orgsyncv1.DesiredObject{desiredUser("E1", "renee.odegard@corp.example.com", "", 2)})
	results = p.resultsUntil(t, 60*time.Second, func(results map[string]*orgsyncv1.WriterResult) bool {
		return outcome(results, "E1") == orgsyncv1.Outcome_OUTCOME_APPLIED &&
			slices.Contains(results["entra.user.E2"].GetOperations(), "manager.set")
	})
	if manager, _ := p.emulator.ManagerOf(report.GetObjectId()); manager != results["entra.user.E1"].GetObjectId() {
		t.Errorf("E2's manager = %q, want E1's account %q", manager, results["entra.user.E1"].GetObjectId())
	}
}
