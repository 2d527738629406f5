package media

import "net/netip"

// RTCPPacket is one RTCP compound packet a session's relay received from
// a side or sent toward one, as Config.RTCP sees it: for export to a
// capture server (HEP), so a call's quality shows beside its SIP.
type RTCPPacket struct {
	// Session is the id the session was created with (NewSession): the
	// caller leg's Call-ID.
	Session string
	// Side is the side the packet came from, or went to when Sent.
	Side Side
	// Sent: the packet left the SBC toward Side, as the relay rewrote it
	// (normalized SSRCs, the SBC's SDES). Otherwise it arrived from Side
	// as the side sent it.
	Sent bool
	// Src and Dst are who sent it to whom: the side's address (latched,
	// else its SDP's; for a WebRTC side the selected ICE path's) and the
	// SBC's RTCP port facing it at the address the side sees (its SDP's,
	// Addr.Public). The side's is invalid when not known (a WebRTC path
	// over ICE-TCP).
	Src, Dst netip.AddrPort
	// Data is the plain RTCP: decrypted SRTCP on a WebRTC or SDES side. It
	// is the relay's buffer, valid only during the call.
	Data []byte
}

// rtcpTap hands a flow's RTCP to Config.RTCP. A flow has one only when
// the Manager's Config.RTCP is set, so the relay pays a nil check when
// export is off.
type rtcpTap struct {
	f       func(RTCPPacket)
	session string
	from    Side // the flow's source side; it sends to the other
}

// received reports pkt as it arrived from the flow's source side, which
// faces the SBC's endpoint e.
func (t *rtcpTap) received(pkt []byte, e endpoint) {
	local, remote := e.rtcpPath()
	t.f(RTCPPacket{Session: t.session, Side: t.from, Src: remote, Dst: local, Data: pkt})
}

// sent reports pkt as it left through e toward the other side.
func (t *rtcpTap) sent(pkt []byte, e endpoint) {
	local, remote := e.rtcpPath()
	t.f(RTCPPacket{Session: t.session, Side: t.from.Other(), Sent: true, Src: local, Dst: remote, Data: pkt})
}

// rtcpPath is the RTCP port at the address the side sees, and the
// side's: the latched source, else what the side's SDP announced.
func (e *rtpEndpoint) rtcpPath() (local, remote netip.AddrPort) {
	return netip.AddrPortFrom(e.public, uint16(e.rtcp.port)), e.rtcp.dst.Load().addr
}

// rtcpPath is the transport's port at its candidates' address, and the
// selected ICE path's remote address (invalid over ICE-TCP or before a
// path is selected).
func (e *wrtcEndpoint) rtcpPath() (local, remote netip.AddrPort) {
	return netip.AddrPortFrom(e.w.public, e.w.mux.Addr().Port()), e.w.t.Remote()
}
