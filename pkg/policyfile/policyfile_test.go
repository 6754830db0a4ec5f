package policyfile_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/pkg/policyfile"
)

// TestEveryProblemInLineOrder reads a file with several problems the way a service's parser
// does — going on after each — and gets them all, each as file:line: reason, in line order.
func TestEveryProblemInLineOrder(t *testing.T) {
	file := strings.Join([]string{
		"colour: blue",  // 1: unknown key
		"sources:",      // 2
		"  - name: a",   // 3
		"    name: b",   // 4: key given twice
		"  - name: [x]", // 5: not a single value
		"guard: 7",      // 6: not a mapping
		"",
	}, "\n")
	root, err := policyfile.Decode("orgsync.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	problems := &policyfile.Problems{File: "orgsync.yaml"}
	top, err := problems.Fields(root, "the policy", "sources", "guard")
	if !problems.Keep(err) {
		t.Fatal("the root is a mapping")
	}
	// The guard's problem is found before the sources' (as a parser may), and still listed after.
	_, err = problems.Fields(top["guard"], "guard")
	problems.Keep(err)
	for _, source := range top["sources"].Content {
		fields, err := problems.Fields(source, "a source", "name")
		if problems.Keep(err) {
			_, err := problems.Scalar(fields["name"], "a source's name")
			problems.Keep(err)
		}
	}
	problems.Keep(errors.New("a problem of the whole file"))

	got := problems.Err()
	var all policyfile.Errors
	if !errors.As(got, &all) {
		t.Fatalf("Err() = %T %v, want policyfile.Errors", got, got)
	}
	want := []string{
		`orgsync.yaml:1: unknown key "colour" in the policy (allowed: sources, guard)`,
		`orgsync.yaml:1: a problem of the whole file`,
		`orgsync.yaml:4: duplicate key "name" in a source`,
		`orgsync.yaml:5: a source's name must be a single value`,
		`orgsync.yaml:6: guard must be a mapping`,
	}
	if diff := cmp.Diff(want, strings.Split(got.Error(), "\n")); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	var one *policyfile.Error
	if !errors.As(got, &one) || one.Line != 1 {
		t.Errorf("errors.As finds %v, want the first problem as a *policyfile.Error", one)
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       string // the error; empty for none
	}{
		{"empty file", "", ""},
		{"comment only", "# nothing yet\n", ""},
		{"syntax error at its line", "sources:\n  - name: a\n  - [\n", "orgsync.yaml:3: did not find expected node content"},
		{"tab indentation", "sources:\n\t- name: a\n", "orgsync.yaml:2: found character that cannot start any token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, err := policyfile.Decode("orgsync.yaml", []byte(tc.file))
			if tc.want == "" {
				if err != nil || root == nil {
					t.Fatalf("Decode = %v, %v; want a root node", root, err)
				}
				return
			}
			var at *policyfile.Error
			if !errors.As(err, &at) || err.Error() != tc.want {
				t.Errorf("Decode error = %v, want %s", err, tc.want)
			}
		})
	}
	if problems := (&policyfile.Problems{File: "x"}); problems.Err() != nil {
		t.Errorf("no problem recorded, Err() = %v, want nil", problems.Err())
	}
}
