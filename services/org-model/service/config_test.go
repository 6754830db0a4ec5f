package service

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

func TestNewRefusesABadPolicyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte("scope: 'worker.location =='\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(t.Context(), Config{PolicyFile: path}, slog.New(slog.DiscardHandler))
	var perr *policy.Error
	if !errors.As(err, &perr) || perr.Line != 1 || perr.File != path {
		t.Errorf("err = %v, want a policy error at %s:1", err, path)
	}
}

// TestNewRefusesAPolicyFileWithEveryProblem: org-model does not start on the shared policy file
// with several problems, and its error names every problem of org-model's part, each with its
// file and line, not only the first.
func TestNewRefusesAPolicyFileWithEveryProblem(t *testing.T) {
	path := "../../../pkg/policyfile/testdata/several-problems.yaml"
	svc, err := New(t.Context(), Config{PolicyFile: path}, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatalf("New started on %s: %v", path, svc)
	}
	var all policy.Errors
	if !errors.As(err, &all) {
		t.Fatalf("err = %v, want every problem as policy.Errors", err)
	}
	var lines []int
	for _, problem := range all {
		if problem.File != path {
			t.Errorf("problem %v names file %q, want %q", problem, problem.File, path)
		}
		lines = append(lines, problem.Line)
	}
	if want := []int{5, 6, 8, 11, 22}; !slices.Equal(lines, want) {
		t.Errorf("problems at lines %v, want %v:\n%v", lines, want, err)
	}
	if !strings.HasPrefix(err.Error(), "ORGSYNC_CONFIG: "+path+":5: ") || strings.Count(err.Error(), "\n") != len(all)-1 {
		t.Errorf("err = %q, want ORGSYNC_CONFIG: then one file:line: reason line per problem", err)
	}
}
