package media

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// maxPacket is the read buffer of one socket. RTP and RTCP senders keep
// datagrams under the path MTU; anything longer is truncated by the kernel.
const maxPacket = 2048

// peer is where packets toward one side go. It is immutable once stored:
// signaling (learn) and the reader (latch) swap whole values.
type peer struct {
	addr    netip.AddrPort // invalid: not known yet, nothing is sent
	latched bool           // addr is the source packets arrived from
	hold    bool           // the side signalled c=0.0.0.0: send it nothing
	// stale is the source latched before the side's SDP moved the
	// stream: it must not win the new latch (a PBX that moves media keeps
	// sending from the old port for a while).
	stale netip.AddrPort
}

// sock is one UDP socket facing one side. Packets from that side are read
// from it; packets toward that side are written through it, so the side
// sees one address per stream (symmetric RTP, RFC 4961).
type sock struct {
	conn *net.UDPConn
	port int
	log  *slog.Logger

	// dst is read by the far side's reader for every packet it forwards,
	// swapped by this socket's reader when it latches and by signaling
	// when the side's SDP changes. Never nil.
	dst atomic.Pointer[peer]
	// sdpAddr is the address the side's last SDP gave; owned by the
	// session's signaling (under Session.mu).
	sdpAddr netip.AddrPort
}

func newSock(conn *net.UDPConn, port int, log *slog.Logger) *sock {
	s := &sock{conn: conn, port: port, log: log}
	s.dst.Store(&peer{})
	return s
}

// learn takes the address the side's SDP announces for this socket's
// stream. A different address than the SDP gave before resets the latch,
// so a re-INVITE that moves the media moves it; the same address keeps it.
// hold suspends sending toward the side. Not safe for concurrent callers:
// the session's signaling calls it under Session.mu.
func (s *sock) learn(addr netip.AddrPort, hold bool) {
	if addr != s.sdpAddr {
		s.sdpAddr = addr
		np := &peer{addr: addr, hold: hold}
		if old := s.dst.Load(); old.latched && old.addr != addr {
			np.stale = old.addr
		}
		s.dst.Store(np)
		return
	}
	for {
		p := s.dst.Load()
		if p.hold == hold {
			return
		}
		np := *p
		np.hold = hold
		if s.dst.CompareAndSwap(p, &np) {
			return
		}
	}
}

// admit reports whether a packet from src is accepted. The first source
// seen after a reset is latched and becomes the destination toward this
// side; once latched, every other source is refused.
func (s *sock) admit(src netip.AddrPort) bool {
	p := s.dst.Load()
	if p.latched {
		return p.addr == src
	}
	return s.latch(p, src)
}

// latch is admit's slow path: it runs once per reset, so it may allocate
// and log.
func (s *sock) latch(p *peer, src netip.AddrPort) bool {
	for {
		if src == p.stale && src != p.addr {
			return false
		}
		np := &peer{addr: src, latched: true, hold: p.hold}
		if s.dst.CompareAndSwap(p, np) {
			s.log.Debug("media source latched", "port", s.port, "source", src, "sdp_addr", p.addr)
			return true
		}
		// Signaling reset the latch meanwhile: decide against the new state.
		p = s.dst.Load()
		if p.latched {
			return p.addr == src
		}
	}
}

// send writes pkt toward the side. It reports false, sending nothing, when
// the side's address is unknown or on hold, or when the write fails. It
// does not allocate.
func (s *sock) send(pkt []byte) bool {
	d := s.dst.Load()
	if d.hold || !d.addr.IsValid() {
		return false
	}
	_, err := s.conn.WriteToUDPAddrPort(pkt, d.addr)
	return err == nil
}

// flowCounters count one direction of one stream. All fields are atomics.
type flowCounters struct {
	received     atomic.Uint64 // RTP packets accepted from the source side
	packets      atomic.Uint64 // RTP packets relayed
	bytes        atomic.Uint64
	rtcpPackets  atomic.Uint64 // RTCP packets relayed
	rtcpBytes    atomic.Uint64
	dropped      atomic.Uint64
	foreign      atomic.Uint64
	malformed    atomic.Uint64 // not RTP/RTCP, or cut short
	srtpFailed   atomic.Uint64 // SDES-SRTP authentication failures and replays
	dtmfToInfo   atomic.Uint64 // telephone-event packets turned into INFO
	dtmfInjected atomic.Uint64 // generated telephone-event packets sent
}

func (f *flow) snapshot() Flow {
	c := &f.c
	p := f.plan.Load()
	rs := f.stats.Snapshot(p.codec)
	return Flow{
		Packets:     c.packets.Load(),
		Bytes:       c.bytes.Load(),
		RTCPPackets: c.rtcpPackets.Load(),
		RTCPBytes:   c.rtcpBytes.Load(),
		Dropped:     c.dropped.Load(),
		Foreign:     c.foreign.Load(),
		Malformed:   c.malformed.Load(),
		SRTPFailed:  c.srtpFailed.Load(),
		Lost:        rs.Lost,
		JitterMs:    rs.JitterMs,
		MOS:         rs.MOS,
	}
}

// Stats counts a session's relayed media per direction. Counters only grow
// and include streams already released, so Stats after Close is final.
type Stats struct {
	AtoB, BtoA Flow
}

// Flow counts one direction of media. Bytes are UDP payload bytes.
type Flow struct {
	Packets, Bytes         uint64 // RTP relayed
	RTCPPackets, RTCPBytes uint64 // RTCP relayed
	// Dropped counts packets from the accepted source that were not
	// relayed: the far side's address is unknown or on hold, or the write
	// failed.
	Dropped uint64
	// Foreign counts packets from a source other than the latched one.
	Foreign uint64
	// Malformed counts packets that were not RTP or RTCP; SRTPFailed
	// SDES-SRTP packets that failed authentication or were replays.
	Malformed, SRTPFailed uint64
	// Lost, JitterMs and MOS describe the RTP received from the source
	// side: packets lost (RFC 3550 A.3), interarrival jitter in ms (A.8)
	// and an E-model MOS estimate (0 when nothing was received).
	Lost     int64
	JitterMs float64
	MOS      float64
}

func (f *Flow) add(g Flow) {
	f.Packets += g.Packets
	f.Bytes += g.Bytes
	f.RTCPPackets += g.RTCPPackets
	f.RTCPBytes += g.RTCPBytes
	f.Dropped += g.Dropped
	f.Foreign += g.Foreign
	f.Malformed += g.Malformed
	f.SRTPFailed += g.SRTPFailed
	f.Lost += g.Lost
	// Several streams: keep the worst.
	f.JitterMs = max(f.JitterMs, g.JitterMs)
	if g.MOS > 0 && (f.MOS == 0 || g.MOS < f.MOS) {
		f.MOS = g.MOS
	}
}

// reader moves packets from one socket facing a side into that side's
// flow.
type reader struct {
	in   *sock
	f    *flow
	rtcp bool       // in is the RTCP socket
	sdes *sdesState // nil: plain RTP
	dec  []byte     // decryption buffer (SDES)
	hdr  rtp.Header
	chdr rtcp.Header
}

// run reads until the socket is closed, with one buffer for its lifetime.
func (r *reader) run() {
	buf := make([]byte, maxPacket)
	if r.sdes != nil {
		r.dec = make([]byte, 0, maxPacket)
	}
	for {
		n, src, err := r.in.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Anything else (an ICMP error surfacing, a truncated read)
			// concerns one datagram; the socket stays usable.
			continue
		}
		r.forward(buf[:n], src)
	}
}

// forward hands one packet received from src to the flow. It is the
// per-packet hot path: no allocation, no lock, no logging once the source
// is latched.
func (r *reader) forward(pkt []byte, src netip.AddrPort) {
	if !r.in.admit(src) {
		r.f.c.foreign.Add(1)
		return
	}
	if len(pkt) < 8 || pkt[0]>>6 != 2 {
		r.f.c.malformed.Add(1)
		return
	}
	// RTCP multiplexed on the RTP port (RFC 5761) still goes to the far
	// side's RTCP port: the SBC never offers rtcp-mux to a plain RTP side.
	if r.rtcp || isRTCP(pkt) {
		if r.sdes != nil {
			ctx := r.sdes.decRTCP.Load()
			if ctx == nil {
				r.f.c.dropped.Add(1)
				return
			}
			out, err := ctx.DecryptRTCP(r.dec[:0], pkt, &r.chdr)
			if err != nil {
				r.f.c.srtpFailed.Add(1)
				return
			}
			pkt = out
		}
		r.f.rtcp(pkt)
		return
	}
	if r.sdes != nil {
		ctx := r.sdes.decRTP.Load()
		if ctx == nil {
			r.f.c.dropped.Add(1)
			return
		}
		out, err := ctx.DecryptRTP(r.dec[:0], pkt, &r.hdr)
		if err != nil {
			r.f.c.srtpFailed.Add(1)
			return
		}
		pkt = out
	}
	r.f.rtp(pkt)
}

// isRTCP tells RTCP from RTP on a multiplexed port (RFC 5761 section 4):
// RTCP packet types 192-223 fall where RTP would carry marker + payload
// type 64-95, which RTP does not use.
func isRTCP(pkt []byte) bool {
	return len(pkt) >= 2 && pkt[0]>>6 == 2 && pkt[1] >= 192 && pkt[1] <= 223
}
