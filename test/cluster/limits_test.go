package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/cluster"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/redistest"
)

const (
	bobIP = "127.0.0.20" // bob's phone: calls out through the pbx trunk
	pbxIP = "127.0.0.21" // the pbx trunk: answers every call
)

// withPBX sends the calls of bob's phone to the trunk pbx at addr: bob
// authenticates, so his calls count against his user limits.
func withPBX(cfg *config.Config, addr string) *config.Config {
	tr := cfg.Trunks[0]
	tr.Name, tr.URI, tr.Trusted = "pbx", "sip:"+addr, false
	cfg.Trunks = append(cfg.Trunks, tr)
	cfg.Routes = append([]config.Route{{Name: "bob-out", Match: config.Match{SourceCIDRs: []string{bobIP + "/32"}},
		Target: config.TargetTrunks, Trunks: []string{"pbx"}}}, cfg.Routes...)
	return cfg
}

// autoAnswer answers every call the phone gets until the test ends.
func (p *phone) autoAnswer(t *testing.T) {
	done := make(chan struct{})
	var exited = make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case c := <-p.ring:
				c.answer()
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() { close(done); <-exited })
}

// countsRead is the read half of the admission counts' error bound
// (cluster.CountShare): a count in Redis is read by every peer within
// one interval plus a round trip.
const countsRead = cluster.DefaultCountsInterval + 50*time.Millisecond

// counted waits until node's calls in progress for user, as Redis holds
// them, are want, then for its peers to have read them (countsRead), and
// logs how long after since the count reached Redis.
func counted(t *testing.T, r *redistest.Server, node, user string, want int, since time.Time) {
	t.Helper()
	waitFor(t, node+"'s count of "+user+" in Redis", 10*time.Second, func() bool {
		reply, err := r.Do("EVAL", "return tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')", "1", "sbc:adm:"+node, "u:"+user)
		return err == nil && reply == ":"+itoa(want)
	})
	t.Logf("%s's count of %s (%d) in Redis %s after the call changed", node, user, want, time.Since(since).Round(time.Millisecond))
	time.Sleep(countsRead) // the bound under test: the peers read it within this
}

// TestUserCallLimitAcrossNodes: bob may have 2 calls at once
// (policy.admission.max_calls_per_user: 2, configs/cluster-node.yaml).
// His phone places a call through node 1 and one through node 2 to the
// pbx, which answers both; his third, through node 3, is refused the way
// one node refuses it: 503 Service Unavailable with Retry-After 10
// (cause max_calls_user). Once his call through node 1 ends, a new call
// through node 3 is answered.
//
// The error bound (README "Cluster", cluster.CountShare): a call counts
// on the other nodes within about 250 ms of its admission: its node
// writes its counts to Redis within an interval (100 ms) of the change,
// and its peers read them within another interval plus a round trip.
// Calls for one user arriving on different nodes within that window may
// together pass the limit; calls further apart are limited exactly. The
// test places each call only after the previous change is in Redis (it
// logs how long that took) and one read interval plus a round trip has
// passed, so every call here is limited exactly.
func TestUserCallLimitAcrossNodes(t *testing.T) {
	r := redistest.Start(t, redisIP)
	pbx := newPhone(t, pbxIP, "pbx", "")
	pbx.autoAnswer(t)
	var nodes []*node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, startNode(t, withPBX(nodeConfig(t, i, r.Addr, ""), pbx.host)))
	}
	waitFor(t, "three active nodes", 10*time.Second, func() bool {
		return clusterNodes(t, nodes[2]) == "node-1/active,node-2/active,node-3/active"
	})
	bob := newPhone(t, bobIP, "bob", "bob-secret")
	placed := func(n *node) *outCall {
		t.Helper()
		c, res := bob.call(n.addr(t, "udp"), "2125550100")
		if res == nil || res.StatusCode() != 200 {
			t.Fatalf("bob's call through %s: %v, want 200", n.id, res)
		}
		return c
	}

	first := placed(nodes[0])
	counted(t, r, "node-1", "bob", 1, time.Now())
	second := placed(nodes[1])
	counted(t, r, "node-2", "bob", 1, time.Now())

	_, res := bob.call(nodes[2].addr(t, "udp"), "2125550101")
	if res == nil || res.StatusCode() != 503 || res.Reason() != "Service Unavailable" || sipmsg.Header(res, "Retry-After") != "10" {
		t.Fatalf("bob's third call, through node 3: %v, want 503 Service Unavailable with Retry-After 10", res)
	}
	if m := metrics(t, nodes[2]); !strings.Contains(m, `sbc_policy_rejections_total{reason="max_calls_user",stage="admission"} 1`) {
		t.Errorf("node 3 did not count the refusal as max_calls_user:\n%s", grep(m, "sbc_policy_rejections_total"))
	}

	ended := time.Now()
	first.hangUp()
	counted(t, r, "node-1", "bob", 0, ended)
	again := placed(nodes[2])
	if first.media.received.Load() == 0 {
		t.Errorf("bob's first call carried no media to him")
	}
	second.hangUp()
	again.hangUp()
	waitFor(t, "calls over", 10*time.Second, func() bool {
		for _, n := range nodes {
			if n.app.Server().ActiveCalls() != 0 {
				return false
			}
		}
		return true
	})
}

func grep(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
