package vendortest

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// AFAS is a fake of AFAS Profit's REST GetConnector, from AFAS's documentation:
// GET /ProfitRestServices/connectors/{connectorId}?skip=&take=&filterfieldids=&filtervalues=
// &operatortypes=&orderbyfieldids=, authorised by "Authorization: AfasToken <base64 of the
// token XML>", answered {"skip":…,"take":…,"rows":[…]}. What the real one refuses it refuses
// the same way: a token that is not base64 is 500, a wrong token or a connector not in the app
// connector 401, a skip or take that is not a number 400, and a filter or order on a field the
// connector does not have 500 with AFAS's error body {"externalMessage":…,"errorNumber":…,
// "profitLogReference":…}. Filters: comma-separated field ids, values and operators (1 equal,
// 2 at least, 3 at most, 4 greater, 5 less), all must hold; order: comma-separated field ids, a
// leading "-" for descending. Without take, 100 rows are answered.
type AFAS struct {
	*server
	connector string
	token     string
	fields    []string

	mu       sync.Mutex
	rows     map[string]map[string]any // by the key field's value
	keyField string
	queries  []url.Values
}

// AFASToken is the XML form of an AFAS token with data, as AFAS hands it out.
func AFASToken(data string) string {
	return "<token><version>1</version><data>" + data + "</data></token>"
}

// NewAFAS starts a fake whose connector connectorID has fields (the first one, keyField,
// identifies a row) and accepts tokenXML (see AFASToken); it stops when the test ends.
func NewAFAS(t testing.TB, connectorID, tokenXML string, fields ...string) *AFAS {
	t.Helper()
	a := &AFAS{connector: connectorID, token: tokenXML, fields: fields, rows: map[string]map[string]any{}, keyField: fields[0]}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ProfitRestServices/connectors/{connectorId}", a.get)
	a.server = startServer(t, mux)
	return a
}

// ConnectorURL is what a source's poll.url is set to.
func (a *AFAS) ConnectorURL() string {
	return a.URL() + "/ProfitRestServices/connectors/" + a.connector
}

// Put stores or replaces a row (field id → value; a field left out is null).
func (a *AFAS) Put(row map[string]any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	full := map[string]any{}
	for _, f := range a.fields {
		full[f] = row[f]
	}
	a.rows[fmt.Sprint(row[a.keyField])] = full
}

// Delete removes a row.
func (a *AFAS) Delete(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.rows, key)
}

// Queries returns the query of every request served rows (copies), in order.
func (a *AFAS) Queries() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]url.Values, len(a.queries))
	for i, q := range a.queries {
		out[i] = cloneQuery(q)
	}
	return out
}

func cloneQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

func afasError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"externalMessage": message, "errorNumber": -2147180996,
		"profitLogReference": "3F2504E04F8911D39A0C0305E82C3301"})
}

func (a *AFAS) get(w http.ResponseWriter, r *http.Request) {
	a.hit()
	scheme, value, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if scheme != "AfasToken" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	decoded, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil {
		// Since Profit 6 a token not in base64 is answered 500.
		afasError(w, http.StatusInternalServerError, "Het token is niet in het juiste formaat (Base64).")
		return
	}
	if string(decoded) != a.token || r.PathValue("connectorId") != a.connector {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if fault, ok := a.fault(); ok {
		writeFault(w, fault)
		return
	}
	q := r.URL.Query()
	skip, take := 0, 100
	for name, target := range map[string]*int{"skip": &skip, "take": &take} {
		if text := q.Get(name); text != "" {
			n, err := strconv.Atoi(text)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			*target = n
		}
	}
	filters, err := a.filters(q)
	if err != nil {
		afasError(w, http.StatusInternalServerError, err.Error())
		return
	}
	order, err := a.order(q.Get("orderbyfieldids"))
	if err != nil {
		afasError(w, http.StatusInternalServerError, err.Error())
		return
	}
	a.mu.Lock()
	a.queries = append(a.queries, cloneQuery(q))
	var rows []map[string]any
	for _, row := range a.rows {
		if filters(row) {
			rows = append(rows, row)
		}
	}
	a.mu.Unlock()
	slices.SortFunc(rows, order)
	if skip > len(rows) {
		skip = len(rows)
	}
	rows = rows[skip:]
	if take >= 0 && take < len(rows) {
		rows = rows[:take]
	}
	if rows == nil {
		rows = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"skip": skip, "take": take, "rows": rows})
}

func (a *AFAS) known(field string) error {
	if !slices.Contains(a.fields, field) {
		return fmt.Errorf("Veld '%s' bestaat niet in GetConnector '%s'.", field, a.connector)
	}
	return nil
}

func (a *AFAS) filters(q url.Values) (func(map[string]any) bool, error) {
	if q.Get("filterfieldids") == "" {
		return func(map[string]any) bool { return true }, nil
	}
	fields := strings.Split(q.Get("filterfieldids"), ",")
	values := strings.Split(q.Get("filtervalues"), ",")
	operators := strings.Split(q.Get("operatortypes"), ",")
	if len(values) != len(fields) || len(operators) != len(fields) {
		return nil, fmt.Errorf("Het aantal filtervelden, filterwaarden en operatoren is niet gelijk.")
	}
	for i, f := range fields {
		if err := a.known(f); err != nil {
			return nil, err
		}
		if op, err := strconv.Atoi(operators[i]); err != nil || op < 1 || op > 5 {
			return nil, fmt.Errorf("Operator '%s' wordt niet ondersteund.", operators[i])
		}
	}
	return func(row map[string]any) bool {
		for i, f := range fields {
			c := compare(row[f], values[i])
			op, _ := strconv.Atoi(operators[i])
			if !(op == 1 && c == 0 || op == 2 && c >= 0 || op == 3 && c <= 0 || op == 4 && c > 0 || op == 5 && c < 0) {
				return false
			}
		}
		return true
	}, nil
}

func (a *AFAS) order(spec string) (func(x, y map[string]any) int, error) {
	var keys []string
	if spec != "" {
		keys = strings.Split(spec, ",")
	}
	for _, k := range keys {
		if err := a.known(strings.TrimPrefix(k, "-")); err != nil {
			return nil, err
		}
	}
	return func(x, y map[string]any) int {
		for _, k := range keys {
			field, desc := strings.TrimPrefix(k, "-"), strings.HasPrefix(k, "-")
			var c int
			switch {
			case x[field] == nil && y[field] == nil:
			case y[field] == nil:
				c = 1
			default:
				c = compare(x[field], fmt.Sprint(y[field]))
			}
			if desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return cmp.Compare(fmt.Sprint(x[a.keyField]), fmt.Sprint(y[a.keyField]))
	}, nil
}

// compare orders a row's value against a filter value: as date-times when both are, as
// numbers when both are, else as text. A null value is before everything.
func compare(value any, filter string) int {
	if value == nil {
		return -1
	}
	text := fmt.Sprint(value)
	if t1, ok := afasTime(text); ok {
		if t2, ok := afasTime(filter); ok {
			return t1.Compare(t2)
		}
	}
	if n1, err := strconv.ParseFloat(text, 64); err == nil {
		if n2, err := strconv.ParseFloat(filter, 64); err == nil {
			return cmp.Compare(n1, n2)
		}
	}
	return strings.Compare(text, filter)
}

func afasTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
