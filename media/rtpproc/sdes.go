package rtpproc

import (
	"encoding/binary"
	"fmt"
)

// sdesCNAME is the SDES item type of the canonical name (RFC 3550
// section 6.5.1).
const sdesCNAME = 1

// maxSDESText is the longest SDES item text: its length is one octet.
const maxSDESText = 255

// SDESPacket returns an RTCP SDES packet (RFC 3550 section 6.5) with one
// chunk: ssrc and a CNAME item holding cname, then the null item and the
// padding to 32 bits. cname must be 1 to 255 bytes. It runs at signaling
// rate and allocates.
func SDESPacket(ssrc uint32, cname string) ([]byte, error) {
	if len(cname) == 0 || len(cname) > maxSDESText {
		return nil, fmt.Errorf("sdes cname of %d bytes: want 1 to %d", len(cname), maxSDESText)
	}
	// Header, SSRC, item type and length, text, at least one null octet.
	n := (rtcpHeaderLen + 4 + 2 + len(cname) + 1 + 3) &^ 3
	p := make([]byte, n)
	p[0] = 2<<6 | 1 // version 2, no padding, one chunk
	p[1] = rtcpSDES
	binary.BigEndian.PutUint16(p[2:], uint16(n/4-1))
	binary.BigEndian.PutUint32(p[4:], ssrc)
	p[8], p[9] = sdesCNAME, byte(len(cname))
	copy(p[10:], cname)
	// The rest is already zero: the null item and the padding.
	return p, nil
}

// ReplaceSDES replaces every SDES packet of the compound RTCP packet pkt
// by sdes, in place: sdes takes the place of the first SDES packet, the
// others go. So no CNAME, NAME, TOOL, EMAIL, PHONE, LOC, NOTE or PRIV item
// of the sender crosses; the receiver learns only what sdes says. sdes
// should be one SDESPacket; nil or empty removes the SDES packets.
//
// The result shares pkt's array and may be longer than pkt: it grows into
// pkt's spare capacity. When that has no room for sdes, the SDES packets
// are removed without replacement, which leaves nothing of a compound
// that held only SDES: the caller sends nothing then. A compound without
// SDES is returned unchanged. ok is false, and pkt unchanged, when pkt is not a compound
// RTCP packet. It does not allocate.
func ReplaceSDES(pkt, sdes []byte) (out []byte, ok bool) {
	if !validRTCP(pkt) {
		return pkt, false
	}
	// Close the gaps the SDES packets leave, front to back; w never passes
	// r, so the copies only move bytes left.
	at, w := -1, 0
	for r := 0; r < len(pkt); {
		n := rtcpLen(pkt[r:])
		if pkt[r+1] == rtcpSDES {
			if at < 0 {
				at = w
			}
		} else {
			copy(pkt[w:], pkt[r:r+n])
			w += n
		}
		r += n
	}
	if at < 0 {
		return pkt, true
	}
	if len(sdes) == 0 || cap(pkt)-w < len(sdes) {
		return pkt[:w], true
	}
	out = pkt[:w+len(sdes)]
	copy(out[at+len(sdes):], out[at:w])
	copy(out[at:], sdes)
	return out, true
}
