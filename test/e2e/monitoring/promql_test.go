package monitoring

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// selector is one vector selector of a PromQL expression: the metric and
// the label names its matchers use.
type selector struct {
	metric string
	labels []string
}

// query is what selectors finds in an expression: its vector selectors
// and the labels its grouping clauses (by, without, on, ignoring,
// group_left, group_right) name.
type query struct {
	sels   []selector
	groups []string
}

// aggregations and keywords are the identifiers PromQL reserves that
// may stand where a metric name could (the functions are told apart by
// the parenthesis after them).
var (
	aggregations = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
	grouping = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
	keywords = []string{"and", "or", "unless", "bool", "atan2", "inf", "nan", "offset"}
)

// selectors lexes a PromQL expression, enough to find its vector
// selectors: strings, numbers and durations, range brackets, function
// and aggregation names, and the label lists of grouping clauses are
// kept apart; what is left are metric names, each with its {matchers}.
// It fails on what it cannot read (an unterminated string or bracket, a
// selector without a metric name).
func selectors(expr string) (query, error) {
	var out query
	l := lexer{s: expr}
	for {
		l.space()
		if l.done() {
			out.groups = l.groups
			return out, nil
		}
		c := l.s[l.i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if err := l.str(); err != nil {
				return out, err
			}
		case c == '[':
			if err := l.until(']'); err != nil {
				return out, err
			}
		case c == '{':
			return out, fmt.Errorf("selector without a metric name at %d in %q", l.i, expr)
		case isDigit(c) || c == '.':
			l.word()
		case isIdentStart(c):
			sel, err := l.ident()
			if err != nil {
				return out, err
			}
			if sel != nil {
				out.sels = append(out.sels, *sel)
			}
		default:
			l.i++ // operators, parentheses, commas
		}
	}
}

type lexer struct {
	s      string
	i      int
	groups []string // the labels of grouping clauses so far
}

func (l *lexer) done() bool { return l.i >= len(l.s) }

func (l *lexer) space() {
	for !l.done() && strings.ContainsRune(" \t\r\n", rune(l.s[l.i])) {
		l.i++
	}
}

// peek returns the next character after spaces, without taking it.
func (l *lexer) peek() byte {
	l.space()
	if l.done() {
		return 0
	}
	return l.s[l.i]
}

func (l *lexer) str() error {
	q := l.s[l.i]
	for j := l.i + 1; j < len(l.s); j++ {
		switch {
		case l.s[j] == '\\' && q != '`':
			j++
		case l.s[j] == q:
			l.i = j + 1
			return nil
		}
	}
	return fmt.Errorf("unterminated string at %d in %q", l.i, l.s)
}

func (l *lexer) until(end byte) error {
	j := strings.IndexByte(l.s[l.i:], end)
	if j < 0 {
		return fmt.Errorf("no %q after %d in %q", end, l.i, l.s)
	}
	l.i += j + 1
	return nil
}

// word takes a run of identifier characters (a number, a duration, a
// name).
func (l *lexer) word() string {
	j := l.i
	for l.i < len(l.s) && (isIdentStart(l.s[l.i]) || isDigit(l.s[l.i]) || l.s[l.i] == '.') {
		l.i++
	}
	return l.s[j:l.i]
}

// ident reads an identifier: a metric's selector, or nil for a function,
// an aggregation, a keyword or a grouping clause (its label list taken).
func (l *lexer) ident() (*selector, error) {
	name := l.word()
	switch {
	case slices.Contains(grouping, name):
		if l.peek() != '(' {
			return nil, nil
		}
		start := l.i + 1
		if err := l.until(')'); err != nil {
			return nil, err
		}
		for _, g := range strings.Split(l.s[start:l.i-1], ",") {
			if g = strings.TrimSpace(g); g != "" {
				l.groups = append(l.groups, g)
			}
		}
		return nil, nil
	case slices.Contains(aggregations, name), slices.Contains(keywords, name), l.peek() == '(':
		return nil, nil
	}
	sel := &selector{metric: name}
	if l.peek() != '{' {
		return sel, nil
	}
	l.i++
	for {
		switch c := l.peek(); {
		case c == '}':
			l.i++
			return sel, nil
		case c == ',':
			l.i++
		case isIdentStart(c):
			sel.labels = append(sel.labels, l.word())
			l.space()
			for !l.done() && strings.ContainsRune("=!~", rune(l.s[l.i])) {
				l.i++
			}
			if c := l.peek(); c != '"' && c != '\'' && c != '`' {
				return nil, fmt.Errorf("matcher of %s without a string value at %d in %q", name, l.i, l.s)
			}
			if err := l.str(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("bad matchers of %s at %d in %q", name, l.i, l.s)
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func TestSelectors(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want string // metric{labels} joined by spaces, then "by" and the grouping labels
		bad  bool
	}{
		{expr: `sbc_calls_active`, want: `sbc_calls_active{}`},
		{expr: `sum by (instance, side) (rate(sbc_media_mos_sum{instance=~"$instance", le="3.5"}[$__rate_interval]))`,
			want: `sbc_media_mos_sum{instance,le} by instance side`},
		{expr: `histogram_quantile(0.95, sum by (le) (rate(sbc_call_setup_seconds_bucket[5m])))`,
			want: `sbc_call_setup_seconds_bucket{} by le`},
		{expr: `count(sbc_trunk_up == 0) or vector(0)`, want: `sbc_trunk_up{}`},
		{expr: `a / on (x) group_left (y) b unless c offset 1d > bool 2e3`, want: `a{} b{} c{} by x y`},
		{expr: `increase(x{origin="po}li{cy"}[1d] offset 10m) > 4 * y[1d:5m] / 144`, want: `x{origin} y{}`},
		{expr: `max without (l) (z{a!="1",b!~'x'})`, want: `z{a,b} by l`},
		{expr: `{__name__="x"}`, bad: true},
		{expr: `x{a="1`, bad: true},
		{expr: `rate(x[5m`, bad: true},
		{expr: `x{a=1}`, bad: true},
	} {
		q, err := selectors(tt.expr)
		if tt.bad {
			if err == nil {
				t.Errorf("%s: no error, selectors %v", tt.expr, q)
			}
			continue
		}
		var got []string
		for _, s := range q.sels {
			got = append(got, s.metric+"{"+strings.Join(s.labels, ",")+"}")
		}
		if len(q.groups) > 0 {
			got = append(got, "by")
			got = append(got, q.groups...)
		}
		if err != nil || strings.Join(got, " ") != tt.want {
			t.Errorf("%s: %v (%v), want %s", tt.expr, got, err, tt.want)
		}
	}
}
