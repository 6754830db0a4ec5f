package service

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/orgsync/orgsync/pkg/converge"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/writer"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

const (
	licenseSku   = "6fd2c87f-b296-42f0-b197-1e91e994b900"
	licensePlanA = "efb87545-963c-4e0d-99df-69c6916d9eb0"
	licensePlanB = "57ff2da0-773e-42df-b2af-ffb7a2317929"
)

// licensedGroup is the desired group unit-sales giving licenses.
func licensedGroup(revision uint64, licenses ...*orgsyncv1.GroupLicense) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: "unit-sales", Revision: revision,
		Object: &orgsyncv1.DesiredObject_Group{Group: &orgsyncv1.DesiredGroup{
			GroupKey: "unit-sales", Kind: orgsyncv1.GroupKind_GROUP_KIND_ORG_UNIT, DisplayName: "Org - Sales",
			MailNickname: "orgsync-unit-sales", ManageLicenses: true, Licenses: licenses,
		}}}
}

// TestLicencesThroughTheGroup runs group-based licensing through entra-writer and msgraph-sdk-go
// against the emulator with one prepaid unit: the unit group gets the policy's licence, members
// show it (or, over the prepaid count or without a usage location, an error that the group's
// result reports per worker), a licence changed behind orgsync's back is put back by the drift
// pass, and a licence taken out of the policy leaves the group.
func TestLicencesThroughTheGroup(t *testing.T) {
	natsSrv := streamtest.StartBare(t)
	emu := emulator.New(emulator.WithSubscribedSkus(emulator.SubscribedSku{
		SkuID: licenseSku, SkuPartNumber: "ENTERPRISEPACK", PrepaidUnits: 1, ServicePlanIDs: []string{licensePlanA, licensePlanB},
	}))
	graphSrv := httptest.NewServer(emu)
	t.Cleanup(graphSrv.Close)
	p := pipeline{emulator: emu, js: natsSrv.JS, pub: stream.NewPublisher(natsSrv.JS), natsURL: natsSrv.ClientURL(), graphURL: graphSrv.URL + "/v1.0"}
	svc := p.startWriterWith(t, nil, nil)

	withoutPlanB := &orgsyncv1.GroupLicense{SkuId: licenseSku, DisabledPlanIds: []string{licensePlanB}}
	objs := []*orgsyncv1.DesiredObject{licensedGroup(1, withoutPlanB)}
	for workerID, location := range map[string]string{"E1": "GB", "E2": "GB", "E3": ""} {
		u := desiredUser(workerID, workerID+"@corp.example.test", "", 1)
		if location != "" {
			u.GetUser().Attributes = map[string]string{"usageLocation": location}
		}
		objs = append(objs, u, &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: "unit-sales/" + workerID, Revision: 1,
			Object: &orgsyncv1.DesiredObject_Membership{Membership: &orgsyncv1.DesiredMembership{
				GroupKey: "unit-sales", MemberKind: orgsyncv1.MemberKind_MEMBER_KIND_USER, MemberKey: workerID}}})
	}
	p.publish(t, objs)
	p.waitForResults(t, len(objs), time.Minute)
	// The group's newest result may be the re-read of its members in error after they were
	// added (TestLicenceErrorsFollowTheMembers), so the licence's write is counted in Graph.
	if got := emu.Stats().Operations[emulator.OpGroupAssignLicense]; got != 1 {
		t.Fatalf("%d assignLicense requests, want 1", got)
	}
	group, _ := emu.GroupByMailNickname("orgsync-unit-sales")
	if got := emu.GroupLicenses(group.ID()); !slices.Equal(got, []string{licenseSku}) {
		t.Errorf("the group's licences = %v, want [%s]", got, licenseSku)
	}

	// The group converges again (a new revision): its result now reports the members in error,
	// computed from the members the group has.
	p.publish(t, []*orgsyncv1.DesiredObject{licensedGroup(2, withoutPlanB)})
	results := p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		return r["entra.group.unit-sales"].GetRevision() == 2
	})
	byWorker := map[string]orgsyncv1.LicenseAssignmentError{}
	for _, licenseError := range results["entra.group.unit-sales"].GetLicenseErrors() {
		if licenseError.GetSkuId() != licenseSku || licenseError.GetMemberObjectId() == "" {
			t.Errorf("licence error %v names no member or another SKU", licenseError)
		}
		byWorker[licenseError.GetWorkerId()] = licenseError.GetError()
	}
	if byWorker["E3"] != orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_PROHIBITED_IN_USAGE_LOCATION_VIOLATION {
		t.Errorf("E3, without usageLocation: %v, want PROHIBITED_IN_USAGE_LOCATION_VIOLATION (all errors: %v)", byWorker["E3"], byWorker)
	}
	counted := 0
	for _, workerID := range []string{"E1", "E2"} {
		account, _ := emu.UserByEmployeeID(workerID)
		states := emu.LicenseStates(account.ID())
		switch {
		case byWorker[workerID] == orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_COUNT_VIOLATION:
			counted++
		case len(states) == 1 && states[0].State == "Active" && slices.Equal(states[0].DisabledPlans, []string{licensePlanB}):
		default:
			t.Errorf("%s: error %v, states %+v; want the licence active without plan B, or a CountViolation", workerID, byWorker[workerID], states)
		}
	}
	if counted != 1 || len(byWorker) != 2 {
		t.Errorf("errors %v: want one CountViolation (one prepaid unit for two members) and E3's", byWorker)
	}

	// Behind orgsync's back: the plan is enabled again. The first drift pass reads everything; the
	// edit, in the next round, is found and put back.
	if _, err := svc.ReconcileDrift(t.Context()); err != nil {
		t.Fatal(err)
	}
	graphCall(t, p, "POST", "/groups/"+group.ID()+"/assignLicense", map[string]any{
		"addLicenses": []any{map[string]any{"skuId": licenseSku, "disabledPlans": []any{}}}, "removeLicenses": []any{}})
	findings, err := svc.ReconcileDrift(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := findingKeys(findings); !slices.Contains(got, "group unit-sales corrected=true") {
		t.Errorf("drift findings %v, want the group's licences corrected", got)
	}
	read := graphCall(t, p, "GET", "/groups/"+group.ID()+"?$select=id,assignedLicenses", nil)
	if licenses, _ := read["assignedLicenses"].([]any); len(licenses) != 1 || !slices.Contains(licenses[0].(map[string]any)["disabledPlans"].([]any), any(licensePlanB)) {
		t.Errorf("after the drift pass assignedLicenses = %v, want the SKU without plan B again", read["assignedLicenses"])
	}

	// The policy no longer names the licence: it leaves the group, and its members.
	p.publish(t, []*orgsyncv1.DesiredObject{licensedGroup(3)})
	results = p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		return r["entra.group.unit-sales"].GetRevision() == 3
	})
	if ops := results["entra.group.unit-sales"].GetOperations(); !slices.Contains(ops, writer.OpAssignLicenses) {
		t.Errorf("removal: operations %v, want %s", ops, writer.OpAssignLicenses)
	}
	if got := emu.GroupLicenses(group.ID()); len(got) != 0 {
		t.Errorf("licences left on the group: %v", got)
	}
	if got := emu.ConsumedUnits(licenseSku); got != 0 {
		t.Errorf("%d units still consumed", got)
	}
}

// TestUnknownLicenceIsReportedOnceAndParked: a policy naming a SKU the tenant has no subscription
// for is refused by Graph (400); the group's desired state is FAILED once, INVALID with Graph's
// code, parked on DEADLETTER, and not retried.
func TestUnknownLicenceIsReportedOnceAndParked(t *testing.T) {
	natsSrv := streamtest.StartBare(t)
	emu := emulator.New(emulator.WithSubscribedSkus(emulator.SubscribedSku{SkuID: licenseSku, PrepaidUnits: 5, ServicePlanIDs: []string{licensePlanA}}))
	graphSrv := httptest.NewServer(emu)
	t.Cleanup(graphSrv.Close)
	p := pipeline{emulator: emu, js: natsSrv.JS, pub: stream.NewPublisher(natsSrv.JS), natsURL: natsSrv.ClientURL(), graphURL: graphSrv.URL + "/v1.0"}
	p.startWriter(t, nil)

	p.publish(t, []*orgsyncv1.DesiredObject{licensedGroup(1, &orgsyncv1.GroupLicense{SkuId: "00000000-0000-4000-8000-00000000e3e3"})})
	results := p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		return r["entra.group.unit-sales"].GetOutcome() == orgsyncv1.Outcome_OUTCOME_FAILED
	})
	result := results["entra.group.unit-sales"]
	if result.GetErrorClass() != orgsyncv1.ErrorClass_ERROR_CLASS_INVALID || result.GetErrorCode() != "Request_BadRequest" {
		t.Errorf("result %v/%q, want INVALID Request_BadRequest", result.GetErrorClass(), result.GetErrorCode())
	}
	letters, err := converge.NewBox(p.js, orgsyncv1.Target_TARGET_ENTRA).List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 || letters[0].Path != "entra.group.unit-sales" {
		t.Errorf("dead letters %v, want the group", letters)
	}
	time.Sleep(2 * time.Second) // a retry, were there one, would come within the first backoffs
	if got := emu.Stats().Operations[emulator.OpGroupAssignLicense]; got != 1 {
		t.Errorf("%d assignLicense requests, want 1 (not retried)", got)
	}
}

// TestLicenceErrorsFollowTheMembers: members added to (or removed from) a licensed group after
// it converged show in (or leave) the group's licence errors on RESULTS without a new revision of
// the group, and without any write beyond the memberships' own; an error changed outside orgsync
// shows on the next drift pass, which writes nothing.
func TestLicenceErrorsFollowTheMembers(t *testing.T) {
	natsSrv := streamtest.StartBare(t)
	emu := emulator.New(emulator.WithSubscribedSkus(emulator.SubscribedSku{SkuID: licenseSku, PrepaidUnits: 1, ServicePlanIDs: []string{licensePlanA}}))
	graphSrv := httptest.NewServer(emu)
	t.Cleanup(graphSrv.Close)
	p := pipeline{emulator: emu, js: natsSrv.JS, pub: stream.NewPublisher(natsSrv.JS), natsURL: natsSrv.ClientURL(), graphURL: graphSrv.URL + "/v1.0"}
	svc := p.startWriterWith(t, nil, nil)
	membership := func(workerID string, revision uint64, tombstone bool) *orgsyncv1.DesiredObject {
		return &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: "unit-sales/" + workerID, Revision: revision, Tombstone: tombstone,
			Object: &orgsyncv1.DesiredObject_Membership{Membership: &orgsyncv1.DesiredMembership{
				GroupKey: "unit-sales", MemberKind: orgsyncv1.MemberKind_MEMBER_KIND_USER, MemberKey: workerID}}}
	}
	user := func(workerID, location string) *orgsyncv1.DesiredObject {
		u := desiredUser(workerID, workerID+"@corp.example.test", "", 1)
		if location != "" {
			u.GetUser().Attributes = map[string]string{"usageLocation": location}
		}
		return u
	}
	errorsOf := func(r *orgsyncv1.WriterResult) map[string]orgsyncv1.LicenseAssignmentError {
		byWorker := map[string]orgsyncv1.LicenseAssignmentError{}
		for _, e := range r.GetLicenseErrors() {
			byWorker[e.GetWorkerId()] = e.GetError()
		}
		return byWorker
	}

	// The group converges with E1, who takes the one prepaid unit.
	p.publish(t, []*orgsyncv1.DesiredObject{user("E1", "GB")})
	p.waitForResults(t, 1, 30*time.Second)
	p.publish(t, []*orgsyncv1.DesiredObject{licensedGroup(1, &orgsyncv1.GroupLicense{SkuId: licenseSku}), membership("E1", 1, false)})
	results := p.waitForResults(t, 3, 30*time.Second)
	if got := errorsOf(results["entra.group.unit-sales"]); len(got) != 0 {
		t.Fatalf("licence errors with E1 alone: %v", got)
	}

	// E2 (over the prepaid count) and E3 (no usage location) join; the group does not change.
	p.publish(t, []*orgsyncv1.DesiredObject{user("E2", "GB"), user("E3", "")})
	p.waitForResults(t, 5, 30*time.Second)
	writes := emu.Stats().SuccessfulWrites
	p.publish(t, []*orgsyncv1.DesiredObject{membership("E2", 1, false), membership("E3", 1, false)})
	results = p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		return len(errorsOf(r["entra.group.unit-sales"])) == 2
	})
	want := map[string]orgsyncv1.LicenseAssignmentError{
		"E2": orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_COUNT_VIOLATION,
		"E3": orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_PROHIBITED_IN_USAGE_LOCATION_VIOLATION,
	}
	group := results["entra.group.unit-sales"]
	if got := errorsOf(group); got["E2"] != want["E2"] || got["E3"] != want["E3"] {
		t.Errorf("licence errors after E2 and E3 joined: %v, want %v", got, want)
	}
	if group.GetRevision() != 1 || group.GetOutcome() != orgsyncv1.Outcome_OUTCOME_UNCHANGED || len(group.GetOperations()) != 0 {
		t.Errorf("the group's re-read result: revision %d, %v, operations %v; want revision 1, UNCHANGED, none", group.GetRevision(), group.GetOutcome(), group.GetOperations())
	}
	// The additions' own writes only: one bind of two members (or two adds), nothing for licences.
	if added := emu.Stats().SuccessfulWrites - writes; added < 1 || added > 2 {
		t.Errorf("%d writes for two memberships, want 1 or 2", added)
	}

	// E1 leaves the group: the unit frees up for E2; only E3's error stays.
	p.publish(t, []*orgsyncv1.DesiredObject{membership("E1", 2, true)})
	results = p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		return len(errorsOf(r["entra.group.unit-sales"])) == 1
	})
	if got := errorsOf(results["entra.group.unit-sales"]); got["E3"] != want["E3"] {
		t.Errorf("licence errors after E1 left: %v, want only E3's", got)
	}
	if got := emu.Stats().Operations[emulator.OpGroupAssignLicense]; got != 1 {
		t.Errorf("%d assignLicense requests, want the group's one", got)
	}

	// Outside orgsync, E3 is given a usage location: no member changes, the group does not
	// change, and the drift pass reads the errors again, with no write — E3 is now short of a
	// unit (E2 holds the one prepaid) rather than of a location.
	e3, _ := emu.UserByEmployeeID("E3")
	graphCall(t, p, "PATCH", "/users/"+e3.ID(), map[string]any{"usageLocation": "KE"})
	writes = emu.Stats().SuccessfulWrites
	if _, err := svc.ReconcileDrift(t.Context()); err != nil {
		t.Fatal(err)
	}
	results = p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool {
		got := errorsOf(r["entra.group.unit-sales"])
		return len(got) == 1 && got["E3"] == orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_COUNT_VIOLATION
	})
	if group := results["entra.group.unit-sales"]; group.GetRevision() != 1 || len(group.GetOperations()) != 0 {
		t.Errorf("the group's result after the drift pass: revision %d, operations %v", group.GetRevision(), group.GetOperations())
	}
	if added := emu.Stats().SuccessfulWrites - writes; added != 0 {
		t.Errorf("the drift pass made %d writes, want none", added)
	}
}
