package kamailio

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/test/redistest"
	"github.com/sbc-project/sbc/test/sipptest"
)

// The shipped node_ttl and heartbeat of cluster-behind-kamailio.yaml.
const (
	clNodeTTL   = 3 * time.Second
	clHeartbeat = time.Second
)

// TestClusterBehindDispatcher: two SBC processes running the shipped
// cluster-behind-kamailio.yaml, one cluster in a real redis-server, behind
// Kamailio running the shipped dispatcher.cfg. A SIP phone (SIPp)
// registers through the LB and lands on one node; two calls from a SIPp
// carrier through the LB go round robin, one to each node: the one
// reaching the other node crosses the cluster's internal hop. Both carry
// audio both ways; each node's CDRs name it.
//
// Then the node holding the phone dies (SIGKILL). Its peer drops it from
// the cluster within node_ttl; a call for the phone before it
// re-registers gets 480 and is not forked to the dead node; the phone's
// re-REGISTER lands on the live node and the next call reaches it, with
// nothing sent to the dead node's addresses. Last, the node comes back:
// the phone's next REGISTER returns to it, and each call rings the phone
// once although both nodes hold a binding of it.
func TestClusterBehindDispatcher(t *testing.T) {
	sipptest.Require(t)
	needKamailio(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	r := redistest.Start(t, clRedisIP)
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte(clUser+":"+clUser+"-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lb := netip.AddrPortFrom(netip.MustParseAddr(clLBIP), uint16(freePort(t, clLBIP)))
	nodes := []*clusterNode{newClusterNode(t, "sbc-1", clNode1IP), newClusterNode(t, "sbc-2", clNode2IP)}
	for _, n := range nodes {
		n.start(t, lb, r.Addr, users)
	}
	k := clusterLB(t, lb, nodes...)
	waitFor(t, "the LB's probes answered by both nodes", 15*time.Second, func() bool {
		return nodes[0].watch.answered.Load() > 0 && nodes[1].watch.answered.Load() > 0
	})
	waitFor(t, "both nodes active in the cluster", 10*time.Second, func() bool {
		return nodes[0].peers(t) == "sbc-1/active,sbc-2/active" && nodes[1].peers(t) == "sbc-1/active,sbc-2/active"
	})
	phonePort, phoneMedia := freePort(t, clPhoneIP), evenFreePort(t, clPhoneIP)
	phone := startPhone(ctx, t, lb, phonePort, phoneMedia)
	home := holder(t, r, nodes...)
	other := nodes[0]
	if home == other {
		other = nodes[1]
	}
	t.Logf("carol registered through the LB on %s", home.id)

	// Round robin: one call enters at each node.
	for i := range 2 {
		if err := carrierCall(ctx, t, lb, 1500*time.Millisecond).Check(1); err != nil {
			t.Fatalf("carrier call %d through the LB: %v\nkamailio:\n%s", i+1, err, tailString(k.Log(), 4000))
		}
	}
	waitFor(t, "the records of both calls", 10*time.Second, func() bool {
		return len(home.answered(t)) == 2 && len(other.answered(t)) == 1
	})
	// The call entering at the other node: its record (from the LB, to the
	// registered user) and the home node's (from the other node's internal
	// hop), each with audio both ways.
	in := other.answered(t)[0]
	if !strings.HasPrefix(in.SrcAddr, clLBIP+":") || in.Trunk != "registered" {
		t.Errorf("%s's record: from %s to %q; want the LB's call to the registered user", other.id, in.SrcAddr, in.Trunk)
	}
	wantMedia(t, other.id+"'s call", in)
	hops := 0
	for _, rec := range home.answered(t) {
		wantMedia(t, home.id+"'s call from "+rec.SrcAddr, rec)
		if rec.ATransport == "tcp" && strings.Contains(rec.FromURI, "@"+other.ip) {
			hops++
		}
	}
	if hops != 1 {
		t.Errorf("%s has %d records of calls from %s's internal hop, want 1: %+v", home.id, hops, other.id, home.answered(t))
	}

	phone, trap := takeover(ctx, t, lb, r, home, other, phone, phonePort, phoneMedia)
	comeBack(ctx, t, k, lb, r, home, other, trap, phone, phonePort, phoneMedia)
}

// takeover kills home, the node holding the phone's binding, and checks
// other takes over.
func takeover(ctx context.Context, t *testing.T, lb netip.AddrPort, r *redistest.Server, home, other *clusterNode,
	phone *sipptest.Proc, phonePort, phoneMedia int) (*sipptest.Proc, *deadTrap) {
	t.Helper()
	killed := time.Now()
	home.proc.Kill()
	trap := newDeadTrap(t, home)
	waitFor(t, other.id+" dropping "+home.id, clNodeTTL+clHeartbeat+5*time.Second, func() bool {
		return other.peers(t) == other.id+"/active"
	})
	dropped := time.Since(killed)
	if dropped > clNodeTTL+clHeartbeat {
		t.Errorf("%s dropped %s %v after its death, want within node_ttl %v (+ a heartbeat)", other.id, home.id, dropped, clNodeTTL)
	}
	// Before the phone re-registers: no binding on a live node.
	before := len(other.proc.Records(t))
	noAnswer := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("no_answer_uac.xml"),
		Remote: lb.String(), LocalIP: clCarrierIP, Timeout: 20 * time.Second, Args: []string{"-s", clUser}})
	if err := noAnswer.Wait().Check(1); err != nil {
		t.Errorf("a call for the phone before it re-registered: %v", err)
	}
	waitFor(t, other.id+"'s record of the unanswered call", 10*time.Second, func() bool {
		return len(other.proc.Records(t)) > before
	})
	if rec := other.proc.Records(t)[before]; rec.SIPCode != 480 {
		t.Errorf("the call before the re-REGISTER was answered %d, want 480 (no binding on a live node): %+v", rec.SIPCode, rec)
	}

	// The phone re-registers, from the same address and port.
	phone.Stop()
	phone = startPhone(ctx, t, lb, phonePort, phoneMedia)
	if got := holder(t, r, other); got != other {
		t.Fatalf("carol re-registered on %v", got)
	}
	reregistered := time.Since(killed)
	sentToDead := trap.requests.Load()
	if err := carrierCall(ctx, t, lb, 1500*time.Millisecond).Check(1); err != nil {
		t.Fatalf("a call for the phone after it re-registered on %s: %v", other.id, err)
	}
	answered := time.Since(killed)
	waitFor(t, other.id+"'s record of the call", 10*time.Second, func() bool { return len(other.answered(t)) == 2 })
	rec := other.answered(t)[1]
	wantMedia(t, "the call after the takeover", rec)
	if n := trap.conns.Load(); n != 0 {
		t.Errorf("%d connections to the dead node's internal address after it left the cluster", n)
	}
	if n := trap.requests.Load() - sentToDead; n != 0 {
		t.Errorf("the LB sent %d requests to the dead node during the call after the takeover", n)
	}
	t.Logf("takeover after %s's death: out of the cluster after %v, phone re-registered on %s after %v (requests the LB sent the dead node meanwhile: %d), call answered after %v",
		home.id, dropped.Round(time.Millisecond), other.id, reregistered.Round(time.Millisecond), sentToDead, answered.Round(time.Millisecond))
	return phone, trap
}

// comeBack restarts home (same node id, same addresses). The phone's
// re-REGISTER goes back to it (the LB hashes its To), while the binding it
// left on other lives on: each call for the phone, entering at either
// node, must ring it once, where it registered last. Before that, the
// binding home held before it died (still in Redis, unknown to the new
// process) is not rung either.
func comeBack(ctx context.Context, t *testing.T, k *kamailioProc, lb netip.AddrPort, r *redistest.Server, home, other *clusterNode,
	trap *deadTrap, phone *sipptest.Proc, phonePort, phoneMedia int) {
	t.Helper()
	trap.close()
	home.start(t, lb, r.Addr, home.users)
	waitFor(t, "the LB's probes answered by "+home.id+" again", 15*time.Second, func() bool { return home.watch.answered.Load() > 0 })
	waitFor(t, other.id+" seeing "+home.id+" back", 10*time.Second, func() bool { return other.peers(t) == "sbc-1/active,sbc-2/active" })
	toPhone := func() int {
		n := 0
		for _, line := range strings.Split(k.Log(), "\n") {
			if strings.Contains(line, "INVITE sip:") && strings.Contains(line, "from SBC node") {
				n++
			}
		}
		return n
	}
	ringsOnce := func(what string) {
		t.Helper()
		before := toPhone()
		if err := carrierCall(ctx, t, lb, 500*time.Millisecond).Check(1); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n := toPhone() - before; n != 1 {
			t.Errorf("%s: the phone was sent %d INVITEs, want 1", what, n)
		}
	}
	ringsOnce("a call with the phone's binding before the crash still in Redis")
	// The binding home held before it died expires later than a new one
	// would: its TTL grows when the phone registers there again.
	ttl := func(n *clusterNode) int {
		reply, _ := r.Do("PTTL", "sbc:reg:"+clAOR+":"+n.id)
		ms, _ := strconv.Atoi(strings.TrimPrefix(reply, ":"))
		return ms
	}
	stale := ttl(home)
	if stale <= 0 {
		t.Fatalf("the binding %s held before it died is not in Redis (PTTL %d)", home.id, stale)
	}
	phone.Stop()
	startPhone(ctx, t, lb, phonePort, phoneMedia)
	waitFor(t, "the phone registered again on "+home.id+", its binding on "+other.id+" still there", 20*time.Second, func() bool {
		return ttl(home) > stale+2000 && ttl(other) > 0
	})
	for i := range 2 { // round robin: one call enters at each node
		ringsOnce(fmt.Sprintf("call %d with the phone registered on both nodes", i+1))
	}
}
