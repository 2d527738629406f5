package media

import (
	"errors"
	"net/netip"

	"github.com/sbc-project/sbc/media/sdpconv"
)

// T.38 fax relay. A re-INVITE (or an INVITE) between two plain RTP sides
// may carry "m=image <port> udptl t38": the SBC relays it like an audio
// stream, on a port pair of its own facing each side (only the even port
// carries UDPTL), with the SDP passed through (the T38Fax* attributes
// kept, every address the SBC's). Once an answer accepts the image
// stream, the stream's readers stop treating its datagrams as RTP: a
// UDPTL packet (ITU-T T.38 section 9) has no RTP header, so it is neither
// checked for one, nor counted in RTP statistics, nor normalized; it is
// relayed as received. An answer that puts audio back on the m-line
// turns the relay back to RTP. Toward a WebRTC or SDES-SRTP side, T.38
// is refused (ErrNoFax): nothing changes, and the call keeps its audio.

// ErrNoFax means an offer carries a T.38 (UDPTL) stream that a side of
// the session cannot take: one side is WebRTC or SDES-SRTP. The B2BUA
// answers 488 with a Warning, and the call goes on as it was.
var ErrNoFax = errors.New("media: T.38 fax is relayed between plain RTP sides only")

// NoFaxWarning is the Warning header value sent with the 488 for ErrNoFax
// (RFC 3261 warn-code 304, media type not available).
const NoFaxWarning = `304 sbc "T.38 fax is relayed between SIP sides only"`

// minUDPTL is the shortest UDPTL datagram: a sequence number and an IFP
// packet's length and first octet.
const minUDPTL = 4

// checkFax refuses an offer d with an enabled UDPTL m-line unless both
// sides are plain RTP, before and after the offer (kinds).
func (s *Session) checkFax(d *sdpconv.Description, kinds [2]Kind) error {
	if !d.HasUDPTL() {
		return nil
	}
	for side := SideA; side <= SideB; side++ {
		if kinds[side] != KindRTP || (s.last[side] != nil && s.kind[side] != KindRTP) {
			return ErrNoFax
		}
	}
	return nil
}

// setUDPTL switches the plain endpoints of stream st between RTP and
// UDPTL relaying, as the answer just applied decided.
func setUDPTL(st *stream, on bool) {
	for side := SideA; side <= SideB; side++ {
		if e, ok := endOf(st, side); ok && e.sdes == nil {
			e.rtp.udptl.Store(on)
			e.rtcp.udptl.Store(on)
		}
	}
}

// forwardUDPTL is forwardAt for a stream carrying T.38: any datagram of
// UDPTL size is media. The latch rules are RTP's by rank (the SDP
// address, then the signaling IP, then the SDP port); a UDPTL datagram
// has no SSRC to show it continues the latched stream, so a source that
// ranks no higher never takes a latch over. The RTCP socket carries
// nothing and relays nothing.
func (r *reader) forwardUDPTL(pkt []byte, src netip.AddrPort, now int64) {
	if r.rtcp || len(pkt) < minUDPTL {
		r.refuse(&r.f.c.refusedJunk)
		return
	}
	p := r.in.dst.Load()
	if !p.latched || p.addr != src {
		for {
			if !p.admits(src, evidence{now: now}) {
				r.refuse(&r.f.c.refusedSource)
				return
			}
			if r.in.latch(p, src) {
				break
			}
			p = r.in.dst.Load()
		}
		if p.latched {
			r.f.c.relatched.Add(1)
		}
		r.last = trail{}
	}
	r.last.at = now
	r.f.datagram(pkt, r.out)
}

// datagram relays one UDPTL datagram from the source side as it is. Like
// rtpAt it allocates nothing; it takes the flow's lock only to order its
// send with the other packets of the flow.
func (f *flow) datagram(pkt []byte, b *sendBatch) {
	f.c.received.Add(1)
	f.mu.Lock()
	ok := f.to.sendRTP(pkt, out{b: b, ctr: &f.c})
	f.mu.Unlock()
	if !ok {
		f.c.dropped.Add(1)
		return
	}
	f.c.packets.Add(1)
	f.c.bytes.Add(uint64(len(pkt)))
	f.c.udptl.Add(1)
}
