package cluster

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/test/browser"
	"github.com/sbc-project/sbc/test/cdr/pgtest"
	"github.com/sbc-project/sbc/test/redistest"
	"github.com/sbc-project/sbc/test/sipptest"
)

// clusterCalls is node → route of the calls n's admin API lists for the
// whole cluster.
func clusterCalls(t *testing.T, n *node) map[string]string {
	t.Helper()
	addr, ok := n.app.AdminAddr()
	if !ok {
		t.Fatal("no admin server")
	}
	resp, err := http.Get("http://" + addr.String() + "/api/v1/calls?scope=cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Calls []struct{ Node, Route string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/api/v1/calls?scope=cluster: %d %v", resp.StatusCode, err)
	}
	out := map[string]string{}
	for _, c := range body.Calls {
		out[c.Node] = c.Route
	}
	if len(out) != len(body.Calls) {
		return map[string]string{"duplicate": ""}
	}
	return out
}

// TestCallToBrowserOnAnotherNode: a browser (JsSIP in Chromium) registers
// on node 1; the carrier (SIPp) sends its call for the browser's user to
// node 2; node 2 finds the binding in Redis and sends the call to node 1
// over SIP (signed with the cluster secret), node 1 over the browser's
// WebSocket. The browser rings, answers and hears its own audio echoed by
// the carrier: audio both ways through both nodes. The CDRs in the one
// PostgreSQL name both nodes, each with packets both ways; while the call
// is up, the admin API of either node lists both nodes' halves of it.
func TestCallToBrowserOnAnotherNode(t *testing.T) {
	sipptest.Require(t)
	chromium := browser.NeedChromium(t)
	r := redistest.Start(t, redisIP)
	pg := pgtest.Start(t)
	n1 := startNode(t, nodeConfig(t, 1, r.Addr, pg.DSN("postgres")))
	n2 := startNode(t, nodeConfig(t, 2, r.Addr, pg.DSN("postgres")))

	q := url.Values{"user": {"bob"}, "password": {"bob-secret"}, "domain": {"example.com"},
		"register": {"1"}, "autoconnect": {"1"}, "autoanswer": {"1"}}
	bob := browser.Phone{Name: "bob", URL: "https://" + n1.addr(t, "wss") + "/?" + q.Encode(), Steps: []browser.Step{
		browser.Do("wait", "status", "registered"),
		browser.Do("wait", "call", "in-call", "timeoutMs", 60000),
		browser.Do("mark", "name", "answered"),
		browser.Do("audio", "packets", 50, "label", "carrier"),
		browser.Do("wait", "call", "ended", "timeoutMs", 30000),
	}}
	run := browser.Start(t, browser.Scenario{Chromium: chromium, AudioFile: browser.WriteTone(t), IgnoreHTTPSErrors: true,
		TimeoutMs: 20000, Phones: []browser.Phone{bob}, Deadline: 110 * time.Second})
	// The binding reaches Redis, and node 2 sees node 1 alive.
	waitFor(t, "bob's binding in Redis", 60*time.Second, func() bool {
		reply, err := r.Do("EXISTS", "sbc:reg:bob@example.com:node-1")
		return err == nil && reply == ":1"
	})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	mp := evenFreePort(t, carrierIP)
	carrier := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
		Remote: n2.addr(t, "udp"), LocalIP: carrierIP, Timeout: 60 * time.Second,
		Args: []string{"-s", "bob", "-d", "8000", "-rtp_echo", "-mi", carrierIP, "-mp", strconv.Itoa(mp)}})
	// While the call is up, either node's admin API lists both halves.
	run.WaitEvent("bob", "mark", "answered", 60*time.Second)
	for _, n := range []*node{n1, n2} {
		waitFor(t, n.id+" listing the calls of both nodes", 10*time.Second, func() bool {
			calls := clusterCalls(t, n)
			return len(calls) == 2 && calls["node-1"] == "cluster" && calls["node-2"] == "carrier-to-web"
		})
	}
	if err := carrier.Wait().Check(1); err != nil {
		t.Fatalf("the carrier's call through node 2: %v", err)
	}
	res := run.MustPass()
	st := res["bob"].Stats(t, "carrier")
	if st.PacketsReceived < 50 || st.PacketsSent == 0 || st.TotalAudioEnergy <= 0 {
		t.Errorf("bob: received %v packets (energy %v), sent %v; want audio both ways", st.PacketsReceived, st.TotalAudioEnergy, st.PacketsSent)
	}
	waitFor(t, "calls over", 15*time.Second, func() bool {
		return n1.app.Server().ActiveCalls() == 0 && n2.app.Server().ActiveCalls() == 0
	})
	n1.close(t)
	n2.close(t)

	recs := pgRecords(t, pg.DSN("postgres"))
	byNode := map[string]pgRecord{}
	for _, rec := range recs {
		byNode[rec.NodeID] = rec
	}
	if len(recs) != 2 || len(byNode) != 2 {
		t.Fatalf("CDRs in PostgreSQL: %v; want one per node", recs)
	}
	for id, rec := range byNode {
		if rec.Disposition != "ANSWERED" || rec.AToB < 50 || rec.BToA < 50 || rec.Trunk != "registered" {
			t.Errorf("%s's record: %s; want ANSWERED to a registered user with packets both ways", id, rec)
		}
	}
	if !strings.Contains(byNode["node-2"].FromURI, "sipp") {
		t.Errorf("node 2's record is not the carrier's call: %s", byNode["node-2"])
	}
	// The hop left node 2 from its internal address, not from the one
	// the kernel's route picks (127.0.0.1 on loopback): firewalls between
	// nodes see the nodes' own addresses.
	if src := byNode["node-1"].SrcAddr; !strings.HasPrefix(src, nodeIPs[1]+":") {
		t.Errorf("node 1 received the call from %s, want node 2's internal address %s", src, nodeIPs[1])
	}
}
