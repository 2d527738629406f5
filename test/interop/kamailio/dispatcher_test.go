package kamailio

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

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

// startNode runs configs/behind-kamailio-lb.yaml as one node on ip:port,
// with the LB at lb and the PBX at pbx.
func startNode(t *testing.T, id, ip string, port int, lb netip.AddrPort, pbx string) (*sbc, *optionsWatch) {
	t.Helper()
	cfg := loadConfig(t, "behind-kamailio-lb.yaml", ip, port)
	cfg.NodeID = id
	w := newOptionsWatch(t, ip)
	cfg.HEP.Addr = w.addr()
	setTrunk(t, cfg, "lb", "sip:"+lb.String())
	setTrunk(t, cfg, "pbx", pbx)
	// The SIPp UAS answers calls only: a probe would be a call to it.
	for i := range cfg.Trunks {
		cfg.Trunks[i].OptionsInterval = 0
	}
	return startSBC(t, cfg), w
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
	nodes := []*sbc{n1, n2}

	list := filepath.Join(t.TempDir(), "dispatcher.list")
	writeList(t, list, map[string]int{node1IP: p1, node2IP: p2})
	k := startKamailio(t, filepath.Join(kamailioCF, "dispatcher.cfg"), lb,
		"LB_IP="+lbIP, "LB_PORT="+strconv.Itoa(int(lb.Port())), quote("DS_LIST", list),
		quote("TRUSTED_NET", carrier+"/32"), "DS_PING_INTERVAL=1", "KAM_CHILDREN=2")
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
	answered := func(s *sbc) uint64 { return s.app.Server().Stats().CallsAnswered.Load() }

	calls(lbCalls1)
	// A node counts a call once its record is made, just after SIPp saw it end.
	waitFor(t, "both nodes' counts", 10*time.Second, func() bool { return answered(nodes[0])+answered(nodes[1]) >= lbCalls1 })
	a1, a2 := answered(nodes[0]), answered(nodes[1])
	if a1+a2 != lbCalls1 || a1 == 0 || a2 == 0 {
		t.Fatalf("answered calls per node %d and %d, want %d spread over both", a1, a2, lbCalls1)
	}
	t.Logf("both nodes up: node 1 took %d calls, node 2 %d", a1, a2)

	nodes[0].close(t)
	calls(lbCalls2)
	waitFor(t, "node 2's count", 10*time.Second, func() bool { return answered(nodes[1])-a2 >= lbCalls2 })
	if got := answered(nodes[1]) - a2; got != lbCalls2 {
		t.Fatalf("node 2 answered %d of the %d calls made after node 1 stopped", got, lbCalls2)
	}
	for _, n := range nodes[1:] {
		waitFor(t, "node 2 idle", 10*time.Second, func() bool { return n.app.Server().ActiveCalls() == 0 })
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
