// Package arch checks the rules ARCHITECTURE.md sets for the code's shape:
// who may import whom, and how large a file and a function may grow.
package arch

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/sbc-project/sbc"

// core are the packages that hold the SBC's logic: they are wired by
// internal/app and must not reach up into it (config only at the edge).
var core = []string{"b2bua", "policy", "media", "cdr", "security"}

// imports lists every package of the module with its imports.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...")
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := make(map[string][]string)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			pkgs[strings.TrimPrefix(f[0], module+"/")] = f[1:]
		}
	}
	return pkgs
}

func isCore(pkg string) bool {
	for _, c := range core {
		if pkg == c || strings.HasPrefix(pkg, c+"/") {
			return true
		}
	}
	return false
}

// leaves are core packages several others share that import nothing of
// the module: system-level code, no config.
var leaves = []string{"media/poll"}

// TestCoreImportsNoInternal: b2bua/..., policy, media, cdr and security
// import nothing under internal/, the leaves nothing of the module, and
// cdr does not import b2bua (a CDR writer needs the call's outcome, not
// the SIP stack).
func TestCoreImportsNoInternal(t *testing.T) {
	all := imports(t)
	for _, leaf := range leaves {
		for _, d := range all[leaf] {
			if strings.HasPrefix(d, module+"/") {
				t.Errorf("%s imports %s: a leaf imports nothing of the module", leaf, d)
			}
		}
	}
	for pkg, deps := range all {
		if !isCore(pkg) {
			continue
		}
		for _, d := range deps {
			d = strings.TrimPrefix(d, module+"/")
			if strings.HasPrefix(d, "internal/") {
				t.Errorf("%s imports %s: core packages take what they need from internal/app, which translates the config", pkg, d)
			}
			if (pkg == "cdr" || strings.HasPrefix(pkg, "cdr/")) && d == "b2bua" {
				t.Errorf("%s imports b2bua: it takes the call record from b2bua/outcome", pkg)
			}
		}
	}
}

// Size limits of production code (STYLE.md 11).
const (
	maxFileLines = 500
	maxFuncLines = 80
)

// TestSizes: no production file over maxFileLines lines, no function over
// maxFuncLines.
func TestSizes(t *testing.T) {
	dir := root(t)
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && (name == "node_modules" || name == "testdata" || strings.HasPrefix(name, ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(rel, "test"+string(filepath.Separator)) {
			return nil // test harnesses are test code
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		if n := fset.Position(f.End()).Line; n > maxFileLines {
			t.Errorf("%s: %d lines, more than %d", rel, n, maxFileLines)
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			if n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; n > maxFuncLines {
				t.Errorf("%s: func %s: %d lines, more than %d", rel, fd.Name.Name, n, maxFuncLines)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// root is the module root: the directory above this one holding go.mod.
func root(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// gosipBuilders are gosip's constructors of a message container or a
// parameter list: the SBC builds its own (sipmsg.NewRequest, ...), see
// README "SIP conformance" for the measured reason.
var gosipBuilders = map[string]bool{"NewRequest": true, "NewResponse": true, "CopyRequest": true,
	"CopyResponse": true, "NewResponseFromRequest": true, "NewAckRequest": true, "NewParams": true}

// TestNoGosipContainers: no production code calls gosip's message or
// parameter constructors; a message built by one would work but bring
// back the allocations sipmsg's containers removed.
func TestNoGosipContainers(t *testing.T) {
	dir := root(t)
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "sip" && gosipBuilders[sel.Sel.Name] {
				rel, _ := filepath.Rel(dir, p)
				t.Errorf("%s:%d: sip.%s: build messages and parameter lists with sipmsg's constructors", rel, fset.Position(sel.Pos()).Line, sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
