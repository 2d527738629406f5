package cluster

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/redistest"
	"github.com/sbc-project/sbc/test/sipptest"
)

const phoneIP = "127.0.0.19"

// withPhones lets SIP phones on phoneIP register and be called (SIPp
// knows only MD5 and answers only the first challenge).
func withPhones(cfg *config.Config) *config.Config {
	cfg.Routes = append(cfg.Routes, config.Route{Name: "phones", Match: config.Match{SourceCIDRs: []string{phoneIP + "/32"}},
		Target: config.TargetRegistered})
	cfg.Auth.Algorithms = []string{"MD5"}
	return cfg
}

// clusterNodes is "id/state,..." as n's /api/v1/cluster lists them.
func clusterNodes(t *testing.T, n *node) string {
	t.Helper()
	addr, _ := n.app.AdminAddr()
	resp, err := http.Get("http://" + addr.String() + "/api/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ Nodes []struct{ ID, State string } }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range st.Nodes {
		ids = append(ids, x.ID+"/"+x.State)
	}
	return strings.Join(ids, ",")
}

// TestDrainNode: a phone registered on node 2 is in a call that came in
// at node 1 when node 1 is drained. Node 1's peers see it draining, it
// refuses new calls with 503 (a carrier's DNS SRV then tries the next
// node), a new call through node 3 reaches the phone, the call in
// progress finishes normally, and node 1, drained, exits cleanly and
// leaves the cluster's list.
func TestDrainNode(t *testing.T) {
	sipptest.Require(t)
	r := redistest.Start(t, redisIP)
	n1 := startNode(t, withPhones(nodeConfig(t, 1, r.Addr, "")))
	n2 := startNode(t, withPhones(nodeConfig(t, 2, r.Addr, "")))
	n3 := startNode(t, withPhones(nodeConfig(t, 3, r.Addr, "")))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	phone := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("register_answer_uac.xml"),
		Remote: n2.addr(t, "udp"), LocalIP: phoneIP, Timeout: 60 * time.Second,
		Args: []string{"-s", "carol", "-au", "carol", "-ap", "carol-secret", "-d", "30000",
			"-oocsf", sipptest.ScenarioPath("register_answer_ooc.xml")}})
	waitFor(t, "carol's binding in Redis", 20*time.Second, func() bool {
		reply, err := r.Do("EXISTS", "sbc:reg:carol@example.com:node-2")
		return err == nil && reply == ":1"
	})
	waitFor(t, "three active nodes", 10*time.Second, func() bool {
		return clusterNodes(t, n3) == "node-1/active,node-2/active,node-3/active"
	})

	call := func(n *node, scenario string, hold string) *sipptest.Proc {
		return sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath(scenario),
			Remote: n.addr(t, "udp"), LocalIP: carrierIP, Timeout: 40 * time.Second,
			Args: []string{"-s", "carol", "-d", hold}})
	}
	long := call(n1, "call_caller_bye_uac.xml", "6000")
	waitFor(t, "the call through node 1 answered on node 2", 20*time.Second, func() bool {
		return n1.app.Server().ActiveCalls() == 1 && n2.app.Server().ActiveCalls() == 1
	})

	n1.app.Drain()
	waitFor(t, "node 3 seeing node 1 draining", 10*time.Second, func() bool {
		return clusterNodes(t, n3) == "node-1/draining,node-2/active,node-3/active"
	})
	if rd := n1.app.Ready(); rd.Ready {
		t.Error("a draining node 1 is ready")
	}
	if err := call(n1, "reject_503_uac.xml", "0").Wait().Check(1); err != nil {
		t.Errorf("a new call to draining node 1: %v", err)
	}
	if err := call(n3, "call_caller_bye_uac.xml", "500").Wait().Check(1); err != nil {
		t.Errorf("a new call through node 3: %v", err)
	}
	if err := long.Wait().Check(1); err != nil {
		t.Errorf("the call in progress on node 1: %v", err)
	}
	select {
	case <-n1.app.Drained():
	case <-time.After(20 * time.Second):
		t.Fatal("node 1 did not finish draining")
	}
	n1.close(t)
	if got := clusterNodes(t, n3); got != "node-2/active,node-3/active" {
		t.Errorf("after node 1 exited, node 3 lists %s", got)
	}
	phone.Stop()
}
