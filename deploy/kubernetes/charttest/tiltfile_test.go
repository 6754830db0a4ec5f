package charttest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.starlark.net/syntax"
)

// tiltDialect is the Starlark Tilt accepts: top-level if/for, while, sets, reassigned globals
// and recursion. Tilt's builtins are not available here, so this checks syntax and what the file
// refers to, not execution.
var tiltDialect = &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}

// TestTiltfile parses the Tiltfile as Starlark and checks what it calls and the repository paths
// it names, so that a renamed values file or script breaks this test rather than `tilt up`.
func TestTiltfile(t *testing.T) {
	path := filepath.Join(repoRoot, "Tiltfile")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	file, err := tiltDialect.Parse(path, src, 0)
	if err != nil {
		t.Fatalf("the Tiltfile is not valid Starlark: %v", err)
	}

	var calls, strs []string
	syntax.Walk(file, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CallExpr:
			if ident, ok := n.Fn.(*syntax.Ident); ok {
				calls = append(calls, ident.Name)
			}
		case *syntax.Literal:
			if s, ok := n.Value.(string); ok {
				strs = append(strs, s)
			}
		}
		return true
	})

	t.Run("builds, deploys and forwards", func(t *testing.T) {
		for _, want := range []string{"helm", "k8s_yaml", "docker_build", "k8s_resource", "local_resource"} {
			if !slices.Contains(calls, want) {
				t.Errorf("the Tiltfile never calls %s()", want)
			}
		}
	})
	t.Run("keeps the host-only mode", func(t *testing.T) {
		if !slices.Contains(strs, "make run") {
			t.Error(`the Tiltfile lost its host-only fallback (serve_cmd "make run")`)
		}
	})
	t.Run("every named path exists", func(t *testing.T) {
		checked := 0
		for _, s := range strs {
			// A command line names its script first.
			candidate := strings.Fields(s + " ")[0]
			for _, prefix := range []string{"charts/", "deploy/", "services/"} {
				if strings.HasPrefix(candidate, prefix) && !strings.Contains(candidate, "%") {
					checked++
					if _, err := os.Stat(filepath.Join(repoRoot, candidate)); err != nil {
						t.Errorf("the Tiltfile names %s: %v", candidate, err)
					}
				}
			}
		}
		if checked < 5 {
			t.Errorf("checked %d paths, want the chart, its local values, the Dockerfile and the install scripts", checked)
		}
	})
	t.Run("uses the local example values", func(t *testing.T) {
		if !slices.Contains(strs, "deploy/kubernetes/values-local.yaml") {
			t.Error("the Tiltfile does not install the chart with deploy/kubernetes/values-local.yaml")
		}
	})
}

// TestTiltDialectRejectsBrokenStarlark shows the parser used above does fail on broken input.
func TestTiltDialectRejectsBrokenStarlark(t *testing.T) {
	tests := []struct{ name, src string }{
		{"unclosed call", "local_resource('x',\n"},
		{"python-only syntax", "x = [i for i in range(3)] if True else None\nclass A: pass\n"},
		{"bad indentation", "def f():\nreturn 1\n"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			if _, err := tiltDialect.Parse("Tiltfile", test.src, 0); err == nil {
				t.Errorf("parsed %q without error", test.src)
			}
		})
	}
}
