package ingest

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/problem"
)

// TestFieldLengthLimits sends, for every kind of source, a worker whose id and attributes are
// longer than Entra ID and AD accept, and expects one 422 naming every field by pointer with
// its limit, and nothing published.
func TestFieldLengthLimits(t *testing.T) {
	longID := strings.Repeat("7", 17)   // employeeId allows 16
	longName := strings.Repeat("é", 65) // 65 characters, 130 bytes: counted in characters
	nowUnix := strconv.FormatInt(now.Unix(), 10)
	detail := func(n, limit int, why string) string {
		return "is " + strconv.Itoa(n) + " characters; at most " + strconv.Itoa(limit) + " are allowed (" + why + ")"
	}
	tests := []struct {
		name       string
		req        *http.Request
		wantErrors []problem.FieldError
	}{
		{name: "canonical",
			req: request(http.MethodPost, "/v1/sources/workday/events", "application/json",
				`{"type":"worker.created","data":{"workerId":"`+longID+`","name":{"givenName":"`+longName+`","familyName":"Doe"},"department":"`+strings.Repeat("d", 65)+`"}}`,
				signed(secret, "msg_long", now)),
			wantErrors: []problem.FieldError{
				{Pointer: "/data/workerId", Detail: detail(17, 16, "employeeId in Entra ID and AD"), Limit: 16},
				{Pointer: "/data/name/givenName", Detail: detail(65, 64, "givenName in Entra ID and AD"), Limit: 64},
				{Pointer: "/data/department", Detail: detail(65, 64, "department in Entra ID"), Limit: 64},
			}},
		{name: "scim",
			req: request(http.MethodPost, entraPath, "application/scim+json", scimBulk(scimUser(longID, "Doe", true, strings.Repeat("t", 129))), bearerToken(scimToken)),
			wantErrors: []problem.FieldError{
				{Pointer: "/Operations/0/data/externalId", Detail: detail(17, 16, "employeeId in Entra ID and AD"), Limit: 16},
				{Pointer: "/Operations/0/data/title", Detail: detail(129, 128, "jobTitle in Entra ID"), Limit: 128},
			}},
		{name: "bamboohr",
			req: request(http.MethodPost, "/v1/sources/bamboo/events", "application/json",
				`{"employees":[{"id":"`+longID+`","action":"Updated","fields":{"First Name":"Jane","Last Name":"`+longName+`"}}]}`,
				bambooSigned(bambooKey, nowUnix)),
			wantErrors: []problem.FieldError{
				{Pointer: "/employees/0/id", Detail: detail(17, 16, "employeeId in Entra ID and AD"), Limit: 16},
				{Pointer: "/employees/0/fields/Last Name", Detail: detail(65, 64, "surname in Entra ID, sn in AD"), Limit: 64},
			}},
		{name: "csv",
			req: request(http.MethodPost, "/v1/sources/export/snapshots", "text/csv",
				csvExport(csvRow{id: "E1", family: "Lovelace", manager: longID}), bearerToken(exportToken)),
			wantErrors: []problem.FieldError{
				{Pointer: "/rows/2/Manager", Detail: detail(17, 16, "a worker id, employeeId in Entra ID and AD"), Limit: 16},
			}},
	}
	f := newFixture(t, realPublisher, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(t, tt.req)
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("status = %d, want 422; body %s", rec.Code, rec.Body)
			}
			got := decode[problem.Details](t, rec)
			want := problem.Details{Type: problem.TypeBase + "field-too-long", Title: "Field too long", Status: http.StatusUnprocessableEntity,
				Detail: strconv.Itoa(len(tt.wantErrors)) + " field(s) longer than the directories allow", Errors: tt.wantErrors}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problem (-want +got):\n%s", diff)
			}
			if strings.Contains(rec.Body.String(), longName) {
				t.Errorf("the answer repeats a name: %s", rec.Body)
			}
		})
	}
	// A length fault next to a malformed value is one 400 listing both.
	rec := f.do(t, request(http.MethodPost, "/v1/sources/workday/events", "application/json",
		`{"type":"worker.created","data":{"workerId":"`+longID+`","name":{"givenName":"A","familyName":"B"},"startDate":"March"}}`, signed(secret, "msg_mixed", now)))
	got := decode[problem.Details](t, rec)
	wantMixed := []problem.FieldError{
		{Pointer: "/data/startDate", Detail: `"March" is not a date in the form YYYY-MM-DD (or an ISO 8601 date-time)`},
		{Pointer: "/data/workerId", Detail: detail(17, 16, "employeeId in Entra ID and AD"), Limit: 16},
	}
	if diff := cmp.Diff(wantMixed, got.Errors); rec.Code != http.StatusBadRequest || got.Type != problem.TypeBase+"invalid-payload" || diff != "" {
		t.Errorf("mixed: status %d, type %q, errors (-want +got):\n%s", rec.Code, got.Type, diff)
	}
	if events := f.storedEvents(t); len(events) != 0 {
		t.Errorf("rejected requests published %d events", len(events))
	}
}

// scimBulk wraps users (as JSON) in a BulkRequest of POST /Users operations.
func scimBulk(users ...string) string {
	ops := make([]string, len(users))
	for i, u := range users {
		ops[i] = `{"method":"POST","bulkId":"op` + strconv.Itoa(i) + `","path":"/Users","data":` + u + `}`
	}
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[` + strings.Join(ops, ",") + `]}`
}

// scimUser is a SCIM user with the enterprise extension; active false means the worker leaves.
func scimUser(externalID, familyName string, active bool, title string) string {
	return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],` +
		`"externalId":"` + externalID + `","name":{"givenName":"Jane","familyName":"` + familyName + `"},"title":"` + title + `",` +
		`"active":` + strconv.FormatBool(active) + `,` +
		`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","organization":"Contoso"}}`
}

// csvRow is one worker of a test export in the "export" source's columns.
type csvRow struct{ id, family, manager, endDate string }

// csvExport renders rows as an export with the "export" source's header.
func csvExport(rows ...csvRow) string {
	var b strings.Builder
	b.WriteString("Employee ID,First Name,Last Name,Email,Title,Unit,Manager,Start Date,End Date,Phone,Type\n")
	for _, r := range rows {
		b.WriteString(r.id + ",Ada," + r.family + ",,,eng," + r.manager + ",2020-01-06," + r.endDate + ",,employee\n")
	}
	return b.String()
}
