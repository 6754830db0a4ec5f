package charttest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
			// A command line names its script first; an empty string (a default) names nothing.
			fields := strings.Fields(s)
			if len(fields) == 0 {
				continue
			}
			candidate := fields[0]
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
	t.Run("every service on make run's ports", func(t *testing.T) {
		checkTiltServices(t, file, serviceNames(t), fixedPorts(t))
	})
	t.Run("ad-writer with a domain controller's values", func(t *testing.T) {
		// The chart renders ad-writer only with adWriter.ldap set, which values-local.yaml cannot
		// give: --ad-values adds the user's file to the chart's values.
		if !slices.Contains(strs, "ad-values") || !slices.Contains(strs, "needs_ad") {
			t.Error("the Tiltfile has no --ad-values option deploying ad-writer (the chart's adWriter needs a domain controller)")
		}
		if !slices.Contains(strs, "http://127.0.0.1:18084/readyz") {
			t.Error("the Tiltfile links no ad-writer readiness (make run's ad-writer health is 127.0.0.1:18084)")
		}
	})
}

// tiltPortFields names, per service, its fields in deploy/local/stack's FixedPorts: the local
// ports `make run` listens on, which the Tiltfile forwards to as well.
var tiltPortFields = map[string]struct{ http, grpc, web string }{
	"graph-emulator": {"Emulator", "", ""},
	"hr-ingest":      {"HRIngestHTTP", "HRIngestGRPC", ""},
	"org-model":      {"OrgModelHTTP", "OrgModelGRPC", ""},
	"entra-writer":   {"EntraWriterHTTP", "EntraWriterGRPC", ""},
	"ad-writer":      {"ADWriterHTTP", "ADWriterGRPC", ""},
	// The console serves its pages on 8081 besides health on 8080.
	"console": {"ConsoleHTTP", "", "Console"},
}

// checkTiltServices checks that the Tiltfile's SERVICES has an entry per service, whose
// forwards go from make run's port to the chart's container ports (8080 HTTP, 9090 gRPC) and
// whose links include the forwarded HTTP port.
func checkTiltServices(t reporter, file *syntax.File, services []string, fixed map[string]int) {
	t.Helper()
	entries := tiltServices(file)
	if entries == nil {
		t.Fatalf("the Tiltfile assigns no SERVICES dict")
	}
	var names []string
	for name := range entries {
		names = append(names, name)
	}
	slices.Sort(names)
	if diff := cmp.Diff(services, names); diff != "" {
		t.Errorf("Tiltfile SERVICES, against the services under services/ (-want +got):\n%s", diff)
	}
	for _, name := range names {
		fields, ok := tiltPortFields[name]
		if !ok {
			t.Errorf("%s: no FixedPorts fields known for it; add it to tiltPortFields", name)
			continue
		}
		var forwards, links []string
		for _, s := range entries[name] {
			switch {
			case strings.HasPrefix(s, "http://"):
				links = append(links, s)
			case strings.Contains(s, ":") && !strings.Contains(s, "/"):
				forwards = append(forwards, s)
			}
		}
		httpPort := ""
		for _, forward := range forwards {
			local, container, _ := strings.Cut(forward, ":")
			field := map[string]string{"8080": fields.http, "9090": fields.grpc, "8081": fields.web}[container]
			if field == "" {
				t.Errorf("%s forwards %s: the chart's containers listen on 8080 (HTTP), 9090 (gRPC) and, for the console, 8081 (pages)", name, forward)
				continue
			}
			if want := strconv.Itoa(fixed[field]); local != want {
				t.Errorf("%s forwards %s from %s, want make run's port %s (FixedPorts.%s)", name, container, local, want, field)
			}
			if container == "8080" {
				httpPort = local
			}
		}
		if httpPort == "" {
			t.Errorf("%s forwards no HTTP port (8080)", name)
			continue
		}
		if !slices.ContainsFunc(links, func(link string) bool { return strings.HasPrefix(link, "http://127.0.0.1:"+httpPort+"/") }) {
			t.Errorf("%s links %v, none to its forwarded HTTP port %s", name, links, httpPort)
		}
	}
}

// tiltServices returns the string literals of each entry of the Tiltfile's SERVICES dict, by
// service name, or nil when there is no such dict.
func tiltServices(file *syntax.File) map[string][]string {
	for _, stmt := range file.Stmts {
		assign, ok := stmt.(*syntax.AssignStmt)
		if !ok {
			continue
		}
		if ident, ok := assign.LHS.(*syntax.Ident); !ok || ident.Name != "SERVICES" {
			continue
		}
		dict, ok := assign.RHS.(*syntax.DictExpr)
		if !ok {
			return nil
		}
		entries := map[string][]string{}
		for _, e := range dict.List {
			entry := e.(*syntax.DictEntry)
			key, ok := entry.Key.(*syntax.Literal)
			if !ok {
				continue
			}
			name, _ := key.Value.(string)
			var strs []string
			syntax.Walk(entry.Value, func(n syntax.Node) bool {
				if lit, ok := n.(*syntax.Literal); ok {
					if s, ok := lit.Value.(string); ok {
						strs = append(strs, s)
					}
				}
				return true
			})
			entries[name] = strs
		}
		return entries
	}
	return nil
}

// serviceNames lists the services: the directories under services/ with a main.go.
func serviceNames(t *testing.T) []string {
	t.Helper()
	mains, err := filepath.Glob(filepath.Join(repoRoot, "services", "*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, main := range mains {
		names = append(names, filepath.Base(filepath.Dir(main)))
	}
	slices.Sort(names)
	if len(names) < 5 {
		t.Fatalf("found services %v, want at least hr-ingest, org-model, entra-writer, ad-writer, graph-emulator", names)
	}
	return names
}

// fixedPorts reads `make run`'s ports, the FixedPorts literal of deploy/local/stack (a module of
// the workspace this module stays outside of, hence parsed rather than imported).
func fixedPorts(t *testing.T) map[string]int {
	t.Helper()
	path := filepath.Join(repoRoot, "deploy", "local", "stack", "stack.go")
	file, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{}
	ast.Inspect(file, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || len(spec.Names) != 1 || spec.Names[0].Name != "FixedPorts" || len(spec.Values) != 1 {
			return true
		}
		if lit, ok := spec.Values[0].(*ast.CompositeLit); ok {
			for _, elt := range lit.Elts {
				kv, ok := elt.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, _ := kv.Key.(*ast.Ident)
				value, _ := kv.Value.(*ast.BasicLit)
				if key == nil || value == nil {
					continue
				}
				if port, err := strconv.Atoi(value.Value); err == nil {
					ports[key.Name] = port
				}
			}
		}
		return false
	})
	if len(ports) == 0 {
		t.Fatalf("no FixedPorts literal in %s", path)
	}
	return ports
}

// TestTiltServiceChecksCatchOmissions shows checkTiltServices fails a Tiltfile that leaves a
// service out or forwards it from a port other than make run's.
func TestTiltServiceChecksCatchOmissions(t *testing.T) {
	services := []string{"ad-writer", "hr-ingest"}
	fixed := map[string]int{"ADWriterHTTP": 18084, "ADWriterGRPC": 19084, "HRIngestHTTP": 18081}
	tests := []struct{ name, src, want string }{
		{"complete", `SERVICES = {
    'hr-ingest': {'forwards': ['18081:8080'], 'links': [('http://127.0.0.1:18081/readyz', 'r')]},
    'ad-writer': {'forwards': ['18084:8080', '19084:9090'], 'links': [('http://127.0.0.1:18084/readyz', 'r')], 'needs_ad': True},
}
`, ""},
		{"ad-writer left out", `SERVICES = {
    'hr-ingest': {'forwards': ['18081:8080'], 'links': [('http://127.0.0.1:18081/readyz', 'r')]},
}
`, "Tiltfile SERVICES, against the services under services/ (-want +got)"},
		{"another port", `SERVICES = {
    'hr-ingest': {'forwards': ['18081:8080'], 'links': [('http://127.0.0.1:18081/readyz', 'r')]},
    'ad-writer': {'forwards': ['18085:8080'], 'links': [('http://127.0.0.1:18085/readyz', 'r')]},
}
`, "ad-writer forwards 8080 from 18085, want make run's port 18084"},
		{"no readiness link", `SERVICES = {
    'hr-ingest': {'forwards': ['18081:8080'], 'links': [('http://127.0.0.1:18081/readyz', 'r')]},
    'ad-writer': {'forwards': ['18084:8080'], 'links': []},
}
`, "none to its forwarded HTTP port 18084"},
		{"no SERVICES", "x = 1\n", "no SERVICES dict"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			file, err := tiltDialect.Parse("Tiltfile", test.src, 0)
			if err != nil {
				t.Fatal(err)
			}
			var rec recorder
			rec.run(func() { checkTiltServices(&rec, file, services, fixed) })
			got := strings.Join(rec.failures, "\n")
			if test.want == "" && got != "" || !strings.Contains(got, test.want) {
				t.Errorf("checkTiltServices reported %q, want %q", got, test.want)
			}
		})
	}
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
