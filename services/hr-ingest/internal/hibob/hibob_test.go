package hibob

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
)

const sample = `{"companyId":601234,"type":"employee.updated","triggeredBy":"1","triggeredAt":"2026-03-01T08:59:00.123Z","version":"v2","data":{"employeeId":"3332883884017713238","fieldIds":["work.title"]}}`

func TestVerify(t *testing.T) {
	secret, rotated := []byte("webhook-secret-0123456789"), []byte("next-secret-0123456789")
	body := []byte(sample)
	tests := []struct {
		name      string
		secrets   [][]byte
		signature string
		body      []byte
		wantErr   error
	}{
		{name: "signed", secrets: [][]byte{secret}, signature: Sign(secret, body), body: body},
		{name: "second secret during a rotation", secrets: [][]byte{secret, rotated}, signature: Sign(rotated, body), body: body},
		{name: "wrong secret", secrets: [][]byte{rotated}, signature: Sign(secret, body), body: body, wantErr: ErrNoMatch},
		{name: "body changed", secrets: [][]byte{secret}, signature: Sign(secret, body), body: append([]byte(" "), body...), wantErr: ErrNoMatch},
		{name: "not base64", secrets: [][]byte{secret}, signature: "%%%", body: body, wantErr: ErrNoMatch},
		{name: "no signature", secrets: [][]byte{secret}, body: body, wantErr: ErrMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.signature != "" {
				header.Set(HeaderSignature, tt.signature)
			}
			if err := NewVerifier(tt.secrets).Verify(header, tt.body); !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestParseWebhook(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		want         Webhook
		wantPointers []string
	}{
		{name: "v2 update", body: sample, want: Webhook{CompanyID: "601234", Type: EventUpdated, EmployeeID: "3332883884017713238",
			TriggeredAt: time.Date(2026, 3, 1, 8, 59, 0, 123e6, time.UTC)}},
		{name: "every problem at once", body: `{"type":"timeoff.created","version":"v1","triggeredAt":"yesterday","data":{}}`,
			wantPointers: []string{"/type", "/version", "/data/employeeId", "/triggeredAt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWebhook([]byte(tt.body))
			var invalid *normalize.InvalidError
			if tt.wantPointers != nil {
				if !errors.As(err, &invalid) {
					t.Fatalf("err = %v, want an InvalidError", err)
				}
				var pointers []string
				for _, f := range invalid.Fields {
					pointers = append(pointers, f.Pointer)
				}
				if diff := cmp.Diff(tt.wantPointers, pointers); diff != "" {
					t.Errorf("pointers (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestMap(t *testing.T) {
	active := Employee{ID: "E42", FirstName: " Ana ", Surname: "Lima", Email: "Ana.Lima@Example.com"}
	active.Work.Title, active.Work.ReportsTo, active.Work.StartDate = "Analyst", []byte(`{"id":"E7"}`), "2026-01-05"
	left := Employee{ID: "E43", FirstName: "Bo", Surname: "Ek"}
	left.Internal.Status, left.Internal.TerminationDate = "Inactive", "2026-02-28"
	tooLong := Employee{ID: "3332883884017713238", FirstName: "Cy", Surname: "Do"}
	tests := []struct {
		name         string
		employee     Employee
		want         *orgsyncv1.Worker
		wantPointers []string
	}{
		{name: "active", employee: active, want: &orgsyncv1.Worker{WorkerId: "E42", Name: &orgsyncv1.PersonName{GivenName: "Ana", FamilyName: "Lima"},
			WorkEmail: "ana.lima@example.com", JobTitle: "Analyst", ManagerWorkerId: "E7", StartDate: &orgsyncv1.Date{Year: 2026, Month: 1, Day: 5},
			EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE}},
		{name: "inactive is terminated", employee: left, want: &orgsyncv1.Worker{WorkerId: "E43", Name: &orgsyncv1.PersonName{GivenName: "Bo", FamilyName: "Ek"},
			EndDate: &orgsyncv1.Date{Year: 2026, Month: 2, Day: 28}, EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED}},
		{name: "no names", employee: Employee{ID: "E44"}, wantPointers: []string{"/firstName", "/surname"}},
		{name: "a Bob id longer than Entra's employeeId", employee: tooLong, wantPointers: []string{"/id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Map(tt.employee, time.UTC)
			if tt.wantPointers != nil {
				var invalid *normalize.InvalidError
				if !errors.As(err, &invalid) {
					t.Fatalf("err = %v, want an InvalidError", err)
				}
				var pointers []string
				for _, f := range invalid.Fields {
					pointers = append(pointers, f.Pointer)
				}
				if diff := cmp.Diff(tt.wantPointers, pointers); diff != "" {
					t.Errorf("pointers (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.GetWorker(), protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseWebhook: no body makes the parser panic, and whatever it accepts names an employee.
func FuzzParseWebhook(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte(`{"type":"employee.left","data":{"employeeId":12}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := ParseWebhook(body)
		if err == nil && w.EmployeeID == "" {
			t.Errorf("accepted %q without an employee id", body)
		}
	})
}
