package cluster

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sbc-project/sbc/policy"
	"github.com/sbc-project/sbc/test/redistest"
)

// Call rates of the test: 5 calls a second after a burst of 2, per user
// and per trunk.
const (
	cpsRate  = 5.0
	cpsBurst = 2
)

func cpsAdmission() *policy.Admission {
	b := policy.Bucket{Rate: cpsRate, Burst: cpsBurst}
	return policy.NewAdmission(policy.AdmissionSpec{UserCPS: b, TrunkCPS: b})
}

// startCallRating runs node id sharing its admission stage's call rates.
func startCallRating(t *testing.T, id, redisAddr string) *policy.Admission {
	t.Helper()
	adm := cpsAdmission()
	n := New(testSpec(id, redisAddr, "127.0.46.11:5070"), Local{}, nil)
	s := ShareRates(n, rateChain(t), 0)
	s.ShareCalls(adm)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { s.Run(ctx); done <- struct{}{} }()
	go func() { n.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done; _ = n.Close() })
	waitFor(t, id+" joined", n.RedisUp)
	return adm
}

// placeCalls places count calls, one every 20 ms, on the admission
// stages in turn (each ends at once: only its rate counts), as made by
// mk, and returns how many were admitted and how long it took.
func placeCalls(adms []*policy.Admission, count int, mk func() *policy.Request) (passed int, took time.Duration) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := range count {
		if i > 0 {
			<-tick.C
		}
		r := mk()
		if adms[i%len(adms)].Check(context.Background(), r).Action == policy.Continue {
			passed++
			r.Admitted()
		}
	}
	return passed, time.Since(start)
}

// A user's, or a trunk's, calls spread over three nodes are held to one
// call rate (RateShare.ShareCalls): what passes stays within the stated
// bound, N × burst + rate × T + (N − 1) × rate × interval, where three
// nodes limiting alone pass about three times one node's share.
func TestCallRatesLimitedAsOne(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	var shared []*policy.Admission
	for _, id := range []string{"n1", "n2", "n3"} {
		shared = append(shared, startCallRating(t, id, r.Addr))
	}
	waitFor(t, "subscriptions", func() bool {
		reply, err := r.Do("EVAL", "return redis.call('PUBSUB','NUMSUB',KEYS[1])[2]", "1", "test:cps")
		return err == nil && reply == ":3"
	})
	src := netip.MustParseAddrPort("192.0.2.60:5060")
	for _, tc := range []struct {
		name string
		mk   func() *policy.Request
	}{
		{"user", func() *policy.Request {
			return &policy.Request{User: "alice", Target: policy.TargetRegistered, Src: src}
		}},
		{"trunk", func() *policy.Request {
			return &policy.Request{Target: policy.TargetTrunks, Trunk: "pbx", Src: src}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, interval := 3.0, DefaultCountsInterval.Seconds()
			bound := func(took time.Duration) float64 {
				return n*cpsBurst + cpsRate*took.Seconds() + (n-1)*cpsRate*interval
			}
			passed, took := placeCalls(shared, 75, tc.mk)
			t.Logf("shared: %d of 75 admitted in %s; bound %.1f", passed, took.Round(time.Millisecond), bound(took))
			if float64(passed) > bound(took)+1 {
				t.Errorf("%d calls admitted across three nodes in %s, over the bound %.1f", passed, took, bound(took))
			}
			if float64(passed) < cpsRate*took.Seconds()*0.8 {
				t.Errorf("only %d admitted in %s: sharing refuses more than one node would", passed, took)
			}
			alone := []*policy.Admission{cpsAdmission(), cpsAdmission(), cpsAdmission()}
			ctrl, ctook := placeCalls(alone, 75, tc.mk)
			t.Logf("alone: %d of 75 admitted in %s; the bound would be %.1f", ctrl, ctook.Round(time.Millisecond), bound(ctook))
			if float64(ctrl) <= bound(ctook)+1 {
				t.Errorf("three nodes limiting alone admitted %d, within the bound %.1f: the calls do not tell sharing apart", ctrl, bound(ctook))
			}
		})
	}
}

func TestParseCPS(t *testing.T) {
	lines := cpsLines([]policy.CPSTaken{{Key: "alice smith", N: 3}, {Trunk: true, Key: "pbx", N: 1}})
	got, ok := parseCPS(lines[0] + "\n" + lines[1])
	if !ok || len(got) != 2 || got[0] != (policy.CPSTaken{Key: "alice smith", N: 3}) || got[1] != (policy.CPSTaken{Trunk: true, Key: "pbx", N: 1}) {
		t.Fatalf("parseCPS(%q): %+v %v", lines, got, ok)
	}
	for _, bad := range []string{"u 1", "x 1 alice", "u -2 alice", "u many alice", "t 1 %zz", "u 1 alice bob"} {
		if out, ok := parseCPS(bad + "\nu 1 bob"); ok || len(out) != 1 || out[0].Key != "bob" {
			t.Errorf("parseCPS(%q): %+v %v, want the good line and not ok", bad, out, ok)
		}
	}
}

// FuzzParseCPS: whatever a peer (or anyone who can publish on the
// channel) sends, parsing neither panics nor returns a count or a name a
// bucket could not take.
func FuzzParseCPS(f *testing.F) {
	f.Add("u 3 alice\nt 1 pbx")
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {
		out, _ := parseCPS(s)
		for _, c := range out {
			if c.N <= 0 || c.Key == "" {
				t.Fatalf("parseCPS(%q) gave %+v", s, c)
			}
		}
	})
}
