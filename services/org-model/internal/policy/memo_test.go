package policy

import (
	"fmt"
	"testing"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// memoPolicy has expressions of every kind of input a Memo keys on: worker strings, a nested
// name, an enum, a date (a message of scalars), presence tests, the derived variables, the unit
// variables; and three that cannot be memoised.
const memoPolicy = `
upnDomains: [corp.example.com]
scope: 'worker.company == "Example Ltd" && employment_status != "terminated"'
identifiers:
  userPrincipalName:
    - 'trimDots(mailSafe(first_name) + "." + mailSafe(worker.name.family_name))'
    - 'has(worker.name.preferred_name) ? mailSafe(worker.name.preferred_name) : ""'
mapping:
  entra:
    department: 'coalesce([worker.department, unit.name])'
    extensionAttribute1: 'formatDate(worker.start_date, "yyyy-MM-dd") + (has(worker.end_date) ? "/ends" : "")'
    extensionAttribute2: 'unit_path.join(" / ") + " " + domain'
    extensionAttribute3: 'employment_type + ":" + string(worker.employment_type)'
    extensionAttribute4: 'worker.custom_attributes["badge"]'
    extensionAttribute5: 'unit_ids.map(id, id + "!").join(",")'
groups:
  rules:
    - key: engineering
      filter: '"u3" in unit_ids'
    - key: whole
      filter: '[worker].size() == 1'
`

// TestMemoGivesTheResultsOfEvaluation: with a Memo, every expression gives what it gives without
// one, for workers that share some inputs and differ in others, including errors; expressions
// that read the worker whole, a map field or loop are never memoised.
func TestMemoGivesTheResultsOfEvaluation(t *testing.T) {
	pol, err := Parse("memo.yaml", []byte(memoPolicy))
	if err != nil {
		t.Fatal(err)
	}
	exprs := map[string]*Expr{"scope": pol.Scope}
	for i, e := range pol.Identifiers.UserPrincipalName {
		exprs[fmt.Sprint("upn", i)] = e
	}
	for name, e := range pol.Mapping["entra"] {
		exprs[name] = e
	}
	for _, rule := range pol.Groups.Rules {
		exprs["rule "+rule.Key] = rule.Filter
	}
	notMemoised := map[string]bool{"extensionAttribute4": true, "extensionAttribute5": true, "rule whole": true}
	for name, e := range exprs {
		if got := e.memo != nil; got == notMemoised[name] {
			t.Errorf("%s: memoised = %v, want %v", name, got, !notMemoised[name])
		}
	}

	units := []*orgsyncv1.OrgUnit{nil, {OrgUnitId: "u1", Name: "Sales"}, {OrgUnitId: "u3", Name: "Engineering"}}
	paths := map[string][][]string{"": {nil, nil}, "u1": {{"u0", "u1"}, {"Root", "Sales"}}, "u3": {{"u0", "u3"}, {"Root", "Engineering"}}}
	var workers []*orgsyncv1.Worker
	for i := range 48 {
		w := &orgsyncv1.Worker{
			WorkerId:         fmt.Sprint("E", i),
			Name:             &orgsyncv1.PersonName{GivenName: []string{"Zoë", "Jane", "Zoe"}[i%3], FamilyName: []string{"Doe", "Åberg"}[i%2]},
			Company:          []string{"Example Ltd", "Other"}[i/24],
			Department:       []string{"", "Sales Ops"}[i%4/3],
			EmploymentType:   orgsyncv1.EmploymentType(i % 3),
			EmploymentStatus: orgsyncv1.EmploymentStatus(i % 4),
			StartDate:        &orgsyncv1.Date{Year: 2026, Month: int32(1 + i%2), Day: 1},
			CustomAttributes: map[string]string{"badge": fmt.Sprint(i)},
		}
		if i%5 == 0 {
			w.Name.PreferredName = "Jo"
		}
		if i%6 == 0 {
			w.EndDate = &orgsyncv1.Date{}
		}
		if i%7 == 0 {
			w.StartDate = nil
		}
		if i%11 == 0 {
			w.CustomAttributes = nil // extensionAttribute4 fails: no such key
		}
		workers = append(workers, w)
	}

	memo := NewMemo()
	for round := range 2 {
		for i, w := range workers {
			unit := units[i%len(units)]
			varsOf := func(memo *Memo) *WorkerVars {
				v := &WorkerVars{Worker: w, Unit: unit, Domain: "corp.example.com", Memo: memo}
				v.UnitIDs, v.UnitPath = paths[unit.GetOrgUnitId()][0], paths[unit.GetOrgUnitId()][1]
				return v
			}
			for name, e := range exprs {
				want, wantErr := evalAny(e, varsOf(nil))
				got, gotErr := evalAny(e, varsOf(memo))
				if got != want || (gotErr == nil) != (wantErr == nil) {
					t.Fatalf("round %d, worker %d, %s: with a memo %q (error %v), without %q (error %v)", round, i, name, got, gotErr, want, wantErr)
				}
			}
		}
	}
	if n := len(memo.results[pol.Mapping["entra"]["extensionAttribute1"].memo.slot]); n == 0 || n >= len(workers) {
		t.Errorf("extensionAttribute1 has %d remembered results for %d workers: memo keys are not shared", n, len(workers))
	}
	memo.Reset()
	for slot, results := range memo.results {
		if len(results) != 0 {
			t.Errorf("Reset left %d results of the expression in slot %d", len(results), slot)
		}
	}
}

func evalAny(e *Expr, vars *WorkerVars) (string, error) {
	out, err := e.eval(vars)
	if err != nil {
		return "", err
	}
	return fmt.Sprint(out.Value()), nil
}

// TestMemoGivenAnotherPolicy: a Memo keeps results by the expressions' slots in their parse, so
// given the expressions of another policy (a reload) it starts again rather than answer with the
// first policy's results for the same slot.
func TestMemoGivenAnotherPolicy(t *testing.T) {
	parse := func(expr string) *Expr {
		t.Helper()
		pol, err := Parse("memo.yaml", []byte("mapping:\n  entra:\n    department: '"+expr+"'\n"))
		if err != nil {
			t.Fatal(err)
		}
		return pol.Mapping["entra"]["department"]
	}
	first, second := parse(`"first " + worker.location`), parse(`"second " + worker.location`)
	memo := NewMemo()
	vars := &WorkerVars{Worker: &orgsyncv1.Worker{WorkerId: "E1", Location: "London"}, Memo: memo}
	for _, c := range []struct {
		expr *Expr
		want string
	}{{first, "first London"}, {second, "second London"}, {first, "first London"}} {
		if got, err := c.expr.String(vars); err != nil || got != c.want {
			t.Errorf("String() = %q, %v, want %q", got, err, c.want)
		}
	}
}
