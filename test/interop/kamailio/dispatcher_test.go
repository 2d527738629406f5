package kamailio

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/test/interop/sbcproc"
	"github.com/sbc-project/sbc/test/sipptest"
)

// Addresses of the dispatcher test (127.0.6.0/24 is this package's).
const (
	lbIP     = "127.0.6.10"
	node1IP  = "127.0.6.11"
	node2IP  = "127.0.6.12"
	carrier  = "127.0.6.20" // the SIPp UAC
	lbPBXIP  = "127.0.6.30" // the SIPp UAS behind the SBCs
	lbCalls1 = 6            // calls with both nodes up
	lbCalls2 = 4            // calls once node 1 has stopped
)

// startNode runs the shipped configs/behind-kamailio-lb.yaml as an SBC
// process, one node of the pool, as its comment tells an operator to: the
// file with its example addresses replaced (listeners on ip:port, the LB
// at lb, the PBX at pbx, files under a temporary directory, no admin
// server) and the per-node keys from the environment (SBC_NODE_ID,
// SBC_SIP_PUBLIC_ADDR, SBC_MEDIA_PUBLIC_IP). It exports its SIP messages
// over HEP to the returned watch.
func startNode(t *testing.T, id, ip string, port int, lb netip.AddrPort, pbx string) (*sbcproc.Proc, *optionsWatch) {
	t.Helper()
	shipped, err := os.ReadFile(filepath.Join(configsDir, "behind-kamailio-lb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w := newOptionsWatch(t, ip)
	yaml := strings.NewReplacer(
		"addr: 0.0.0.0:5060", "addr: "+net.JoinHostPort(ip, strconv.Itoa(port)),
		"bind_ip: 0.0.0.0", "bind_ip: "+ip,
		"uri: sip:192.0.2.20:5060", "uri: sip:"+lb.String(),
		"uri: sip:192.0.2.10:5060", "uri: "+pbx,
		// The SIPp UAS answers calls only: a probe would be a call to it.
		"options_interval: 30s", "options_interval: 0s",
		"dir: /var/lib/sbc/cdr", "dir: "+sbcproc.CDRDir(dir),
		"cdr_spool: /var/lib/sbc/cdr-spool", "cdr_spool: "+sbcproc.SpoolDir(dir),
		"file: /var/lib/sbc/bans.json", "file: "+filepath.Join(dir, "bans.json"),
		"addr: 127.0.0.1:9090", `addr: ""`,
	).Replace(string(shipped))
	// The race detector on two busy cores is not overload.
	yaml += "\nhep:\n  addr: " + w.addr() + "\n"
	yaml = strings.Replace(yaml, "  invite_timeout: 8s\n", "  invite_timeout: 8s\n  overload_delay: 0s\n", 1)
	// A setting the replacements missed would point the node at the
	// example network: the shipped file and this test disagree. The
	// node's own addresses stay: the environment overrides them.
	for n, line := range strings.Split(yaml, "\n") {
		setting, _, _ := strings.Cut(line, "#")
		if strings.Contains(setting, "public_addr:") || strings.Contains(setting, "public_ip:") {
			continue
		}
		if strings.Contains(setting, "192.0.2.") || strings.Contains(setting, "/var/lib/sbc") {
			t.Fatalf("behind-kamailio-lb.yaml line %d still names the example network: %q", n+1, line)
		}
	}
	p := sbcproc.Start(t, sbcproc.Options{Config: yaml, Dir: dir,
		Env: []string{"SBC_NODE_ID=" + id, "SBC_SIP_PUBLIC_ADDR=" + ip, "SBC_MEDIA_PUBLIC_IP=" + ip}})
	return p, w
}

// TestDispatcherSpreadsAndFailsOver: Kamailio with the shipped
// dispatcher.cfg in front of two SBC nodes running the shipped
// behind-kamailio-lb.yaml. Calls from a SIPp "carrier" through the LB are
// spread over both nodes (round robin) and reach the PBX; the LB's OPTIONS
// probes see both nodes up. Node 1 then stops: every further call still
// completes, on node 2 (the LB fails over on the silent node and marks it
// down). Over UDP and TCP.
func TestDispatcherSpreadsAndFailsOver(t *testing.T) {
	sipptest.Require(t)
	for _, tc := range []struct{ name, transport string }{{"udp", sipptest.UDP}, {"tcp", sipptest.TCP}} {
		t.Run(tc.name, func(t *testing.T) { testDispatcher(t, tc.transport) })
	}
}

func testDispatcher(t *testing.T, transport string) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pbx := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
		LocalIP: lbPBXIP, Transport: transport, Calls: sipptest.Unlimited, Timeout: 80 * time.Second})
	lb := netip.AddrPortFrom(netip.MustParseAddr(lbIP), uint16(freePort(t, lbIP)))
	p1, p2 := freePort(t, node1IP), freePort(t, node2IP)
	pbxURI := "sip:" + pbx.Addr().String()
	if transport == sipptest.TCP {
		pbxURI += ";transport=tcp"
	}
	n1, w1 := startNode(t, "sbc-1", node1IP, p1, lb, pbxURI)
	n2, w2 := startNode(t, "sbc-2", node2IP, p2, lb, pbxURI)

	list := filepath.Join(t.TempDir(), "dispatcher.list")
	writeList(t, list, map[string]int{node1IP: p1, node2IP: p2})
	k := startKamailio(t, filepath.Join(kamailioCF, "dispatcher.cfg"), lb,
		"LB_IP="+lbIP, "LB_PORT="+strconv.Itoa(int(lb.Port())), quote("DS_LIST", list),
		quote("TRUSTED_NET", carrier+"/32"), "DS_PING_INTERVAL=1", "KAM_CHILDREN=1")
	// One worker: with two, Kamailio's workers sometimes relayed the
	// SBC's 180 after its 200 (sent in that order from one goroutine),
	// which a phone ignores and SIPp's strict scenario aborts on. What
	// is tested here is the spreading and the failover, not the LB's
	// worker count.
	// The list starts every node inactive: only an answered OPTIONS probe
	// lets the LB send it calls.
	waitFor(t, "the LB's OPTIONS probes answered by both nodes", 15*time.Second, func() bool {
		return w1.answered.Load() > 0 && w2.answered.Load() > 0
	})

	calls := func(n int) {
		t.Helper()
		uac := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
			Remote: lb.String(), LocalIP: carrier, Transport: transport, Calls: n, Rate: 2, Timeout: 40 * time.Second,
			Args: []string{"-s", "2125550100", "-d", "200", "-l", "1"}})
		if err := uac.Wait().Check(n); err != nil {
			t.Fatalf("calls through the LB: %v\nkamailio:\n%s", err, tailString(k.Log(), 4000))
		}
	}
	// A node's answered calls, from its CDRs (each must name the node).
	answered := func(p *sbcproc.Proc, id string) int {
		n := 0
		for _, r := range p.Records(t) {
			if r.NodeID != id {
				t.Fatalf("node %s wrote a record naming node %q", id, r.NodeID)
			}
			if r.Disposition == "ANSWERED" {
				n++
			}
		}
		return n
	}

	calls(lbCalls1)
	// A node writes a call's record just after SIPp saw it end.
	waitFor(t, "both nodes' records", 10*time.Second, func() bool {
		return answered(n1, "sbc-1")+answered(n2, "sbc-2") >= lbCalls1
	})
	a1, a2 := answered(n1, "sbc-1"), answered(n2, "sbc-2")
	if a1+a2 != lbCalls1 || a1 == 0 || a2 == 0 {
		t.Fatalf("answered calls per node %d and %d, want %d spread over both", a1, a2, lbCalls1)
	}
	t.Logf("both nodes up: node 1 took %d calls, node 2 %d", a1, a2)

	n1.Stop()
	if !n1.Exited() {
		t.Fatal("node 1 still running after Stop")
	}
	calls(lbCalls2)
	waitFor(t, "node 2's records", 10*time.Second, func() bool { return answered(n2, "sbc-2")-a2 >= lbCalls2 })
	if got := answered(n2, "sbc-2") - a2; got != lbCalls2 {
		t.Fatalf("node 2 answered %d of the %d calls made after node 1 stopped", got, lbCalls2)
	}
	if got := answered(n1, "sbc-1"); got != a1 {
		t.Fatalf("node 1 answered %d calls after it stopped", got-a1)
	}
}

// writeList writes a dispatcher list: set 1 the nodes' UDP listeners, set 2
// their TCP ones, like configs/kamailio/dispatcher.list, each inactive
// and probing (flags 1|8) until it answers the LB's OPTIONS.
func writeList(t *testing.T, path string, nodes map[string]int) {
	t.Helper()
	var b []byte
	for _, ip := range []string{node1IP, node2IP} {
		b = fmt.Appendf(b, "1 sip:%s:%d 9\n2 sip:%s:%d;transport=tcp 9\n", ip, nodes[ip], ip, nodes[ip])
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
