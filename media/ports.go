package media

import (
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// portPool hands out RTP/RTCP port pairs (even port, even port + 1) from a
// range, binds them, and quarantines released pairs before reuse. It is
// safe for concurrent use; it is touched only at call setup and teardown.
//
// Each allocation picks a free pair at random, with a cryptographically
// strong generator: a port handed out in order tells an attacker the
// next call's, and junk sent there before the call's media used to take
// the port (latch.go now refuses it, but a guessable port is still the
// first step of every attack on the media).
//
// A port number is taken in every family at once: a dual-stack SBC binds a
// pair on the address of the family the side uses, and the pool keeps one
// state per number.
type portPool struct {
	first      int // first even port of the range
	quarantine time.Duration
	now        func() time.Time // time.Now; tests move it

	mu    sync.Mutex
	pairs []pairState // pairs[i] is port first+2i and first+2i+1
	rng   *rand.Rand  // ChaCha8 seeded from crypto/rand

	// Every pair not in use is in exactly one of these, so that a pick
	// costs the same with 10 pairs free or 2,000 (a scan of the range per
	// call was 4 % of the CPU at 800 calls/s, when short calls keep most
	// pairs in quarantine).
	free  []int32 // free now, in no order; pairs[i].slot is i's index here
	quar  []int32 // in quarantine, by freeAt: quar[qhead:] is the queue
	qhead int

	closed bool // closeKept ran: sockets given back are closed, not kept
	reused int  // pairs handed out with kept sockets (tests)
}

type pairState struct {
	inUse  bool
	freeAt time.Time // not reusable before this instant
	slot   int32     // index in portPool.free, or -1 when not there
	// kept are the pair's sockets from its last uses, still bound, one
	// pair of them per address (a dual-stack SBC binds a port number on
	// either family); nil when none.
	kept []keptConns
}

// keptConns is an RTP/RTCP socket pair bound on ip, parked (its loop
// reads it and drops what comes), that the pool hands out again instead
// of binding new ones: a socket, a bind, two epoll_ctl and a close per
// socket and per call were 5 % of the SBC's CPU at 800 calls/s.
type keptConns struct {
	ip        netip.Addr
	rtp, rtcp *udpConn
}

// firstPair returns the first even port at or above min.
func firstPair(min int) int { return min + min%2 }

func newPortPool(min, max int, quarantine time.Duration) *portPool {
	first := firstPair(min)
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails (Go 1.24+ crashes instead)
	n := (max - first + 1) / 2
	p := &portPool{
		first:      first,
		quarantine: quarantine,
		now:        time.Now,
		pairs:      make([]pairState, n),
		rng:        rand.New(rand.NewChaCha8(seed)),
		free:       make([]int32, n),
	}
	for i := range p.pairs {
		p.pairs[i].slot = int32(i)
		p.free[i] = int32(i)
	}
	return p
}

// pair is one reserved RTP/RTCP port pair, with its net sockets when
// alloc bound them.
type pair struct {
	port       int          // the RTP port; RTCP is port+1
	rtp, rtcp  *net.UDPConn // nil when take's caller holds the sockets
	pool       *portPool
	releaseOne sync.Once
}

// alloc binds a free pair of net sockets on ip chosen at random (see
// take). The WebRTC side's own port uses it.
func (p *portPool) alloc(ip netip.Addr) (*pair, error) {
	var rtp, rtcp *net.UDPConn
	pr, err := p.take(func(port int) error {
		var err error
		rtp, rtcp, err = bindPair(ip, port)
		return err
	})
	if err != nil {
		return nil, err
	}
	pr.rtp, pr.rtcp = rtp, rtcp
	return pr, nil
}

// take reserves a free pair chosen at random and has bind open its
// sockets, skipping pairs in use, in quarantine, or that bind fails on
// (taken by another process). The pair it returns has no net sockets:
// bind keeps what it opened. It returns an error wrapping ErrNoPorts when
// none is left.
func (p *portPool) take(bind func(port int) error) (*pair, error) { return p.takeWith(bind, nil) }

// takeWith is take, but a pair for which reuse reports true is handed
// out without bind: reuse found sockets kept for it. bind and reuse (nil:
// none) run under p.mu.
func (p *portPool) takeWith(bind func(port int) error, reuse func(st *pairState) bool) (*pair, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	// Each failed bind takes one pair out of the choice; the bound keeps a
	// zero quarantine from offering the same pair forever.
	for range len(p.pairs) {
		i, ok := p.pick(now)
		if !ok {
			break
		}
		st := &p.pairs[i]
		port := p.first + 2*i
		if reuse != nil && reuse(st) {
			st.inUse = true
			return &pair{port: port, pool: p}, nil
		}
		p.dropKept(st) // bind needs the port free
		if err := bind(port); err != nil {
			// Someone else holds it: leave it alone for a quarantine period
			// rather than retrying it on every allocation.
			p.enqueue(i, now)
			continue
		}
		st.inUse = true
		return &pair{port: port, pool: p}, nil
	}
	return nil, fmt.Errorf("allocate port pair in %d-%d: %w", p.first, p.first+2*len(p.pairs)-1, ErrNoPorts)
}

// takeKept reserves a free pair chosen at random, as take does, and
// returns its RTP and RTCP sockets on ip: those kept from its last use on
// ip, emptied of whatever arrived since (reuse), or else new ones from
// open. The latch and reader state of a call lives in the endpoint that
// wraps the sockets, never in them, so a kept socket carries nothing of
// its last call but its port.
func (p *portPool) takeKept(ip netip.Addr, open func(port int) (rtp, rtcp *udpConn, err error)) (*pair, *udpConn, *udpConn, error) {
	var rtp, rtcp *udpConn
	pr, err := p.takeWith(func(port int) error {
		var err error
		rtp, rtcp, err = open(port)
		return err
	}, func(st *pairState) bool {
		for k, kc := range st.kept {
			if kc.ip != ip {
				continue
			}
			st.kept = append(st.kept[:k], st.kept[k+1:]...)
			if kc.rtp.reuse() && kc.rtcp.reuse() {
				rtp, rtcp = kc.rtp, kc.rtcp
				p.reused++
				return true
			}
			// New sockets instead (once the loop has let go of these
			// and the port is free again: until then bind fails, and
			// the pair waits in quarantine).
			kc.rtp.close()
			kc.rtcp.close()
			return false
		}
		return false
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return pr, rtp, rtcp, nil
}

// dropKept closes the kept sockets of st. Called under p.mu.
func (p *portPool) dropKept(st *pairState) {
	for _, kc := range st.kept {
		kc.rtp.close()
		kc.rtcp.close()
	}
	st.kept = nil
}

// pick takes a pair that is free at now out of the free set, each with
// the same chance. When every pair is in use or in quarantine, a pair
// released at least an eighth of the quarantine ago (250 ms by default:
// the old call's last packets are long gone) is taken, again at random
// among those, rather than refusing the call: under a burst of short
// calls the quarantine, not the range, would otherwise cap the call rate
// (2,000 pairs and 2 s hold at most 500 calls/s). The caller marks the
// pair in use or puts it back in quarantine. Called under p.mu.
func (p *portPool) pick(now time.Time) (int, bool) {
	// Pairs whose quarantine is over join the free set.
	for p.qhead < len(p.quar) {
		i := p.quar[p.qhead]
		if now.Before(p.pairs[i].freeAt) {
			break
		}
		p.qhead++
		p.pairs[i].slot = int32(len(p.free))
		p.free = append(p.free, i)
	}
	p.compactQueue()
	if n := len(p.free); n > 0 {
		k := p.rng.IntN(n)
		i := p.free[k]
		last := p.free[n-1]
		p.free[k] = last
		p.pairs[last].slot = int32(k)
		p.free = p.free[:n-1]
		p.pairs[i].slot = -1
		return int(i), true
	}
	// The queue is ordered by freeAt, so the pairs eligible early are a
	// prefix of it. Taking one from inside the prefix moves the head
	// there: an earlier freeAt among later ones, inside a prefix that
	// only grows with time, so the search below stays right.
	q := p.quar[p.qhead:]
	early := now.Add(p.quarantine - p.quarantine/8)
	m := sort.Search(len(q), func(j int) bool { return p.pairs[q[j]].freeAt.After(early) })
	if m == 0 {
		return 0, false
	}
	j := p.rng.IntN(m)
	i := q[j]
	q[j] = q[0]
	p.qhead++
	return int(i), true
}

// enqueue puts pair i, out of the free set and not in use, into
// quarantine until now + the quarantine (at least a nanosecond, so a
// zero quarantine still skips a pair a bind just failed on once).
// Called under p.mu.
func (p *portPool) enqueue(i int, now time.Time) {
	st := &p.pairs[i]
	st.inUse = false
	st.freeAt = now.Add(max(p.quarantine, time.Nanosecond))
	st.slot = -1
	p.quar = append(p.quar, int32(i))
}

// compactQueue drops the queue's consumed head once it is most of the
// slice, so the slice does not grow without bound. Called under p.mu.
func (p *portPool) compactQueue() {
	if p.qhead > 0 && p.qhead >= len(p.quar)/2 {
		n := copy(p.quar, p.quar[p.qhead:])
		p.quar = p.quar[:n]
		p.qhead = 0
	}
}

// bindPair opens the RTP and RTCP sockets of one pair on ip. An IPv6
// socket is IPv6 only: the SBC's IPv4 side has its own address.
func bindPair(ip netip.Addr, port int) (rtp, rtcp *net.UDPConn, err error) {
	network := "udp4"
	if ip.Is6() {
		network = "udp6"
	}
	rtp, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
	if err != nil {
		return nil, nil, fmt.Errorf("bind rtp port %d: %w", port, err)
	}
	rtcp, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port+1))))
	if err != nil {
		rtp.Close()
		return nil, nil, fmt.Errorf("bind rtcp port %d: %w", port+1, err)
	}
	return rtp, rtcp, nil
}

// closeSockets closes both sockets; readers blocked on them return.
func (pr *pair) closeSockets() {
	pr.rtp.Close()
	if pr.rtcp != nil { // a restored WebRTC port has no RTCP socket
		pr.rtcp.Close()
	}
}

// release returns the pair to the pool's quarantine. Call it after the
// sockets are closed and their readers have returned. It is idempotent.
func (pr *pair) release() {
	if pr.pool == nil { // restored on a dead node's address: not the pool's
		return
	}
	pr.releaseOne.Do(func() {
		p := pr.pool
		p.mu.Lock()
		defer p.mu.Unlock()
		p.enqueue((pr.port-p.first)/2, p.now())
	})
}

// releaseKeeping returns the pair to the pool's quarantine, as release
// does, with its sockets rtp and rtcp on ip, parked (udpConn.park): the
// pair's next use takes them instead of binding new
// ones. Once the pool is closed they are closed instead. It is
// idempotent.
func (pr *pair) releaseKeeping(ip netip.Addr, rtp, rtcp *udpConn) {
	if pr.pool == nil { // restored on a dead node's address: not the pool's
		rtp.close()
		rtcp.close()
		return
	}
	pr.releaseOne.Do(func() {
		p := pr.pool
		p.mu.Lock()
		defer p.mu.Unlock()
		i := (pr.port - p.first) / 2
		if p.closed {
			rtp.close()
			rtcp.close()
		} else {
			st := &p.pairs[i]
			st.kept = append(st.kept, keptConns{ip: ip, rtp: rtp, rtcp: rtcp})
		}
		p.enqueue(i, p.now())
	})
}

// closeKept closes every kept socket; sockets given back later are
// closed at once. The Manager calls it when it closes.
func (p *portPool) closeKept() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for i := range p.pairs {
		p.dropKept(&p.pairs[i])
	}
}

// inUse returns how many pairs are allocated (for tests and metrics).
func (p *portPool) inUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, st := range p.pairs {
		if st.inUse {
			n++
		}
	}
	return n
}
