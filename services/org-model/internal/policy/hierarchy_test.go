package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

func TestHierarchy(t *testing.T) {
	pol, err := Parse("orgsync.yaml", []byte(`sources:
  - {name: entra, kind: scim, secrets: [{env: S}], hierarchy: [company, division, department]}
  - name: bamboo
    kind: bamboohr
    hierarchy: {levels: [division, custom.team], root: hq, managerAttribute: custom.isLead}
  - {name: workday, kind: canonical}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*Hierarchy{
		"entra":  {Source: "entra", Levels: []string{"company", "division", "department"}},
		"bamboo": {Source: "bamboo", Levels: []string{"division", "custom.team"}, Root: "hq", ManagerAttribute: "custom.isLead"},
	}
	if diff := cmp.Diff(want, pol.Hierarchies); diff != "" {
		t.Errorf("hierarchies (-want +got):\n%s", diff)
	}
	w := &orgsyncv1.Worker{Division: "Sales", CustomAttributes: map[string]string{"team": " Inside ", "isLead": "Yes"}}
	if diff := cmp.Diff([]string{"Sales", "Inside"}, pol.Hierarchies["bamboo"].Path(w)); diff != "" {
		t.Errorf("path (-want +got):\n%s", diff)
	}
	if !pol.Hierarchies["bamboo"].Leads(w) || pol.Hierarchies["entra"].Leads(w) {
		t.Errorf("Leads: bamboo %v, entra %v", pol.Hierarchies["bamboo"].Leads(w), pol.Hierarchies["entra"].Leads(w))
	}
	// A path ends at the first empty level.
	if diff := cmp.Diff([]string{"Acme"}, pol.Hierarchies["entra"].Path(&orgsyncv1.Worker{Company: "Acme", Department: "Sales"})); diff != "" {
		t.Errorf("path with a gap (-want +got):\n%s", diff)
	}
}

func TestHierarchyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown attribute", "sources:\n  - name: a\n    hierarchy: [company, dept]\n", `orgsync.yaml:3: sources[a].hierarchy: "dept" is not a worker attribute`},
		{"empty", "sources:\n  - name: a\n    hierarchy: []\n", "orgsync.yaml:3: sources[a].hierarchy needs at least one level"},
		{"twice", "sources:\n  - name: a\n    hierarchy: [company, company]\n", `orgsync.yaml:3: sources[a].hierarchy names "company" twice`},
		{"no levels", "sources:\n  - name: a\n    hierarchy: {root: x}\n", "orgsync.yaml:3: sources[a].hierarchy needs levels"},
		{"unknown key", "sources:\n  - name: a\n    hierarchy: {levels: [company], manager: x}\n", `orgsync.yaml:3: unknown key "manager" in sources[a].hierarchy`},
		{"bad manager attribute", "sources:\n  - name: a\n    hierarchy: {levels: [company], managerAttribute: lead}\n", `sources[a].hierarchy.managerAttribute "lead" is not a worker attribute`},
		{"no name", "sources:\n  - hierarchy: [company]\n", "orgsync.yaml:2: a source with a hierarchy needs a name"},
		{"not a list", "sources: {a: 1}\n", "orgsync.yaml:1: sources must be a list"},
		{"two for one source", "sources:\n  - {name: a, hierarchy: [company]}\n  - {name: a, hierarchy: [department]}\n", `orgsync.yaml:3: source "a" has a hierarchy already, on line 2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("orgsync.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
