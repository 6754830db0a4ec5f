package service

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
)

func TestQueryAPI(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	active := orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE
	h.hr(t, "u1", unit("commercial", "Commercial", ""))
	h.hr(t, "u2", unit("sales", "Sales", "commercial"))
	h.hr(t, "w1", worker("E1", "sales", active, t0))
	h.hr(t, "w2", dated(worker("E2", "sales", active, t0), func(w *orgsyncv1.Worker) { w.ManagerWorkerId = "E404" }))
	h.hr(t, "w3", worker("E3", "nowhere", active, t0))
	svc, _ := h.start(t, withClock(clock.NewFake(t0)), withPolicy(t, `
upnDomains: [corp.example.com]
groups:
  rollup: {enabled: true}
  rules:
    - {key: everyone, filter: 'true'}
`))
	api := h.client(t, svc)

	explain, err := api.ExplainMembership(t.Context(), &orgsyncv1.ExplainMembershipRequest{GroupKey: "all-commercial", WorkerId: "E1"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&orgsyncv1.ExplainMembershipResponse{Member: true, GroupPath: []string{"all-commercial", "all-sales", "unit-sales"},
		Reason: "HR places the worker in org unit sales (Commercial > Sales)", ReasonKind: orgsyncv1.MembershipReason_MEMBERSHIP_REASON_ORG_UNIT}, explain, protocmp.Transform()); diff != "" {
		t.Errorf("explain (-want +got):\n%s", diff)
	}

	tree, err := api.GetOrgTree(t.Context(), &orgsyncv1.GetOrgTreeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantTree := &orgsyncv1.GetOrgTreeResponse{Roots: []*orgsyncv1.OrgTreeNode{{OrgUnitId: "commercial", Name: "Commercial",
		Children: []*orgsyncv1.OrgTreeNode{{OrgUnitId: "sales", Name: "Sales", WorkerCount: 2}}}}}
	if diff := cmp.Diff(wantTree, tree, protocmp.Transform()); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}

	unitResp, err := api.GetOrgUnit(t.Context(), &orgsyncv1.GetOrgUnitRequest{OrgUnitId: "sales"})
	if err != nil || !cmp.Equal(unitResp.GetPath(), []string{"Commercial", "Sales"}) || !cmp.Equal(unitResp.GetGroupKeys(), []string{"unit-sales", "all-sales"}) {
		t.Errorf("unit: %v, %v", unitResp, err)
	}
	if _, err := api.GetOrgUnit(t.Context(), &orgsyncv1.GetOrgUnitRequest{OrgUnitId: "none"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown unit: %v", err)
	}

	workers, err := api.ListWorkers(t.Context(), &orgsyncv1.ListWorkersRequest{PageSize: 2})
	if err != nil || len(workers.GetWorkers()) != 2 || workers.GetNextPageToken() != "E2" || workers.GetWorkers()[0].GetPhase() != orgsyncv1.LifecyclePhase_LIFECYCLE_PHASE_ACTIVE {
		t.Errorf("workers: %v, %v", workers, err)
	}

	statusResp, err := api.GetStatus(t.Context(), &orgsyncv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantProblems := []*orgsyncv1.StatusProblem{
		{Subject: "worker E2", Reason: `manager "E404" is not known yet`},
		{Subject: "worker E3", Reason: `org unit "nowhere" is not known yet`},
	}
	if diff := cmp.Diff(wantProblems, statusResp.GetProblems(), protocmp.Transform()); diff != "" || !statusResp.GetCaughtUp() || statusResp.GetWorkers() != 3 {
		t.Errorf("status %v; problems (-want +got):\n%s", statusResp, diff)
	}

	// Plan an HR payload: a leaver. Nothing is applied.
	before := h.directoryLastSeq(t)
	plan, err := api.Plan(t.Context(), &orgsyncv1.PlanRequest{Events: []*orgsyncv1.HREvent{
		{EventId: "plan-1", OccurredAt: timestamppb.New(t0), Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{
			WorkerId: "E1", OrgUnitId: "sales", EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED,
			Name: &orgsyncv1.PersonName{GivenName: "Jane", FamilyName: "Doe E1"}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, c := range plan.GetChanges() {
		actions = append(actions, c.GetAction().String()+" "+c.GetPath())
	}
	wantActions := []string{"CHANGE_ACTION_DELETE entra.member.rule-everyone.E1", "CHANGE_ACTION_DELETE entra.member.unit-sales.E1", "CHANGE_ACTION_DISABLE entra.user.E1"}
	if diff := cmp.Diff(wantActions, slices.Sorted(slices.Values(actions))); diff != "" || plan.GetDisables() != 1 || plan.GetRemovals() != 2 {
		t.Errorf("plan %d disables %d removals (-want +got):\n%s", plan.GetDisables(), plan.GetRemovals(), diff)
	}
	// Plan a policy: roll-up groups off, a new rule.
	plan, err = api.Plan(t.Context(), &orgsyncv1.PlanRequest{PolicyYaml: "upnDomains: [corp.example.com]\ngroups: {rules: [{key: everyone, filter: 'true'}]}\n"})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(plan.GetChanges()); got != 5 || plan.GetRemovals() != 5 {
		t.Errorf("policy plan: %d changes, %d removals; want the 2 roll-up groups and 3 nestings deleted", got, plan.GetRemovals())
	}
	if _, err := api.Plan(t.Context(), &orgsyncv1.PlanRequest{PolicyYaml: "scope: 'worker.nope'\n"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad policy plan: %v", err)
	}
	if got := h.directoryLastSeq(t); got != before {
		t.Errorf("Plan published %d messages", got-before)
	}
}

func TestADTargetWhenThePolicyMapsAD(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	h.hr(t, "u1", unit("sales", "Sales", ""))
	h.hr(t, "w1", worker("E1", "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, t0))
	h.start(t, withClock(clock.NewFake(t0)), withPolicy(t, "upnDomains: [corp.example.com]\nmapping: {ad: {title: '\"AD \" + worker.worker_id'}}\n"))
	dir := h.directory(t)
	user := dir["dir.ad.user.E1"].GetUser()
	if diff := cmp.Diff(map[string]string{"sAMAccountName": "jdoee1", "title": "AD E1"}, user.GetAttributes()); diff != "" {
		t.Errorf("AD user attributes (-want +got):\n%s", diff)
	}
	for _, subject := range []string{"dir.ad.group.unit-sales", "dir.ad.member.unit-sales.E1", "dir.entra.user.E1"} {
		if dir[subject] == nil {
			t.Errorf("%s not published", subject)
		}
	}
}
