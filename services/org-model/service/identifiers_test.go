package service

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/apply"
	"github.com/orgsync/orgsync/services/org-model/internal/identifiers"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
)

func withEmail(event *orgsyncv1.HREvent, given, family, email string) *orgsyncv1.HREvent {
	return dated(event, func(w *orgsyncv1.Worker) {
		w.Name = &orgsyncv1.PersonName{GivenName: given, FamilyName: family}
		w.WorkEmail = email
	})
}

// desiredUser waits until DIRECTORY's user of a worker satisfies cond and returns it.
func (h harness) desiredUser(t *testing.T, workerID string, cond func(*orgsyncv1.DesiredObject) bool) *orgsyncv1.DesiredObject {
	t.Helper()
	var obj *orgsyncv1.DesiredObject
	eventually(t, func() bool {
		obj = h.directory(t)["dir.entra.user."+workerID]
		return obj != nil && cond(obj)
	})
	return obj
}

// conflict publishes what entra-writer reports when an account orgsync does not manage already
// holds the user's property.
func (h harness) conflict(t *testing.T, workerID, property string, revision uint64) {
	t.Helper()
	result := &orgsyncv1.WriterResult{Target: orgsyncv1.Target_TARGET_ENTRA, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_USER, Key: workerID,
		Revision: revision, Outcome: orgsyncv1.Outcome_OUTCOME_FAILED, ErrorClass: orgsyncv1.ErrorClass_ERROR_CLASS_CONFLICT,
		ErrorCode: "Request_BadRequest", ErrorMessage: "Another object with the same value for property " + property + " already exists.",
		Property: property}
	if _, err := h.pub.Publish(t.Context(), subject.ResultSubject("entra.user."+workerID), "", result); err != nil {
		t.Fatal(err)
	}
}

func (h harness) recorded(t *testing.T, key string, into proto.Message) bool {
	t.Helper()
	kv, err := h.js.KeyValue(t.Context(), IdentifiersBucket)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(t.Context(), key)
	if err != nil {
		return false
	}
	if err := proto.Unmarshal(entry.Value(), into); err != nil {
		t.Fatal(err)
	}
	return true
}

// TestUPNHeldByForeignAccountGivesNextCandidate plays entra-writer's CONFLICT result for a UPN an
// unmanaged account holds: org-model records the held value, takes the next candidate and
// republishes; after a restart (under a new UPN template) it renames nobody and does not go
// back to the held value.
func TestUPNHeldByForeignAccountGivesNextCandidate(t *testing.T) {
	h := newHarness(t)
	active := orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE
	h.hr(t, "w1", withEmail(worker("E1", "", active, time.Now()), "Renée", "Ødegård", "renee@corp.example.com"))
	_, stop := h.start(t)

	first := h.desiredUser(t, "E1", func(*orgsyncv1.DesiredObject) bool { return true })
	if got := first.GetUser().GetUserPrincipalName(); got != "renee@corp.example.com" {
		t.Fatalf("first UPN = %q, want the work e-mail's", got)
	}
	h.conflict(t, "E1", "userPrincipalName", first.GetRevision())
	next := h.desiredUser(t, "E1", func(obj *orgsyncv1.DesiredObject) bool { return obj.GetRevision() > first.GetRevision() })
	got := []string{next.GetUser().GetUserPrincipalName(), next.GetUser().GetMailNickname(), next.GetCause().GetReason()}
	want := []string{"renee.odegard@corp.example.com", "renee.odegard", apply.HeldReason}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("republished user (-want +got):\n%s", diff)
	}

	var held orgsyncv1.HeldIdentifier
	if !h.recorded(t, identifiers.HeldKey(model.HeldIdentifier{Target: orgsyncv1.Target_TARGET_ENTRA, Property: "userPrincipalName", Value: "renee@corp.example.com"}), &held) {
		t.Error("the held UPN is not recorded")
	}
	var assigned orgsyncv1.RecordedIdentifiers
	if !h.recorded(t, identifiers.AssignmentKey(orgsyncv1.Target_TARGET_ENTRA, "E1"), &assigned) || assigned.GetUserPrincipalName() != "renee.odegard@corp.example.com" {
		t.Errorf("recorded assignment = %v, want the next candidate", &assigned)
	}

	// A restart under a policy whose UPN template would now give another name: the recorded UPN
	// stays, nothing is republished, and the old conflict result (still the newest on RESULTS)
	// does not move the worker again.
	stop()
	seq := h.directoryLastSeq(t)
	svc, _ := h.start(t, withPolicy(t, "upnDomains: [corp.example.com]\nidentifiers:\n  userPrincipalName: ['mailSafe(worker.worker_id)']\n"))
	h.hr(t, "w2", withEmail(worker("E2", "", active, time.Now()), "John", "Roe", ""))
	h.desiredUser(t, "E2", func(*orgsyncv1.DesiredObject) bool { return true })
	objects := h.directory(t)
	if got := objects["dir.entra.user.E1"]; got.GetRevision() != next.GetRevision() || got.GetUser().GetUserPrincipalName() != "renee.odegard@corp.example.com" {
		t.Errorf("after the restart E1 is %q at revision %d, want %q at %d", got.GetUser().GetUserPrincipalName(), got.GetRevision(), "renee.odegard@corp.example.com", next.GetRevision())
	}
	if got := objects["dir.entra.user.E2"].GetUser().GetUserPrincipalName(); got != "e2@corp.example.com" {
		t.Errorf("a new worker's UPN = %q, want the new template's", got)
	}
	if last := h.directoryLastSeq(t); last != seq+1 {
		t.Errorf("the restart published %d messages, want only E2's user", last-seq)
	}
	worker, err := h.client(t, svc).GetWorker(t.Context(), &orgsyncv1.GetWorkerRequest{WorkerId: "E1"})
	if err != nil {
		t.Fatal(err)
	}
	if p := worker.GetAccounts()[0].GetIdentifierProblem(); p != nil {
		t.Errorf("identifier problem for E1: %v", p)
	}
}

// TestWorkerWithoutValidCandidateIsFailed: a worker whose only UPN candidate Graph would refuse
// has no user on DIRECTORY, shows FAILED with the reason in GetWorker and GetStatus, and their
// report's user is published without waiting on them.
func TestWorkerWithoutValidCandidateIsFailed(t *testing.T) {
	h := newHarness(t)
	active := orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE
	h.hr(t, "m1", withEmail(worker("M1", "", active, time.Now()), "Иван", "Петров", "иван@corp.example.com"))
	h.hr(t, "r1", dated(withEmail(worker("R1", "", active, time.Now()), "Jane", "Doe", "jane.doe@corp.example.com"),
		func(w *orgsyncv1.Worker) { w.ManagerWorkerId = "M1" }))
	svc, _ := h.start(t, withPolicy(t, "upnDomains: [corp.example.com]\nidentifiers:\n  userPrincipalName: ['worker.work_email']\n"))

	report := h.desiredUser(t, "R1", func(*orgsyncv1.DesiredObject) bool { return true })
	if report.GetUser().GetManagerWorkerId() != "" {
		t.Errorf("the report links to a manager without an account: %q", report.GetUser().GetManagerWorkerId())
	}
	if obj, ok := h.directory(t)["dir.entra.user.M1"]; ok {
		t.Errorf("a user was published for the worker without a valid UPN: %v", obj)
	}
	api := h.client(t, svc)
	wantProblem := &orgsyncv1.IdentifierProblem{WorkerId: "M1", Target: orgsyncv1.Target_TARGET_ENTRA, Property: "userPrincipalName",
		Reason: "no valid candidate: candidate 1 (" + svc.model.Policy().File + ":3) has letters without an ASCII form, which Entra refuses"}
	worker, err := api.GetWorker(t.Context(), &orgsyncv1.GetWorkerRequest{WorkerId: "M1"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantProblem, worker.GetAccounts()[0].GetIdentifierProblem(), protocmp.Transform()); diff != "" {
		t.Errorf("GetWorker's identifier problem (-want +got):\n%s", diff)
	}
	st, err := api.GetStatus(t.Context(), &orgsyncv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*orgsyncv1.IdentifierProblem{wantProblem}, st.GetIdentifierProblems(), protocmp.Transform()); diff != "" {
		t.Errorf("GetStatus's identifier problems (-want +got):\n%s", diff)
	}
	for _, p := range st.GetProblems() {
		if strings.Contains(p.GetReason(), "иван") {
			t.Errorf("status names the candidate's value: %v", p)
		}
	}
}
