package emulator

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // canonical form
	}{
		{name: "one clause", input: "employeeId eq 'E1'", want: "employeeId eq 'E1'"},
		{name: "escaped quote", input: "displayName eq 'O''Brien'", want: "displayName eq 'O''Brien'"},
		{name: "empty string", input: "mail eq ''", want: "mail eq ''"},
		{name: "and with spacing", input: "  a eq 'x'   and\tb eq true ", want: "a eq 'x' and b eq true"},
		{name: "parentheses flatten", input: "(a eq 'x' and (b eq false)) and c eq null", want: "a eq 'x' and b eq false and c eq null"},
		{name: "keywords in upper case", input: "a EQ TRUE AND b Eq 'y'", want: "a eq true and b eq 'y'"},
		{name: "property path", input: "employeeOrgData/costCenter eq 'CC-1'", want: "employeeOrgData/costCenter eq 'CC-1'"},
		{name: "non-ASCII literal", input: "displayName eq 'Seán'", want: "displayName eq 'Seán'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFilter(tt.input)
			if err != nil {
				t.Fatalf("parseFilter(%q): %v", tt.input, err)
			}
			if diff := cmp.Diff(tt.want, got.String()); diff != "" {
				t.Errorf("canonical form mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseFilterRefusals(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  filterError
	}{
		{name: "empty", input: "", want: filterError{offset: 0, problem: "expected a property name but the filter ended"}},
		{name: "or", input: "a eq 'x' or b eq 'y'", want: filterError{offset: 9, problem: "operator 'or' is not supported"}},
		{name: "ne", input: "a ne 'x'", want: filterError{offset: 2, problem: "operator 'ne' is not supported"}},
		{name: "in without a list", input: "a in 'x'", want: filterError{offset: 5, problem: "expected '(' but found 'x'"}},
		{name: "in unclosed", input: "a in ('x', 'y'", want: filterError{offset: 14, problem: "expected ',' or ')' but the filter ended"}},
		{name: "not", input: "not a eq 'x'", want: filterError{offset: 0, problem: "operator 'not' is not supported"}},
		{name: "other function", input: "endsWith(a,'x')", want: filterError{offset: 0, problem: "function or lambda operator 'endsWith' is not supported"}},
		{name: "startsWith without a prefix", input: "startsWith(a)", want: filterError{offset: 12, problem: "expected ',' but found ')'"}},
		{name: "unterminated", input: "a eq 'x", want: filterError{offset: 5, problem: "unterminated string literal"}},
		{name: "unclosed parenthesis", input: "(a eq 'x'", want: filterError{offset: 9, problem: "expected ')' but the filter ended"}},
		{name: "trailing token", input: "a eq 'x' 'y'", want: filterError{offset: 9, problem: "unexpected 'y'"}},
		{name: "guid literal", input: "id eq 1b2c", want: filterError{offset: 6, problem: "literal 1b2c is not supported (quote strings, or use true, false or null)"}},
		{name: "bad property", input: "a//b eq 'x'", want: filterError{offset: 0, problem: "'a//b' is not a property name"}},
		{name: "odd character", input: "a eq 'x' & b", want: filterError{offset: 9, problem: "unexpected character '&'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFilter(tt.input)
			var got *filterError
			if !errors.As(err, &got) {
				t.Fatalf("parseFilter(%q) = %v; want a *filterError", tt.input, err)
			}
			if diff := cmp.Diff(tt.want, *got, cmp.AllowUnexported(filterError{})); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFilterMatches(t *testing.T) {
	props := Object{
		"displayName":     "Seán O'Brien",
		"accountEnabled":  true,
		"employeeOrgData": map[string]any{"costCenter": "CC-1"},
		"businessPhones":  []any{"+1 555"},
		"jobTitle":        nil,
	}
	tests := []struct {
		filter string
		want   bool
	}{
		{"displayName eq 'seán o''brien'", true},
		{"DisplayName eq 'Seán O''Brien'", true},
		{"accountEnabled eq true", true},
		{"accountEnabled eq 'true'", false},
		{"employeeOrgData/costCenter eq 'cc-1'", true},
		{"employeeOrgData/division eq null", true},
		{"jobTitle eq null and surname eq null", true},
		{"businessPhones eq '+1 555'", false},
		{"displayName eq null", false},
		{"accountEnabled eq true and displayName eq 'someone else'", false},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			parsed, err := parseFilter(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := parsed.matches(props); got != tt.want {
				t.Errorf("matches = %v; want %v", got, tt.want)
			}
		})
	}
}

// FuzzParseFilter checks that the parser never panics and that whatever it accepts renders to
// a canonical form that parses back to itself.
func FuzzParseFilter(f *testing.F) {
	for _, seed := range []string{
		"employeeId eq 'E1'",
		"displayName eq 'O''Brien' and accountEnabled eq true",
		"((a eq null))",
		"employeeOrgData/costCenter eq 'CC-1'",
		"startsWith(displayName,'A')",
		"a eq 'unterminated",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		parsed, err := parseFilter(input)
		if err != nil {
			var refusal *filterError
			if !errors.As(err, &refusal) {
				t.Fatalf("parseFilter(%q) returned %T, not *filterError", input, err)
			}
			if refusal.offset < 0 || refusal.offset > len(input) {
				t.Fatalf("parseFilter(%q): offset %d outside the input", input, refusal.offset)
			}
			return
		}
		if len(parsed.clauses) == 0 {
			t.Fatalf("parseFilter(%q) accepted a filter without clauses", input)
		}
		canonical := parsed.String()
		reparsed, err := parseFilter(canonical)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canonical, input, err)
		}
		if again := reparsed.String(); again != canonical {
			t.Fatalf("canonical form is not stable: %q became %q", canonical, again)
		}
		_ = parsed.matches(Object{"a": "x", "b": true, "nested": map[string]any{"c": nil}})
	})
}

func TestFilterInAndStartsWith(t *testing.T) {
	props := Object{"employeeId": "E2", "displayName": "Zoë Fischer", "employeeOrgData": map[string]any{"costCenter": "CC-7"}}
	tests := []struct {
		filter string
		want   bool
	}{
		{"employeeId in ('E1', 'E2')", true},
		{"employeeId in ('E1', 'E3')", false},
		{"startsWith(displayName, 'zoë')", true},
		{"startsWith(displayName, 'Fischer')", false},
		{"startsWith(employeeOrgData/costCenter, 'CC-') and employeeId in ('e2')", true},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			expr, err := parseFilter(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := expr.matches(props); got != tt.want {
				t.Errorf("matches = %v, want %v", got, tt.want)
			}
			again, err := parseFilter(expr.String())
			if err != nil || again.String() != expr.String() {
				t.Errorf("String() %q does not parse back the same: %v", expr.String(), err)
			}
		})
	}
}
