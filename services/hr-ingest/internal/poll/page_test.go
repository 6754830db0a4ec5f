package poll

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

func afasPoll() source.Poll {
	return source.Poll{Preset: source.PresetAFAS, URL: "https://12345.rest.afas.online/ProfitRestServices/connectors/Orgsync_Employees",
		ModifiedField: "Gewijzigd", Auth: source.PollAuth{Secret: "<token><version>1</version><data>ABC</data></token>"},
		Fields: map[string]string{"workerId": "Medewerker", "givenName": "Roepnaam", "familyName": "Achternaam", "workEmail": "EmailWerk", "managerWorkerId": "Leidinggevende"},
	}.WithDefaults()
}

// TestParsePageAFAS reads a GetConnector answer: numbers and nulls as AFAS writes them, the
// modified time (in the source's zone when it has no offset) as occurred_at, unmapped fields as
// custom attributes, and a record that cannot be mapped named by its pointers without values.
func TestParsePageAFAS(t *testing.T) {
	amsterdam, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	body := `{"skip":0,"take":100,"rows":[
	 {"Medewerker":"1001","Roepnaam":" Ann ","Achternaam":"Ash","EmailWerk":"Ann.Ash@Example.com","Leidinggevende":null,"Kostenplaats":4711,"Gewijzigd":"2026-03-01T09:30:00"},
	 {"Medewerker":"1002","Roepnaam":"Bob","Achternaam":"Birch","EmailWerk":"bob at example","Leidinggevende":"1001","Kostenplaats":null,"Gewijzigd":"2026-03-01T10:00:00Z"}]}`
	page, err := ParsePage(afasPoll(), amsterdam, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 2 {
		t.Fatalf("records = %d", len(page.Records))
	}
	first := page.Records[0]
	want := &orgsyncv1.Worker{WorkerId: "1001", Name: &orgsyncv1.PersonName{GivenName: "Ann", FamilyName: "Ash"}, WorkEmail: "ann.ash@example.com",
		EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, CustomAttributes: map[string]string{"Kostenplaats": "4711"}}
	if diff := cmp.Diff(want, first.Event.GetWorker(), protocmp.Transform()); diff != "" || first.Invalid != nil {
		t.Errorf("first record (-want +got):\n%s\ninvalid: %v", diff, first.Invalid)
	}
	if at := time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC); !first.Modified.Equal(at) || !first.Event.GetOccurredAt().AsTime().Equal(at) || first.Version() != "2026-03-01T08:30:00Z" {
		t.Errorf("modified %v, occurred %v, version %s", first.Modified, first.Event.GetOccurredAt().AsTime(), first.Version())
	}
	second := page.Records[1]
	if second.Event != nil || second.WorkerID != "1002" || second.Invalid == nil || second.Invalid.Error() != "invalid fields: /rows/1/EmailWerk" {
		t.Errorf("second record = %+v", second)
	}
}

// TestParsePageShapes reads a Workday RaaS answer, a bare JSON array with a next link member
// elsewhere, and CSV; a body that is not in its format is a *normalize.SyntaxError.
func TestParsePageShapes(t *testing.T) {
	workday := source.Poll{Preset: source.PresetWorkday, Fields: map[string]string{"workerId": "Employee_ID", "familyName": "Last_Name", "givenName": "First_Name"},
		ModifiedField: "Last_Updated"}.WithDefaults()
	page, err := ParsePage(workday, time.UTC, []byte(`{"Report_Entry":[{"Employee_ID":"21001","First_Name":"Logan","Last_Name":"McNeil","Last_Updated":"2026-03-01T09:00:00.000-08:00"}]}`))
	if err != nil || len(page.Records) != 1 || page.Records[0].WorkerID != "21001" || !page.Records[0].Modified.Equal(time.Date(2026, 3, 1, 17, 0, 0, 0, time.UTC)) {
		t.Errorf("workday page = %+v, %v", page, err)
	}

	next := source.Poll{Records: "value", Paging: source.Paging{Mode: source.PagingNext, Next: "@odata.nextLink"},
		Fields: map[string]string{"workerId": "id", "familyName": "surname", "givenName": "givenName"}}.WithDefaults()
	page, err = ParsePage(next, time.UTC, []byte(`{"value":[{"id":7,"surname":"Roe","givenName":"Ray"}],"@odata.nextLink":"/people?page=2"}`))
	if err != nil || page.Next != "/people?page=2" || page.Records[0].WorkerID != "7" || page.Records[0].Version() == "" {
		t.Errorf("next page = %+v, %v", page, err)
	}

	csvPoll := source.Poll{Format: "csv", Fields: map[string]string{"workerId": "Employee ID", "familyName": "Surname", "givenName": "First"}, ModifiedField: "Changed"}.WithDefaults()
	page, err = ParsePage(csvPoll, time.UTC, []byte("Employee ID,First,Surname,Changed\nE1,Ada,Lovelace,2026-03-01T09:00:00Z\n"))
	if err != nil || len(page.Records) != 1 || page.Records[0].Event.GetWorker().GetName().GetFamilyName() != "Lovelace" {
		t.Errorf("csv page = %+v, %v", page, err)
	}
	if page, err := ParsePage(csvPoll, time.UTC, nil); err != nil || len(page.Records) != 0 {
		t.Errorf("an empty CSV answer: %+v, %v", page, err)
	}

	for name, body := range map[string]string{"not JSON": `<html>`, "no member": `{"skip":0,"take":10}`, "record not an object": `{"rows":[1]}`} {
		if _, err := ParsePage(afasPoll(), time.UTC, []byte(body)); !isSyntax(err) {
			t.Errorf("%s: error %v, want a syntax error", name, err)
		}
	}
}

func isSyntax(err error) bool {
	_, ok := errors.AsType[*normalize.SyntaxError](err)
	return ok
}

// TestAFASAuthorization: the header is "AfasToken " and the base64 of the token XML, as AFAS's
// documentation shows; a token given as its data only is wrapped in the XML first.
func TestAFASAuthorization(t *testing.T) {
	xml := "<token><version>1</version><data>54740093832496081845474abcdefghijklmnopq740093832496081841234127</data></token>"
	want := "AfasToken " + base64.StdEncoding.EncodeToString([]byte(xml))
	if got := AFASAuthorization(xml); got != want {
		t.Errorf("from the XML: %s", got)
	}
	if got := AFASAuthorization("54740093832496081845474abcdefghijklmnopq740093832496081841234127"); got != want {
		t.Errorf("from the data: %s", got)
	}
	if !strings.HasPrefix(want, "AfasToken PHRva2VuPjx2ZXJzaW9uPjE8L3ZlcnNpb24+PGRhdGE+") {
		t.Errorf("not the documented form: %s", want)
	}
}

// TestClientRequests: the URL a page is asked with, credentials in a header only, a next link
// to another host refused, and the answers that stop polling told apart from those retried.
func TestClientRequests(t *testing.T) {
	var seen *http.Request
	status := http.StatusOK
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		if status != http.StatusOK {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(status)
			return
		}
		_, _ = w.Write([]byte(`{"rows":[]}`))
	}))
	t.Cleanup(endpoint.Close)
	cfg := afasPoll()
	cfg.URL = endpoint.URL + "/ProfitRestServices/connectors/Orgsync_Employees"
	amsterdam, _ := time.LoadLocation("Europe/Amsterdam")
	client, err := NewClient(source.Config{Name: "afas", Kind: source.KindPoll, Poll: cfg, Location: amsterdam}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Fetch(t.Context(), Request{Since: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), Offset: 200}); err != nil {
		t.Fatal(err)
	}
	q := seen.URL.Query()
	if q.Get("filtervalues") != "2026-03-01T09:00:00" || q.Get("skip") != "200" || q.Get("take") != "100" || q.Get("operatortypes") != "2" ||
		q.Get("filterfieldids") != "Gewijzigd" || strings.Contains(seen.URL.String(), "ABC") || seen.Header.Get("Authorization") != AFASAuthorization("ABC") {
		t.Errorf("request %s, Authorization %q", seen.URL, seen.Header.Get("Authorization"))
	}

	if _, err := client.Fetch(t.Context(), Request{Next: "https://elsewhere.example/connectors/x?skip=100"}); !errors.Is(err, ErrForeignNext) || !Permanent(err) {
		t.Errorf("a next link to another host: %v", err)
	}
	for _, tc := range []struct {
		status    int
		permanent bool
		class     string
	}{
		{http.StatusBadRequest, true, "refused"},
		{http.StatusUnauthorized, true, "unauthorized"},
		{http.StatusTooManyRequests, false, "throttled"},
		{http.StatusServiceUnavailable, false, "unavailable"},
		{http.StatusInternalServerError, false, "unavailable"},
	} {
		status = tc.status
		_, err := client.Fetch(context.Background(), Request{})
		if err == nil || Permanent(err) != tc.permanent || errorClass(err) != tc.class || strings.Contains(err.Error(), "ABC") {
			t.Errorf("%d: error %v, permanent %v, class %s", tc.status, err, Permanent(err), errorClass(err))
		}
		if throttled, ok := errors.AsType[*notify.ThrottledError](err); tc.status == http.StatusTooManyRequests && (!ok || throttled.RetryAfter != 7*time.Second) {
			t.Errorf("429: Retry-After not kept: %v", err)
		}
	}
}

// FuzzParsePage: whatever an endpoint answers, reading it never panics, and every record is
// either an event with a worker id or a reason.
func FuzzParsePage(f *testing.F) {
	f.Add([]byte(`{"skip":0,"take":2,"rows":[{"Medewerker":"1","Roepnaam":"A","Achternaam":"B","Gewijzigd":"2026-03-01T09:00:00Z"}]}`), false)
	f.Add([]byte(`{"rows":[{"Medewerker":null,"Gewijzigd":12}]}`), false)
	f.Add([]byte("Medewerker,Achternaam,Roepnaam,Gewijzigd\n1,B,A,2026-03-01\n"), true)
	f.Fuzz(func(t *testing.T, body []byte, csv bool) {
		cfg := afasPoll()
		if csv {
			cfg.Format = "csv"
		}
		page, err := ParsePage(cfg, time.UTC, body)
		if err != nil {
			return
		}
		for _, rec := range page.Records {
			if (rec.Event == nil) == (rec.Invalid == nil) {
				t.Fatalf("record with both or neither an event and a reason: %+v", rec)
			}
			if rec.Event != nil && rec.Event.GetWorker().GetWorkerId() == "" {
				t.Fatalf("event without a worker id: %+v", rec)
			}
		}
	})
}
