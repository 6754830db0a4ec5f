package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestArchitectureWalkIsTrue keeps docs/architecture.md's step-by-step walk of one HR change
// true of the code: every file a step names exists, and every function or method it names is
// declared in the repository (as a function, a method, or an interface's method).
func TestArchitectureWalkIsTrue(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	declared := declarations(t, root)

	code := regexp.MustCompile("`([^`]+)`")
	method := regexp.MustCompile(`\(\*?(?:\w+\.)?(\w+)\)\.(\w+)`)
	qualified := regexp.MustCompile(`\b(\w+)\.(\w+)\b`)
	rows := 0
	for lineNo, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		// A step row: | # | Step | File | Function |
		if len(cells) != 6 || strings.TrimSpace(cells[1]) == "#" || strings.HasPrefix(strings.TrimSpace(cells[1]), "-") {
			continue
		}
		rows++
		where := func(format string, args ...any) {
			t.Helper()
			t.Errorf("docs/architecture.md:%d: "+format, append([]any{lineNo + 1}, args...)...)
		}
		dir := ""
		for _, m := range code.FindAllStringSubmatch(cells[3], -1) {
			for _, path := range strings.Split(m[1], ",") {
				path = strings.TrimSpace(path)
				if !strings.HasSuffix(path, ".go") {
					continue
				}
				// A bare file name is beside the file named before it.
				if strings.Contains(path, "/") {
					dir = filepath.Dir(path)
				} else {
					path = filepath.Join(dir, path)
				}
				if _, err := os.Stat(filepath.Join(root, path)); err != nil {
					where("file %s does not exist", path)
				}
			}
		}
		for _, m := range code.FindAllStringSubmatch(cells[4], -1) {
			ref := m[1]
			if strings.HasSuffix(ref, ".go") { // a file named in passing
				continue
			}
			for _, mm := range method.FindAllStringSubmatch(ref, -1) {
				if !declared[mm[1]+"."+mm[2]] {
					where("method %s.%s is not declared", mm[1], mm[2])
				}
			}
			rest := method.ReplaceAllString(ref, "")
			for _, mm := range qualified.FindAllStringSubmatch(rest, -1) {
				if !declared[mm[1]+"."+mm[2]] {
					where("%s.%s is not declared", mm[1], mm[2])
				}
			}
			if plain := strings.TrimSpace(qualified.ReplaceAllString(rest, "")); regexp.MustCompile(`^\w+$`).MatchString(plain) && !declared[plain] {
				where("function %s is not declared", plain)
			}
		}
	}
	if rows < 15 {
		t.Errorf("found %d step rows in docs/architecture.md, want the walk of hr-ingest and org-model", rows)
	}
}

// declarations returns every function ("name" and "package.name"), method ("Type.method" and
// "method") and interface method ("Interface.method") declared in the repository's non-test Go files.
func declarations(t *testing.T, root string) map[string]bool {
	t.Helper()
	declared := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, ".pb.go") {
			return nil
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkg := file.Name.Name
		for _, decl := range file.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				if decl.Recv == nil {
					declared[decl.Name.Name], declared[pkg+"."+decl.Name.Name] = true, true
					continue
				}
				recv := decl.Recv.List[0].Type
				if star, ok := recv.(*ast.StarExpr); ok {
					recv = star.X
				}
				if index, ok := recv.(*ast.IndexExpr); ok {
					recv = index.X
				}
				if ident, ok := recv.(*ast.Ident); ok {
					// A method is named by its type ("Model.recompute") or, after one so
					// named, alone ("computeUnit").
					declared[ident.Name+"."+decl.Name.Name], declared[decl.Name.Name] = true, true
				}
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					typeSpec, ok := spec.(*ast.TypeSpec)
					if !ok {
						continue
					}
					if iface, ok := typeSpec.Type.(*ast.InterfaceType); ok {
						for _, m := range iface.Methods.List {
							for _, name := range m.Names {
								declared[typeSpec.Name.Name+"."+name.Name] = true
							}
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return declared
}
