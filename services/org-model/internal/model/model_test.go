package model

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

const (
	entra      = orgsyncv1.Target_TARGET_ENTRA
	active     = orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE
	terminated = orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED
	employee   = orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_EMPLOYEE
	contractor = orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_CONTRACTOR
)

func mustPolicy(t testing.TB, yaml string) *policy.Policy {
	t.Helper()
	pol, err := policy.Parse("test-policy.yaml", []byte("upnDomains: [corp.example.com]\n"+yaml))
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func unitEvent(id, name, parent, manager string) *orgsyncv1.HREvent {
	return &orgsyncv1.HREvent{EventId: "unit-" + id, Payload: &orgsyncv1.HREvent_OrgUnit{OrgUnit: &orgsyncv1.OrgUnit{
		OrgUnitId: id, Name: name, ParentOrgUnitId: parent, ManagerWorkerId: manager,
	}}}
}

func workerEvent(at time.Time, w *orgsyncv1.Worker) *orgsyncv1.HREvent {
	return &orgsyncv1.HREvent{EventId: "ev-" + w.GetWorkerId() + "-" + at.Format(time.RFC3339), OccurredAt: timestamppb.New(at),
		Payload: &orgsyncv1.HREvent_Worker{Worker: w}}
}

func date(s string) *orgsyncv1.Date {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return &orgsyncv1.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// person builds a worker record; edit the fields the case needs.
func person(id, given, family, unit string, edits ...func(*orgsyncv1.Worker)) *orgsyncv1.Worker {
	w := &orgsyncv1.Worker{
		WorkerId: id, Name: &orgsyncv1.PersonName{GivenName: given, FamilyName: family}, OrgUnitId: unit,
		JobTitle: "Engineer", Location: "London", EmploymentStatus: active, EmploymentType: employee,
		HireDate: date("2025-01-06"), StartDate: date("2025-01-06"),
	}
	for _, edit := range edits {
		edit(w)
	}
	return w
}

func starting(d string) func(*orgsyncv1.Worker) {
	return func(w *orgsyncv1.Worker) { w.HireDate, w.StartDate = date(d), date(d) }
}
func ending(d string) func(*orgsyncv1.Worker) {
	return func(w *orgsyncv1.Worker) { w.EndDate = date(d) }
}
func managedBy(id string) func(*orgsyncv1.Worker) {
	return func(w *orgsyncv1.Worker) { w.ManagerWorkerId = id }
}
func status(s orgsyncv1.EmploymentStatus) func(*orgsyncv1.Worker) {
	return func(w *orgsyncv1.Worker) { w.EmploymentStatus = s }
}

// activeOmitted marks a record as hr-ingest marks a SCIM update that did not send `active`
// (and publishes as ACTIVE).
func activeOmitted(w *orgsyncv1.Worker) {
	w.EmploymentStatus = active
	w.EmploymentStatusOmitted = true
}
func typed(t orgsyncv1.EmploymentType) func(*orgsyncv1.Worker) {
	return func(w *orgsyncv1.Worker) { w.EmploymentType = t }
}
func titled(title string) func(*orgsyncv1.Worker) {
	return func(w *orgsyncv1.Worker) { w.JobTitle = title }
}

// account summarises one worker's desired Entra state.
type account struct {
	Exists    bool
	Enabled   bool
	UPN       string
	Title     string
	Office    string
	Type      string
	Manager   string
	LeaveDate string
	Groups    string
}

func accountOf(m *Model, workerID string) account {
	user := m.Object(UserRef(orgsyncv1.Target_TARGET_ENTRA, workerID)).GetUser()
	if user == nil {
		return account{}
	}
	groups := m.GroupKeysOf(entra, workerID)
	sort.Strings(groups)
	a := account{Exists: true, Enabled: user.GetAccountEnabled(), UPN: user.GetUserPrincipalName(), Title: user.GetJobTitle(), Office: user.GetOfficeLocation(),
		Type: user.GetEmployeeType(), Manager: user.GetManagerWorkerId(), Groups: strings.Join(groups, " ")}
	if user.GetEmployeeLeaveDateTime() != nil {
		a.LeaveDate = user.GetEmployeeLeaveDateTime().AsTime().Format(time.RFC3339)
	}
	return a
}

type step struct {
	at     string
	event  *orgsyncv1.HREvent // nil: only time passes
	worker string
	want   account
	// wantNextDue, when set, is when the model must say the next transition falls due.
	wantNextDue string
}

func TestLifecycle(t *testing.T) {
	company := []*orgsyncv1.HREvent{
		unitEvent("company", "Example Ltd", "", "E0"),
		unitEvent("sales", "Sales", "company", "E1"),
		unitEvent("finance", "Finance", "company", ""),
	}
	enabledInSales := account{Exists: true, Enabled: true, UPN: "jane.doe@corp.example.com", Title: "Engineer", Office: "London", Type: "Employee", Groups: "unit-sales"}
	with := func(a account, edit func(*account)) account { edit(&a); return a }
	tests := []struct {
		name   string
		policy string
		steps  []step
	}{
		{
			name: "hire with a start date in the past is enabled and in the unit's group at once",
			steps: []step{
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales")), worker: "E9", want: enabledInSales},
			},
		},
		{
			name:   "future-dated hire is pre-created disabled N days ahead and enabled on the start date",
			policy: "timezone: Europe/London\nlifecycle: {preCreateDays: 5}\n",
			steps: []step{
				{at: "2026-05-01T09:00:00Z", event: workerEvent(at("2026-05-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales", starting("2026-06-01"))),
					worker: "E9", want: account{}, wantNextDue: "2026-05-26T23:00:00Z"}, // 27 May 00:00 BST
				{at: "2026-05-26T22:59:59Z", worker: "E9", want: account{}},
				{at: "2026-05-26T23:00:00Z", worker: "E9", want: with(enabledInSales, func(a *account) { a.Enabled, a.Groups = false, "" }),
					wantNextDue: "2026-05-31T23:00:00Z"},
				{at: "2026-05-31T23:00:00Z", worker: "E9", want: enabledInSales},
			},
		},
		{
			name: "mover: unit, manager, title and location follow at the effective date",
			steps: []step{
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E1", "Sam", "Boss", "sales")), worker: "E1",
					want: account{Exists: true, Enabled: true, UPN: "sam.boss@corp.example.com", Title: "Engineer", Office: "London", Type: "Employee", Groups: "unit-sales"}},
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales")), worker: "E9", want: enabledInSales},
				// Sent on 2 March, effective on 1 April.
				{at: "2026-03-02T09:00:00Z", event: workerEvent(at("2026-04-01T00:00:00Z"), person("E9", "Jane", "Doe", "finance", titled("Analyst"), managedBy("E1"), func(w *orgsyncv1.Worker) { w.Location = "Paris" })),
					worker: "E9", want: enabledInSales, wantNextDue: "2026-04-01T00:00:00Z"},
				{at: "2026-04-01T00:00:00Z", worker: "E9", want: with(enabledInSales, func(a *account) { a.Groups, a.Title, a.Manager, a.Office = "unit-finance", "Analyst", "E1", "Paris" })},
			},
		},
		{
			name:   "leaver is disabled after the end date and loses memberships after the grace period",
			policy: "lifecycle: {membershipGrace: 7d}\n",
			steps: []step{
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales", ending("2026-03-31"))),
					worker: "E9", want: with(enabledInSales, func(a *account) { a.LeaveDate = "2026-04-01T00:00:00Z" }), wantNextDue: "2026-04-01T00:00:00Z"},
				{at: "2026-03-31T23:59:59Z", worker: "E9", want: with(enabledInSales, func(a *account) { a.LeaveDate = "2026-04-01T00:00:00Z" })},
				{at: "2026-04-01T00:00:00Z", worker: "E9", want: with(enabledInSales, func(a *account) { a.Enabled, a.LeaveDate = false, "2026-04-01T00:00:00Z" }),
					wantNextDue: "2026-04-08T00:00:00Z"},
				{at: "2026-04-08T00:00:00Z", worker: "E9", want: with(enabledInSales, func(a *account) { a.Enabled, a.LeaveDate, a.Groups = false, "2026-04-01T00:00:00Z", "" })},
			},
		},
		{
			name:   "leaver with leaveDateOnly keeps the account enabled and only sets the leave date",
			policy: "lifecycle: {leaverMode: leaveDateOnly, disableAt: startOfEndDate}\n",
			steps: []step{
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales", ending("2026-03-31"))),
					worker: "E9", want: with(enabledInSales, func(a *account) { a.LeaveDate = "2026-03-31T00:00:00Z" })},
				{at: "2026-03-31T00:00:00Z", worker: "E9", want: with(enabledInSales, func(a *account) { a.LeaveDate, a.Groups = "2026-03-31T00:00:00Z", "" })},
			},
		},
		{
			name: "termination without an end date disables at once",
			steps: []step{
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales")), worker: "E9", want: enabledInSales},
				{at: "2026-03-02T09:00:00Z", event: workerEvent(at("2026-03-02T09:00:00Z"), person("E9", "Jane", "Doe", "sales", status(terminated))),
					worker: "E9", want: with(enabledInSales, func(a *account) { a.Enabled, a.Groups, a.LeaveDate = false, "", "2026-03-02T09:00:00Z" })},
			},
		},
		{
			name: "an update that omits active keeps the status: it neither disables nor re-enables",
			steps: []step{
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales")), worker: "E9", want: enabledInSales},
				{at: "2026-03-02T09:00:00Z", event: workerEvent(at("2026-03-02T09:00:00Z"), person("E9", "Jane", "Doe", "sales", activeOmitted)), worker: "E9", want: enabledInSales},
				{at: "2026-03-03T09:00:00Z", event: workerEvent(at("2026-03-03T09:00:00Z"), person("E9", "Jane", "Doe", "sales", status(terminated))),
					worker: "E9", want: with(enabledInSales, func(a *account) { a.Enabled, a.Groups, a.LeaveDate = false, "", "2026-03-03T09:00:00Z" })},
				{at: "2026-03-04T09:00:00Z", event: workerEvent(at("2026-03-04T09:00:00Z"), person("E9", "Jane", "Doe", "sales", activeOmitted)),
					worker: "E9", want: with(enabledInSales, func(a *account) { a.Enabled, a.Groups, a.LeaveDate = false, "", "2026-03-03T09:00:00Z" })},
			},
		},
		{
			name: "termination rescinded before its date never disables",
			steps: []step{
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales", ending("2026-03-31"))),
					worker: "E9", want: with(enabledInSales, func(a *account) { a.LeaveDate = "2026-04-01T00:00:00Z" })},
				{at: "2026-03-20T09:00:00Z", event: workerEvent(at("2026-03-20T09:00:00Z"), person("E9", "Jane", "Doe", "sales")), worker: "E9", want: enabledInSales},
				{at: "2026-04-02T00:00:00Z", worker: "E9", want: enabledInSales},
			},
		},
		{
			name: "rehire with the same worker id re-enables the same account on the new start date",
			steps: []step{
				{at: "2026-01-01T09:00:00Z", event: workerEvent(at("2026-01-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales", ending("2026-01-31"))), worker: "E9",
					want: with(enabledInSales, func(a *account) { a.LeaveDate = "2026-02-01T00:00:00Z" })},
				{at: "2026-02-01T00:00:00Z", worker: "E9", want: with(enabledInSales, func(a *account) { a.Enabled, a.Groups, a.LeaveDate = false, "", "2026-02-01T00:00:00Z" })},
				// Another Jane Doe takes the next UPN meanwhile.
				{at: "2026-02-10T09:00:00Z", event: workerEvent(at("2026-02-10T09:00:00Z"), person("E10", "Jane", "Doe", "finance")), worker: "E10",
					want: with(enabledInSales, func(a *account) { a.UPN, a.Groups = "jane.doe2@corp.example.com", "unit-finance" })},
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "finance", starting("2026-04-01"), titled("Analyst"))),
					worker: "E9", want: with(enabledInSales, func(a *account) { a.Enabled, a.Groups, a.Title = false, "", "Analyst" })},
				{at: "2026-04-01T00:00:00Z", worker: "E9", want: with(enabledInSales, func(a *account) { a.Groups, a.Title = "unit-finance", "Analyst" })},
			},
		},
		{
			name: "employee to contractor conversion keeps the account",
			steps: []step{
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales")), worker: "E9", want: enabledInSales},
				{at: "2026-03-02T09:00:00Z", event: workerEvent(at("2026-03-02T09:00:00Z"), person("E9", "Jane", "Doe", "sales", typed(contractor))), worker: "E9",
					want: with(enabledInSales, func(a *account) { a.Type = "Contractor" })},
			},
		},
		{
			name:   "manager leaving before the reports: links move up to the manager's manager and the manager group follows",
			policy: "groups: {managers: {enabled: true}}\n",
			steps: []step{
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E0", "Ceo", "Boss", "company")), worker: "E0",
					want: account{Exists: true, Enabled: true, UPN: "ceo.boss@corp.example.com", Title: "Engineer", Office: "London", Type: "Employee", Groups: "managers-units unit-company"}},
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E1", "Sam", "Lead", "sales", managedBy("E0"), ending("2026-03-15"))), worker: "E1",
					want: account{Exists: true, Enabled: true, UPN: "sam.lead@corp.example.com", Title: "Engineer", Office: "London", Type: "Employee", Manager: "E0",
						LeaveDate: "2026-03-16T00:00:00Z", Groups: "managers-units unit-sales"}},
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales", managedBy("E1"))), worker: "E9",
					want: with(enabledInSales, func(a *account) { a.Manager = "E1" })},
				{at: "2026-03-01T09:00:00Z", worker: "E1", want: account{Exists: true, Enabled: true, UPN: "sam.lead@corp.example.com", Title: "Engineer", Office: "London", Type: "Employee",
					Manager: "E0", LeaveDate: "2026-03-16T00:00:00Z", Groups: "managers-people managers-units unit-sales"}},
				{at: "2026-03-16T00:00:00Z", worker: "E9", want: with(enabledInSales, func(a *account) { a.Manager = "E0" })},
				{at: "2026-03-16T00:00:00Z", worker: "E1", want: account{Exists: true, Enabled: false, UPN: "sam.lead@corp.example.com", Title: "Engineer", Office: "London", Type: "Employee",
					Manager: "E0", LeaveDate: "2026-03-16T00:00:00Z"}},
				{at: "2026-03-16T00:00:00Z", worker: "E0", want: account{Exists: true, Enabled: true, UPN: "ceo.boss@corp.example.com", Title: "Engineer", Office: "London", Type: "Employee",
					Groups: "managers-units unit-company"}},
			},
		},
		{
			name: "a stale or redelivered event never overwrites a newer one",
			steps: []step{
				{at: "2026-03-01T10:00:00Z", event: workerEvent(at("2026-03-01T10:00:00Z"), person("E9", "Jane", "Doe", "finance")), worker: "E9",
					want: with(enabledInSales, func(a *account) { a.Groups = "unit-finance" })},
				{at: "2026-03-01T11:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales")), worker: "E9",
					want: with(enabledInSales, func(a *account) { a.Groups = "unit-finance" })},
			},
		},
		{
			name:   "a worker out of scope gets no account",
			policy: `scope: 'employment_type != "contractor"'` + "\n",
			steps: []step{
				{at: "2026-03-01T09:00:00Z", event: workerEvent(at("2026-03-01T09:00:00Z"), person("E9", "Jane", "Doe", "sales", typed(contractor))), worker: "E9", want: account{}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(mustPolicy(t, tc.policy))
			for _, event := range company {
				m.Apply(event, at(tc.steps[0].at))
			}
			for i, s := range tc.steps {
				now := at(s.at)
				if s.event != nil {
					m.Apply(s.event, now)
				} else {
					m.Advance(now)
				}
				if diff := cmp.Diff(s.want, accountOf(m, s.worker)); diff != "" {
					t.Errorf("step %d at %s, worker %s (-want +got):\n%s", i, s.at, s.worker, diff)
				}
				if s.wantNextDue != "" {
					if got := m.NextDue(); !got.Equal(at(s.wantNextDue)) {
						t.Errorf("step %d: next due %v, want %s", i, got, s.wantNextDue)
					}
				}
			}
		})
	}
}
