package cluster

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/test/redistest"
	"github.com/sbc-project/sbc/test/sipptest"
)

// metric returns the text of n's /metrics.
func metrics(t *testing.T, n *node) string {
	t.Helper()
	addr, _ := n.app.AdminAddr()
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// answered is n's count of answered calls to registered users.
func answered(t *testing.T, n *node) int {
	t.Helper()
	for line := range strings.SplitSeq(metrics(t, n), "\n") {
		if v, ok := strings.CutPrefix(line, `sbc_calls_answered_total{trunk="registered"} `); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("metric line %q", line)
			}
			return n
		}
	}
	return 0
}

// TestRedisKilledMidTraffic: a carrier places calls through node 1 to a
// phone registered there while Redis is killed: every call completes (a
// node decides alone what it can), the alarm is raised on both nodes, and
// when Redis returns empty the state converges: the phone's binding and
// both nodes' entries are written again and the alarm clears.
func TestRedisKilledMidTraffic(t *testing.T) {
	sipptest.Require(t)
	r := redistest.Start(t, redisIP)
	n1 := startNode(t, withPhones(nodeConfig(t, 1, r.Addr, "")))
	n2 := startNode(t, withPhones(nodeConfig(t, 2, r.Addr, "")))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	phone := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("register_answer_uac.xml"),
		Remote: n1.addr(t, "udp"), LocalIP: phoneIP, Timeout: 60 * time.Second,
		Args: []string{"-s", "carol", "-au", "carol", "-ap", "carol-secret", "-d", "40000",
			"-oocsf", sipptest.ScenarioPath("register_answer_ooc.xml")}})
	const binding = "sbc:reg:carol@example.com:node-1"
	waitFor(t, "carol's binding in Redis", 20*time.Second, func() bool {
		reply, err := r.Do("EXISTS", binding)
		return err == nil && reply == ":1"
	})

	const calls = 16
	carrier := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
		Remote: n1.addr(t, "udp"), LocalIP: carrierIP, Calls: calls, Rate: 2, Timeout: 50 * time.Second,
		Args: []string{"-s", "carol", "-d", "300", "-l", "2"}})
	waitFor(t, "a few calls through", 20*time.Second, func() bool { return answered(t, n1) >= 3 })
	r.Stop()
	for _, n := range []*node{n1, n2} {
		waitFor(t, n.id+"'s Redis alarm", 10*time.Second, func() bool {
			return strings.Contains(metrics(t, n), "sbc_cluster_redis_up 0")
		})
	}
	down := answered(t, n1)
	waitFor(t, "more calls through with Redis down", 20*time.Second, func() bool { return answered(t, n1) >= down+3 })
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the state back in Redis", 10*time.Second, func() bool {
		reply, err := r.Do("EXISTS", binding)
		return err == nil && reply == ":1" && clusterNodes(t, n2) == "node-1/active,node-2/active"
	})
	for _, n := range []*node{n1, n2} {
		if !strings.Contains(metrics(t, n), "sbc_cluster_redis_up 1") {
			t.Errorf("%s's alarm did not clear", n.id)
		}
	}
	if err := carrier.Wait().Check(calls); err != nil {
		t.Errorf("calls across the outage: %v", err)
	}
	phone.Stop()
}
