package cluster

import (
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/cluster"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/policy"
	"github.com/sbc-project/sbc/test/redistest"
)

const floodIP = "127.0.0.25" // one source flooding every node

// The flood's limit: every request of one source, 10 a second after a
// burst of 5. Every refusal is answered (503) so the test can count
// them, and none earns a ban within the test.
const (
	floodRate  = 10.0
	floodBurst = 5
)

func withFloodLimit(cfg *config.Config) *config.Config {
	cfg.Policy.RateLimit.Requests = policy.Bucket{Rate: floodRate, Burst: floodBurst}
	cfg.Policy.RateLimit.DropAfter = 1 << 20
	cfg.Policy.Bans.RateLimited = 1 << 20
	return cfg
}

// flood sends count OPTIONS from floodIP, one every 20 ms, to the nodes
// in turn, waits for every answer, and returns how many were 200 (passed
// the limit) and how long the sending took.
func flood(t *testing.T, nodes []*node, count int) (passed int, took time.Duration) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(floodIP)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ok, refused atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			switch s := string(buf[:n]); {
			case strings.HasPrefix(s, "SIP/2.0 200 "):
				ok.Add(1)
			case strings.HasPrefix(s, "SIP/2.0 503 "):
				refused.Add(1)
			}
		}
	}()
	dsts := make([]*net.UDPAddr, len(nodes))
	for i, n := range nodes {
		dsts[i] = udpAddr(t, n.addr(t, "udp"))
	}
	local := c.LocalAddr().String()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := range count {
		if i > 0 {
			<-tick.C
		}
		dst := dsts[i%len(dsts)]
		tag := sipmsg.NewToken(8)
		msg := "OPTIONS sip:" + dst.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + tag + ";rport\r\n" +
			"From: <sip:flood@" + floodIP + ">;tag=" + tag + "\r\nTo: <sip:" + dst.String() + ">\r\nCall-ID: " + tag + "@" + floodIP +
			"\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		if _, err := c.WriteToUDP([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
	}
	took = time.Since(start)
	waitFor(t, "every request answered", 10*time.Second, func() bool { return ok.Load()+refused.Load() >= int64(count) })
	c.Close()
	<-done
	return int(ok.Load()), took
}

// TestFloodOverNodesLimitedAsOne: one source sends OPTIONS to three
// nodes in turn, 50 a second in all (about 17 to each), against a limit
// of 10 a second after a burst of 5. Sharing the tokens (cluster.RateShare,
// README "Cluster"), the nodes let through what one node would, within
// the stated bound: over T seconds at most
// N × burst + rate × T + (N − 1) × rate × 0.1 s with N = 3 (one node:
// burst + rate × T). The control, three nodes without a cluster, lets
// through about three times one node's share, over that bound.
func TestFloodOverNodesLimitedAsOne(t *testing.T) {
	const count = 120
	r := redistest.Start(t, redisIP)
	var nodes []*node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, startNode(t, withFloodLimit(nodeConfig(t, i, r.Addr, ""))))
	}
	waitFor(t, "three nodes sharing rate tokens", 10*time.Second, func() bool {
		reply, err := r.Do("EVAL", "return redis.call('PUBSUB','NUMSUB',KEYS[1])[2]", "1", "sbc:rate")
		return err == nil && reply == ":3"
	})
	n := 3.0
	bound := func(took time.Duration) float64 {
		return n*floodBurst + floodRate*took.Seconds() + (n-1)*floodRate*cluster.DefaultCountsInterval.Seconds()
	}
	one := func(took time.Duration) float64 { return floodBurst + floodRate*took.Seconds() }

	passed, took := flood(t, nodes, count)
	t.Logf("shared: %d of %d passed in %s; one node would pass %.1f, the bound is %.1f", passed, count, took.Round(time.Millisecond), one(took), bound(took))
	if float64(passed) > bound(took)+1 {
		t.Errorf("%d requests passed across three nodes in %s, over the bound %.1f", passed, took.Round(time.Millisecond), bound(took))
	}
	if float64(passed) < floodRate*took.Seconds()*0.8 {
		t.Errorf("only %d passed in %s: sharing refuses more than one node would", passed, took.Round(time.Millisecond))
	}
	for _, x := range nodes {
		x.close(t)
	}

	// The control: the same nodes without a cluster limit alone.
	alone := nodes[:0:0]
	for i := 1; i <= 3; i++ {
		cfg := withFloodLimit(nodeConfig(t, i, r.Addr, ""))
		cfg.Cluster = config.Cluster{}
		alone = append(alone, startNode(t, cfg))
	}
	ctrl, ctook := flood(t, alone, count)
	t.Logf("alone: %d of %d passed in %s; one node would pass %.1f, the bound would be %.1f", ctrl, count, ctook.Round(time.Millisecond), one(ctook), bound(ctook))
	if float64(ctrl) <= bound(ctook)+1 || float64(ctrl) < 2.5*one(ctook) {
		t.Errorf("three nodes limiting alone passed %d, not about three times one node's %.1f: the flood does not tell sharing apart", ctrl, one(ctook))
	}
}
