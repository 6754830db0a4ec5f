package bamboohr

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
)

const eventSample = `{"type":"employee.updated","timestamp":"2026-03-01T08:59:00Z","data":{"companyId":"acme","employeeId":"123","changedFields":["jobTitle"]}}`

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		want         Event
		wantPointers []string
	}{
		{name: "updated", body: eventSample, want: Event{Type: EventUpdated, Timestamp: time.Date(2026, 3, 1, 8, 59, 0, 0, time.UTC),
			CompanyID: "acme", EmployeeID: "123", ChangedFields: []string{"jobTitle"}}},
		{name: "numeric ids", body: `{"type":"employee.deleted","data":{"companyId":7,"employeeId":123}}`,
			want: Event{Type: EventDeleted, CompanyID: "7", EmployeeID: "123"}},
		{name: "every problem at once", body: `{"type":"employee.promoted","timestamp":"soon","data":{}}`,
			wantPointers: []string{"/type", "/data/employeeId", "/timestamp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvent([]byte(tt.body))
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
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsEvent(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{name: "event-based", body: eventSample, want: true},
		{name: "field-based", body: string(readSample(t, "field-based-updated.json")), want: false},
		{name: "not JSON", body: "type=employee.updated", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsEvent([]byte(tt.body)); got != tt.want {
				t.Errorf("IsEvent = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzParseEvent: no body makes the parser panic, and whatever it accepts names an employee.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(eventSample))
	f.Add([]byte(`{"type":"employee.deleted","data":{"employeeId":1}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseEvent(body)
		if err == nil && e.EmployeeID == "" {
			t.Errorf("accepted %q without an employee id", body)
		}
	})
}
