package model

import (
	"bufio"
	"bytes"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// forbiddenInDomain are the import paths (prefixes) the domain must not link, directly or
// through any package it imports: transport (NATS, gRPC), telemetry (OpenTelemetry) and the
// JetStream plumbing. Subjects are made at the edge, so pkg/subject is out too.
var forbiddenInDomain = []string{
	"github.com/nats-io/",
	"google.golang.org/grpc",
	"go.opentelemetry.io/",
	"github.com/orgsync/orgsync/pkg/stream",
	"github.com/orgsync/orgsync/pkg/subject",
}

// TestDomainImportsNoTransport keeps the domain plain data in, plain data out: neither this
// package nor anything it links (the transitive dependencies `go list -deps` prints, tests
// aside) is NATS, gRPC, OpenTelemetry or the JetStream plumbing. A violation is reported with
// the chain of imports that brings it in, e.g. model → orgsyncv1 → google.golang.org/grpc.
func TestDomainImportsNoTransport(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the domain's dependencies: %v", err)
	}
	var stderr bytes.Buffer
	list := exec.CommandContext(t.Context(), goTool, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, ".")
	list.Stderr = &stderr
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.String())
	}
	imports := map[string][]string{} // package → the packages it imports
	self := ""
	scanner := bufio.NewScanner(bytes.NewReader(out))
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 0 {
			continue
		}
		imports[fields[0]] = fields[1:]
		self = fields[0] // -deps prints a package after its dependencies: the last is this one
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(self, "/services/org-model/internal/model") || len(imports) < 2 {
		t.Fatalf("go list -deps listed %d packages ending with %q; want the domain package and its dependencies", len(imports), self)
	}
	// One report per way in: a chain is cut at its first forbidden package, so gRPC's own
	// dependencies are not listed one by one.
	reported := map[string]bool{}
	for _, pkg := range slices.Sorted(maps.Keys(imports)) {
		if !isForbiddenInDomain(pkg) {
			continue
		}
		chain := importChain(imports, self, pkg)
		if first := slices.IndexFunc(chain, isForbiddenInDomain); first >= 0 {
			chain = chain[:first+1]
		}
		if way := strings.Join(chain, " → "); !reported[way] {
			reported[way] = true
			t.Errorf("the domain links %s: %s", chain[len(chain)-1], way)
		}
	}
}

func isForbiddenInDomain(importPath string) bool {
	for _, prefix := range forbiddenInDomain {
		if strings.HasPrefix(importPath, prefix) {
			return true
		}
	}
	return false
}

// importChain returns the shortest chain of imports from one package to another (breadth
// first over the import graph), both included.
func importChain(imports map[string][]string, from, to string) []string {
	cameFrom := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		if pkg == to {
			var chain []string
			for step := to; step != ""; step = cameFrom[step] {
				chain = append([]string{step}, chain...)
			}
			return chain
		}
		for _, imported := range imports[pkg] {
			if _, seen := cameFrom[imported]; !seen {
				cameFrom[imported] = pkg
				queue = append(queue, imported)
			}
		}
	}
	return []string{from, "…", to}
}
