package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/cluster"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/policy"
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
func (p *phone) autoAnswer(t *testing.T) { p.handle(t, func(c *inCall) { c.answer() }) }

// handle gives every call the phone gets to f until the test ends.
func (p *phone) handle(t *testing.T, f func(*inCall)) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case c := <-p.ring:
				f(c)
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() { close(done); <-exited })
}

// peersSee waits until n counts want calls in progress on its peers
// (sbc_cluster_peer_calls: what its admission adds to its own) and logs
// how long after the change that was: the admission counts' error bound
// (README "Cluster", cluster.CountShare) says about 250 ms; a loaded
// machine may take longer, which widens the window the bound describes
// but is not what this test judges.
func peersSee(t *testing.T, n *node, want int, since time.Time) {
	t.Helper()
	line := "sbc_cluster_peer_calls " + itoa(want) + "\n"
	waitFor(t, n.id+" counting "+itoa(want)+" calls on its peers", 10*time.Second, func() bool {
		return strings.Contains(metrics(t, n), line)
	})
	t.Logf("%s counts %d calls on its peers %s after the change", n.id, want, time.Since(since).Round(time.Millisecond))
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
// test places each call only once node 3 counts the calls of the other
// nodes (sbc_cluster_peer_calls; it logs how long that took), so every
// call here is limited exactly; the bound itself is tested in
// internal/cluster.
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

	t0 := time.Now()
	first := placed(nodes[0])
	peersSee(t, nodes[2], 1, t0)
	t1 := time.Now()
	second := placed(nodes[1])
	peersSee(t, nodes[2], 2, t1)

	_, res := bob.call(nodes[2].addr(t, "udp"), "2125550101")
	if res == nil || res.StatusCode() != 503 || res.Reason() != "Service Unavailable" || sipmsg.Header(res, "Retry-After") != "10" {
		t.Fatalf("bob's third call, through node 3: %v, want 503 Service Unavailable with Retry-After 10", res)
	}
	if m := metrics(t, nodes[2]); !strings.Contains(m, `sbc_policy_rejections_total{reason="max_calls_user",stage="admission"} 1`) {
		t.Errorf("node 3 did not count the refusal as max_calls_user:\n%s", grep(m, "sbc_policy_rejections_total"))
	}

	ended := time.Now()
	first.hangUp()
	peersSee(t, nodes[2], 1, ended)
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

// TestUserCallRateAcrossNodes: bob may place 2 calls a second after a
// burst of 2 (policy.admission.user_cps). His phone places calls through
// the three nodes in turn, about 16 a second; the pbx turns each down (486) as
// it comes, so only the rate limits them. Sharing the call-rate tokens
// (RateShare.ShareCalls, README "Cluster"), the nodes admit what one node
// would, within the stated bound: over T seconds at most
// N × burst + rate × T + (N − 1) × rate × 0.1 s with N = 3 (one node:
// burst + rate × T); the others are refused 503 (cps_user). The control,
// three nodes without a cluster, admits about three times one node's
// share.
func TestUserCallRateAcrossNodes(t *testing.T) {
	const rate, burst, count = 2.0, 2, 30
	r := redistest.Start(t, redisIP)
	pbx := newPhone(t, pbxIP, "pbx", "")
	pbx.handle(t, func(c *inCall) { c.reply(486, "Busy Here", "") })
	start := func(i int, clustered bool) *node {
		cfg := withPBX(nodeConfig(t, i, r.Addr, ""), pbx.host)
		cfg.Policy.Admission.UserCPS = policy.Bucket{Rate: rate, Burst: burst}
		cfg.Policy.Admission.MaxCallsPerUser = 0
		cfg.Policy.RateLimit.ExemptCIDRs = []string{bobIP + "/32"} // two INVITEs a call: not what is measured
		if !clustered {
			cfg.Cluster = config.Cluster{}
		}
		return startNode(t, cfg)
	}
	var nodes []*node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, start(i, true))
	}
	waitFor(t, "three nodes sharing call rates", 10*time.Second, func() bool {
		reply, err := r.Do("EVAL", "return redis.call('PUBSUB','NUMSUB',KEYS[1])[2]", "1", "sbc:cps")
		return err == nil && reply == ":3"
	})
	bob := newPhone(t, bobIP, "bob", "bob-secret")
	n := 3.0
	bound := func(took time.Duration) float64 {
		return n*burst + rate*took.Seconds() + (n-1)*rate*cluster.DefaultCountsInterval.Seconds()
	}
	one := func(took time.Duration) float64 { return burst + rate*took.Seconds() }

	passed, took := placeEvery(t, bob, nodes, count)
	t.Logf("shared: %d of %d admitted in %s; one node would admit %.1f, the bound is %.1f", passed, count, took.Round(time.Millisecond), one(took), bound(took))
	if float64(passed) > bound(took)+1 {
		t.Errorf("%d of bob's calls admitted across three nodes in %s, over the bound %.1f", passed, took.Round(time.Millisecond), bound(took))
	}
	if float64(passed) < rate*took.Seconds()*0.8 {
		t.Errorf("only %d admitted in %s: sharing refuses more than one node would", passed, took.Round(time.Millisecond))
	}
	for _, x := range nodes {
		x.close(t)
	}

	alone := nodes[:0:0]
	for i := 1; i <= 3; i++ {
		alone = append(alone, start(i, false))
	}
	ctrl, ctook := placeEvery(t, bob, alone, count)
	t.Logf("alone: %d of %d admitted in %s; one node would admit %.1f, the bound would be %.1f", ctrl, count, ctook.Round(time.Millisecond), one(ctook), bound(ctook))
	if float64(ctrl) <= bound(ctook)+1 || float64(ctrl) < 2*one(ctook) {
		t.Errorf("three nodes alone admitted %d of bob's calls, not about three times one node's %.1f", ctrl, one(ctook))
	}
}

// placeEvery places count calls of p, one every 60 ms, through the nodes
// in turn, and returns how many were admitted (reached the pbx, which
// turned them down) and how long it took. Any other answer than the
// pbx's 486 or the admission's 503 fails the test.
func placeEvery(t *testing.T, p *phone, nodes []*node, count int) (passed int, took time.Duration) {
	t.Helper()
	tick := time.NewTicker(60 * time.Millisecond)
	defer tick.Stop()
	begin := time.Now()
	for i := range count {
		if i > 0 {
			<-tick.C
		}
		n := nodes[i%len(nodes)]
		_, res := p.call(n.addr(t, "udp"), "2125550100")
		switch {
		case res != nil && res.StatusCode() == 486:
			passed++
		case res != nil && res.StatusCode() == 503 && sipmsg.Header(res, "Retry-After") == "1":
		default:
			t.Fatalf("call %d through %s: %v, want 486 from the pbx or 503 (cps_user)", i, n.id, res)
		}
	}
	return passed, time.Since(begin)
}
