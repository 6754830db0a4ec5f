package vendortest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAFASRefusesWhatAFASRefuses checks the fake against AFAS's documented answers, so that
// the poller's tests meet what the real GetConnector does.
func TestAFASRefusesWhatAFASRefuses(t *testing.T) {
	token := AFASToken("0123456789ABCDEF")
	fake := NewAFAS(t, "Orgsync_Employees", token, "Medewerker", "Achternaam", "Gewijzigd")
	fake.Put(map[string]any{"Medewerker": "1001", "Achternaam": "Ash", "Gewijzigd": "2026-03-01T08:00:00Z"})
	fake.Put(map[string]any{"Medewerker": "1002", "Achternaam": "Birch", "Gewijzigd": "2026-03-02T08:00:00Z"})
	fake.Put(map[string]any{"Medewerker": "1003", "Achternaam": "Cedar"})
	good := "AfasToken " + base64.StdEncoding.EncodeToString([]byte(token))
	get := func(connector, authorization string, query url.Values) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, fake.URL()+"/ProfitRestServices/connectors/"+connector+"?"+query.Encode(), nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	ids := func(body map[string]any) []string {
		var out []string
		for _, row := range body["rows"].([]any) {
			out = append(out, row.(map[string]any)["Medewerker"].(string))
		}
		return out
	}

	for name, tc := range map[string]struct {
		connector, authorization string
		query                    url.Values
		status                   int
		errorBody                bool
	}{
		"no token":                 {"Orgsync_Employees", "", nil, http.StatusUnauthorized, false},
		"token not in base64":      {"Orgsync_Employees", "AfasToken " + token, nil, http.StatusInternalServerError, true},
		"another token":            {"Orgsync_Employees", "AfasToken " + base64.StdEncoding.EncodeToString([]byte(AFASToken("FFFF"))), nil, http.StatusUnauthorized, false},
		"connector not in the app": {"Profit_Debtors", good, nil, http.StatusUnauthorized, false},
		"skip not a number":        {"Orgsync_Employees", good, url.Values{"skip": {"x"}}, http.StatusBadRequest, false},
		"filter on an unknown field": {"Orgsync_Employees", good, url.Values{"filterfieldids": {"Salaris"}, "filtervalues": {"1"}, "operatortypes": {"1"}},
			http.StatusInternalServerError, true},
		"order on an unknown field": {"Orgsync_Employees", good, url.Values{"orderbyfieldids": {"-Salaris"}}, http.StatusInternalServerError, true},
	} {
		t.Run(name, func(t *testing.T) {
			status, body := get(tc.connector, tc.authorization, tc.query)
			_, hasMessage := body["externalMessage"]
			_, hasReference := body["profitLogReference"]
			if status != tc.status || tc.errorBody && !(hasMessage && hasReference) {
				t.Errorf("status %d, body %v", status, body)
			}
		})
	}

	status, body := get("Orgsync_Employees", good, url.Values{"filterfieldids": {"Gewijzigd"}, "filtervalues": {"2026-03-01T09:00:00"},
		"operatortypes": {"2"}, "orderbyfieldids": {"-Medewerker"}, "skip": {"0"}, "take": {"10"}})
	if status != http.StatusOK || !cmp.Equal(ids(body), []string{"1002"}) || body["skip"] != 0.0 || body["take"] != 10.0 {
		t.Errorf("filtered: %d %v", status, body)
	}
	_, body = get("Orgsync_Employees", good, url.Values{"orderbyfieldids": {"-Medewerker"}, "skip": {"1"}, "take": {"1"}})
	if !cmp.Equal(ids(body), []string{"1002"}) {
		t.Errorf("descending, skip 1, take 1: %v", ids(body))
	}
	_, body = get("Orgsync_Employees", good, nil)
	if !cmp.Equal(ids(body), []string{"1001", "1002", "1003"}) || body["take"] != 100.0 {
		t.Errorf("defaults: %v", body)
	}
}
