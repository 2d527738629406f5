package wrtc

import "sync/atomic"

// Counters is a snapshot of one transport's packet counters. They start at
// zero when the transport is created and only grow.
type Counters struct {
	RTPIn        uint64 // SRTP packets authenticated, decrypted and handed to a Sink
	RTPOut       uint64 // RTP packets encrypted and sent
	RTCPIn       uint64 // SRTCP compound packets authenticated, decrypted and handed to a Sink
	RTCPOut      uint64 // RTCP compound packets encrypted and sent
	BytesIn      uint64 // bytes of every non-STUN packet received over ICE
	BytesOut     uint64 // bytes of SRTP/SRTCP sent
	SRTPAuthFail uint64 // SRTP/SRTCP packets whose authentication tag did not verify
	SRTPReplay   uint64 // SRTP/SRTCP packets rejected by the replay window
	Malformed    uint64 // RTP/RTCP too short or with a broken header
	Unknown      uint64 // packets that are none of STUN, DTLS, RTP, RTCP (RFC 7983)
	Unrouted     uint64 // decrypted packets no Route claimed (dropped)
	DTLSPackets  uint64 // DTLS datagrams received (handshake and later)
	NotReady     uint64 // SRTP/SRTCP received before the keys existed and dropped (more than maxEarly, or Close came first)
	Early        uint64 // SRTP/SRTCP received before the keys existed and held until they did (then counted as any other)
}

// counters is the live, atomically updated form of Counters.
type counters struct {
	rtpIn, rtpOut, rtcpIn, rtcpOut atomic.Uint64
	bytesIn, bytesOut              atomic.Uint64
	authFail, replay               atomic.Uint64
	malformed, unknown, unrouted   atomic.Uint64
	dtls, notReady, early          atomic.Uint64
}

func (c *counters) snapshot() Counters {
	return Counters{
		RTPIn:        c.rtpIn.Load(),
		RTPOut:       c.rtpOut.Load(),
		RTCPIn:       c.rtcpIn.Load(),
		RTCPOut:      c.rtcpOut.Load(),
		BytesIn:      c.bytesIn.Load(),
		BytesOut:     c.bytesOut.Load(),
		SRTPAuthFail: c.authFail.Load(),
		SRTPReplay:   c.replay.Load(),
		Malformed:    c.malformed.Load(),
		Unknown:      c.unknown.Load(),
		Unrouted:     c.unrouted.Load(),
		DTLSPackets:  c.dtls.Load(),
		NotReady:     c.notReady.Load(),
		Early:        c.early.Load(),
	}
}
