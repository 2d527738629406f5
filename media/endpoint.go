package media

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/pion/sdp/v3"
)

// remote is what one side's SDP says about one m-line's transport.
type remote struct {
	rtp, rtcp netip.AddrPort // invalid: unknown (hold, or a host name)
	hold      bool           // c=0.0.0.0: the side wants nothing sent to it
}

// endpoint is the SBC's termination of one m-line toward one side: the
// address that side sends to and receives from. The plain RTP endpoint is
// rtpEndpoint; the WebRTC one (ICE-lite, DTLS-SRTP, rtcp-mux, one port)
// will implement the same methods, so a stream pairs any two kinds.
//
// describe and learn are signaling calls, made under Session.mu. sendRTP
// and sendRTCP are called by the other endpoint's readers for every packet:
// they must not allocate, block on a lock, or log.
type endpoint interface {
	// describe rewrites md, an m-line as the other side sent it, into the
	// m-line this side must see: its port, proto and transport attributes.
	describe(md *sdp.MediaDescription)
	// learn takes the transport this side announced in its own SDP.
	learn(r remote)
	// sendRTP and sendRTCP write one packet toward this side and report
	// whether it left.
	sendRTP(pkt []byte) bool
	sendRTCP(pkt []byte) bool
	// start begins reading from this side; packets go to `to`, counted in c.
	// Every goroutine it starts is tracked by wg and returns after close.
	start(to endpoint, c *flowCounters, wg *sync.WaitGroup)
	// close stops reading and sending; release then hands the ports back.
	// release must follow close and the end of the readers.
	close()
	release()
}

// rtpEndpoint is plain RTP/AVP(F): an even RTP port and the RTCP port
// above it, with symmetric RTP latching on each.
type rtpEndpoint struct {
	pair      *pair
	rtp, rtcp *sock
}

var _ endpoint = (*rtpEndpoint)(nil)

func newRTPEndpoint(pool *portPool, log *slog.Logger) (*rtpEndpoint, error) {
	pr, err := pool.alloc()
	if err != nil {
		return nil, err
	}
	return &rtpEndpoint{
		pair: pr,
		rtp:  newSock(pr.rtp, pr.port, log),
		rtcp: newSock(pr.rtcp, pr.port+1, log),
	}, nil
}

// describe puts the SBC's RTP port on the m-line. The proto stays the
// RTP/AVP or RTP/AVPF the other side used; RTCP is implicitly on port+1,
// which is why no a=rtcp is written.
func (e *rtpEndpoint) describe(md *sdp.MediaDescription) {
	md.MediaName.Port = sdp.RangedPort{Value: e.pair.port}
}

func (e *rtpEndpoint) learn(r remote) {
	e.rtp.learn(r.rtp, r.hold)
	e.rtcp.learn(r.rtcp, r.hold)
}

func (e *rtpEndpoint) sendRTP(pkt []byte) bool  { return e.rtp.send(pkt) }
func (e *rtpEndpoint) sendRTCP(pkt []byte) bool { return e.rtcp.send(pkt) }

func (e *rtpEndpoint) start(to endpoint, c *flowCounters, wg *sync.WaitGroup) {
	for _, r := range []*reader{{in: e.rtp, to: to, c: c}, {in: e.rtcp, to: to, c: c, rtcp: true}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.run()
		}()
	}
}

func (e *rtpEndpoint) close()   { e.pair.closeSockets() }
func (e *rtpEndpoint) release() { e.pair.release() }

// stream is one relayed m-line: an endpoint facing each side and the
// counters of both directions.
type stream struct {
	ends  [2]endpoint     // ends[SideA] faces side A
	flows [2]flowCounters // flows[SideA] counts A→B
	wg    sync.WaitGroup  // the readers of both endpoints
	once  sync.Once
}

// newStream allocates both endpoints and starts relaying between them.
// Nothing is sent until a side's address is learned or latched.
func newStream(pool *portPool, log *slog.Logger) (*stream, error) {
	a, err := newRTPEndpoint(pool, log.With("side", SideA.String()))
	if err != nil {
		return nil, fmt.Errorf("open side A endpoint: %w", err)
	}
	b, err := newRTPEndpoint(pool, log.With("side", SideB.String()))
	if err != nil {
		a.close()
		a.release()
		return nil, fmt.Errorf("open side B endpoint: %w", err)
	}
	st := &stream{ends: [2]endpoint{a, b}}
	a.start(b, &st.flows[SideA], &st.wg)
	b.start(a, &st.flows[SideB], &st.wg)
	return st, nil
}

// close stops the relay, waits for its readers and releases its ports to
// quarantine. It is idempotent.
func (st *stream) close() {
	st.once.Do(func() {
		for _, e := range st.ends {
			e.close()
		}
		st.wg.Wait()
		for _, e := range st.ends {
			e.release()
		}
	})
}

// stats returns the stream's counters; received is RTP accepted from
// either side (the liveness signal of the timeout).
func (st *stream) stats() (s Stats, received uint64) {
	s.AtoB = st.flows[SideA].snapshot()
	s.BtoA = st.flows[SideB].snapshot()
	return s, st.flows[SideA].received.Load() + st.flows[SideB].received.Load()
}
