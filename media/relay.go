package media

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/sbc-project/sbc/media/rtpproc"
)

// maxPacket is the read buffer of one socket. RTP and RTCP senders keep
// datagrams under the path MTU; anything longer is truncated by the kernel.
const maxPacket = 2048

// reader moves packets from one socket facing a side into that side's
// flow, deciding on the way which source the socket takes (latch.go).
// One goroutine at a time calls forward: the socket's poll loop
// (poll_linux.go) or its own goroutine (udpconn_other.go).
type reader struct {
	// The fields read for every packet come first, in one cache line:
	// across hundreds of calls each packet finds its call's state out of
	// the CPU caches (BenchmarkRelaySpread).
	in   *sock
	f    *flow
	sdes *sdesState // e.sdes, so that a packet does not touch e
	// out is the batch of the poll loop reading in, which the flow's
	// sends are queued in; nil: they go at once. Set by the loop.
	out  *sendBatch
	last trail
	// since is when the reader took the socket (monotonic ns): a datagram
	// its loop read earlier is not its call's (udpconn_linux.go).
	since int64
	rtcp  bool         // in is the RTCP socket
	e     *rtpEndpoint // the endpoint in belongs to
	// dec is what decrypting SDES-SRTP takes (open), made when the
	// reader starts on an SDES endpoint; nil on the others, which are
	// most: a reader was 192 bytes with it inline, four a call.
	dec *decryption
}

// decryption is a reader's buffer and headers for SDES-SRTP packets.
type decryption struct {
	buf  []byte
	hdr  rtp.Header
	chdr rtcp.Header
}

// newDecryption is a reader's decryption, its buffer made.
func newDecryption() *decryption { return &decryption{buf: make([]byte, 0, maxPacket)} }

// newReader returns the reader of in, a socket of e, for the flow f.
func newReader(e *rtpEndpoint, in *sock, f *flow) *reader {
	return &reader{in: in, e: e, f: f, sdes: e.sdes, rtcp: in == e.rtcp}
}

// forward hands one packet received from src to the flow, or refuses it.
// It is the per-packet hot path: no allocation, no lock, no logging,
// except when the latch moves.
func (r *reader) forward(pkt []byte, src netip.AddrPort) { r.forwardAt(pkt, src, monotonic()) }

// forwardAt is forward for a packet read at now (monotonic ns): a poll
// loop reads the clock once per batch of packets.
func (r *reader) forwardAt(pkt []byte, src netip.AddrPort, now int64) {
	if r.in.udptl.Load() {
		r.forwardUDPTL(pkt, src, now)
		return
	}
	if p := r.in.dst.Load(); p.latched && p.addr == src {
		r.fromSource(pkt, now)
	} else {
		r.fromStranger(pkt, src, p, now)
	}
}

// fromSource handles a packet from the latched source.
func (r *reader) fromSource(pkt []byte, now int64) {
	if len(pkt) < 8 || pkt[0]>>6 != 2 {
		r.f.c.malformed.Add(1)
		return
	}
	// RTCP multiplexed on the RTP port (RFC 5761) still goes to the far
	// side's RTCP port: the SBC never offers rtcp-mux to a plain RTP side.
	ctl := r.rtcp || isRTCP(pkt)
	if r.sdes != nil {
		out, res := r.open(pkt, ctl)
		switch res {
		case noKeys:
			r.f.c.dropped.Add(1)
			return
		case notAuthentic:
			r.f.c.srtpFailed.Add(1)
			return
		}
		pkt = out
	}
	r.deliver(pkt, ctl, now)
}

// fromStranger handles a packet from any other source: it is refused,
// and counted, unless it is valid media and the latch rules give its
// source the socket.
func (r *reader) fromStranger(pkt []byte, src netip.AddrPort, p *peer, now int64) {
	pkt, ctl, why := r.check(pkt)
	if why != nil {
		r.refuse(why)
		return
	}
	for {
		ev := evidence{follows: r.follows(p, pkt, ctl, src, now), noGrace: r.rtcp, now: now}
		if !p.admits(src, ev) {
			r.refuse(&r.f.c.refusedSource)
			return
		}
		if r.in.latch(p, src) {
			break
		}
		// Signaling changed what it knows of the side: decide again.
		p = r.in.dst.Load()
	}
	if p.latched {
		r.f.c.relatched.Add(1)
	}
	r.last = trail{}
	r.deliver(pkt, ctl, now)
}

func (r *reader) refuse(why *atomic.Uint64) {
	r.f.c.foreign.Add(1)
	why.Add(1)
}

// check decides whether a packet from a stranger is valid media for the
// stream: version 2 RTP with a payload type negotiated for it, or a
// well-formed RTCP compound (only RTCP on the RTCP socket), and on an
// SDES-SRTP socket one that authenticates. It returns the plain packet
// and whether it is RTCP, or the counter of the reason it is not valid.
func (r *reader) check(pkt []byte) (plain []byte, ctl bool, why *atomic.Uint64) {
	c := &r.f.c
	if len(pkt) < 8 || pkt[0]>>6 != 2 {
		return nil, false, &c.refusedJunk
	}
	ctl = isRTCP(pkt)
	if (r.rtcp && !ctl) || (!ctl && len(pkt) < 12) {
		return nil, false, &c.refusedJunk
	}
	if r.sdes != nil {
		// The authentication tag is verified before anything else is
		// believed; pion/srtp commits replay state only after it.
		out, res := r.open(pkt, ctl)
		if res != opened {
			return nil, false, &c.refusedAuth
		}
		pkt = out
	}
	if ctl {
		if !rtpproc.ValidRTCP(pkt) {
			return nil, false, &c.refusedJunk
		}
		return pkt, true, nil
	}
	if !rtpproc.ValidRTP(pkt) {
		return nil, false, &c.refusedJunk
	}
	if !r.e.pts.Load().has(pkt[1] & 0x7f) {
		return nil, false, &c.refusedPT
	}
	return pkt, false, nil
}

// follows reports whether a valid packet from src continues the side's
// stream. RTP: after the latched source's silence, by SSRC and sequence
// (trail). RTCP on the RTCP socket: from the IP the RTP socket latched,
// and to move a latch, after the latched source's silence and with the
// SSRC of the RTP stream latched there.
func (r *reader) follows(p *peer, pkt []byte, ctl bool, src netip.AddrPort, now int64) bool {
	if !ctl {
		return p.latched && r.last.follows(pkt, now)
	}
	rp := r.e.rtp.dst.Load()
	if !r.rtcp || !rp.latched || rp.addr.Addr() != src.Addr() {
		return false
	}
	if !p.latched {
		return true
	}
	v := r.e.rtp.ssrc.Load()
	return now-r.last.at >= int64(relatchSilence) && v>>32 == 1 && uint32(v) == binary.BigEndian.Uint32(pkt[4:])
}

// Results of reader.open.
const (
	opened       = iota
	noKeys       // the side's a=crypto is not known yet
	notAuthentic // authentication failed, or a replay
)

// open decrypts an SDES-SRTP packet into r.dec's buffer.
func (r *reader) open(pkt []byte, ctl bool) ([]byte, int) {
	if ctl {
		ctx := r.sdes.decRTCP.Load()
		if ctx == nil {
			return nil, noKeys
		}
		out, err := ctx.DecryptRTCP(r.dec.buf[:0], pkt, &r.dec.chdr)
		if err != nil {
			return nil, notAuthentic
		}
		return out, opened
	}
	ctx := r.sdes.decRTP.Load()
	if ctx == nil {
		return nil, noKeys
	}
	out, err := r.sdes.rxGuess.decrypt(ctx, r.dec.buf[:0], pkt, &r.dec.hdr)
	if err != nil {
		return nil, notAuthentic
	}
	return out, opened
}

// deliver hands an accepted plain packet to the flow, and remembers the
// source's stream for the latch rules.
func (r *reader) deliver(pkt []byte, ctl bool, now int64) {
	r.last.at = now
	if ctl {
		r.f.rtcpVia(pkt, r.out)
		return
	}
	if len(pkt) >= 12 {
		ssrc := binary.BigEndian.Uint32(pkt[8:])
		if !r.last.rtp || ssrc != r.last.ssrc {
			r.in.ssrc.Store(1<<32 | uint64(ssrc))
		}
		r.last.ssrc, r.last.seq, r.last.rtp = ssrc, binary.BigEndian.Uint16(pkt[2:]), true
	}
	r.f.rtpAt(pkt, now, r.out)
}

// isRTCP tells RTCP from RTP on a multiplexed port (RFC 5761 section 4):
// RTCP packet types 192-223 fall where RTP would carry marker + payload
// type 64-95, which RTP does not use.
func isRTCP(pkt []byte) bool {
	return len(pkt) >= 2 && pkt[0]>>6 == 2 && pkt[1] >= 192 && pkt[1] <= 223
}
