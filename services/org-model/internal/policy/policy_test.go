package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

func TestLoadFullPolicy(t *testing.T) {
	pol, err := Load("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{
		"timezone":      pol.Location.String(),
		"domains":       pol.UPNDomains,
		"preCreate":     pol.Lifecycle.PreCreateDays,
		"leaverMode":    string(pol.Lifecycle.LeaverMode),
		"grace":         pol.Lifecycle.MembershipGrace,
		"startOfEnd":    pol.Lifecycle.DisableAtStartOfEndDate,
		"guard":         pol.Guard,
		"rollup":        pol.Groups.Rollup.Enabled,
		"managers":      pol.Groups.Managers.Enabled,
		"rules":         len(pol.Groups.Rules),
		"rule0":         pol.Groups.Rules[0].DisplayName,
		"rule1nick":     pol.Groups.Rules[1].MailNickname,
		"entraMappings": len(pol.Mapping["entra"]),
		"adMappings":    len(pol.Mapping["ad"]),
	}
	want := map[string]any{
		"timezone": "Europe/London", "domains": []string{"corp.example.com", "example.com"},
		"preCreate": 14, "leaverMode": "leaveDateOnly", "grace": 30 * 24 * time.Hour, "startOfEnd": true,
		"guard":  Guard{MaxChanges: 50, MaxShare: 0.1, MinChangesForShare: 10, Window: 2 * time.Hour},
		"rollup": true, "managers": true, "rules": 2, "rule0": "Location - London", "rule1nick": "orgsync-rule-contractors",
		"entraMappings": 4, "adMappings": 2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
}

func TestExpressionsAndHelpers(t *testing.T) {
	pol, err := Load("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vars := &WorkerVars{
		Worker: &orgsyncv1.Worker{
			WorkerId: "E1", Name: &orgsyncv1.PersonName{GivenName: "Zoë", FamilyName: "Ångström-Smith"},
			Company: "Example Ltd", Location: "New York", EmploymentType: orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_CONTRACTOR,
			WorkEmail: "Zoe.A@Corp.Example.com", StartDate: &orgsyncv1.Date{Year: 2026, Month: 4, Day: 7},
		},
		Unit:   &orgsyncv1.OrgUnit{OrgUnitId: "sales", Name: "Sales"},
		Domain: "corp.example.com",
	}
	evalString := func(e *Expr) string {
		t.Helper()
		s, err := e.String(vars)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	got := map[string]string{
		"upn0":         evalString(pol.Identifiers.UserPrincipalName[0]),
		"upn1":         evalString(pol.Identifiers.UserPrincipalName[1]),
		"sam":          evalString(pol.Identifiers.SAMAccountName[0]),
		"displayName":  evalString(pol.Mapping["entra"]["displayName"]),
		"department":   evalString(pol.Mapping["entra"]["department"]),
		"employeeType": evalString(pol.Mapping["entra"]["employeeType"]),
		"start":        evalString(pol.Mapping["entra"]["extensionAttribute1"]),
		"office":       evalString(pol.Mapping["ad"]["physicalDeliveryOfficeName"]),
	}
	want := map[string]string{
		"upn0": "zoe.a", "upn1": "zoe.angstrom-smith", "sam": "zangstrom-smith", "displayName": "Zoë Ångström-Smith",
		"department": "Sales", "employeeType": "Contractor", "start": "2026-04-07", "office": "NEWYORK",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("expressions (-want +got):\n%s", diff)
	}
	for name, tc := range map[string]struct {
		expr *Expr
		want bool
	}{
		"scope of a contractor":     {pol.Scope, true},
		"not in London":             {pol.Groups.Rules[0].Filter, false},
		"contractor without agency": {pol.Groups.Rules[1].Filter, false},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := tc.expr.Bool(vars)
			if err != nil || got != tc.want {
				t.Errorf("= %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestDefaultPolicyKeepsEnvironmentSettings(t *testing.T) {
	pol, err := Default("corp.example.com", "Team: ")
	if err != nil {
		t.Fatal(err)
	}
	name, err := pol.Groups.Unit.DisplayName.String(&UnitVars{Unit: &orgsyncv1.OrgUnit{Name: "Sales"}})
	if err != nil {
		t.Fatal(err)
	}
	if name != "Team: Sales" || !cmp.Equal(pol.UPNDomains, []string{"corp.example.com"}) || pol.Groups.Rollup.Enabled {
		t.Errorf("default policy: name %q, domains %v, rollup %v", name, pol.UPNDomains, pol.Groups.Rollup.Enabled)
	}
	if _, err := Default("", ""); err != nil {
		t.Errorf("empty defaults: %v", err)
	}
}

func TestBadPolicyStopsWithFileLineAndReason(t *testing.T) {
	tests := []struct {
		name, file string
		wantLine   int
		wantReason string
	}{
		{"unknown top-level key", "timezone: UTC\nsafety: {}\n", 2, `unknown key "safety" in the policy`},
		{"CEL syntax error", "timezone: UTC\nscope: 'worker.location =='\n", 2, "scope: CEL: Syntax error"},
		{"unknown worker field", "scope: 'worker.office == \"x\"'\n", 1, "undefined field 'office'"},
		{"scope not a bool", "scope: 'worker.location'\n", 1, "scope must be a bool expression"},
		{"unknown attribute", "mapping:\n  entra:\n    displayName: 'worker.job_title'\n    favouriteColour: '\"red\"'\n", 4, `unknown entra attribute "favouriteColour"`},
		{"bad time zone", "timezone: Mars/Olympus\n", 1, "not an IANA time zone"},
		{"bad leaver mode", "lifecycle:\n  leaverMode: delete\n", 2, "lifecycle.leaverMode must be"},
		{"licence SKU not a GUID", "groups:\n  licenses:\n    unit-sales:\n      - skuId: E3\n", 4, `groups.licenses.unit-sales.skuId must be a GUID (as Graph's subscribedSkus lists it), not "E3"`},
		{"bad access revocation", "lifecycle:\n  revokeAccess: sometimes\n", 2, `lifecycle.revokeAccess must be terminations, allLeavers or never, not "sometimes"`},
		{"first-day pass lifetime over 30 days", "lifecycle:\n  firstDayCredential:\n    lifetimeMinutes: 50000\n", 3, `lifecycle.firstDayCredential.lifetimeMinutes must be a whole number from 10 to 43200, not "50000"`},
		{"bad share", "guard:\n  maxShare: 1.5\n", 2, "guard.maxShare must be a share"},
		{"duplicate rule key", "groups:\n  rules:\n    - {key: a, filter: 'true'}\n    - {key: a, filter: 'true'}\n", 4, `rule group key "a" is used twice`},
		{"multi-line CEL error", "scope: |\n  worker.location == \"London\" &&\n  worker.nope\n", 3, "undefined field 'nope'"},
		{"YAML syntax", "timezone: [UTC\n", 1, "did not find expected"},
		{"bad domain", "upnDomains: [\"a@b\"]\n", 1, "is not a domain name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "policy.yaml")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("err = %v, want a policy error", err)
			}
			if perr.File != path || perr.Line != tc.wantLine || !strings.Contains(perr.Reason, tc.wantReason) {
				t.Errorf("err = %v; want %s:%d: …%s…", err, path, tc.wantLine, tc.wantReason)
			}
		})
	}
}

func TestBadPolicyReportsEveryProblemAtOnce(t *testing.T) {
	// One problem in each independent part of the file: an operator fixing a policy sees them all
	// in one start, in line order, not one per restart.
	file := strings.Join([]string{
		"timezone: Mars/Olympus",                      // 1
		"safety: {}",                                  // 2
		"upnDomains: [corp.example.com, \"a@b\"]",     // 3
		"mapping:",                                    // 4
		"  entra:",                                    // 5
		"    favouriteColour: '\"red\"'",              // 6
		"    jobTitle: 'worker.nope'",                 // 7
		"    department: 'worker.department'",         // 8
		"groups:",                                     // 9
		"  rules:",                                    // 10
		"    - {key: a, filter: 'worker.location'}",   // 11
		"    - {key: b, filter: 'true', colour: red}", // 12
		"lifecycle:",                                  // 13
		"  leaverMode: delete",                        // 14
		"  preCreateDays: 9999",                       // 15
		"guard:",                                      // 16
		"  maxShare: 1.5",                             // 17
		"sources:",                                    // 18
		"  - {name: x, hierarchy: [shoeSize]}",        // 19
		"",
	}, "\n")
	_, err := Parse("orgsync.yaml", []byte(file))
	var all Errors
	if !errors.As(err, &all) {
		t.Fatalf("err = %v, want every problem as policy.Errors", err)
	}
	want := []struct {
		line   int
		reason string
	}{
		{1, "not an IANA time zone"},
		{2, `unknown key "safety" in the policy`},
		{3, `"a@b" is not a domain name`},
		{6, `unknown entra attribute "favouriteColour"`},
		{7, "undefined field 'nope'"},
		{11, "groups.rules[a].filter must be a bool expression"},
		{12, `unknown key "colour" in a rule group`},
		{14, "lifecycle.leaverMode must be"},
		{15, "lifecycle.preCreateDays must be a whole number from 0 to 365"},
		{17, "guard.maxShare must be a share"},
		{19, `"shoeSize" is not a worker attribute`},
	}
	if len(all) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(all), len(want), err)
	}
	for i, w := range want {
		if all[i].File != "orgsync.yaml" || all[i].Line != w.line || !strings.Contains(all[i].Reason, w.reason) {
			t.Errorf("problem %d = %v; want orgsync.yaml:%d: …%s…", i, all[i], w.line, w.reason)
		}
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != len(want) {
		t.Errorf("the error prints %d lines, want one per problem:\n%v", lines, err)
	}
}

func FuzzLoad(f *testing.F) {
	seed, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("scope: 'worker.location == \"x\"'\n"))
	f.Add([]byte("groups: {rules: [{key: a, filter: 'true'}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pol, err := Parse("fuzz.yaml", data)
		if err == nil && pol == nil {
			t.Fatal("no policy and no error")
		}
		var perr *Error
		if err != nil && !errors.As(err, &perr) {
			t.Fatalf("error without a line: %v", err)
		}
	})
}

func TestSharedPolicyFileLeavesHRSourcesToHRIngest(t *testing.T) {
	pol, err := Parse("orgsync.yaml", []byte("sources:\n  - {name: workday, kind: canonical, secrets: [{env: W}]}\nupnDomains: [corp.example.com]\n"))
	if err != nil || !cmp.Equal(pol.UPNDomains, []string{"corp.example.com"}) {
		t.Errorf("policy with sources: %v, %v", pol, err)
	}
}

func TestExamplePolicyLoads(t *testing.T) {
	pol, err := Load("../../policy.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !pol.Groups.Rollup.Enabled || !pol.Groups.Managers.Enabled || len(pol.Groups.Rules) != 2 || pol.Guard.MaxShare != 0.2 {
		t.Errorf("example policy: %+v", pol.Groups)
	}
}

func TestIdentifiersRegenerate(t *testing.T) {
	tests := []struct {
		name, file string
		want       Regenerate
		wantReason string
	}{
		{name: "default", file: "timezone: UTC\n", want: RegenerateNever},
		{name: "never", file: "identifiers:\n  regenerate: never\n", want: RegenerateNever},
		{name: "on name change", file: "identifiers:\n  regenerate: onNameChange\n", want: RegenerateOnNameChange},
		{name: "older spelling", file: "identifiers:\n  regenerateOnNameChange: true\n", want: RegenerateOnNameChange},
		{name: "unknown mode", file: "identifiers:\n  regenerate: always\n", wantReason: `identifiers.regenerate must be "never" or "onNameChange", not "always"`},
		{name: "both spellings", file: "identifiers:\n  regenerate: never\n  regenerateOnNameChange: true\n", wantReason: "say the same thing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol, err := Parse("policy.yaml", []byte(tc.file))
			if tc.wantReason != "" {
				var perr *Error
				if !errors.As(err, &perr) || !strings.Contains(perr.Reason, tc.wantReason) {
					t.Fatalf("err = %v, want a policy error …%s…", err, tc.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pol.Identifiers.Regenerate != tc.want {
				t.Errorf("regenerate = %q, want %q", pol.Identifiers.Regenerate, tc.want)
			}
		})
	}
}

// TestEveryProblemOfAFileAtOnce reads policy files with several problems each — unknown keys,
// bad CEL, wrong types, a missing required field, names given twice — and gets every problem of
// org-model's part, each as file:line: reason, in line order; the sources list's own problems
// (hr-ingest's concern) are not reported here.
func TestEveryProblemOfAFileAtOnce(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string // "line: reason"
	}{
		{"../../../../pkg/policyfile/testdata/several-problems.yaml", []string{
			`5: unknown key "colour" in the policy (allowed: timezone, scope, upnDomains, identifiers, mapping, groups, lifecycle, guard, sources)`,
			`6: scope: CEL: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER} (in "worker.location ==")`,
			`8: lifecycle.preCreateDays must be a whole number from 0 to 365, not "soon"`,
			`11: a rule group needs a key`,
			`22: sources[export].hierarchy: "shoeSize" is not a worker attribute (known: company, costCenter, department, division, jobTitle, location, custom.<attribute>)`,
		}},
		{"testdata/several-problems.yaml", []string{
			`2: upnDomains must be a list`,
			`4: unknown key "upn" in identifiers (allowed: userPrincipalName, sAMAccountName, regenerate, regenerateOnNameChange)`,
			`8: duplicate key "jobTitle" in mapping.entra`,
			`11: groups.rules[sales].filter: CEL: Syntax error: token recognition error at: '= ' (in "worker.department = \"Sales\"")`,
			`12: rule group key "sales" is used twice`,
			`14: unknown key "graceDays" in lifecycle (allowed: preCreateDays, leaverMode, membershipGrace, disableAt, revokeAccess, firstDayCredential)`,
			`16: guard.window must be a duration such as 30d, 12h or 90m, not "a while"`,
		}},
	} {
		t.Run(filepath.Base(filepath.Dir(tc.file))+"/"+filepath.Base(tc.file), func(t *testing.T) {
			pol, err := Load(tc.file)
			if err == nil {
				t.Fatalf("Load accepted %s: %+v", tc.file, pol)
			}
			var all Errors
			if !errors.As(err, &all) {
				t.Fatalf("err = %T %v, want policy.Errors", err, err)
			}
			want := make([]string, len(tc.want))
			for i, lineAndReason := range tc.want {
				want[i] = tc.file + ":" + lineAndReason
			}
			if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
