package e2e

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// taken are the third bytes of the 127.0.x.0/24 ranges other tests use
// (see the package comment).
var taken = map[int]string{0: "unit tests", 1: "baresip", 2: "linphone", 3: "b2bua", 4: "b2bua",
	5: "b2bua routing and trunk registration", 6: "kamailio"}

// TestRanges: every test package under test/e2e has a /24 of its own,
// none of another's, and no test sends from or listens on a 127.0.0.x
// peer address or leaves SIPp on its default one (sipptest's 127.0.0.2
// and .3), where it would collide with a package running beside it.
func TestRanges(t *testing.T) {
	dirs, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	owner := map[int]string{}
	for name, n := range ranges {
		if other, ok := owner[n]; ok {
			t.Errorf("127.0.%d.0/24 belongs to both %s and %s", n, name, other)
		}
		if use, ok := taken[n]; ok {
			t.Errorf("%s: 127.0.%d.0/24 is taken by %s", name, n, use)
		}
		owner[n] = name
	}
	checkAddrs(t, ".")
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "testdata" || d.Name() == "artifacts" {
			continue
		}
		tests, _ := filepath.Glob(filepath.Join(d.Name(), "*_test.go"))
		if len(tests) == 0 {
			continue
		}
		if _, ok := ranges[d.Name()]; !ok {
			t.Errorf("test/e2e/%s has no address range: add it to ranges (net.go)", d.Name())
		}
		checkAddrs(t, d.Name())
	}
}

// rePeer is a 127.0.0.x address other than the SBC's 127.0.0.1;
// reTrusted is 127.0.0.0/8, a trusted source.
var (
	rePeer    = regexp.MustCompile(`127\.0\.0\.([02-9]|[1-9][0-9])`)
	reTrusted = regexp.MustCompile(`127\.0\.0\.0/8`)
)

// checkAddrs reports the string literals of dir's Go files holding a
// 127.0.0.x peer, and the sipptest.Options without a LocalIP.
func checkAddrs(t *testing.T, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	fset := token.NewFileSet()
	for _, file := range files {
		if filepath.Base(file) == "net_test.go" {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, err := strconv.Unquote(n.Value); n.Kind == token.STRING && err == nil &&
					rePeer.MatchString(s) && !reTrusted.MatchString(s) {
					t.Errorf("%s: %s: use an address of the package's range (IP, CallerIP, PBXIP)", fset.Position(n.Pos()), n.Value)
				}
			case *ast.CompositeLit:
				if sel, ok := n.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Options" && isIdent(sel.X, "sipptest") && !hasKey(n, "LocalIP") {
					t.Errorf("%s: sipptest.Options without LocalIP: SIPp would take 127.0.0.2 or .3", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func hasKey(c *ast.CompositeLit, key string) bool {
	for _, e := range c.Elts {
		if kv, ok := e.(*ast.KeyValueExpr); ok && isIdent(kv.Key, key) {
			return true
		}
	}
	return false
}
