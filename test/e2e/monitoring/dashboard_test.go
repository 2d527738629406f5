package monitoring

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/test/e2e"
)

const (
	dashboardFile = "../../../configs/grafana/sbc-dashboard.json"
	rulesFile     = "../../../configs/prometheus/sbc-alerts.yml"
	rulesTestFile = "../../../configs/prometheus/sbc-alerts.test.yml"
	scannerHost   = 66 // the scanner's address in the package's /24
)

// targetLabels are the labels Prometheus adds to every series it scrapes.
var targetLabels = []string{"instance", "job"}

// TestDashboardAndAlertMetricsExist reads every PromQL expression of the
// Grafana dashboard (panels, annotations, the node variable) and of the
// alert rules, and checks each metric they select, and each label their
// matchers name, against what a running SBC exposes on /metrics after an
// answered call with media and loss, a busy callee and a scanner's
// OPTIONS, so that the labelled series are there.
func TestDashboardAndAlertMetricsExist(t *testing.T) {
	exprs := append(dashboardExprs(t), ruleExprs(t)...)
	series := scrapeAfterCalls(t)
	checked := map[string]bool{}
	for _, e := range exprs {
		q, err := selectors(e.expr)
		if err != nil {
			t.Errorf("%s: %v", e.where, err)
			continue
		}
		if len(q.sels) == 0 {
			t.Errorf("%s: no metric in %q", e.where, e.expr)
		}
		// A grouping label no selected metric has groups nothing.
		for _, g := range q.groups {
			if !slices.Contains(targetLabels, g) && !slices.ContainsFunc(q.sels, func(s selector) bool { return series[s.metric][g] }) {
				t.Errorf("%s: none of its metrics has the label %q it groups by (%q)", e.where, g, e.expr)
			}
		}
		for _, s := range q.sels {
			labels, ok := series[s.metric]
			if !ok {
				t.Errorf("%s: the SBC exposes no %s (%q)", e.where, s.metric, e.expr)
				continue
			}
			checked[s.metric] = true
			for _, l := range s.labels {
				if !labels[l] && !slices.Contains(targetLabels, l) {
					t.Errorf("%s: %s has no label %q (%q)", e.where, s.metric, l, e.expr)
				}
			}
		}
	}
	// What the dashboard and the alerts are for (issue 20, point 3).
	for _, m := range []string{"sbc_calls_active", "sbc_calls_started_total", "sbc_call_setup_seconds_bucket",
		"sbc_calls_failed_total", "sbc_media_lost_packets_total", "sbc_media_mos_sum", "sbc_policy_rejections_total",
		"sbc_trunk_up", "sbc_cdr_backlog", "sbc_cdr_writer_failing", "sbc_bans_added_total", "sbc_overloaded"} {
		if !checked[m] {
			t.Errorf("neither the dashboard nor the rules use %s", m)
		}
	}
	t.Logf("%d expressions, %d metrics checked", len(exprs), len(checked))
}

// expr is one PromQL expression and where it was found.
type expr struct{ where, expr string }

var reLabelValues = regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`)

// dashboardExprs returns the expressions of the dashboard's panel targets
// and annotations, and its query variables as the selector their
// label_values stands for.
func dashboardExprs(t *testing.T) []expr {
	t.Helper()
	var d struct {
		Panels      []panel `json:"panels"`
		Annotations struct {
			List []struct {
				Name string `json:"name"`
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	readJSON(t, dashboardFile, &d)
	var out []expr
	ids := map[int]bool{}
	for _, p := range flatten(d.Panels) {
		if ids[p.ID] {
			t.Errorf("dashboard: panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("dashboard: panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, expr{"panel " + p.Title + " " + tg.RefID, tg.Expr})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, expr{"annotation " + a.Name, a.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		lv := reLabelValues.FindStringSubmatch(q)
		if lv == nil {
			t.Errorf("dashboard: variable %s: query %q is not label_values(metric, label)", v.Name, q)
			continue
		}
		out = append(out, expr{"variable " + v.Name, lv[1] + `{` + lv[2] + `=~".+"}`})
	}
	return out
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

// ruleExprs returns the expressions of the alerting and recording rules.
func ruleExprs(t *testing.T) []expr {
	t.Helper()
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var out []expr
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, expr{"rule " + r.Alert + r.Record, r.Expr})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no rule", rulesFile)
	}
	return out
}

func readJSON(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// scrapeAfterCalls runs an SBC with a PBX trunk, places an answered call
// with RTP both ways (one packet of the caller's lost), a call the PBX
// answers busy, and a scanner's OPTIONS, and returns the metrics on its
// /metrics with the label names of their series.
func scrapeAfterCalls(t *testing.T) map[string]map[string]bool {
	t.Helper()
	pbx := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx), Mutate: e2e.WithAdmin("")})
	api := sbc.Admin(t, "")

	callee := openPair(t, e2e.PBXIP())
	c := dialPlain(t, sbc)
	inv := pbx.ExpectReq("INVITE")
	sbcB := mediaAddr(t, inv.Body())
	pbx.Respond(inv, 180, "Ringing", "pbx", "")
	pbx.Respond(inv, 200, "OK", "pbx", plainSDP(e2e.PBXIP(), callee.port()))
	c.answered(t)
	pbx.ExpectReq("ACK")
	callee.awaitRTP(t, func() { c.sendRTP(t) })
	c.awaitRTP(t, func() { callee.sendRTP(t, sbcB, pbxSSRC) })
	c.media.skip()
	for range 10 {
		c.sendRTP(t)
		callee.sendRTP(t, sbcB, pbxSSRC)
		time.Sleep(20 * time.Millisecond)
	}
	c.hangup(t, pbx)

	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	busy := ua.Invite("1000", "")
	inv = pbx.ExpectReq("INVITE")
	pbx.Respond(inv, 486, "Busy Here", "pbx", "")
	pbx.ExpectReq("ACK")
	busy.AckFailure(sipmsg.ToTag(ua.Expect(486)))

	scan(t, sbc)
	sbc.WaitCallsIdle(t)
	e2e.WaitFor(t, 5*time.Second, "the scanner's rejection counted", func() bool {
		_, ok := api.Metrics()[`sbc_policy_rejections_total{reason="scanner_ua",stage="blacklist"}`]
		return ok
	})
	series := map[string]map[string]bool{}
	for key := range api.Metrics() {
		name, labels, _ := strings.Cut(key, "{")
		if series[name] == nil {
			series[name] = map[string]bool{}
		}
		for _, l := range reLabelName.FindAllStringSubmatch(labels, -1) {
			series[name][l[1]] = true
		}
	}
	return series
}

var reLabelName = regexp.MustCompile(`(\w+)="`)

// scan sends an OPTIONS with a scanner's User-Agent from the scanner's
// address, which the blacklist stage refuses and bans.
func scan(t *testing.T, sbc *e2e.SBC) {
	t.Helper()
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(e2e.IP(scannerHost))}, net.UDPAddrFromAddrPort(sbc.UDP))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	host := conn.LocalAddr().String()
	msg := fmt.Sprintf("OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:100@127.0.0.1>;tag=%s\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: %s\r\n"+
		"CSeq: 1 OPTIONS\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n",
		host, sipmsg.NewToken(8), sipmsg.NewToken(4), sipmsg.NewToken(10))
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// TestAlertRulesPromtool: Prometheus's own promtool accepts the rules
// file and, written as recording rules, every expression of the
// dashboard with its Grafana variables filled in; and the rules' unit
// tests pass (each alert fires on its condition, after its for, and not
// before).
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed (Debian package prometheus; scripts/test.sh installs it)")
		}
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	run := func(what, file string) {
		t.Helper()
		out, err := exec.Command(promtool, what, "rules", file).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s rules %s: %v\n%s", what, file, err, out)
		}
	}
	check := func(file string) { t.Helper(); run("check", file) }
	check(rulesFile)
	run("test", rulesTestFile)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__range", "6h", "$__interval", "1m", "$instance", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range dashboardExprs(t) {
		q, err := json.Marshal(vars.Replace(e.expr)) // a JSON string is a YAML string
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "      - record: dashboard:expr_%d\n        expr: %s\n", i, q)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	check(file)
}
