// Package rtpproc is the per-packet processing of the SBC's media relay:
// stream normalization (one SSRC with continuous sequence numbers and
// timestamps per relayed stream), RTCP rewriting to match, payload-type
// rewriting, RFC 4733 telephone-event detection and generation, receive
// statistics with an E-model MOS, an RFC 7983 packet classifier, and
// SDES-SRTP (RFC 4568) crypto attributes.
//
// Packets are plain (decrypted) RTP or RTCP datagrams handed around as
// []byte. Every per-packet function works in place, allocates nothing,
// takes no lock and does not log; headers are parsed by hand because the
// pion Unmarshal functions allocate. Functions that run at signaling rate
// (EventPackets, ParseDTMFInfo, ParseCrypto, ...) may allocate.
package rtpproc

import "encoding/binary"

// rtpFixedLen is the length of the fixed RTP header (RFC 3550 section 5.1).
const rtpFixedLen = 12

// rtpHeader is what the per-packet functions need from an RTP header. It
// is a value parsed by hand, so reading it does not allocate.
type rtpHeader struct {
	hdrLen int // fixed header, CSRCs and header extension
	payEnd int // end of the payload: len(pkt) minus padding
}

// parseRTP checks that pkt is a well-formed RTP packet: version 2, not an
// RTCP packet multiplexed on the RTP port (RFC 5761 section 4), and long
// enough for its CSRC list, header extension and padding.
func parseRTP(pkt []byte) (rtpHeader, bool) {
	if len(pkt) < rtpFixedLen || pkt[0]>>6 != 2 || isRTCPType(pkt[1]) {
		return rtpHeader{}, false
	}
	n := rtpFixedLen + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 { // X: a header extension follows the CSRCs
		if len(pkt) < n+4 {
			return rtpHeader{}, false
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(pkt[n+2:]))
	}
	if len(pkt) < n {
		return rtpHeader{}, false
	}
	end := len(pkt)
	if pkt[0]&0x20 != 0 { // P: the last byte counts the padding, itself included
		pad := int(pkt[len(pkt)-1])
		if pad == 0 || pad > end-n {
			return rtpHeader{}, false
		}
		end -= pad
	}
	return rtpHeader{hdrLen: n, payEnd: end}, true
}

// isRTCPType reports whether the second byte of a packet is an RTCP packet
// type as RFC 5761 section 4 sees it: 192-223, where RTP would carry the
// marker bit and payload types 64-95, which RTP does not use.
func isRTCPType(b byte) bool { return b >= 192 && b <= 223 }

func rtpSeq(pkt []byte) uint16       { return binary.BigEndian.Uint16(pkt[2:]) }
func rtpTS(pkt []byte) uint32        { return binary.BigEndian.Uint32(pkt[4:]) }
func rtpSSRC(pkt []byte) uint32      { return binary.BigEndian.Uint32(pkt[8:]) }
func rtpPT(pkt []byte) uint8         { return pkt[1] & 0x7f }
func rtpMarker(pkt []byte) bool      { return pkt[1]&0x80 != 0 }
func setRTPSeq(pkt []byte, v uint16) { binary.BigEndian.PutUint16(pkt[2:], v) }
func setRTPTS(pkt []byte, v uint32)  { binary.BigEndian.PutUint32(pkt[4:], v) }

// Class is what an RFC 7983 demultiplexer makes of a datagram received on
// a port shared by STUN, DTLS, RTP and RTCP (and ZRTP, TURN channels).
type Class uint8

// The classes of Classify.
const (
	ClassUnknown Class = iota // none of the below: drop it
	ClassSTUN                 // first byte 0-3
	ClassZRTP                 // first byte 16-19
	ClassDTLS                 // first byte 20-63
	ClassTURN                 // first byte 64-79: a TURN ChannelData message
	ClassRTP                  // first byte 128-191, second byte not an RTCP type
	ClassRTCP                 // first byte 128-191, second byte 192-223
)

// String returns the class name in lower case, e.g. "rtcp".
func (c Class) String() string {
	switch c {
	case ClassSTUN:
		return "stun"
	case ClassZRTP:
		return "zrtp"
	case ClassDTLS:
		return "dtls"
	case ClassTURN:
		return "turn"
	case ClassRTP:
		return "rtp"
	case ClassRTCP:
		return "rtcp"
	}
	return "unknown"
}

// Classify sorts a datagram by its first byte (RFC 7983 section 7) and
// tells RTCP from RTP by the second (RFC 5761 section 4). It looks at two
// bytes at most: a packet it classifies may still be malformed. It does not
// allocate.
func Classify(pkt []byte) Class {
	if len(pkt) == 0 {
		return ClassUnknown
	}
	switch b := pkt[0]; {
	case b <= 3:
		return ClassSTUN
	case b >= 16 && b <= 19:
		return ClassZRTP
	case b >= 20 && b <= 63:
		return ClassDTLS
	case b >= 64 && b <= 79:
		return ClassTURN
	case b >= 128 && b <= 191:
		if len(pkt) >= 2 && isRTCPType(pkt[1]) {
			return ClassRTCP
		}
		return ClassRTP
	}
	return ClassUnknown
}
