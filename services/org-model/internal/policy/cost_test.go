package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/orgsync/orgsync/pkg/policyfile"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// TestStaticCostEstimate: a rule whose worst case exceeds the limit is refused at load with the
// file, the line, the rule and the limit; ordinary rules load.
func TestStaticCostEstimate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		yaml    string
		wantErr []string
	}{
		{
			name: "built-in defaults",
			yaml: "upnDomains: [corp.example.com]\n",
		},
		{
			name: "ordinary mapping and rule",
			yaml: "mapping:\n  ad:\n    parentDistinguishedName: '\"OU=\" + escapeRDN(unit.name) + \",OU=Staff,DC=corp,DC=example\"'\n" +
				"    description: 'unit_path.map(p, toUpper(p)).join(\" / \")'\n" +
				"groups:\n  rules:\n    - key: sales\n      filter: 'unit_path.exists(p, p == \"Sales\") && worker.job_title.split(\" \").exists(w, w == \"Lead\")'\n",
		},
		{
			name:    "nested comprehension over lists",
			yaml:    "groups:\n  rules:\n    - key: slow\n      filter: |\n        lists.range(5000).exists(i, lists.range(5000).exists(j, i * j == -1))\n",
			wantErr: []string{"p.yaml:4:", "groups.rules[slow].filter", "over the limit of 1000000 per evaluation"},
		},
		{
			name:    "nested comprehension over split strings",
			yaml:    "mapping:\n  entra:\n    jobTitle: 'worker.job_title.split(\"\").map(a, worker.job_title.split(\"\").map(b, a + b).join(\"\")).join(\"\")'\n",
			wantErr: []string{"p.yaml:3:", "mapping.entra.jobTitle", "over the limit of 1000000"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tc.yaml))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Parse accepted an expression over the cost limit")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestRuntimeCostLimit: HR data longer than the static estimate assumes makes an expression of a
// caller's policy (ParseUntrusted, as Plan parses one) costly at run time; the evaluation stops at
// the limit with ErrCostLimit, naming the rule.
func TestRuntimeCostLimit(t *testing.T) {
	pol, err := ParseUntrusted("p.yaml", []byte("mapping:\n  entra:\n    jobTitle: 'worker.job_title.replace(\"x\", \"yy\").replace(\"y\", \"zz\")'\n"))
	if err != nil {
		t.Fatal(err)
	}
	expr := pol.Mapping["entra"]["jobTitle"]
	if got, err := expr.String(&WorkerVars{Worker: &orgsyncv1.Worker{JobTitle: "ax"}}); err != nil || got != "azzzz" {
		t.Fatalf("short title: %q, %v", got, err)
	}
	_, err = expr.String(&WorkerVars{Worker: &orgsyncv1.Worker{JobTitle: strings.Repeat("x", 5_000_000)}})
	if !errors.Is(err, ErrCostLimit) {
		t.Fatalf("long title: err = %v, want ErrCostLimit", err)
	}
	for _, want := range []string{"p.yaml:3", "mapping.entra.jobTitle", "1000000"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	// The operator's own policy (Parse) tracks cost only where there is a comprehension: this
	// expression is linear in its input, so the same long title is simply evaluated.
	trusted, err := Parse("p.yaml", []byte("mapping:\n  entra:\n    jobTitle: 'worker.job_title.replace(\"x\", \"yy\").replace(\"y\", \"zz\")'\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := trusted.Mapping["entra"]["jobTitle"].String(&WorkerVars{Worker: &orgsyncv1.Worker{JobTitle: strings.Repeat("x", 5_000_000)}})
	if err != nil || len(got) != 20_000_000 {
		t.Errorf("operator's policy, long title: %d characters, %v; want 20000000 characters, no error", len(got), err)
	}
}

// TestEvalTimeout: a comprehension over a list far longer than the static estimate assumed is
// stopped by EvalTimeout (cel-go's cost tracking makes such a loop slow long before it is costly).
func TestEvalTimeout(t *testing.T) {
	pol, err := Parse("p.yaml", []byte("groups:\n  rules:\n    - key: r\n      filter: 'worker.job_title.split(\" \").exists(w, w == \"z\")'\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = pol.Groups.Rules[0].Filter.Bool(&WorkerVars{Worker: &orgsyncv1.Worker{JobTitle: strings.Repeat("x ", 500_000)}})
	if !errors.Is(err, ErrEvalTimeout) {
		t.Fatalf("err = %v, want ErrEvalTimeout", err)
	}
	if !strings.Contains(err.Error(), "groups.rules[r].filter") || !strings.Contains(err.Error(), EvalTimeout.String()) {
		t.Errorf("error %q does not name the rule and the limit", err)
	}
}

// TestContextStopsEvaluation: an expression evaluated with a cancelled context stops with the
// context's cause, before and during a comprehension.
func TestContextStopsEvaluation(t *testing.T) {
	pol, err := Parse("p.yaml", []byte("groups:\n  rules:\n    - key: r\n      filter: 'worker.job_title.split(\"\").exists(c, c == \"y\")'\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	stop := errors.New("plan timed out")
	cancel(stop)
	vars := &WorkerVars{Worker: &orgsyncv1.Worker{JobTitle: strings.Repeat("x", 5000)}, Context: ctx}
	_, err = pol.Groups.Rules[0].Filter.Bool(vars)
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want the context's cause", err)
	}
	if !strings.Contains(err.Error(), "groups.rules[r].filter") {
		t.Errorf("error %q does not name the rule", err)
	}
	vars = &WorkerVars{Worker: &orgsyncv1.Worker{JobTitle: strings.Repeat("x", 50)}, Context: t.Context()}
	if in, err := pol.Groups.Rules[0].Filter.Bool(vars); err != nil || in {
		t.Fatalf("live context: %v, %v", in, err)
	}
}

func TestEscapeRDN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Sales", "Sales"},
		{"", ""},
		{"Smith, Jane", `Smith\, Jane`},
		{"x,OU=Admins", `x\,OU\=Admins`},
		{"a+b", `a\+b`},
		{`say "hi"`, `say \"hi\"`},
		{`back\slash`, `back\\slash`},
		{"<tag>;", `\<tag\>\;`},
		{" leading", `\ leading`},
		{"trailing ", `trailing\ `},
		{" ", `\ `},
		{"  ", `\ \ `},
		{"#1 team", `\#1 team`},
		{"team #1", "team #1"},
		{"nul\x00byte", `nul\00byte`},
		{"Zoë Ångström", "Zoë Ångström"},
		{"a=b", `a\=b`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, EscapeRDN(tc.in)); diff != "" {
				t.Errorf("EscapeRDN(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

// TestEscapeRDNInPolicy: the CEL function is the Go function.
func TestEscapeRDNInPolicy(t *testing.T) {
	pol, err := Parse("p.yaml", []byte("mapping:\n  ad:\n    parentDistinguishedName: '\"OU=\" + escapeRDN(unit.name) + \",OU=Staff,DC=corp,DC=example\"'\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := pol.Mapping["ad"]["parentDistinguishedName"].String(&WorkerVars{Unit: &orgsyncv1.OrgUnit{Name: "x,OU=Admins"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `OU=x\,OU\=Admins,OU=Staff,DC=corp,DC=example`; got != want {
		t.Errorf("parentDistinguishedName = %q, want %q", got, want)
	}
}

// BenchmarkEvalLimits prints what the cost limit and the evaluation timeout add to one
// evaluation: the built-in UPN candidate (no comprehension) and a rule with one, each with the
// limits (as the policy compiles them) and without.
func BenchmarkEvalLimits(b *testing.B) {
	env, err := newEnv(workerVarDecls...)
	if err != nil {
		b.Fatal(err)
	}
	vars := &WorkerVars{Worker: &orgsyncv1.Worker{WorkerId: "E1", JobTitle: "Senior Sales Engineer",
		Name: &orgsyncv1.PersonName{GivenName: "Zoë", FamilyName: "Ångström"}}, UnitPath: []string{"Example", "Sales", "EMEA"}}
	for _, tc := range []struct{ name, src string }{
		{"upn", defaultUPNName},
		{"comprehension", `unit_path.exists(p, p == "Sales") && worker.job_title.split(" ").exists(w, w == "Engineer")`},
	} {
		p := &parser{problems: policyfile.Problems{File: "bench"}}
		limited, err := p.compile(&yaml.Node{Kind: yaml.ScalarNode, Value: tc.src, Line: 1}, tc.name, env, cel.BoolType)
		if err != nil {
			if limited, err = p.compile(&yaml.Node{Kind: yaml.ScalarNode, Value: tc.src, Line: 1}, tc.name, env, cel.StringType); err != nil {
				b.Fatal(err)
			}
		}
		ast, iss := env.Compile(tc.src)
		if iss.Err() != nil {
			b.Fatal(iss.Err())
		}
		plain, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name+"/limits", func(b *testing.B) {
			for b.Loop() {
				if _, err := limited.eval(vars); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/none", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := plain.Eval(vars); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestEscapeRDNRoundTrips: go-ldap's RFC 4514 parser reads an escaped value back as exactly one
// RDN holding the original value, whatever the value holds.
func TestEscapeRDNRoundTrips(t *testing.T) {
	for _, value := range []string{"Sales", "x,OU=Admins", "Smith, Jane+UID=root", ` "quoted" `, "#hash", `back\slash;`, "<a>=b", "trail ", "nul\x00", "Zoë"} {
		t.Run(value, func(t *testing.T) { checkEscapeRDNRoundTrip(t, value) })
	}
}

func FuzzEscapeRDN(f *testing.F) {
	for _, seed := range []string{"Sales", "x,OU=Admins", " #a+b ", `\,"`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if value == "" || !utf8.ValidString(value) {
			return
		}
		checkEscapeRDNRoundTrip(t, value)
	})
}

func checkEscapeRDNRoundTrip(t *testing.T, value string) {
	t.Helper()
	dn, err := ldap.ParseDN("OU=" + EscapeRDN(value) + ",OU=Staff,DC=corp")
	if err != nil {
		t.Fatalf("ParseDN(escaped %q): %v", value, err)
	}
	if len(dn.RDNs) != 3 || len(dn.RDNs[0].Attributes) != 1 {
		t.Fatalf("escaped %q parses as %d RDNs (first with %d attributes), want 3 (1)", value, len(dn.RDNs), len(dn.RDNs[0].Attributes))
	}
	if got := dn.RDNs[0].Attributes[0].Value; got != value {
		t.Errorf("escaped %q reads back as %q", value, got)
	}
}
