// Package rtpproc is the per-packet processing of the SBC's media relay:
// stream normalization (one SSRC with continuous sequence numbers and
// timestamps per relayed stream), RTCP rewriting to match, payload-type
// rewriting, RFC 4733 telephone-event detection and generation, receive
// statistics with an E-model MOS, and SDES-SRTP (RFC 4568) crypto attributes.
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
