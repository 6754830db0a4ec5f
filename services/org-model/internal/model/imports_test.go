package model

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDomainImportsNoTransport keeps the domain plain data in, plain data out: no file of the
// package (tests aside) imports NATS, gRPC, OpenTelemetry or the JetStream plumbing, and no
// subject is made here (pkg/subject is for the edge).
func TestDomainImportsNoTransport(t *testing.T) {
	forbidden := []string{
		"github.com/nats-io/",
		"google.golang.org/grpc",
		"go.opentelemetry.io/",
		"github.com/orgsync/orgsync/pkg/stream",
		"github.com/orgsync/orgsync/pkg/subject",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, spec := range f.Imports {
			path, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			for _, prefix := range forbidden {
				if strings.HasPrefix(path, prefix) {
					t.Errorf("%s imports %s", file, path)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no source file checked")
	}
}
