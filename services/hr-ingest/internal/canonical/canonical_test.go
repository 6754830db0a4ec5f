package canonical

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
)

const hire = `{
  "type": "worker.created",
  "timestamp": "2026-02-20T09:00:00Z",
  "data": {
    "workerId": "E1001",
    "name": {"givenName": "Jane", "familyName": "Doe"},
    "workEmail": "jane.doe@example.com",
    "jobTitle": "Account Executive",
    "orgUnitId": "sales",
    "department": "Sales",
    "managerWorkerId": "E1000",
    "location": "London",
    "company": "Example Ltd",
    "costCenter": "CC-100",
    "employmentType": "employee",
    "hireDate": "2026-03-01",
    "startDate": "2026-03-01",
    "customAttributes": {"badge": "B-7"},
    "shirtSize": "M",
    "seniority": 3
  }
}`

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *orgsyncv1.HREvent
	}{
		{
			name: "hire",
			body: hire,
			want: &orgsyncv1.HREvent{
				OccurredAt: timestamppb.New(time.Date(2026, 2, 20, 9, 0, 0, 0, time.UTC)),
				Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{
					WorkerId:         "E1001",
					Name:             &orgsyncv1.PersonName{GivenName: "Jane", FamilyName: "Doe"},
					WorkEmail:        "jane.doe@example.com",
					JobTitle:         "Account Executive",
					OrgUnitId:        "sales",
					Department:       "Sales",
					ManagerWorkerId:  "E1000",
					Location:         "London",
					Company:          "Example Ltd",
					CostCenter:       "CC-100",
					EmploymentType:   orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_EMPLOYEE,
					EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
					HireDate:         &orgsyncv1.Date{Year: 2026, Month: 3, Day: 1},
					StartDate:        &orgsyncv1.Date{Year: 2026, Month: 3, Day: 1},
					CustomAttributes: map[string]string{"badge": "B-7", "shirtSize": "M", "seniority": "3"},
				}},
			},
		},
		{
			name: "org unit",
			body: `{"type":"org_unit.updated","data":{"orgUnitId":"sales","name":"Sales","parentOrgUnitId":"commercial"}}`,
			want: &orgsyncv1.HREvent{Payload: &orgsyncv1.HREvent_OrgUnit{OrgUnit: &orgsyncv1.OrgUnit{
				OrgUnitId: "sales", Name: "Sales", ParentOrgUnitId: "commercial",
			}}},
		},
		{
			name: "normalised",
			body: `{"type":"worker.updated","timestamp":"2026-03-01T10:00:00+01:00","data":{"workerId":"E2","name":{"givenName":"  Mary   Ann ","familyName":"Jose\u0301"},"workEmail":"Mary.Ann@Example.COM","phoneNumber":"+44 (20) 7946-0958"}}`,
			want: &orgsyncv1.HREvent{
				OccurredAt: timestamppb.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)),
				Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{
					WorkerId: "E2", Name: &orgsyncv1.PersonName{GivenName: "Mary Ann", FamilyName: "José"},
					WorkEmail: "mary.ann@example.com", PhoneNumber: "+442079460958",
					EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
				}},
			},
		},
		{
			name: "org unit deleted needs no name",
			body: `{"type":"org_unit.deleted","data":{"orgUnitId":"old"}}`,
			want: &orgsyncv1.HREvent{Payload: &orgsyncv1.HREvent_OrgUnit{OrgUnit: &orgsyncv1.OrgUnit{OrgUnitId: "old", Deleted: true}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body), time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseNormalisesLikeEverySource: canonical values go through the shared normaliser — a date
// with an offset is the day it is in the source's time zone, white space inside any text field
// is folded, e-mail lower-cased — as SCIM, BambooHR and CSV values are.
func TestParseNormalisesLikeEverySource(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	body := `{"type":"worker.updated","data":{"workerId":"E1","name":{"givenName":"  Jane ","familyName":"Doe"},
		"jobTitle":"Account    Executive","department":" Sales  Ops ","workEmail":"Jane.Doe@Example.COM",
		"startDate":"2026-03-01T23:30:00-08:00","endDate":"2026-12-31"}}`
	got, err := Parse([]byte(body), london)
	if err != nil {
		t.Fatal(err)
	}
	want := &orgsyncv1.Worker{
		WorkerId: "E1", Name: &orgsyncv1.PersonName{GivenName: "Jane", FamilyName: "Doe"},
		JobTitle: "Account Executive", Department: "Sales Ops", WorkEmail: "jane.doe@example.com",
		StartDate:        &orgsyncv1.Date{Year: 2026, Month: 3, Day: 2},
		EndDate:          &orgsyncv1.Date{Year: 2026, Month: 12, Day: 31},
		EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
	}
	if diff := cmp.Diff(want, got.GetWorker(), protocmp.Transform()); diff != "" {
		t.Errorf("worker (-want +got):\n%s", diff)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantSyntax bool
		wantFields []normalize.FieldError
	}{
		{name: "not JSON", body: `{"type":`, wantSyntax: true},
		{name: "two values", body: `{} {}`, wantSyntax: true},
		{name: "unknown envelope field", body: `{"type":"worker.updated","data":{},"extra":1}`, wantSyntax: true},
		{name: "missing type and data", body: `{}`, wantFields: []normalize.FieldError{
			{Pointer: "/data", Detail: "required"},
			{Pointer: "/type", Detail: "required"},
		}},
		{name: "unknown type", body: `{"type":"worker.exploded","data":{}}`, wantFields: []normalize.FieldError{
			{Pointer: "/type", Detail: `"worker.exploded" is not one of worker.created, worker.updated, org_unit.created, org_unit.updated, org_unit.deleted`},
		}},
		{name: "type of wrong JSON kind", body: `{"type":7,"data":{}}`, wantFields: []normalize.FieldError{
			{Pointer: "/type", Detail: "must be a JSON string"},
		}},
		{name: "every worker problem at once", body: `{"type":"worker.updated","timestamp":"yesterday","data":{
			"workerId":"E 1","name":{"givenName":"","familyName":"Doe","nickname":"JD"},"workEmail":"jane at example",
			"employmentType":"pirate","employmentStatus":"gone","startDate":"2026-03-01","endDate":"2026-02-01","hireDate":"01/03/2026"}}`,
			wantFields: []normalize.FieldError{
				{Pointer: "/timestamp", Detail: "not an RFC 3339 date-time such as 2026-03-01T09:00:00Z"},
				{Pointer: "/data/workerId", Detail: "must not contain spaces"},
				{Pointer: "/data/hireDate", Detail: `"01/03/2026" is not a date in the form YYYY-MM-DD (or an ISO 8601 date-time)`},
				{Pointer: "/data/employmentType", Detail: `"pirate" is not one of contractor, employee, intern, temporary`},
				{Pointer: "/data/employmentStatus", Detail: `"gone" is not one of active, on_leave, terminated`},
				{Pointer: "/data/name/nickname", Detail: "unknown name part (givenName, familyName, middleName, preferredName, displayName)"},
				{Pointer: "/data/workEmail", Detail: `"jane at example" is not a plain e-mail address`},
				{Pointer: "/data/endDate", Detail: "is before the start date"},
				{Pointer: "/data/name/givenName", Detail: "required"},
			}},
		{name: "missing worker id and name", body: `{"type":"worker.updated","data":{"jobTitle":"x"}}`, wantFields: []normalize.FieldError{
			{Pointer: "/data/workerId", Detail: "required"},
			{Pointer: "/data/name/givenName", Detail: "required"},
			{Pointer: "/data/name/familyName", Detail: "required"},
		}},
		{name: "field of wrong kind", body: `{"type":"worker.updated","data":{"workerId":42,"name":{"givenName":"A","familyName":"B"}}}`, wantFields: []normalize.FieldError{
			{Pointer: "/data/workerId", Detail: "must be a string"},
			{Pointer: "/data/workerId", Detail: "required"},
		}},
		{name: "data not an object", body: `{"type":"org_unit.updated","data":[1]}`, wantFields: []normalize.FieldError{
			{Pointer: "/data", Detail: "must be a JSON object"},
		}},
		{name: "unit is its own parent", body: `{"type":"org_unit.updated","data":{"orgUnitId":"a","name":"A","parentOrgUnitId":"a"}}`, wantFields: []normalize.FieldError{
			{Pointer: "/data/parentOrgUnitId", Detail: "a unit cannot be its own parent"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body), time.UTC)
			var syntaxErr *normalize.SyntaxError
			var invalid *normalize.InvalidError
			switch {
			case tt.wantSyntax:
				if !errors.As(err, &syntaxErr) {
					t.Fatalf("err = %v, want a syntax error", err)
				}
			case errors.As(err, &invalid):
				if diff := cmp.Diff(tt.wantFields, invalid.Fields); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
			default:
				t.Fatalf("err = %v, want invalid fields", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(hire))
	f.Add([]byte(`{"type":"org_unit.updated","data":{"orgUnitId":"sales","name":"Sales"}}`))
	f.Add([]byte(`[{"type":"org_unit.deleted","data":{"orgUnitId":"old"}},{"type":"worker.updated","data":{"workerId":"E1","name":{"givenName":"A","familyName":"B"}}}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		event, err := Parse(body, time.UTC)
		if err == nil && event.GetPayload() == nil {
			t.Fatal("accepted an event without a payload")
		}
		if w := event.GetWorker(); w != nil && (w.GetWorkerId() == "" || w.GetName().GetFamilyName() == "") {
			t.Fatalf("accepted a worker without id or family name: %v", w)
		}
		events, err := ParseBatch(body, time.UTC)
		if err == nil && (len(events) == 0 || len(events) > MaxBatch) {
			t.Fatalf("accepted a batch of %d events", len(events))
		}
		for _, e := range events {
			if e.GetPayload() == nil {
				t.Fatal("accepted a batch event without a payload")
			}
		}
	})
}

func TestParseBatch(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantIDs    []string
		wantFields []normalize.FieldError
		wantSyntax bool
	}{
		{name: "one event is a batch of one", body: hire, wantIDs: []string{"E1001"}},
		{name: "array", body: ` [` + hire + `,{"type":"org_unit.updated","data":{"orgUnitId":"sales","name":"Sales"}}]`, wantIDs: []string{"E1001", "sales"}},
		{name: "empty array", body: `[]`, wantFields: []normalize.FieldError{{Pointer: "", Detail: "a batch holds 1 to 1000 events, not 0"}}},
		{name: "errors named by index", body: `[` + hire + `,{"type":"worker.updated","data":{"workerId":"E2"}},{"x":1}]`, wantFields: []normalize.FieldError{
			{Pointer: "/1/data/name/givenName", Detail: "required"},
			{Pointer: "/1/data/name/familyName", Detail: "required"},
			{Pointer: "/2", Detail: `json: unknown field "x"`},
		}},
		{name: "not an array of objects", body: `[1,`, wantSyntax: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := ParseBatch([]byte(tt.body), time.UTC)
			var invalid *normalize.InvalidError
			var syntaxErr *normalize.SyntaxError
			switch {
			case tt.wantSyntax:
				if !errors.As(err, &syntaxErr) {
					t.Fatalf("err = %v, want a syntax error", err)
				}
			case tt.wantFields != nil:
				if !errors.As(err, &invalid) {
					t.Fatalf("err = %v, want invalid fields", err)
				}
				if diff := cmp.Diff(tt.wantFields, invalid.Fields); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, e := range events {
					ids = append(ids, e.GetWorker().GetWorkerId()+e.GetOrgUnit().GetOrgUnitId())
				}
				if diff := cmp.Diff(tt.wantIDs, ids); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
			}
		})
	}
}
