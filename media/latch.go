package media

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sbc-project/sbc/media/sdpconv"
)

// Symmetric RTP (RFC 4961) sends toward a side from the socket its media
// arrives on, to the address that media comes from: the side's SDP may
// name an address its packets never come from (NAT, a phone that binds
// one interface and announces another). Which source a socket takes is
// decided here; every decision is made by the socket's reader, one
// packet at a time, without allocating except when the latch moves.
//
// A packet may latch a socket only if it is valid media for the stream:
// RTP of version 2 with a payload type negotiated for the stream, or a
// well-formed RTCP compound; on an SDES-SRTP socket, only once its
// authentication tag verified. Sources rank by what the signaling says
// about them:
//
//   - rankSDP: the address the side's SDP announced for this socket;
//   - rankSignaling: the IP address the side's SIP comes from (a phone
//     behind NAT sends its RTP from its NAT's address, like its SIP);
//   - rankSDPPort: the port the side's SDP announced, from another IP: the
//     side's own socket seen through another of its addresses (a socket
//     bound to the wildcard leaves from the address the route to the SBC
//     picks, not the one the phone announces: baresip, most softphones on
//     a host with a VPN or two interfaces) or through a NAT that keeps
//     the source port, as most do when it is free (RFC 4787 4.1), while
//     the side's SIP reaches the SBC from elsewhere (a proxy, another
//     NAT address);
//   - rankStranger: anything else.
//
// Before anything is latched, an SDP, signaling or SDP-port source
// latches at once; a stranger only when none is known, or once
// strangerGrace has passed since the socket learned them without any
// sending (a host whose RTP leaves from a third address and port still
// gets its media, late). Once a source
// is latched, another takes its place only if it ranks higher (the SDP
// address always wins), or if it continues the latched stream after the
// latched source fell silent (relatchSilence; for RTP the same SSRC and a
// sequence number at most relatchMaxAhead past the last one, as after a
// NAT rebinding; for RTCP the RTP stream's SSRC from the RTP socket's
// latched IP). An SDP that moves the stream to another address starts
// the latch over, and the source it moved from may not take it; the
// side's first SDP leaves a source latched before it in place if the
// signaling vouches for it (learn). An off-path attacker sees none of
// the stream and cannot meet either rule; spoofing the SDP or signaling
// address only sends the media to that address, not to the attacker.
// To latch by the SDP port from its own address, he must know the side's
// RTP port as well as the SBC's (both out of his sight, in the
// signaling), and the side's first packet from its SDP or signaling
// address takes the latch back.
//
// Residual risk, accepted so that endpoints behind NAT and hosts that
// send from another address than they announce keep working: a stranger
// who guesses the port (allocation is random, see portPool) and a
// negotiated payload type, and sends once strangerGrace has passed while
// the side has sent nothing from its SDP or signaling address, latches;
// it then receives the other side's media until the side sends from
// either address, which takes the latch back. For a caller this is the
// time between the grace expiring and the phone's first packet, typically
// during ringing, when the other side sends early media at most.
const (
	// strangerGrace is how long after learning where a side is the SBC
	// waits for media from the SDP or signaling address before a stranger
	// may latch. A side sends its first packets within milliseconds of
	// the answer; three seconds is far beyond that even on a loaded
	// machine, and a caller's ringing usually outlasts it, so the only
	// cost, falling on endpoints that send from a third address and
	// another port than their SDP's, is the first seconds of the callee's
	// media.
	strangerGrace = 3 * time.Second
	// relatchSilence is how long the latched source must have sent
	// nothing before another source continuing its stream may take its
	// place: ten 20 ms frames. A live source, even at 60 ms ptime with
	// jitter, sends well within it, so two sources carrying the same
	// stream never take turns; a NAT rebinding costs this much media.
	relatchSilence = 200 * time.Millisecond
	// relatchMaxAhead is how far past the last sequence number seen the
	// first packet from the new source may be: RFC 3550 A.1's
	// MAX_DROPOUT, which covers a minute of 20 ms packets lost while the
	// source moved. With the 32-bit SSRC, an off-path guess succeeds
	// about once in 2^32 * 65536/3000 ≈ 9.4e10 packets.
	relatchMaxAhead = 3000
)

// Ranks of a source; see the comment above.
const (
	rankStranger = iota
	rankSDPPort
	rankSignaling
	rankSDP
)

// peer is where packets toward one side go, and what the signaling says
// about that side. It is immutable once stored: signaling (learn,
// prefer) and the reader (latch) swap whole values.
type peer struct {
	addr    netip.AddrPort // invalid: not known yet, nothing is sent
	latched bool           // addr is the source valid packets arrived from
	hold    bool           // the side signalled c=0.0.0.0: send it nothing
	// sdp is the address the side's SDP announced for this socket, and
	// signal the IP its SIP comes from; invalid when not known.
	sdp    netip.AddrPort
	signal netip.Addr
	// stale is the source latched before the side's SDP moved the
	// stream: it must not win the new latch (a PBX that moves media keeps
	// sending from the old port for a while).
	stale netip.AddrPort
	// since is when sdp or the socket was new (monotonic ns): the start
	// of strangerGrace.
	since int64
}

// rank says how much the signaling vouches for src.
func (p *peer) rank(src netip.AddrPort) int {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	switch {
	case p.sdp.IsValid() && src == p.sdp:
		return rankSDP
	case p.signal.IsValid() && src.Addr() == p.signal:
		return rankSignaling
	case p.sdp.IsValid() && src.Port() == p.sdp.Port() && src.Addr().Is4() == p.sdp.Addr().Unmap().Is4():
		return rankSDPPort
	}
	return rankStranger
}

// evidence is what the reader knows of a valid packet beyond its source.
type evidence struct {
	// follows: the packet continues the side's stream (reader.follows).
	follows bool
	// noGrace: strangerGrace does not apply. An RTCP socket takes no
	// stranger of its own: its source follows the RTP socket's.
	noGrace bool
	now     int64 // arrival, monotonic ns
}

// admits reports whether a valid packet from src, which is not the
// latched source, takes the latch.
func (p *peer) admits(src netip.AddrPort, ev evidence) bool {
	r := p.rank(src)
	if p.latched {
		return r > p.rank(p.addr) || ev.follows
	}
	switch {
	case r == rankSDP || ev.follows:
		return true
	case src == p.stale && p.sdp.IsValid():
		return false
	case r > rankStranger:
		return true
	case ev.noGrace:
		return false
	}
	return (!p.sdp.IsValid() && !p.signal.IsValid()) || ev.now-p.since >= int64(strangerGrace)
}

// trail is a reader's memory of the latched source: the SSRC and
// sequence number of its last RTP packet, and when its last packet
// arrived. It belongs to the reader's goroutine.
type trail struct {
	ssrc uint32
	seq  uint16
	rtp  bool  // ssrc and seq are known
	at   int64 // monotonic ns
}

// follows reports whether the RTP packet pkt, from another source,
// continues the latched stream after relatchSilence without a packet
// from the latched source: same SSRC, sequence number 1 to
// relatchMaxAhead past the last one.
func (t *trail) follows(pkt []byte, now int64) bool {
	if !t.rtp || now-t.at < int64(relatchSilence) {
		return false
	}
	d := binary.BigEndian.Uint16(pkt[2:]) - t.seq
	return binary.BigEndian.Uint32(pkt[8:]) == t.ssrc && d >= 1 && d <= relatchMaxAhead
}

// sock is one UDP socket facing one side. Packets from that side are read
// from it; packets toward that side are written through it, so the side
// sees one address per stream (symmetric RTP, RFC 4961).
type sock struct {
	conn *udpConn
	port int
	// sess is the session the socket reports its latches to and logs
	// for; nil: none (tests). It keeps no logger nor callback of its own
	// (a logger and its scope a side, two closures a side, and the
	// 64-byte class: 0.29 kB a call): logger makes the logger for a line
	// written, latched reports.
	sess *Session

	// dst is read by the far side's reader for every packet it forwards,
	// swapped by this socket's reader when it latches and by signaling
	// when what it knows of the side changes. Never nil.
	dst atomic.Pointer[peer]
	// udptl is set while the stream carries T.38 (udptl.go): datagrams
	// are relayed as they are, not as RTP. Set by signaling. It sits
	// next to dst, which the reader loads for every packet anyway, so
	// the check costs no cache line of its own (the endpoint's was a
	// miss per packet across many calls).
	udptl atomic.Bool
	// mline and side are where the socket is in its session, for its
	// log lines; rtcp, that it is the RTCP socket of its pair. They sit
	// in the bytes after udptl.
	mline int16
	side  int8
	rtcp  bool
	// ssrc is the SSRC of the latched source's RTP (bit 32 set once
	// known), published by the RTP socket's reader for the RTCP socket's.
	ssrc atomic.Uint64
}

// newSock is a socket of endpoint at, the RTP one of its pair unless
// rtcp.
func newSock(conn *udpConn, port int, signal netip.Addr, at endAt, rtcp bool) *sock {
	s := &sock{conn: conn, port: port, sess: at.s, mline: int16(at.mline), side: int8(at.side), rtcp: rtcp}
	s.dst.Store(&peer{signal: signal, since: monotonic()})
	return s
}

// endAt is where an endpoint is: its session (nil: none), m-line (-1:
// none) and side.
type endAt struct {
	s     *Session
	mline int
	side  Side
}

// logger is the socket's logger, made for a line to write (sideLogger);
// a discarding one without a session.
func (s *sock) logger() *slog.Logger {
	if s.sess == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.sess.sideLogger(int(s.mline), Side(s.side))
}

// latched reports a latch (moved: from another source) to the session:
// the RTP socket's (RTP or UDPTL) as EventLatched or EventRelatched for
// the call's timeline, and both sockets' as EventState for its
// replication.
func (s *sock) latched(src netip.AddrPort, moved bool) {
	if s.sess == nil {
		return
	}
	if !s.rtcp {
		kind := EventLatched
		if moved {
			kind = EventRelatched
		}
		s.sess.emit(Event{Kind: kind, From: Side(s.side), Source: src})
	}
	s.sess.emit(Event{Kind: EventState})
}

// update swaps the peer for f's change of it, unless f changes nothing.
// Signaling calls it, under Session.mu; the reader may latch meanwhile,
// and f then sees the latched peer.
func (s *sock) update(f func(peer) peer) {
	for {
		p := s.dst.Load()
		np := f(*p)
		if np == *p || s.dst.CompareAndSwap(p, &np) {
			return
		}
	}
}

// learn takes the address the side's SDP announces for this socket's
// stream and the IP its signaling comes from. A different address than
// the SDP gave before resets the latch, so a re-INVITE that moves the
// media moves it, and the source it moved from may not take it back; the
// same address keeps it. hold suspends sending toward the side.
//
// The side's first SDP moves nothing: a source latched before it is
// where the side's media began (a phone that answers and sends in the
// same millisecond, before the SBC has applied its answer). If the
// signaling vouches for it (its SDP or signaling address, as for a phone
// behind NAT, or its SDP port) it keeps the latch, which the SDP address still takes over
// by rank; a stranger starts over like any other, latching again only
// after strangerGrace.
func (s *sock) learn(addr netip.AddrPort, hold bool, signal netip.Addr) {
	s.update(func(p peer) peer {
		if addr == p.sdp {
			p.hold, p.signal = hold, signal
			return p
		}
		np := peer{addr: addr, hold: hold, sdp: addr, signal: signal, since: monotonic()}
		switch {
		case !p.latched:
		case !p.sdp.IsValid() && addr.IsValid():
			if np.rank(p.addr) > rankStranger {
				np.addr, np.latched = p.addr, true
			}
		case p.addr != addr:
			np.stale = p.addr
		}
		return np
	})
}

// prefer sets the IP the side's signaling comes from (a new B-leg
// target) without touching the latch.
func (s *sock) prefer(signal netip.Addr) {
	s.update(func(p peer) peer {
		p.signal = signal
		return p
	})
}

// latch makes src, which admits accepted against p, the socket's source.
// It fails when signaling changed p meanwhile; the caller decides again.
// It runs once per latch, so it may allocate and log.
func (s *sock) latch(p *peer, src netip.AddrPort) bool {
	np := &peer{addr: src, latched: true, hold: p.hold, sdp: p.sdp, signal: p.signal, since: p.since}
	if !s.dst.CompareAndSwap(p, np) {
		return false
	}
	if p.latched {
		s.logger().Info("media source moved", "port", s.port, "from", p.addr, "to", src, "sdp_addr", p.sdp)
	} else if s.sess != nil && s.sess.m.log.Enabled(context.Background(), slog.LevelDebug) {
		s.logger().Debug("media source latched", "port", s.port, "source", src, "sdp_addr", p.sdp)
	}
	s.latched(src, p.latched)
	return true
}

// send writes pkt toward the side, or queues it in o.b. It reports false,
// sending nothing, when the side's address is unknown or on hold, or when
// the write fails. It does not allocate.
func (s *sock) send(pkt []byte, o out) bool {
	d := s.dst.Load()
	if d.hold || !d.addr.IsValid() {
		return false
	}
	if o.b != nil {
		return s.conn.queue(o.b, pkt, d.addr, o)
	}
	return s.conn.writeTo(pkt, d.addr) == nil
}

// ptSet is a set of RTP payload types, one bit each.
type ptSet [2]uint64

func (s *ptSet) add(pt uint8)      { s[pt>>6&1] |= 1 << (pt & 63) }
func (s *ptSet) has(pt uint8) bool { return s != nil && s[pt>>6&1]&(1<<(pt&63)) != 0 }

// ptsOf returns the payload types an m-line lists.
func ptsOf(md sdpconv.Media) ptSet {
	var s ptSet
	for _, c := range md.Codecs {
		s.add(c.PT & 0x7f)
	}
	return s
}

// formatPTs is the set of payload types an m-line's format list names,
// as sdpconv reads them into codecs (ptsOf): decimal, 0 to 127.
func formatPTs(formats []string) ptSet {
	var s ptSet
	for _, f := range formats {
		if pt, err := strconv.ParseUint(f, 10, 8); err == nil && pt <= 127 {
			s.add(uint8(pt))
		}
	}
	return s
}
