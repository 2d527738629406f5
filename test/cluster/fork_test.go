package cluster

import (
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/redistest"
)

// carol's two phones, each registered on another node.
const (
	carolAIP = "127.0.0.22"
	carolBIP = "127.0.0.23"
)

func withCarolPhones(cfg *config.Config) *config.Config {
	cfg.Routes = append(cfg.Routes, config.Route{Name: "carol-phones",
		Match: config.Match{SourceCIDRs: []string{carolAIP + "/32", carolBIP + "/32"}}, Target: config.TargetRegistered})
	return cfg
}

// records keeps the CDRs of a node as it makes them durable.
type records struct {
	node string
	mu   sync.Mutex
	recs []cdr.Record
}

func (r *records) CallStarted(outcome.CallRecord)  {}
func (r *records) CallAnswered(outcome.CallRecord) {}
func (r *records) CallEnded(c outcome.CallRecord) {
	r.mu.Lock()
	r.recs = append(r.recs, cdr.FromCall(c, r.node))
	r.mu.Unlock()
}

// take returns the records kept since the last take.
func (r *records) take() []cdr.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.recs
	r.recs = nil
	return out
}

// TestForkAcrossNodes: carol is registered from two phones, A on node 1
// and B on node 2. The carrier's call for carol comes in at node 3, which
// holds neither binding: it forks to both nodes, and both phones ring. A
// answers first: the carrier gets the call with media both ways through
// nodes 3 and 1, B gets CANCEL (and answers 487), and each node's CDR
// says so (node 3 and node 1 ANSWERED with packets both ways, node 2
// CANCELLED). Then the reverse, with the call coming in at node 1, which
// holds A's binding itself: B, on node 2, answers first and A is
// cancelled by node 1; and A answering a call through node 1, B
// cancelled through node 2. Then both phones answering at once, and the
// carrier giving up while both ring.
func TestForkAcrossNodes(t *testing.T) {
	r := redistest.Start(t, redisIP)
	var nodes []*node
	var recs []*records
	for i := 1; i <= 3; i++ {
		n := startNode(t, withCarolPhones(nodeConfig(t, i, r.Addr, "")))
		rec := &records{node: n.id}
		n.app.Observe(rec)
		nodes, recs = append(nodes, n), append(recs, rec)
	}
	a := newPhone(t, carolAIP, "carol", "carol-secret")
	b := newPhone(t, carolBIP, "carol", "carol-secret")
	a.register(nodes[0].addr(t, "udp"))
	b.register(nodes[1].addr(t, "udp"))
	waitFor(t, "both bindings in Redis and three active nodes", 10*time.Second, func() bool {
		r1, err1 := r.Do("EXISTS", "sbc:reg:carol@example.com:node-1")
		r2, err2 := r.Do("EXISTS", "sbc:reg:carol@example.com:node-2")
		if err1 != nil || err2 != nil || r1 != ":1" || r2 != ":1" {
			return false
		}
		// Each node's view, since calls come in at nodes 3 and 1 (a node
		// routes by the view its status shows).
		for _, n := range nodes {
			if clusterNodes(t, n) != "node-1/active,node-2/active,node-3/active" {
				return false
			}
		}
		return true
	})
	carrier := newPhone(t, carrierIP, "carrier", "")

	t.Run("A on node 1 answers a call through node 3", func(t *testing.T) {
		forkCall(t, nodes, recs, carrier, 3, a, 1, b, 2)
	})
	t.Run("B on node 2 answers a call through node 1", func(t *testing.T) {
		forkCall(t, nodes, recs, carrier, 1, b, 2, a, 1)
	})
	t.Run("A on node 1 answers a call through node 1", func(t *testing.T) {
		forkCall(t, nodes, recs, carrier, 1, a, 1, b, 2)
	})
	t.Run("both answer a call through node 3 at once", func(t *testing.T) {
		crossedAnswers(t, nodes, recs, carrier, a, b)
	})
	t.Run("the carrier gives up while both ring", func(t *testing.T) {
		cancelledWhileRinging(t, nodes, recs, carrier, a, b)
	})
}

// cancelledWhileRinging: the carrier's call for carol through node 3
// rings both phones, then the carrier cancels it: it gets 487, each
// phone gets CANCEL through its node and answers 487, and every node
// records the call CANCELLED.
func cancelledWhileRinging(t *testing.T, nodes []*node, recs []*records, carrier *phone, a, b *phone) {
	c := carrier.dial(nodes[2].addr(t, "udp"), "carol")
	ca, cb := a.next(15*time.Second), b.next(15*time.Second)
	c.cancel()
	if res := c.failed(); res == nil || res.StatusCode() != 487 {
		t.Fatalf("the carrier's cancelled call: %v, want 487", res)
	}
	for _, in := range []*inCall{ca, cb} {
		for what, ch := range map[string]chan struct{}{"cancelled": in.cancelled, "its 487 acknowledged": in.acked} {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s's call not %s", in.p.host, what)
			}
		}
	}
	waitFor(t, "calls over and recorded", 15*time.Second, func() bool {
		for i, n := range nodes {
			recs[i].mu.Lock()
			k := len(recs[i].recs)
			recs[i].mu.Unlock()
			if n.app.Server().ActiveCalls() != 0 || k == 0 {
				return false
			}
		}
		return true
	})
	for _, rec := range recs {
		if got := rec.take(); len(got) != 1 || got[0].Disposition != outcome.Cancelled || got[0].SIPCode != 487 {
			t.Errorf("%s recorded %+v, want one call CANCELLED 487", rec.node, got)
		}
	}
}

// crossedAnswers: the carrier calls carol through node 3 and both phones
// answer at once, each before the CANCEL the other's answer brings could
// reach it. Node 3 takes the first 200 it gets; the other, which crossed
// its CANCEL, it acknowledges and hangs up (RFC 3261 15), so that phone
// gets BYE while the first keeps the call with media both ways.
func crossedAnswers(t *testing.T, nodes []*node, recs []*records, carrier *phone, a, b *phone) {
	done := make(chan *outCall, 1)
	go func() {
		c, res := carrier.call(nodes[2].addr(t, "udp"), "carol")
		if res == nil || res.StatusCode() != 200 {
			t.Errorf("the carrier's call: %v, want 200", res)
		}
		done <- c
	}()
	ca, cb := a.next(15*time.Second), b.next(15*time.Second)
	if !answerAll(ca, cb) {
		t.Fatal("a CANCEL reached a phone before it answered")
	}
	var call *outCall
	select {
	case call = <-done:
	case <-time.After(25 * time.Second):
		t.Fatal("the carrier got no answer")
	}
	var kept, dropped *inCall
	select {
	case <-ca.ended:
		kept, dropped = cb, ca
	case <-cb.ended:
		kept, dropped = ca, cb
	case <-time.After(10 * time.Second):
		t.Fatal("neither answer was hung up")
	}
	select {
	case <-kept.ended:
		t.Fatal("both answers were hung up")
	default:
	}
	waitFor(t, "media both ways with the phone that kept the call", 10*time.Second, func() bool {
		return call.media.received.Load() >= 25 && kept.media.received.Load() >= 25
	})
	call.hangUp()
	select {
	case <-kept.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not end")
	}
	waitFor(t, "calls over and recorded", 15*time.Second, func() bool {
		for i, n := range nodes {
			recs[i].mu.Lock()
			k := len(recs[i].recs)
			recs[i].mu.Unlock()
			if n.app.Server().ActiveCalls() != 0 || k == 0 {
				return false
			}
		}
		return true
	})
	// The dropped answer crossed a CANCEL on node 3 (its node relayed the
	// 200: ANSWERED there, then BYE) or on its own node (which had
	// answered node 3 487 already: CANCELLED there, and it hung up the
	// phone's 200 itself).
	droppedNode := map[*inCall]string{ca: "node-1", cb: "node-2"}[dropped]
	for _, rec := range recs {
		got := rec.take()
		ok := len(got) == 1 && got[0].Disposition == outcome.Answered
		if rec.node == droppedNode {
			ok = len(got) == 1 && (got[0].Disposition == outcome.Answered || got[0].Disposition == outcome.Cancelled)
		}
		if !ok {
			t.Errorf("%s recorded %+v, want one call, answered (or, for the hung-up answer, cancelled)", rec.node, got)
		} else {
			t.Logf("%s: %s %d", rec.node, got[0].Disposition, got[0].SIPCode)
		}
	}
	if dropped.media.received.Load() > 25 {
		t.Errorf("the hung-up phone got %d packets of the call", dropped.media.received.Load())
	}
}

// forkCall: the carrier calls carol through node entry (1-based); both
// phones ring, winner (registered on node win) answers, loser (on node
// lose) is cancelled. It checks the media, the calls each node lists
// while the call is up and the CDRs once it is over.
func forkCall(t *testing.T, nodes []*node, recs []*records, carrier *phone, entry int, winner *phone, win int, loser *phone, lose int) {
	type result struct {
		c   *outCall
		res sip.Response
	}
	done := make(chan result, 1)
	go func() {
		c, res := carrier.call(nodes[entry-1].addr(t, "udp"), "carol")
		done <- result{c, res}
	}()
	w := winner.next(15 * time.Second)
	l := loser.next(15 * time.Second)
	if !w.answer() {
		t.Fatal("the winner's call was cancelled before it answered")
	}
	var call result
	select {
	case call = <-done:
	case <-time.After(25 * time.Second):
		t.Fatal("the carrier got no answer")
	}
	if call.res == nil || call.res.StatusCode() != 200 {
		t.Fatalf("the carrier's call: %v, want 200", call.res)
	}
	select {
	case <-l.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the other phone was not cancelled")
	}
	select {
	case <-l.acked: // its 487 was taken
	case <-time.After(10 * time.Second):
		t.Fatal("the other phone's 487 was not acknowledged")
	}
	waitFor(t, "media both ways through the nodes", 10*time.Second, func() bool {
		return call.c.media.received.Load() >= 25 && w.media.received.Load() >= 25
	})
	waitFor(t, "the cancelled fork's node idle, the call listed on its two nodes", 10*time.Second, func() bool {
		calls := clusterCalls(t, nodes[0])
		want := map[string]string{nodes[entry-1].id: "carrier-to-web"}
		if win != entry {
			want[nodes[win-1].id] = "cluster"
		}
		if len(calls) != len(want) || (lose != entry && nodes[lose-1].app.Server().ActiveCalls() != 0) {
			return false
		}
		for k, v := range want {
			if calls[k] != v {
				return false
			}
		}
		return true
	})
	call.c.hangUp()
	select {
	case <-w.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the winner's call did not end")
	}
	checkForkRecords(t, nodes, recs, entry, win, lose)
}

// checkForkRecords waits for every node's calls to end and checks the
// CDRs of one forked call: ANSWERED with packets both ways where it came
// in and where it was answered, CANCELLED on the losing fork's node when
// that is another node.
func checkForkRecords(t *testing.T, nodes []*node, recs []*records, entry, win, lose int) {
	t.Helper()
	waitFor(t, "calls over and recorded", 15*time.Second, func() bool {
		for _, n := range nodes {
			if n.app.Server().ActiveCalls() != 0 {
				return false
			}
		}
		for _, i := range []int{entry, win, lose} {
			recs[i-1].mu.Lock()
			n := len(recs[i-1].recs)
			recs[i-1].mu.Unlock()
			if n == 0 {
				return false
			}
		}
		return true
	})
	for i, rec := range recs {
		got := rec.take()
		want := ""
		switch i + 1 {
		case entry, win:
			want = outcome.Answered
		case lose:
			want = outcome.Cancelled
		}
		if want == "" {
			if len(got) != 0 {
				t.Errorf("%s, which had no part in the call, recorded %+v", rec.node, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%s recorded %d calls, want 1: %+v", rec.node, len(got), got)
			continue
		}
		g := got[0]
		if g.Disposition != want || g.NodeID != rec.node || g.Trunk != "registered" {
			t.Errorf("%s's record: %s on %s trunk %q, want %s on %s to a registered user", rec.node, g.Disposition, g.NodeID, g.Trunk, want, rec.node)
		}
		if want == outcome.Cancelled && g.SIPCode != 487 {
			t.Errorf("%s's record: final answer %d, want 487", rec.node, g.SIPCode)
		}
		if want == outcome.Answered && (g.AToBPackets < 20 || g.BToAPackets < 20) {
			t.Errorf("%s's record: packets %d/%d, want media both ways", rec.node, g.AToBPackets, g.BToAPackets)
		}
	}
}
