package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
)

var mapping = Mapping{
	"workerId": "Employee ID", "givenName": "First Name", "familyName": "Last Name", "workEmail": "Email",
	"jobTitle": "Title", "orgUnitId": "Unit", "managerWorkerId": "Manager", "startDate": "Start Date",
	"endDate": "End Date", "phoneNumber": "Phone", "employmentType": "Type",
}

func readSample(t testing.TB) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "export.csv"))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestParse(t *testing.T) {
	// Auckland is UTC+13 in March: 00:30 UTC on 1 March is the 1st there too, but 11:30 on
	// 28 February in Los Angeles.
	for _, tt := range []struct {
		zone          string
		wantStartDay  int32
		wantStartMont int32
	}{{"Pacific/Auckland", 1, 3}, {"America/Los_Angeles", 28, 2}} {
		t.Run(tt.zone, func(t *testing.T) {
			loc, err := time.LoadLocation(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(readSample(t), Options{Mapping: mapping, Location: loc})
			if err != nil {
				t.Fatal(err)
			}
			active := orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE
			want := []*orgsyncv1.Worker{
				{WorkerId: "E1000", Name: &orgsyncv1.PersonName{GivenName: "Ada", FamilyName: "Lovelace"}, WorkEmail: "ada.lovelace@example.com",
					JobTitle: "CEO", OrgUnitId: "exec", StartDate: &orgsyncv1.Date{Year: 2020, Month: 1, Day: 6}, PhoneNumber: "+442079460958",
					EmploymentType: orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_EMPLOYEE, EmploymentStatus: active,
					CustomAttributes: map[string]string{"Badge": "B-1"}},
				{WorkerId: "E1001", Name: &orgsyncv1.PersonName{GivenName: "José", FamilyName: "Núñez"}, WorkEmail: "jose.nunez@example.com",
					JobTitle: "Engineer, Platform", OrgUnitId: "eng", ManagerWorkerId: "E1000",
					StartDate:      &orgsyncv1.Date{Year: 2026, Month: tt.wantStartMont, Day: tt.wantStartDay},
					EmploymentType: orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_CONTRACTOR, EmploymentStatus: active},
				{WorkerId: "E1002", Name: &orgsyncv1.PersonName{GivenName: "Grace", FamilyName: "Hopper"}, WorkEmail: "grace@example.com",
					JobTitle: "Engineer", OrgUnitId: "eng", ManagerWorkerId: "E1000", StartDate: &orgsyncv1.Date{Year: 2021, Month: 5, Day: 1},
					EndDate: &orgsyncv1.Date{Year: 2026, Month: 12, Day: 31}, PhoneNumber: "5551234567x89",
					EmploymentType: orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_EMPLOYEE, EmploymentStatus: active,
					CustomAttributes: map[string]string{"Badge": "B-3"}},
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		opts       Options
		wantSyntax bool
		want       []normalize.FieldError
	}{
		{name: "empty", body: "", wantSyntax: true},
		{name: "unterminated quote", body: "workerId,familyName\nE1,\"Doe\n", wantSyntax: true},
		{name: "header only", body: "workerId,givenName,familyName\n", want: []normalize.FieldError{
			{Pointer: "/rows", Detail: "no rows: an empty snapshot would mean everyone left"},
		}},
		{name: "mapped column missing", body: "id,surname\nE1,Doe\n", opts: Options{Mapping: Mapping{"workerId": "Employee ID", "familyName": "surname"}}, want: []normalize.FieldError{
			{Pointer: "/header", Detail: `the mapping names column "Employee ID" for workerId, but the header has no such column`},
			{Pointer: "/header", Detail: `no column for workerId (header "Employee ID", or map it in the source's csv columns)`},
		}},
		{name: "every row problem at once", body: "workerId,givenName,familyName,startDate,endDate,workEmail,managerWorkerId,employmentType\n" +
			"E1,Ann,Doe,2026-03-01,2026-02-01,ann@,E1,pirate\n" +
			",Bob,,March,,,,\n" +
			"E1,Cy,Lee,,,,,\n" +
			"E4,Di\n",
			want: []normalize.FieldError{
				{Pointer: "/rows/2/employmentType", Detail: `"pirate" is not one of contractor, employee, intern, temporary`},
				{Pointer: "/rows/2/managerWorkerId", Detail: "a worker cannot be their own manager"},
				{Pointer: "/rows/2/workEmail", Detail: `"ann@" is not a plain e-mail address`},
				{Pointer: "/rows/2/endDate", Detail: "is before the start date"},
				{Pointer: "/rows/3/workerId", Detail: "required"},
				{Pointer: "/rows/3/startDate", Detail: `"March" is not a date in the form YYYY-MM-DD (or an ISO 8601 date-time)`},
				{Pointer: "/rows/3/familyName", Detail: "required"},
				{Pointer: "/rows/4/workerId", Detail: `worker "E1" is also on line 2`},
				{Pointer: "/rows/5", Detail: "has 2 fields; the header has 8"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			workers, err := Parse([]byte(tt.body), tt.opts)
			if workers != nil {
				t.Errorf("returned %d workers with an error", len(workers))
			}
			var syntaxErr *normalize.SyntaxError
			var invalid *normalize.InvalidError
			switch {
			case tt.wantSyntax:
				if !errors.As(err, &syntaxErr) {
					t.Fatalf("err = %v, want a syntax error", err)
				}
			case errors.As(err, &invalid):
				if diff := cmp.Diff(tt.want, invalid.Fields); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
			default:
				t.Fatalf("err = %v, want invalid fields", err)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	workers := []*orgsyncv1.Worker{{WorkerId: "E1"}, {WorkerId: "E2"}}
	got := Events("snap-1", workers)
	want := []*orgsyncv1.HREvent{
		{Payload: &orgsyncv1.HREvent_Snapshot{Snapshot: &orgsyncv1.SnapshotMarker{SnapshotId: "snap-1", Phase: orgsyncv1.SnapshotMarker_PHASE_BEGIN}}},
		{SnapshotId: "snap-1", Payload: &orgsyncv1.HREvent_Worker{Worker: workers[0]}},
		{SnapshotId: "snap-1", Payload: &orgsyncv1.HREvent_Worker{Worker: workers[1]}},
		{Payload: &orgsyncv1.HREvent_Snapshot{Snapshot: &orgsyncv1.SnapshotMarker{SnapshotId: "snap-1", Phase: orgsyncv1.SnapshotMarker_PHASE_END, RecordCount: 2}}},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNewID(t *testing.T) {
	id := func(source, key string) string {
		t.Helper()
		got, err := NewID(source, key)
		if err != nil {
			t.Fatalf("NewID(%q, %q): %v", source, key, err)
		}
		return got
	}
	first, retry := id("a", "k1"), id("a", "k1")
	if first != retry {
		t.Error("retries with one Idempotency-Key must get one snapshot id")
	}
	if first == id("b", "k1") || first == id("a", "k2") {
		t.Error("different sources or keys must get different snapshot ids")
	}
	if unkeyed, again := id("a", ""), id("a", ""); unkeyed == again {
		t.Error("uploads without a key must each get their own snapshot id")
	}
	for _, bad := range []string{"has space", "tab\t", strings.Repeat("k", 256), "ünïcode"} {
		if _, err := NewID("a", bad); !errors.Is(err, ErrBadIdempotencyKey) {
			t.Errorf("NewID(%q) error = %v, want ErrBadIdempotencyKey", bad, err)
		}
	}
}

func TestCheckMapping(t *testing.T) {
	if err := CheckMapping(mapping); err != nil {
		t.Errorf("valid mapping: %v", err)
	}
	err := CheckMapping(Mapping{"workerId": "x", "salary": "y"})
	if err == nil || !strings.HasPrefix(err.Error(), "not worker fields: salary") {
		t.Errorf("err = %v, want salary named", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("workerId,givenName,familyName\nE1,A,B\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		workers, err := Parse(body, Options{Mapping: mapping})
		if err != nil {
			if workers != nil {
				t.Fatal("workers returned with an error")
			}
			return
		}
		seen := map[string]bool{}
		for _, w := range workers {
			if w.GetWorkerId() == "" || w.GetName().GetFamilyName() == "" || seen[w.GetWorkerId()] {
				t.Fatalf("accepted an incomplete or repeated worker: %v", w)
			}
			seen[w.GetWorkerId()] = true
		}
	})
}
