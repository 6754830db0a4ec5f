package model

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// TestReplayIdentifiesAsApplyDoes: the replay gives identifiers on a goroutine of its own while
// Record goes on (identify.go). Replayed and then computed, a history ends as the same history
// applied event by event: the first of namesakes keeps the plain value, a renamed worker keeps
// theirs, a candidate that fails to evaluate is reported only while the record in effect makes it
// fail, a worker out of scope gets no account; and a query between two events waits for the
// identifiers given so far. The history is longer than a hand-over (identifyBatch), so the
// goroutine works while Record records (the race detector runs it).
func TestReplayIdentifiesAsApplyDoes(t *testing.T) {
	const policyYAML = `scope: 'worker.company != "Elsewhere"'
identifiers:
  userPrincipalName:
    - 'first_name + "." + worker.name.family_name + string(10 / size(worker.job_title))'
    - 'first_name + "." + worker.name.family_name'
`
	now := at("2026-03-01T09:00:00Z")
	given := []string{"Jane", "Omar", "Lee", "Zoë"}
	family := []string{"Doe", "Khan", "Ng"}
	events := []*orgsyncv1.HREvent{unitEvent("u1", "Sales", "", "")}
	record := func(id string, i int, edits ...func(*orgsyncv1.Worker)) {
		w := person(id, given[i%len(given)], family[i%len(family)], "u1")
		w.Company, w.JobTitle = "Example", fmt.Sprintf("Engineer %c", 'A'+i%7) // 10 / size(…) is 1
		for _, edit := range edits {
			edit(w)
		}
		events = append(events, workerEvent(now, w))
	}
	untitled := func(w *orgsyncv1.Worker) { w.JobTitle = "" }
	renamed := func(w *orgsyncv1.Worker) { w.Name.FamilyName = "Renamed" }
	elsewhere := func(w *orgsyncv1.Worker) { w.Company = "Elsewhere" }
	for i := range 3*identifyBatch + 17 {
		id := fmt.Sprintf("W%04d", i)
		switch i {
		case 10: // fails to evaluate, then HR fixes the title: no error stands
			record(id, i, untitled)
		case 40: // out of scope first, then in
			record(id, i, elsewhere)
		case 50: // fails to evaluate, and is fixed at once (the two refreshes may be identified
			// in one hand-over, after the second): no error stands
			record(id, i, untitled)
			record(id, i)
		default:
			if i%97 == 0 {
				record(id, i, untitled) // fails to evaluate: the error stands
			} else {
				record(id, i)
			}
		}
	}
	record("W0010", 10)
	record("W0020", 20, untitled) // identified already: the candidates are not evaluated again
	record("W0030", 30, renamed)
	record("W0040", 40)
	record("W0041", 41, elsewhere) // in scope, then out: no account
	for i := 3 * identifyBatch; i < 3*identifyBatch+17; i++ {
		record(fmt.Sprintf("W%04d", i), i+1) // renamed at the end of the history
	}

	applied := New(mustPolicy(t, policyYAML))
	for _, event := range events {
		applied.Apply(event, now)
	}
	replayed := New(mustPolicy(t, policyYAML))
	for i, event := range events {
		replayed.Record(event, now)
		if i == 2*identifyBatch {
			// A query in the middle of the replay sees every worker recorded so far identified.
			if a, ok := replayed.Identifiers(entra, "W0000"); !ok || a.UserPrincipalName == "" {
				t.Fatalf("in the middle of the replay, W0000's identifiers = %+v, %v", a, ok)
			}
			if _, ok := replayed.Identifiers(entra, fmt.Sprintf("W%04d", 2*identifyBatch-2)); !ok {
				t.Fatalf("in the middle of the replay, the last worker recorded has no identifiers")
			}
		}
	}
	replayed.ComputeAll(now)

	// Namesakes: W0000, W0012, W0024 are all Jane Doe; the first fails its first candidate.
	for id, want := range map[string]string{"W0000": "jane.doe@", "W0012": "jane.doe1@", "W0024": "jane.doe2@"} {
		if a, _ := replayed.Identifiers(entra, id); a.UserPrincipalName != want+"corp.example.com" {
			t.Errorf("%s's UPN = %q, want %scorp.example.com", id, a.UserPrincipalName, want)
		}
	}
	for i := range 3*identifyBatch + 17 {
		id := fmt.Sprintf("W%04d", i)
		want, wantOK := applied.Identifiers(entra, id)
		got, gotOK := replayed.Identifiers(entra, id)
		if want != got || wantOK != gotOK {
			t.Errorf("%s: replayed identifiers %+v (%v), applied %+v (%v)", id, got, gotOK, want, wantOK)
		}
	}
	if diff := cmp.Diff(applied.Problems(), replayed.Problems()); diff != "" {
		t.Errorf("problems (-applied +replayed):\n%s", diff)
	}
	var failing []string
	for _, p := range replayed.Problems() {
		failing = append(failing, p.Subject)
	}
	wantFailing := []string{"worker W0000", "worker W0097", "worker W0194", "worker W0291", "worker W0388", "worker W0485", "worker W0582", "worker W0679"}
	if diff := cmp.Diff(wantFailing, failing); diff != "" {
		t.Errorf("workers whose candidate fails (-want +got):\n%s", diff)
	}
	if _, ok := replayed.Identifiers(entra, "W0041"); !ok {
		t.Errorf("W0041 lost the identifiers given while in scope")
	}
	if replayed.Object(UserRef(entra, "W0041")) != nil {
		t.Errorf("a user is desired for W0041, out of scope")
	}
	wantObjects, gotObjects := applied.Objects(), replayed.Objects()
	if len(wantObjects) != len(gotObjects) {
		t.Fatalf("replayed %d objects, applied %d", len(gotObjects), len(wantObjects))
	}
	for i := range wantObjects {
		if !proto.Equal(wantObjects[i], gotObjects[i]) {
			t.Fatalf("object %d: replayed %v, applied %v", i, gotObjects[i], wantObjects[i])
		}
	}
}
