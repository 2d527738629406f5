package cluster

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sbc-project/sbc/policy"
	"github.com/sbc-project/sbc/test/redistest"
)

const (
	floodRate  = 5.0 // INVITEs per second per source
	floodBurst = 2
)

func rateChain(t *testing.T) *policy.Chain {
	t.Helper()
	spec := policy.Spec{Stages: []string{policy.StageRateLimit}, RateLimit: policy.RateLimitSpec{
		Invite: policy.Bucket{Rate: floodRate, Burst: floodBurst}, DropAfter: 1 << 20, RetryAfter: time.Second, MaxSources: 1024}}
	c, err := policy.New(spec, policy.Deps{Exempt: func(netip.Addr) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startRating(t *testing.T, id, redisAddr string) *policy.Chain {
	t.Helper()
	c := rateChain(t)
	n := New(testSpec(id, redisAddr, "127.0.46.11:5070"), Local{}, nil)
	s := ShareRates(n, c, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { s.Run(ctx); done <- struct{}{} }()
	go func() { n.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done; _ = n.Close() })
	waitFor(t, id+" joined", n.RedisUp)
	return c
}

// flood sends count INVITEs from one source, one every 20 ms, to the
// chains in turn, and returns how many passed and how long it took.
func flood(chains []*policy.Chain, count int) (passed int, took time.Duration) {
	src := netip.MustParseAddrPort("192.0.2.50:5060")
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := range count {
		<-tick.C
		r := &policy.Request{Method: "INVITE", Src: src, Transport: "udp"}
		if chains[i%len(chains)].Early(context.Background(), r).Action == policy.Continue {
			passed++
		}
	}
	return passed, time.Since(start)
}

// A flood spread over three nodes is rate limited as one source: what
// passes stays within the stated bound (RateShare), where three nodes
// limiting alone let through three times one node's share.
func TestFloodLimitedAsOne(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	var subscribed []*policy.Chain
	for _, id := range []string{"n1", "n2", "n3"} {
		subscribed = append(subscribed, startRating(t, id, r.Addr))
	}
	waitFor(t, "subscriptions", func() bool {
		reply, err := r.Do("EVAL", "return redis.call('PUBSUB','NUMSUB',KEYS[1])[2]", "1", "test:rate")
		return err == nil && reply == ":3"
	})
	passed, took := flood(subscribed, 100)
	n := 3.0
	interval := DefaultCountsInterval.Seconds()
	bound := n*floodBurst + floodRate*took.Seconds() + (n-1)*floodRate*interval
	t.Logf("shared: %d of 100 passed in %s; bound %.1f", passed, took.Round(time.Millisecond), bound)
	if float64(passed) > bound+1 {
		t.Errorf("%d INVITEs passed across three nodes in %s, more than the bound %.1f", passed, took, bound)
	}
	if float64(passed) < floodRate*took.Seconds()*0.8 {
		t.Errorf("only %d passed in %s: sharing refuses more than one node would", passed, took)
	}

	// The control: three nodes alone let through about three times one
	// node's share, over the bound above.
	alone := []*policy.Chain{rateChain(t), rateChain(t), rateChain(t)}
	ctrl, ctook := flood(alone, 100)
	cbound := n*floodBurst + floodRate*ctook.Seconds() + (n-1)*floodRate*interval
	t.Logf("alone: %d of 100 passed in %s; the bound would be %.1f", ctrl, ctook.Round(time.Millisecond), cbound)
	if float64(ctrl) <= cbound+1 {
		t.Errorf("three nodes limiting alone passed %d, within the bound %.1f: the flood does not tell sharing apart", ctrl, cbound)
	}
}

func TestParseTaken(t *testing.T) {
	got, ok := parseTaken("192.0.2.1 1 3\n2001:db8:: 0 7")
	if !ok || len(got) != 2 || got[0].N != 3 || got[0].Kind != 1 || got[1].Src != netip.MustParseAddr("2001:db8::") {
		t.Fatalf("parseTaken: %+v %v", got, ok)
	}
	for _, bad := range []string{"192.0.2.1 1", "x 1 1", "192.0.2.1 9 1", "192.0.2.1 1 -2", "192.0.2.1 1 many"} {
		if out, ok := parseTaken(bad + "\n192.0.2.2 1 1"); ok || len(out) != 1 {
			t.Errorf("parseTaken(%q): %+v %v, want the good line and not ok", bad, out, ok)
		}
	}
}

// FuzzParseTaken: whatever a peer (or anyone who can publish on the
// channel) sends, parsing neither panics nor returns a token count a
// bucket could not take.
func FuzzParseTaken(f *testing.F) {
	f.Add("192.0.2.1 1 3\n2001:db8:: 0 7")
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {
		out, _ := parseTaken(s)
		for _, r := range out {
			if !r.Src.IsValid() || r.N <= 0 || int(r.Kind) >= policy.RateKinds {
				t.Fatalf("parseTaken(%q) gave %+v", s, r)
			}
		}
	})
}

// FuzzAddCount: a node's counts hash as anyone may have written it.
func FuzzAddCount(f *testing.F) {
	f.Add("u:alice", "2")
	f.Add("i:2001:db8::", "1")
	f.Add("total", "-1")
	f.Fuzz(func(t *testing.T, field, value string) {
		sum := &policy.Counts{Trunks: map[string]int{}, Users: map[string]int{}, IPs: map[netip.Addr]int{}}
		if addCount(sum, field, value) {
			n := sum.Total
			for _, m := range []map[string]int{sum.Trunks, sum.Users} {
				for _, v := range m {
					n += v
				}
			}
			for _, v := range sum.IPs {
				n += v
			}
			if n < 0 {
				t.Fatalf("addCount(%q, %q) made a negative count", field, value)
			}
		}
	})
}
