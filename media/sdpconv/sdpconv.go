// Package sdpconv reads SDP into a model that does not depend on how a side
// carries its media, and writes offers and answers for each kind of side:
// plain RTP, SDES-SRTP and WebRTC (ICE-lite, DTLS-SRTP, rtcp-mux, BUNDLE).
//
// The SBC always terminates media, so every SDP it writes names only its
// own transport (Local) and the codecs both sides can use. Everything here
// is a pure function of its arguments: no sockets, no clocks, no globals
// that change. The functions are safe for concurrent use.
package sdpconv

import (
	"errors"
	"net/netip"
	"strconv"
)

// Kind is how one side of a call carries its media.
type Kind int

const (
	// KindRTP is plain RTP/AVP or RTP/AVPF on a port pair.
	KindRTP Kind = iota
	// KindSRTP is SDES-SRTP: RTP/SAVP or RTP/SAVPF keyed by a=crypto.
	KindSRTP
	// KindWebRTC is UDP/TLS/RTP/SAVPF with ICE, DTLS-SRTP, rtcp-mux and
	// BUNDLE, as browsers speak it.
	KindWebRTC
)

// String names the kind for logs: "rtp", "srtp" or "webrtc".
func (k Kind) String() string {
	switch k {
	case KindRTP:
		return "rtp"
	case KindSRTP:
		return "srtp"
	case KindWebRTC:
		return "webrtc"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ErrBadSDP is wrapped by every error about an SDP body that cannot be
// parsed or has no usable m-line (audio or video over RTP, or T.38 over
// UDPTL, with a port).
var ErrBadSDP = errors.New("bad sdp")

// ErrNoCodec is wrapped when no m-line has a codec both sides can use.
// The B2BUA answers such an offer with 488 and NoCodecWarning.
var ErrNoCodec = errors.New("no common codec")

// NoCodecWarning is the exact value of the Warning header sent with a 488
// for ErrNoCodec (RFC 3261 warn-code 305).
const NoCodecWarning = "305 sbc \"Incompatible media format\""

// Codec is one payload type of an m-line.
type Codec struct {
	// Name is the encoding name as written (a=rtpmap, or the RFC 3551 name
	// of a static payload type); empty for an unknown dynamic type.
	Name string
	// Rate is the RTP clock rate in Hz; 0 when unknown.
	Rate uint32
	// Channels is the channel count; 0 when the SDP does not say (one).
	Channels uint16
	// PT is the RTP payload type (0-127). Here, after Rate and Channels,
	// it takes no 8 bytes of its own (a Codec is 64 bytes, not 72).
	PT uint8
	// Fmtp is the a=fmtp parameter string, without the payload type.
	Fmtp string
	// FB lists the a=rtcp-fb values for this type, wildcard ones included.
	FB []string
}

// String is "name/rate" or "name/rate/channels", e.g. "opus/48000/2", the
// form CDRs record; a codec without a name is its payload type.
func (c Codec) String() string {
	if c.Name == "" {
		return strconv.Itoa(int(c.PT))
	}
	s := c.Name + "/" + strconv.FormatUint(uint64(c.Rate), 10)
	if c.Channels > 1 {
		s += "/" + strconv.FormatUint(uint64(c.Channels), 10)
	}
	return s
}

// ICE holds the ICE and DTLS attributes of an m-line or of the SBC.
type ICE struct {
	// Ufrag and Pwd are a=ice-ufrag and a=ice-pwd.
	Ufrag, Pwd string
	// Candidates are a=candidate values without the "candidate:" prefix,
	// e.g. "1 1 udp 2130706431 192.0.2.1 40000 typ host".
	Candidates []string
	// Fingerprints are a=fingerprint values, e.g. "sha-256 AB:CD:..".
	Fingerprints []string
	// Setup is a=setup: actpass, active, passive or holdconn.
	Setup string
	// Lite is a=ice-lite (session level).
	Lite bool
}

// Media is one m-line, read with its session-level fallbacks applied.
type Media struct {
	// Type is the media type: audio, video, application, text or message.
	Type string
	// Port is the m-line port; 0 means the stream is disabled.
	Port int
	// Proto is the transport protocol, e.g. "UDP/TLS/RTP/SAVPF".
	Proto string
	// Formats is the m-line's format list as written.
	Formats []string
	// Addr is the c= address (media level, else session level); invalid
	// when absent, a host name or multicast. 0.0.0.0 is kept (hold).
	Addr netip.Addr
	// RTCP is the a=rtcp address (RFC 3605); invalid when absent.
	RTCP netip.AddrPort
	// Dir is sendrecv, sendonly, recvonly or inactive: the media-level
	// attribute, else the session-level one, else sendrecv.
	Dir string
	// Codecs are the RTP payload types in m-line order, all of them.
	Codecs []Codec
	// Ptime and MaxPtime are a=ptime and a=maxptime in ms; 0 if absent.
	Ptime, MaxPtime int
	// MID is a=mid.
	MID string
	// SSRCs are the distinct a=ssrc ids in order of appearance.
	SSRCs []uint32
	// Crypto are the a=crypto values (SDES, RFC 4568).
	Crypto []string
	// ICE is the m-line's ICE and DTLS attributes, each falling back to
	// the session-level value; nil when neither level has any (a plain
	// or SDES side: 104 bytes a Media, kept for each side of every call,
	// left out).
	ICE *ICE

	// The flags are last, together: a media session keeps the m-lines
	// each side sent, and a bool between wider fields costs 8 bytes
	// (Media fits 352 bytes, not 384).

	// RTCPMux is a=rtcp-mux.
	RTCPMux bool
	// Hold is true for sendonly, inactive or c=0.0.0.0 (RFC 2543 hold;
	// not on an m-line with ICE, where 0.0.0.0 is a placeholder).
	Hold bool
	// Usable is true for audio or video with a non-zero port over a
	// protocol the SBC terminates: RTP/AVP, RTP/AVPF, RTP/SAVP, RTP/SAVPF
	// or UDP/TLS/RTP/SAVPF; and for a T.38 stream (UDPTL) with one.
	Usable bool
	// UDPTL is true for a T.38 fax stream: "m=image <port> udptl t38".
	// It has no codecs; its T38Fax* attributes are the renderer's to pass.
	UDPTL bool
}

// Description is a parsed SDP body.
type Description struct {
	// Kind is the kind of the side that wrote it (see Parse).
	Kind Kind
	// Media are the m-lines in order.
	Media []Media
	// Bundle are the mids of the first a=group:BUNDLE, in order.
	Bundle []string
	// No o= line: nothing reads another side's, and its strings (copies
	// the parser makes) with 80 bytes of struct were kept for each side
	// of every call (the SBC writes its own, Session.stamp).
}

// Remote is the RTP address of the m-line: Addr and Port. It is invalid
// when the address is unknown or unspecified (hold) or the port is 0.
func (m *Media) Remote() netip.AddrPort {
	if !m.Addr.IsValid() || m.Addr.IsUnspecified() || m.Port <= 0 || m.Port > 65535 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(m.Addr, uint16(m.Port))
}

// RemoteRTCP is where the side receives RTCP: a=rtcp if given, the RTP
// address with rtcp-mux, else port+1. It is invalid when Remote is.
func (m *Media) RemoteRTCP() netip.AddrPort {
	rtp := m.Remote()
	switch {
	case !rtp.IsValid():
		return netip.AddrPort{}
	case m.RTCP.IsValid():
		return m.RTCP
	case m.RTCPMux || rtp.Port() == 65535:
		return rtp
	}
	return netip.AddrPortFrom(rtp.Addr(), rtp.Port()+1)
}

// Event returns the m-line's telephone-event (RFC 4733) at clock rate
// rate, or false.
func (m *Media) Event(rate uint32) (Codec, bool) {
	for _, c := range m.Codecs {
		if isEvent(c) && c.Rate == rate {
			return c, true
		}
	}
	return Codec{}, false
}

// Enabled reports whether m-line i exists and is usable.
func (d *Description) Enabled(i int) bool {
	return i >= 0 && i < len(d.Media) && d.Media[i].Usable
}

// HasEvent reports whether m-line i offers telephone-event at any rate.
func (d *Description) HasEvent(i int) bool {
	if i < 0 || i >= len(d.Media) {
		return false
	}
	for _, c := range d.Media[i].Codecs {
		if isEvent(c) {
			return true
		}
	}
	return false
}

// Held reports whether the side holds at least one usable stream.
func (d *Description) Held() bool {
	for i := range d.Media {
		if d.Media[i].Usable && d.Media[i].Hold {
			return true
		}
	}
	return false
}
