package scim

import (
	"encoding/json"
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

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func workers(ops []Operation) []*orgsyncv1.Worker {
	ws := make([]*orgsyncv1.Worker, len(ops))
	for i, op := range ops {
		ws[i] = op.Event.GetWorker()
	}
	return ws
}

func TestParseEntraSamples(t *testing.T) {
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		sample      string
		wantBulkIDs []string
		want        []*orgsyncv1.Worker
	}{
		{
			name:        "core and enterprise user",
			sample:      "entra-bulk-enterprise.json",
			wantBulkIDs: []string{"897401c2-2de4-4b87-a97f-c02de3bcfc61", "27a1a1b0-6b8a-4e0d-bc19-38b1a2e1c5d7"},
			want: []*orgsyncv1.Worker{
				{
					WorkerId: "701984",
					Name: &orgsyncv1.PersonName{GivenName: "Barbara", FamilyName: "Jensen", MiddleName: "Jane",
						PreferredName: "Babs", DisplayName: "Babs Jensen"},
					WorkEmail: "bjensen@example.com", JobTitle: "Tour Guide", PhoneNumber: "5555555555",
					Location: "Hollywood", Department: "Tour Operations", CostCenter: "4130", Company: "Universal Studios",
					Division: "Theme Park", ManagerWorkerId: "89607",
					EmploymentType:   orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_EMPLOYEE,
					EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
					CustomAttributes: map[string]string{
						"userName": "bjensen@example.com", "preferredLanguage": "en-US", "locale": "en-US", "timezone": "America/Los_Angeles",
						"name.formatted": "Ms. Barbara J Jensen, III", "name.honorificPrefix": "Ms.", "name.honorificSuffix": "III",
						"address.streetAddress": "100 Universal City Plaza", "address.region": "CA", "address.postalCode": "91608",
						"address.country": "USA", "address.formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
						"manager.displayName": "John Smith",
					},
				},
				{
					WorkerId: "701985",
					Name: &orgsyncv1.PersonName{GivenName: "Kathy", FamilyName: "Jensen", MiddleName: "Jane",
						PreferredName: "Kathy", DisplayName: "Kathy Jensen"},
					WorkEmail: "kjensen@example.com", JobTitle: "Tour Lead", PhoneNumber: "5555555545",
					Location: "Oracle City", Department: "Tour Operations", CostCenter: "4130", Company: "Universal Studios",
					Division: "Theme Park", ManagerWorkerId: "701984",
					EmploymentType:   orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_EMPLOYEE,
					EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
					CustomAttributes: map[string]string{
						"userName": "Kjensen@example.com", "preferredLanguage": "en-US", "locale": "en-US", "timezone": "America/Los_Angeles",
						"name.formatted": "Ms. Kathy J Jensen, III", "name.honorificPrefix": "Ms.", "name.honorificSuffix": "III",
						"address.streetAddress": "100 Oracle City Plaza", "address.region": "CA", "address.postalCode": "91618",
						"address.country": "USA", "address.formatted": "100 Oracle City Plaza\nOracle City, CA 91618 USA",
						"manager.displayName": "Barbara Jensen",
					},
				},
			},
		},
		{
			name:        "custom extension, a leaver, and an update that omits active",
			sample:      "entra-bulk-custom-extension.json",
			wantBulkIDs: []string{"701986", "89607"},
			want: []*orgsyncv1.Worker{
				{
					WorkerId: "701986", Name: &orgsyncv1.PersonName{GivenName: "Ana", FamilyName: "Jones"},
					WorkEmail: "ana.jones@contoso.com", PhoneNumber: "+14255550100", JobTitle: "Engineer",
					Department: "R&D", ManagerWorkerId: "701984", OrgUnitId: "rnd",
					EmploymentType:   orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_CONTRACTOR,
					EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED,
					HireDate:         &orgsyncv1.Date{Year: 2021, Month: 5, Day: 1},
					EndDate:          &orgsyncv1.Date{Year: 2026, Month: 3, Day: 31},
					CustomAttributes: map[string]string{"userName": "ajones@contoso.com", "phoneNumbers.mobile": "+1 425 555 0199", "JobCode": "ENG-2"},
				},
				{
					// The trap: no "active" in an update must not disable the manager.
					WorkerId: "89607", Name: &orgsyncv1.PersonName{GivenName: "John", FamilyName: "Smith"},
					JobTitle: "Director of Operations", Department: "Operations",
					EmploymentStatus:        orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
					EmploymentStatusOmitted: true,
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := Parse(readSample(t, tt.sample), chicago)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, workers(ops), protocmp.Transform()); diff != "" {
				t.Errorf("workers (-want +got):\n%s", diff)
			}
			var bulkIDs []string
			for _, op := range ops {
				bulkIDs = append(bulkIDs, op.BulkID)
				if op.Method != "POST" {
					t.Errorf("operation %s: method %q", op.BulkID, op.Method)
				}
			}
			if diff := cmp.Diff(tt.wantBulkIDs, bulkIDs); diff != "" {
				t.Errorf("bulk ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	user := func(data string) string {
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[{"method":"POST","path":"/Users","bulkId":"1","data":` + data + `}]}`
	}
	ops51 := make([]string, 51)
	for i := range ops51 {
		ops51[i] = `{"method":"POST","path":"/Users","data":{"externalId":"E` + string(rune('A'+i%26)) + `","name":{"givenName":"A","familyName":"B"}}}`
	}
	tests := []struct {
		name       string
		body       string
		wantSyntax bool
		want       []normalize.FieldError
	}{
		{name: "not JSON", body: `{"schemas":`, wantSyntax: true},
		{name: "not a bulk request", body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x"}`, want: []normalize.FieldError{
			{Pointer: "/schemas", Detail: "must contain " + BulkRequestSchema},
			{Pointer: "/Operations", Detail: "required: an array of operations"},
			{Pointer: "/userName", Detail: "unknown bulk request attribute"},
		}},
		{name: "more than 50 operations", body: `{"schemas":["` + BulkRequestSchema + `"],"Operations":[` + strings.Join(ops51, ",") + `]}`, want: []normalize.FieldError{
			{Pointer: "/Operations", Detail: "has 51 operations; 1 to 50 are allowed"},
		}},
		{name: "unsupported method and path", body: `{"schemas":["` + BulkRequestSchema + `"],"Operations":[{"method":"DELETE","path":"/Groups","data":{"externalId":"E1","name":{"givenName":"A","familyName":"B"}}}]}`, want: []normalize.FieldError{
			{Pointer: "/Operations/0/method", Detail: `"DELETE" is not supported: only POST (create or update) is`},
			{Pointer: "/Operations/0/path", Detail: `"/Groups" is not supported: only /Users is`},
		}},
		{name: "missing externalId and names", body: user(`{"userName":"x@example.com"}`), want: []normalize.FieldError{
			{Pointer: "/Operations/0/data/externalId", Detail: "required: the worker id"},
			{Pointer: "/Operations/0/data/name/givenName", Detail: "required"},
			{Pointer: "/Operations/0/data/name/familyName", Detail: "required"},
		}},
		{name: "every field problem at once", body: user(`{"externalId":"E 1","name":{"givenName":"A","familyName":"B"},"active":"maybe",
			"emails":[{"value":"not an address","type":"work"}],"phoneNumbers":[{"value":"call me","type":"work"}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"M 1"}},
			"urn:contoso:1.0:User":{"startDate":"2026-04-01","endDate":"2026-03-01","hireDate":"01/04/2026"}}`), want: []normalize.FieldError{
			{Pointer: "/Operations/0/data/externalId", Detail: "must not contain spaces"},
			{Pointer: "/Operations/0/data/active", Detail: `"maybe" is not a boolean`},
			{Pointer: "/Operations/0/data/urn:contoso:1.0:User/hireDate", Detail: `"01/04/2026" is not a date in the form YYYY-MM-DD (or an ISO 8601 date-time)`},
			{Pointer: "/Operations/0/data/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/manager/value", Detail: "must not contain spaces"},
			{Pointer: "/Operations/0/data/emails", Detail: `"not an address" is not a plain e-mail address`},
			{Pointer: "/Operations/0/data/phoneNumbers", Detail: `"call me" is not a phone number`},
			{Pointer: "/Operations/0/data/urn:contoso:1.0:User/endDate", Detail: "is before the start date"},
		}},
		{name: "repeated bulkId", body: `{"schemas":["` + BulkRequestSchema + `"],"Operations":[` + strings.Replace(ops51[0], `"method"`, `"bulkId":"b","method"`, 1) + `,` + strings.Replace(ops51[1], `"method"`, `"bulkId":"b","method"`, 1) + `]}`, want: []normalize.FieldError{
			{Pointer: "/Operations/1/bulkId", Detail: "repeats the bulkId of operation 0"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := Parse([]byte(tt.body), time.UTC)
			if ops != nil {
				t.Errorf("returned %d operations with an error", len(ops))
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
	// The seeds are small on purpose (the full samples are in testdata/): the fuzzer minimises
	// every new input, and minimising kilobytes of JSON takes longer than `make fuzz` runs.
	f.Add([]byte(`{"schemas":["` + BulkRequestSchema + `"],"Operations":[{"method":"POST","path":"/Users","data":{"externalId":"1","name":{"givenName":"A","familyName":"B"},"active":false}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := Parse(body, time.UTC)
		if err != nil {
			if ops != nil {
				t.Fatal("operations returned with an error")
			}
			return
		}
		if len(ops) == 0 || len(ops) > MaxOperations {
			t.Fatalf("accepted %d operations", len(ops))
		}
		for _, op := range ops {
			w := op.Event.GetWorker()
			if w.GetWorkerId() == "" || w.GetName().GetFamilyName() == "" {
				t.Fatalf("accepted an incomplete worker: %v", op.Event)
			}
			if w.GetEmploymentStatus() == orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_UNSPECIFIED {
				t.Fatalf("accepted a worker without a status: %v", w)
			}
		}
		if _, err := json.Marshal(ops); err != nil {
			t.Fatal(err)
		}
	})
}
