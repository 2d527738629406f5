package outcome

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// causeConstants returns the value of every constant of type Cause
// declared in the package's source, read from the source itself so that a
// new constant cannot be missed.
func causeConstants(t *testing.T) []Cause {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "cause.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []Cause
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			v := s.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "Cause" {
				continue
			}
			for _, val := range v.Values {
				s, err := strconv.Unquote(val.(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, Cause(s))
			}
		}
	}
	return out
}

// TestEveryCauseHasARule: Classify knows every constant.
func TestEveryCauseHasARule(t *testing.T) {
	consts := causeConstants(t)
	if got, want := len(consts), len(rules); got != want {
		t.Errorf("%d Cause constants, %d rules", got, want)
	}
	for _, c := range consts {
		if _, ok := rules[c]; !ok {
			t.Errorf("%s: no rule", c)
		}
	}
}

// readmeTable returns the code spans of the first column of the rows of
// the table under heading in the README.
func readmeTable(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README: no %q", heading)
	}
	span := regexp.MustCompile("`([^`]+)`")
	var out []string
	rows := 0
	for line := range strings.Lines(section) {
		if !strings.HasPrefix(line, "|") {
			if rows > 0 {
				break
			}
			continue
		}
		if rows++; rows <= 2 {
			continue // the header and its rule
		}
		first := strings.Split(line, "|")[1]
		for _, m := range span.FindAllStringSubmatch(first, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// TestREADMEHangupCauses: the README's "Hangup causes" table lists every
// cause the SBC produces, and nothing else.
func TestREADMEHangupCauses(t *testing.T) {
	want := []string{"policy_<cause>", "reinvite_<code>"}
	for _, c := range causeConstants(t) {
		want = append(want, string(c))
	}
	got := readmeTable(t, "### Hangup causes")
	compareSets(t, "hangup causes", got, want)
}

// TestREADMEDispositions: the README's "Disposition" table lists the
// dispositions.
func TestREADMEDispositions(t *testing.T) {
	got := readmeTable(t, "### Disposition")
	compareSets(t, "dispositions", got, []string{Answered, NoAnswer, Busy, Failed, Cancelled, Rejected})
}

func compareSets(t *testing.T, what string, readme, code []string) {
	t.Helper()
	in := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, v := range s {
			m[v] = true
		}
		return m
	}
	r, c := in(readme), in(code)
	for _, v := range slices.Sorted(maps.Keys(c)) {
		if !r[v] {
			t.Errorf("%s: %q is missing from the README's table", what, v)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(r)) {
		if !c[v] {
			t.Errorf("%s: the README's table lists %q, which the code does not produce", what, v)
		}
	}
}
