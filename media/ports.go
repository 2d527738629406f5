package media

import (
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
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
}

// pickProbes is how many pairs alloc draws at random before it counts
// the free ones: with at least 1 in 8 pairs free, 32 draws all miss less
// than once in 70 allocations; either way the choice is uniform.
const pickProbes = 32

type pairState struct {
	inUse  bool
	freeAt time.Time // not reusable before this instant
}

// firstPair returns the first even port at or above min.
func firstPair(min int) int { return min + min%2 }

func newPortPool(min, max int, quarantine time.Duration) *portPool {
	first := firstPair(min)
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails (Go 1.24+ crashes instead)
	return &portPool{
		first:      first,
		quarantine: quarantine,
		now:        time.Now,
		pairs:      make([]pairState, (max-first+1)/2),
		rng:        rand.New(rand.NewChaCha8(seed)),
	}
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
func (p *portPool) take(bind func(port int) error) (*pair, error) {
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
		if err := bind(port); err != nil {
			// Someone else holds it: leave it alone for a quarantine period
			// rather than retrying it on every allocation.
			st.freeAt = now.Add(max(p.quarantine, time.Nanosecond))
			continue
		}
		st.inUse = true
		return &pair{port: port, pool: p}, nil
	}
	return nil, fmt.Errorf("allocate port pair in %d-%d: %w", p.first, p.first+2*len(p.pairs)-1, ErrNoPorts)
}

// pick returns a pair that is free at now, each with the same chance:
// first by drawing pairs until one is free, then, if pickProbes draws
// missed, by drawing among the free ones counted. When every pair is in
// use or in quarantine, a pair released at least an eighth of the
// quarantine ago (250 ms by default: the old call's last packets are long
// gone) is taken rather than refusing the call: under a burst of short
// calls the quarantine, not the range, would otherwise cap the call rate
// (2,000 pairs and 2 s hold at most 500 calls/s). Called under p.mu.
func (p *portPool) pick(now time.Time) (int, bool) {
	free := func(i int) bool { st := &p.pairs[i]; return !st.inUse && !now.Before(st.freeAt) }
	for range pickProbes {
		if i := p.rng.IntN(len(p.pairs)); free(i) {
			return i, true
		}
	}
	if i, ok := p.drawAmong(free); ok {
		return i, true
	}
	early := p.quarantine - p.quarantine/8
	return p.drawAmong(func(i int) bool {
		st := &p.pairs[i]
		return !st.inUse && !now.Before(st.freeAt.Add(-early))
	})
}

// drawAmong draws uniformly among the pairs ok accepts. Called under p.mu.
func (p *portPool) drawAmong(ok func(int) bool) (int, bool) {
	n := 0
	for i := range p.pairs {
		if ok(i) {
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	k := p.rng.IntN(n)
	for i := range p.pairs {
		if ok(i) {
			if k == 0 {
				return i, true
			}
			k--
		}
	}
	return 0, false // not reached: k < n pairs
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
	pr.rtcp.Close()
}

// release returns the pair to the pool's quarantine. Call it after the
// sockets are closed and their readers have returned. It is idempotent.
func (pr *pair) release() {
	pr.releaseOne.Do(func() {
		p := pr.pool
		p.mu.Lock()
		defer p.mu.Unlock()
		st := &p.pairs[(pr.port-p.first)/2]
		st.inUse = false
		st.freeAt = p.now().Add(p.quarantine)
	})
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
