package rtpproc

// ValidRTP reports whether pkt is a well-formed plain RTP packet: version
// 2, not an RTCP packet multiplexed on the RTP port (RFC 5761 section 4),
// and long enough for its CSRC list, header extension and padding. It
// says nothing about the payload type; the caller checks that against
// what the stream negotiated. It does not allocate.
func ValidRTP(pkt []byte) bool {
	_, ok := parseRTP(pkt)
	return ok
}

// ValidRTCP reports whether pkt is a well-formed plain RTCP compound
// packet, checked as RFC 3550 appendix A.2 does: every packet is version
// 2 with a type in the RTCP range of RFC 5761 (192-223), the length
// fields add up to exactly len(pkt), only the last packet is padded, and
// the first packet is one a media endpoint sends: SR, RR, SDES, BYE, APP,
// RTPFB, PSFB or XR (RFC 5506 lets a reduced-size compound start with
// feedback). It does not allocate.
func ValidRTCP(pkt []byte) bool {
	if !validRTCP(pkt) || pkt[1] < rtcpSR || pkt[1] > rtcpXR {
		return false
	}
	for p, rest := nextRTCP(pkt); ; p, rest = nextRTCP(rest) {
		if !isRTCPType(p[1]) || (p[0]&0x20 != 0 && len(rest) > 0) {
			return false
		}
		if len(rest) == 0 {
			return true
		}
	}
}
