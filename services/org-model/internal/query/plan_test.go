package query

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
	"github.com/orgsync/orgsync/services/org-model/internal/desired"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

var planNow = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// newPlanServer is a query server over a model of a small company (a unit, workers E1…En).
func newPlanServer(t *testing.T, workers int) *Server {
	t.Helper()
	pol, err := policy.Parse("live.yaml", []byte("upnDomains: [corp.example.com]\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := model.New(pol)
	m.Apply(&orgsyncv1.HREvent{EventId: "unit-sales", Payload: &orgsyncv1.HREvent_OrgUnit{OrgUnit: &orgsyncv1.OrgUnit{OrgUnitId: "sales", Name: "Sales"}}}, planNow)
	for i := 1; i <= workers; i++ {
		id := fmt.Sprintf("E%d", i)
		m.Apply(&orgsyncv1.HREvent{EventId: "hire-" + id, OccurredAt: timestamppb.New(planNow), Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{
			WorkerId: id, Name: &orgsyncv1.PersonName{GivenName: "Given" + id, FamilyName: "Family"}, OrgUnitId: "sales", JobTitle: "Engineer",
			EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, StartDate: &orgsyncv1.Date{Year: 2020, Month: 1, Day: 1},
		}}}, planNow)
	}
	return NewServer(Deps{Model: m, Publisher: desired.NewPublisher(nil), Results: NewResults(), Clock: clock.NewFake(planNow)})
}

// TestPlanStopsAtTheCostLimit: a policy whose rule costs too much for the data in the model ends
// the plan with InvalidArgument naming the rule and the limit, for the first worker it meets.
func TestPlanStopsAtTheCostLimit(t *testing.T) {
	s := newPlanServer(t, 20)
	for _, tc := range []struct {
		name, policy string
		events       []*orgsyncv1.HREvent
		want         []string
	}{
		{
			name:   "cost limit",
			policy: "groups:\n  rules:\n    - key: r\n      filter: 'worker.job_title.replace(\"x\", \"yy\").replace(\"y\", \"zz\") == \"\"'\n",
			events: []*orgsyncv1.HREvent{{EventId: "long", Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{
				WorkerId: "E1", OrgUnitId: "sales", JobTitle: strings.Repeat("x", 5_000_000),
				EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, StartDate: &orgsyncv1.Date{Year: 2020, Month: 1, Day: 1},
			}}}},
			want: []string{"plan stopped", "policy_yaml:5", "groups.rules[r].filter", "CEL cost limit exceeded", "1000000"},
		},
		{
			name:   "evaluation timeout",
			policy: "groups:\n  rules:\n    - key: words\n      filter: 'worker.job_title.split(\" \").exists(w, w == \"z\")'\n",
			events: []*orgsyncv1.HREvent{{EventId: "many-words", Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{
				WorkerId: "E2", OrgUnitId: "sales", JobTitle: strings.Repeat("x ", 500_000),
				EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, StartDate: &orgsyncv1.Date{Year: 2020, Month: 1, Day: 1},
			}}}},
			want: []string{"plan stopped", "policy_yaml:5", "groups.rules[words].filter", "CEL evaluation timeout", policy.EvalTimeout.String()},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The HR change arrives in the live model; the plan is of the new policy.
			live := newPlanServer(t, 20)
			for _, event := range tc.events {
				live.Model.Apply(event, planNow)
			}
			_, err := live.Plan(t.Context(), &orgsyncv1.PlanRequest{PolicyYaml: "upnDomains: [corp.example.com]\n" + tc.policy})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("Plan: %v, want InvalidArgument", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(status.Convert(err).Message(), want) {
					t.Errorf("message %q does not contain %q", status.Convert(err).Message(), want)
				}
			}
			// The same policy, planned through events on the cheap live model, is fine.
			if _, err := s.Plan(t.Context(), &orgsyncv1.PlanRequest{PolicyYaml: "upnDomains: [corp.example.com]\n" + tc.policy}); err != nil {
				t.Errorf("plan over ordinary data: %v", err)
			}
		})
	}
}

// TestPolicyPlansRunOneAtATime: while one plan of a whole policy runs (held inside, after it took
// the slot), a second one is refused with ResourceExhausted; plans of HR events still run; once
// the first ends, a policy plan runs again.
func TestPolicyPlansRunOneAtATime(t *testing.T) {
	s := newPlanServer(t, 3)
	inside, release := make(chan struct{}), make(chan struct{})
	s.planning = func(ctx context.Context) {
		if ctx.Value(holdKey{}) == nil {
			return
		}
		close(inside)
		<-release
	}
	req := &orgsyncv1.PlanRequest{PolicyYaml: "upnDomains: [corp.example.com]\ngroups: {rules: [{key: everyone, filter: 'true'}]}\n"}
	first := make(chan error, 1)
	go func() {
		resp, err := s.Plan(context.WithValue(t.Context(), holdKey{}, true), req)
		if err == nil && len(resp.GetChanges()) == 0 {
			err = fmt.Errorf("the first plan found no changes")
		}
		first <- err
	}()
	<-inside

	_, err := s.Plan(t.Context(), req)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "one at a time") {
		t.Fatalf("second policy plan: %v, want ResourceExhausted saying plans run one at a time", err)
	}
	if _, err := s.Plan(t.Context(), &orgsyncv1.PlanRequest{}); err != nil {
		t.Errorf("a plan without a policy while a policy plan runs: %v", err)
	}

	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first plan: %v", err)
	}
	if _, err := s.Plan(t.Context(), req); err != nil {
		t.Errorf("policy plan after the first ended: %v", err)
	}
}

type holdKey struct{}

// TestPlanTimeout: a plan that outlives PLAN_TIMEOUT, or whose caller goes away, ends with
// DeadlineExceeded or Canceled without finishing its work.
func TestPlanTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(s *Server, cancel context.CancelFunc)
		want codes.Code
		msg  string
	}{
		{"plan timeout", func(s *Server, _ context.CancelFunc) { s.PlanTimeout = time.Nanosecond }, codes.DeadlineExceeded, "PLAN_TIMEOUT"},
		{"caller went away", func(_ *Server, cancel context.CancelFunc) { cancel() }, codes.Canceled, "caller went away"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPlanServer(t, 3)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			// Wait inside the plan until its context is done, whatever ends it.
			s.planning = func(ctx context.Context) { <-ctx.Done() }
			tc.stop(s, cancel)
			_, err := s.Plan(ctx, &orgsyncv1.PlanRequest{PolicyYaml: "upnDomains: [corp.example.com]\n"})
			if status.Code(err) != tc.want || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("Plan: %v, want %s mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
}
