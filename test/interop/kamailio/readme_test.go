package kamailio

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sbc-project/sbc/internal/config"
)

// TestClusterReadme holds README's "Behind a Kamailio dispatcher" to what
// TestClusterBehindDispatcher runs: the Kamailio defines it names exist in
// dispatcher.cfg and the test sets them, its dispatcher.list lines are
// the test's, and its per-node environment is the test's, which
// configs/cluster-behind-kamailio.yaml takes.
func TestClusterReadme(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(configsDir, "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "### Behind a Kamailio dispatcher\n")
	if !ok {
		t.Fatal(`README has no "### Behind a Kamailio dispatcher"`)
	}
	_, block, _ := strings.Cut(sec, "```\n")
	block, _, _ = strings.Cut(block, "```")
	cfg, err := os.ReadFile(filepath.Join(kamailioCF, "dispatcher.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, d := range clDefines(netip.MustParseAddrPort(clLBIP+":5060"), "x") {
		name, _, _ := strings.Cut(d, "=")
		ours = append(ours, name)
	}
	defines := regexp.MustCompile(`-A '?([A-Z_]+)=`).FindAllStringSubmatch(block, -1)
	for _, m := range defines {
		if !strings.Contains(string(cfg), "#!ifndef "+m[1]+"\n") {
			t.Errorf("README sets %s, which dispatcher.cfg does not define", m[1])
		}
		if !slices.Contains(ours, m[1]) {
			t.Errorf("README sets %s, which the test does not", m[1])
		}
	}
	lines := regexp.MustCompile(`(?m)^1 sip:([0-9.]+):([0-9]+) 9$`).FindAllStringSubmatch(block, -1)
	for _, m := range lines {
		if got := fmt.Sprintf(clListLine, m[1], atoi(t, m[2])); got != m[0]+"\n" {
			t.Errorf("README's list line %q, the test writes %q", m[0], got)
		}
	}
	env := regexp.MustCompile(`SBC_[A-Z_]+=[^ \\\n]*`).FindAllString(block, -1)
	n := &clusterNode{id: "sbc-2", ip: "192.0.2.22", internal: "192.0.2.22:5070"}
	var names, testNames []string
	for i, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name)
		if name == "SBC_CLUSTER_SECRET" {
			env[i] = name + "=" + clSecret // "..." in README
		}
	}
	for _, kv := range n.env() {
		name, _, _ := strings.Cut(kv, "=")
		testNames = append(testNames, name)
	}
	if len(defines) < 4 || len(lines) < 2 || !slices.Equal(names, testNames) {
		t.Fatalf("README's block sets defines %v, list lines %v, environment %v; the test sets %v", defines, lines, names, testNames)
	}
	c, err := config.Load(filepath.Join(configsDir, "cluster-behind-kamailio.yaml"), env)
	if err != nil {
		t.Fatalf("cluster-behind-kamailio.yaml with README's environment: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("cluster-behind-kamailio.yaml with README's environment: %v", err)
	}
	if c.NodeID != "sbc-2" || c.Cluster.InternalAddr != "192.0.2.22:5070" || c.SIP.PublicAddr != "192.0.2.22" {
		t.Errorf("README's environment gave node %q, internal_addr %q, public_addr %q", c.NodeID, c.Cluster.InternalAddr, c.SIP.PublicAddr)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
