package model

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/identifier"
)

const ad = orgsyncv1.Target_TARGET_AD

func withEmail(email string) func(*orgsyncv1.Worker) {
	return func(w *orgsyncv1.Worker) { w.WorkEmail = email }
}

func TestWorkEmailWithDiacriticsYieldsValidIdentifiers(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	m := New(mustPolicy(t, "mapping: {ad: {title: 'worker.job_title'}}\n"), entra, ad)
	m.Apply(workerEvent(now, person("E1", "Renée", "Ødegård", "", withEmail("renée.ødegård@corp.example.com"))), now)
	entraUser := m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "E1")).GetUser()
	adUser := m.Object(UserRef(orgsyncv1.Target_TARGET_AD, "E1")).GetUser()
	got := map[string]string{
		"entra upn": entraUser.GetUserPrincipalName(), "entra mailNickname": entraUser.GetMailNickname(), "entra mail": entraUser.GetMail(),
		"ad upn": adUser.GetUserPrincipalName(), "ad sAMAccountName": adUser.GetAttributes()["sAMAccountName"],
	}
	want := map[string]string{
		"entra upn": "renee.odegard@corp.example.com", "entra mailNickname": "renee.odegard", "entra mail": "",
		"ad upn": "renee.odegard@corp.example.com", "ad sAMAccountName": "rodegard",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("identifiers (-want +got):\n%s", diff)
	}
	if !identifier.ValidUPN(entraUser.GetUserPrincipalName()) || !identifier.ValidMailNickname(entraUser.GetMailNickname()) {
		t.Errorf("identifiers not valid for Graph: %q, %q", entraUser.GetUserPrincipalName(), entraUser.GetMailNickname())
	}
	// The work e-mail Graph would refuse as mail is left out, and status says so without the address.
	problems := m.Problems()
	if len(problems) != 1 || problems[0].Subject != "worker E1" || !strings.Contains(problems[0].Reason, "mail left unset") || strings.Contains(problems[0].Reason, "ødegård") {
		t.Errorf("problems = %+v, want one about the unset mail, without the address", problems)
	}
}

func TestSAMAccountNameIsCutByCharacters(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	m := New(mustPolicy(t, "mapping: {ad: {title: 'worker.job_title'}}\nidentifiers:\n  sAMAccountName: ['worker.name.family_name']\n"), entra, ad)
	m.Apply(workerEvent(now, person("E1", "Иван", strings.Repeat("Ж", 25), "")), now)
	m.Apply(workerEvent(now, person("E2", "Иван", strings.Repeat("Ж", 25), "")), now)
	got := []string{m.Object(UserRef(orgsyncv1.Target_TARGET_AD, "E1")).GetUser().GetAttributes()["sAMAccountName"], m.Object(UserRef(orgsyncv1.Target_TARGET_AD, "E2")).GetUser().GetAttributes()["sAMAccountName"]}
	want := []string{strings.Repeat("ж", 20), strings.Repeat("ж", 19) + "2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sAMAccountNames (-want +got):\n%s", diff)
	}
}

func TestWorkerWithoutValidCandidateFailsWithoutBlockingReports(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	m := New(mustPolicy(t, "identifiers:\n  userPrincipalName: ['worker.work_email']\ngroups: {managers: {enabled: true}}\n"))
	m.Apply(unitEvent("u1", "Sales", "", ""), now)
	m.Apply(workerEvent(now, person("M1", "Иван", "Петров", "u1", withEmail("иван@corp.example.com"))), now)
	changes := m.Apply(workerEvent(now, person("R1", "Jane", "Doe", "u1", withEmail("jane.doe@corp.example.com"), managedBy("M1"))), now)

	if obj := m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "M1")); obj != nil {
		t.Errorf("a user is desired for the worker without a valid UPN: %v", obj)
	}
	if keys := m.GroupKeysOf(entra, "M1"); len(keys) != 0 {
		t.Errorf("memberships desired for the worker without an account: %v", keys)
	}
	wantProblem := IdentifierProblem{WorkerID: "M1", Target: entra, Property: identifier.PropertyUPN,
		Reason: "no valid candidate: candidate 1 (test-policy.yaml:3) has letters without an ASCII form, which Entra refuses"}
	if diff := cmp.Diff([]IdentifierProblem{wantProblem}, m.IdentifierProblems()); diff != "" {
		t.Errorf("identifier problems (-want +got):\n%s", diff)
	}
	if p, failed := m.FailedIdentifiers(entra, "M1"); !failed || p != wantProblem {
		t.Errorf("FailedIdentifiers(M1) = %+v, %v", p, failed)
	}
	for _, p := range m.Problems() {
		if strings.Contains(p.Reason, "иван") {
			t.Errorf("a problem names the candidate's value: %+v", p)
		}
	}
	if e := m.Explain(entra, GroupKey("u1"), "M1"); e.Member || !strings.Contains(e.Reason, "no account in entra") {
		t.Errorf("explain = %+v", e)
	}
	// The report gets an account now, without a link to a manager who has none.
	report := m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "R1")).GetUser()
	if report == nil || report.GetManagerWorkerId() != "" || !containsRef(changes, UserRef(orgsyncv1.Target_TARGET_ENTRA, "R1")) {
		t.Fatalf("report's user = %v (published: %v), want one without a manager link", report, containsRef(changes, UserRef(orgsyncv1.Target_TARGET_ENTRA, "R1")))
	}
	// Nothing retries the failed worker on its own: time passing changes nothing.
	if changes := m.Advance(now.Add(24 * time.Hour)); len(changes) != 0 {
		t.Errorf("time passing changed %d objects", len(changes))
	}
	// HR fixes the e-mail: the manager gets an account, and the report the link.
	later := now.Add(48 * time.Hour)
	changes = m.Apply(workerEvent(later, person("M1", "Ivan", "Petrov", "u1", withEmail("ivan.petrov@corp.example.com"))), later)
	if got := m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "M1")).GetUser().GetUserPrincipalName(); got != "ivan.petrov@corp.example.com" {
		t.Errorf("manager's UPN = %q", got)
	}
	if got := m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "R1")).GetUser().GetManagerWorkerId(); got != "M1" || !containsRef(changes, UserRef(orgsyncv1.Target_TARGET_ENTRA, "R1")) {
		t.Errorf("report's manager link = %q (republished: %v), want M1", got, containsRef(changes, UserRef(orgsyncv1.Target_TARGET_ENTRA, "R1")))
	}
	if problems := m.IdentifierProblems(); len(problems) != 0 {
		t.Errorf("identifier problems after the fix: %+v", problems)
	}
}

func containsRef(objects []*orgsyncv1.DesiredObject, ref Ref) bool {
	for _, obj := range objects {
		if RefOf(obj) == ref {
			return true
		}
	}
	return false
}

// replay builds a model as org-model does at start: recorded identifiers first, then the HR
// events without publishing, then everything computed once.
func replay(t *testing.T, policyYAML string, targets []orgsyncv1.Target, assignments []Assignment, held []HeldIdentifier, now time.Time, events ...*orgsyncv1.HREvent) *Model {
	t.Helper()
	m := New(mustPolicy(t, policyYAML), targets...)
	if dropped := m.RestoreIdentifiers(assignments, held); dropped != 0 {
		t.Fatalf("%d recorded assignments dropped", dropped)
	}
	for _, event := range events {
		m.Record(event, now)
	}
	m.ComputeAll(now)
	return m
}

func TestRecordedIdentifiersSurviveAPolicyChangeAndTrimmedHistory(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	first := New(mustPolicy(t, ""))
	jane := workerEvent(now, person("E1", "Jane", "Doe", ""))
	first.Apply(jane, now)
	first.Apply(workerEvent(now, person("E2", "John", "Roe", "")), now)
	assignments, held := first.TakeUnrecorded()
	if len(assignments) != 2 || len(held) != 0 {
		t.Fatalf("unrecorded = %+v, %+v; want the two assignments", assignments, held)
	}
	if again, _ := first.TakeUnrecorded(); len(again) != 0 {
		t.Errorf("assignments still unrecorded after being taken: %+v", again)
	}

	// A restart under a new UPN template, with E2's history trimmed away.
	newTemplate := "identifiers:\n  userPrincipalName: ['worker.name.family_name + \".\" + first_name']\n"
	m := replay(t, newTemplate, nil, assignments, held, now, jane, workerEvent(now, person("E3", "Doe", "Jane", "")))
	got := map[string]string{
		"E1": m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "E1")).GetUser().GetUserPrincipalName(),
		// E3 is new: the new template applies, and E2's recorded UPN is still E2's.
		"E3": m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "E3")).GetUser().GetUserPrincipalName(),
	}
	want := map[string]string{"E1": "jane.doe@corp.example.com", "E3": "jane.doe2@corp.example.com"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UPNs after the restart (-want +got):\n%s", diff)
	}
	if recorded, _ := m.TakeUnrecorded(); len(recorded) != 1 || recorded[0].WorkerID != "E3" {
		t.Errorf("recorded after the restart = %+v, want only E3's new assignment", recorded)
	}
}

func TestRegenerateOnNameChangeAcrossARestart(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	first := New(mustPolicy(t, ""))
	first.Apply(workerEvent(now, person("E1", "Jane", "Doe", "")), now)
	assignments, _ := first.TakeUnrecorded()
	// While org-model was down, HR renamed Jane.
	events := []*orgsyncv1.HREvent{workerEvent(now, person("E1", "Jane", "Doe", "")), workerEvent(now.Add(time.Hour), person("E1", "Jane", "Smith", ""))}
	for _, tc := range []struct{ policy, want string }{
		{"", "jane.doe@corp.example.com"},
		{"identifiers: {regenerate: never}\n", "jane.doe@corp.example.com"},
		{"identifiers: {regenerate: onNameChange}\n", "jane.smith@corp.example.com"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			m := replay(t, tc.policy, nil, assignments, nil, now.Add(2*time.Hour), events...)
			if got := m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "E1")).GetUser().GetUserPrincipalName(); got != tc.want {
				t.Errorf("UPN = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestHeldValueGivesTheNextCandidate(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	tests := []struct {
		name, property, value string
		target                orgsyncv1.Target
		wantUPN, wantSAM      string
	}{
		{name: "UPN held in Entra", target: entra, property: identifier.PropertyUPN, value: "Jane@corp.example.com", wantUPN: "jane.doe@corp.example.com"},
		{name: "mailNickname held in Entra", target: entra, property: identifier.PropertyMailNickname, value: "jane", wantUPN: "jane.doe@corp.example.com"},
		{name: "sAMAccountName held in AD", target: ad, property: identifier.PropertySAMAccountName, value: "jdoe", wantUPN: "jane@corp.example.com", wantSAM: "jdoe2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(mustPolicy(t, "mapping: {ad: {title: 'worker.job_title'}}\n"), entra, ad)
			m.Apply(workerEvent(now, person("E1", "Jane", "Doe", "", withEmail("jane@corp.example.com"))), now)
			m.TakeUnrecorded()
			changes, learnt := m.MarkHeld(tc.target, "E1", tc.property, tc.value, now)
			if !learnt {
				t.Fatal("MarkHeld learnt nothing")
			}
			ref := UserRef(tc.target, "E1")
			user := m.Object(ref).GetUser()
			if user.GetUserPrincipalName() != tc.wantUPN || user.GetAttributes()["sAMAccountName"] != tc.wantSAM || !containsRef(changes, ref) {
				t.Errorf("after MarkHeld: UPN %q sAMAccountName %q (republished %v), want %q %q",
					user.GetUserPrincipalName(), user.GetAttributes()["sAMAccountName"], containsRef(changes, ref), tc.wantUPN, tc.wantSAM)
			}
			assignments, held := m.TakeUnrecorded()
			wantHeld := []HeldIdentifier{{Target: tc.target, Property: tc.property, Value: strings.ToLower(tc.value)}}
			if diff := cmp.Diff(wantHeld, held); diff != "" || len(assignments) != 1 {
				t.Errorf("unrecorded: %+v; held (-want +got):\n%s", assignments, diff)
			}
			// The same result again (a redelivery) changes nothing.
			if changes, learnt := m.MarkHeld(tc.target, "E1", tc.property, tc.value, now); learnt || len(changes) != 0 {
				t.Errorf("a repeated MarkHeld changed %d objects, learnt %v", len(changes), learnt)
			}
			// After a restart, the held value is not tried again, for this worker or another.
			restarted := replay(t, "mapping: {ad: {title: 'worker.job_title'}}\n", []orgsyncv1.Target{entra, ad}, nil, held, now,
				workerEvent(now, person("E1", "Jane", "Doe", "", withEmail("jane@corp.example.com"))))
			if got := restarted.Object(ref).GetUser(); got.GetUserPrincipalName() != tc.wantUPN || got.GetAttributes()["sAMAccountName"] != tc.wantSAM {
				t.Errorf("after a restart without the assignment: UPN %q sAMAccountName %q", got.GetUserPrincipalName(), got.GetAttributes()["sAMAccountName"])
			}
		})
	}
}

func TestAdoptPublishedKeepsIdentifiersFromBeforeRecording(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	m := New(mustPolicy(t, "identifiers:\n  userPrincipalName: ['mailSafe(worker.worker_id)']\n"))
	published := &orgsyncv1.DesiredObject{Target: entra, Key: "E1", Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{
		WorkerId: "E1", UserPrincipalName: "Jane.Doe@corp.example.com", MailNickname: "jane.doe"}}}
	invalid := &orgsyncv1.DesiredObject{Target: entra, Key: "E2", Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{
		WorkerId: "E2", UserPrincipalName: "renée@corp.example.com", MailNickname: "renée"}}}
	if !m.AdoptPublished(published) || m.AdoptPublished(published) || m.AdoptPublished(invalid) {
		t.Fatal("AdoptPublished: want the valid user adopted once and the invalid one not")
	}
	m.Record(workerEvent(now, person("E1", "Jane", "Doe", "")), now)
	m.Record(workerEvent(now, person("E2", "Renée", "X", "")), now)
	m.ComputeAll(now)
	got := []string{m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "E1")).GetUser().GetUserPrincipalName(), m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "E2")).GetUser().GetUserPrincipalName()}
	if diff := cmp.Diff([]string{"jane.doe@corp.example.com", "e2@corp.example.com"}, got); diff != "" {
		t.Errorf("UPNs (-want +got):\n%s", diff)
	}
}

// TestPlanUnderANewTemplateRenamesNobody: the dry run of a changed policy (Plan's WithPolicy)
// keeps assigned identifiers and gives the new template only to workers without any, and
// records nothing of its own.
func TestPlanUnderANewTemplateRenamesNobody(t *testing.T) {
	now := at("2026-03-01T09:00:00Z")
	m := New(mustPolicy(t, ""))
	m.Apply(workerEvent(now, person("E1", "Jane", "Doe", "")), now)
	m.TakeUnrecorded()
	planned := m.WithPolicy(mustPolicy(t, "identifiers:\n  userPrincipalName: ['mailSafe(worker.worker_id)']\n"), now)
	planned.Apply(workerEvent(now, person("E2", "John", "Roe", "")), now)
	got := []string{planned.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "E1")).GetUser().GetUserPrincipalName(), planned.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, "E2")).GetUser().GetUserPrincipalName()}
	if diff := cmp.Diff([]string{"jane.doe@corp.example.com", "e2@corp.example.com"}, got); diff != "" {
		t.Errorf("planned UPNs (-want +got):\n%s", diff)
	}
	if assignments, held := m.TakeUnrecorded(); len(assignments) != 0 || len(held) != 0 {
		t.Errorf("the dry run left assignments to record in the model: %+v %+v", assignments, held)
	}
}
