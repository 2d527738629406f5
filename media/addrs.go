package media

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/sbc-project/sbc/media/sdpconv"
)

// Addr is the SBC's media address in one IP family: where its sockets
// bind and what SDP and ICE candidates name.
type Addr struct {
	// Bind is the local address media sockets bind to. It must be a
	// specific address unless Public is set.
	Bind netip.Addr
	// Public is the address written into SDP (c= and o=) and into ICE host
	// candidates, for an SBC behind a 1:1 NAT. Invalid (the zero value):
	// Bind. It is of Bind's family.
	Public netip.Addr
}

// normalizeAddrs checks the media addresses (at least one, at most one per
// family, Public of Bind's family) and fills each Public.
func normalizeAddrs(addrs []Addr) ([]Addr, error) {
	if len(addrs) == 0 {
		return nil, errors.New("no media address (bind ip) is set")
	}
	out := make([]Addr, 0, len(addrs))
	seen := map[bool]bool{} // by Is4
	for _, a := range addrs {
		if !a.Bind.IsValid() {
			return nil, errors.New("bind ip is not set")
		}
		a.Bind = a.Bind.Unmap().WithZone("")
		if seen[a.Bind.Is4()] {
			return nil, fmt.Errorf("bind ip %s: more than one address of its family", a.Bind)
		}
		seen[a.Bind.Is4()] = true
		if !a.Public.IsValid() {
			if a.Bind.IsUnspecified() {
				return nil, fmt.Errorf("public ip is required with bind ip %s", a.Bind)
			}
			a.Public = a.Bind
		}
		a.Public = a.Public.Unmap().WithZone("")
		if a.Public.IsUnspecified() || a.Public.IsMulticast() {
			return nil, fmt.Errorf("public ip %s is not a unicast address", a.Public)
		}
		if a.Public.Is4() != a.Bind.Is4() {
			return nil, fmt.Errorf("public ip %s is not of the family of bind ip %s", a.Public, a.Bind)
		}
		out = append(out, a)
	}
	return out, nil
}

// addrFor returns the index in m.cfg.Addrs of the media address that
// serves a peer at ip: the one of ip's family, else the first (a
// single-family SBC still answers, in its own family, a peer that may be
// dual-stack).
func (m *Manager) addrFor(ip netip.Addr) int {
	if ip.IsValid() {
		v4 := ip.Unmap().Is4()
		for i, a := range m.cfg.Addrs {
			if a.Bind.Is4() == v4 {
				return i
			}
		}
	}
	return 0
}

// sdpFamilyIP returns the address a side's SDP says it receives media on
// (its first usable m-line's), if it names one: the family the SBC must
// answer that side in. Invalid when the SDP names none or holds
// (0.0.0.0), or for a WebRTC side, whose c= line is a placeholder and
// whose candidates carry the addresses.
func sdpFamilyIP(d *sdpconv.Description) netip.Addr {
	if d == nil || d.Kind == KindWebRTC {
		return netip.Addr{}
	}
	for _, md := range d.Media {
		if md.Usable && md.Port > 0 && md.Addr.IsValid() && !md.Addr.IsUnspecified() {
			return md.Addr
		}
	}
	return netip.Addr{}
}

// addrOf returns the index of the SBC's media address facing side,
// choosing it on the side's first stream: the family of the side's SDP d
// when it names an address (the side receives media there), else the
// family of its signaling. The choice stays for the session: the side's
// sockets are bound in it. Called under s.mu.
func (s *Session) addrOf(side Side, d *sdpconv.Description) int {
	if s.addrSet[side] {
		return s.addr[side]
	}
	ip := sdpFamilyIP(d)
	if !ip.IsValid() {
		ip = s.opts[side].Signaling
	}
	s.addr[side], s.addrSet[side] = s.m.addrFor(ip), true
	return s.addr[side]
}

// restored is the address facing side that Restore set when it is none
// of Config.Addrs; the zero Addr when none.
func (s *Session) restored(side Side) Addr {
	if s.restoredAddr == nil {
		return Addr{}
	}
	return s.restoredAddr[side]
}

// public returns the address written into SDP toward side.
func (s *Session) public(side Side) netip.Addr {
	if a := s.restored(side); a.Bind.IsValid() {
		return a.Public
	}
	return s.m.cfg.Addrs[s.addrOf(side, nil)].Public
}

// bindIP returns the address the sockets facing side bind to.
func (s *Session) bindIP(side Side) netip.Addr {
	if a := s.restored(side); a.Bind.IsValid() {
		return a.Bind
	}
	return s.m.cfg.Addrs[s.addrOf(side, nil)].Bind
}

// familyMove is what a side moving to another IP family leaves behind:
// the streams and the WebRTC transport bound in the old one.
type familyMove struct {
	moved   bool
	side    Side
	streams []*stream
	wt      *webrtcSide
}

// moveFamily sets side's streams aside when the side must now be faced
// from another media address: it has sent no SDP yet and its signaling
// maps to another family than its sockets are bound in (a failover to a
// destination of the other family). The next openStreams then binds fresh
// streams, for both sides: the other side has been sent no SDP from the
// SBC either, since nothing answered. Called under s.mu.
func (s *Session) moveFamily(side Side) familyMove {
	if !s.addrSet[side] || s.last[side] != nil || s.m.addrFor(s.opts[side].Signaling) == s.addr[side] {
		return familyMove{}
	}
	mv := familyMove{moved: true, side: side, streams: s.streams, wt: s.wt[side]}
	s.streams, s.wt[side], s.addrSet[side] = nil, nil, false
	return mv
}

// undo puts back what moveFamily set aside, after the fresh streams
// failed, closing a WebRTC transport opened meanwhile.
func (mv familyMove) undo(s *Session) {
	if !mv.moved {
		return
	}
	if w := s.wt[mv.side]; w != nil && w != mv.wt {
		w.close()
	}
	s.streams, s.wt[mv.side] = mv.streams, mv.wt
}

// finish closes what the side left behind. Nothing was relayed on it: the
// side never answered.
func (mv familyMove) finish() {
	for _, st := range mv.streams {
		if st != nil {
			st.close()
		}
	}
	if mv.wt != nil {
		mv.wt.close()
	}
}
