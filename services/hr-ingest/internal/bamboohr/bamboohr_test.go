package bamboohr

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
)

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestVerify(t *testing.T) {
	key, rotated := []byte("bamboo-private-key-0123456789"), []byte("bamboo-next-key-9876543210")
	body := readSample(t, "field-based-updated.json")
	now := time.Date(2026, 1, 31, 18, 42, 30, 0, time.UTC)
	unix := strconv.FormatInt(now.Unix(), 10)
	iso := "2026-01-31T18:42:00+00:00"
	tests := []struct {
		name      string
		keys      [][]byte
		signature string
		timestamp string
		body      []byte
		wantErr   error
	}{
		{name: "signed, Unix timestamp", keys: [][]byte{key}, signature: Sign(key, body, unix), timestamp: unix, body: body},
		{name: "signed, ISO timestamp", keys: [][]byte{key}, signature: Sign(key, body, iso), timestamp: iso, body: body},
		{name: "second key during a rotation", keys: [][]byte{key, rotated}, signature: Sign(rotated, body, unix), timestamp: unix, body: body},
		{name: "upper-case hex", keys: [][]byte{key}, signature: "SHA256=" + Sign(key, body, unix), timestamp: unix, body: body},
		{name: "wrong key", keys: [][]byte{rotated}, signature: Sign(key, body, unix), timestamp: unix, body: body, wantErr: ErrNoMatch},
		{name: "body changed", keys: [][]byte{key}, signature: Sign(key, body, unix), timestamp: unix, body: append([]byte(" "), body...), wantErr: ErrNoMatch},
		{name: "timestamp changed", keys: [][]byte{key}, signature: Sign(key, body, unix), timestamp: strconv.FormatInt(now.Unix()-1, 10), body: body, wantErr: ErrNoMatch},
		{name: "stale", keys: [][]byte{key}, signature: Sign(key, body, "1700000000"), timestamp: "1700000000", body: body, wantErr: ErrStaleTimestamp},
		{name: "not a timestamp", keys: [][]byte{key}, signature: Sign(key, body, "soon"), timestamp: "soon", body: body, wantErr: ErrBadTimestamp},
		{name: "no signature", keys: [][]byte{key}, timestamp: unix, body: body, wantErr: ErrMissingHeader},
		{name: "signature not hex", keys: [][]byte{key}, signature: "zz", timestamp: unix, body: body, wantErr: ErrNoMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.signature != "" {
				header.Set(HeaderSignature, tt.signature)
			}
			header.Set(HeaderTimestamp, tt.timestamp)
			_, err := NewVerifier(tt.keys, 5*time.Minute, func() time.Time { return now }).Verify(header, tt.body)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestParse(t *testing.T) {
	denver, err := time.LoadLocation("America/Denver")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		sample string
		want   []*orgsyncv1.HREvent
	}{
		{name: "field-based update with English field names", sample: "field-based-updated.json", want: []*orgsyncv1.HREvent{{
			OccurredAt: timestamppb.New(time.Date(2026, 1, 31, 18, 42, 0, 0, time.UTC)),
			Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{
				WorkerId: "1042", Name: &orgsyncv1.PersonName{GivenName: "Bryony", FamilyName: "Harper", PreferredName: "Bry"},
				WorkEmail: "bryony.harper@example.com", JobTitle: "Senior HR Administrator", Department: "Human Resources",
				Division: "Corporate", Location: "Salt Lake City", ManagerWorkerId: "1001", PhoneNumber: "8017246600",
				HireDate:         &orgsyncv1.Date{Year: 2019, Month: 4, Day: 15},
				EmploymentType:   orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_EMPLOYEE,
				EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
				CustomAttributes: map[string]string{"Employment Status": "Full-Time", "Shirt Size": "M", "bamboohr.changedFields": "Job Title,Department"},
			}},
		}}},
		{name: "permissioned create with aliases and a deletion", sample: "permissioned-created.json", want: []*orgsyncv1.HREvent{
			{
				// No offset: read in the source's zone (Denver, UTC-6 in May).
				OccurredAt: timestamppb.New(time.Date(2026, 5, 21, 20, 0, 0, 0, time.UTC)),
				Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{
					WorkerId: "5", Name: &orgsyncv1.PersonName{GivenName: "Ashley", FamilyName: "Adams"},
					JobTitle: "HR Administrator", ManagerWorkerId: "1042", HireDate: &orgsyncv1.Date{Year: 2026, Month: 6, Day: 1},
					EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
				}},
			},
			{
				OccurredAt: timestamppb.New(time.Date(2026, 5, 21, 20, 0, 0, 0, time.UTC)),
				Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{
					WorkerId: "1001", Name: &orgsyncv1.PersonName{},
					EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED,
				}},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(readSample(t, tt.sample), denver)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform(), protocmp.IgnoreFields(&orgsyncv1.HREvent{}, "event_id")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantSyntax bool
		want       []normalize.FieldError
	}{
		{name: "not JSON", body: `{"employees":[`, wantSyntax: true},
		{name: "event-based webhook", body: `{"type":"employee.updated","timestamp":"2026-01-31T18:42:00+0000","data":{"companyId":"12345","employeeId":"67890","changedFields":["firstName"]}}`,
			want: []normalize.FieldError{{Pointer: "/type", Detail: `"employee.updated" is an event-based webhook, which carries no field values: configure the BambooHR webhook as field-based, posting the fields orgsync maps`}}},
		{name: "no employees", body: `{"employees":[]}`, want: []normalize.FieldError{{Pointer: "/employees", Detail: "required: at least one employee"}}},
		{name: "every problem at once", body: `{"employees":[{"id":"","action":"Exploded","timestamp":"yesterday","fields":{
			"First Name":"A","Work Email":"a@","Hire Date":"13/13/2026","Status":"Maybe","Reporting to":"x y","Work Phone":"n/a"}},
			{"id":"7","action":"Updated","fields":{"Last Name":["x"]}}]}`, want: []normalize.FieldError{
			{Pointer: "/employees/0/id", Detail: "required"},
			{Pointer: "/employees/0/timestamp", Detail: `"yesterday" is not an ISO 8601 date-time such as 2026-03-01T09:00:00Z`},
			{Pointer: "/employees/0/action", Detail: `"Exploded" is not one of Created, Updated, Deleted`},
			{Pointer: "/employees/0/fields/Hire Date", Detail: `"13/13/2026" is not a date in the form YYYY-MM-DD (or an ISO 8601 date-time)`},
			{Pointer: "/employees/0/fields/Reporting to", Detail: "must not contain spaces"},
			{Pointer: "/employees/0/fields/Status", Detail: `"Maybe" is not Active or Inactive`},
			{Pointer: "/employees/0/fields/Last Name", Detail: "required (post Last Name with the webhook)"},
			{Pointer: "/employees/0/fields/Work Email", Detail: `"a@" is not a plain e-mail address`},
			{Pointer: "/employees/0/fields/Work Phone", Detail: `"n/a" is not a phone number`},
			{Pointer: "/employees/1/fields/Last Name", Detail: `must be a string, a number, null or {"value": …}`},
			{Pointer: "/employees/1/fields/First Name", Detail: "required (post First Name with the webhook)"},
			{Pointer: "/employees/1/fields/Last Name", Detail: "required (post Last Name with the webhook)"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := Parse([]byte(tt.body), time.UTC)
			if events != nil {
				t.Errorf("returned %d events with an error", len(events))
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

func FuzzParse(f *testing.F) {
	// Small seeds (the full samples are in testdata/): the fuzzer minimises every new input, and
	// minimising kilobytes of JSON takes longer than `make fuzz` runs.
	f.Add([]byte(`{"employees":[{"id":"1","action":"Updated","fields":{"First Name":"A","Last Name":"B","Status":"Active"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := Parse(body, time.UTC)
		if err != nil {
			if events != nil {
				t.Fatal("events returned with an error")
			}
			return
		}
		for _, event := range events {
			w := event.GetWorker()
			if w.GetWorkerId() == "" {
				t.Fatalf("accepted a worker without an id: %v", event)
			}
			if w.GetEmploymentStatus() != orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED && w.GetName().GetFamilyName() == "" {
				t.Fatalf("accepted a worker without a family name: %v", w)
			}
		}
	})
}
