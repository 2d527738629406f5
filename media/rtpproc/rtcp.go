package rtpproc

import "encoding/binary"

// RTCP packet types (RFC 3550, RFC 4585, RFC 3611).
const (
	rtcpSR    = 200
	rtcpRR    = 201
	rtcpSDES  = 202
	rtcpBYE   = 203
	rtcpAPP   = 204
	rtcpRTPFB = 205
	rtcpPSFB  = 206
	rtcpXR    = 207
)

// Payload-specific feedback formats with SSRCs in their FCI (RFC 5104,
// draft-alvestrand-rmcat-remb).
const (
	psfbFIR  = 4
	psfbREMB = 15
)

// Lengths within RTCP packets, in bytes.
const (
	rtcpHeaderLen   = 4
	reportBlockLen  = 24 // RFC 3550 section 6.4.1
	senderInfoEnd   = 28 // header, sender SSRC and the 20-byte sender info
	feedbackFCI     = 12 // RFC 4585 section 6.1: header, sender and media SSRC
	firEntryLen     = 8
	rembSSRCListOff = feedbackFCI + 8 // "REMB", count, exponent and mantissa
	dlrrSubBlockLen = 12              // RFC 3611 section 4.5
)

// validRTCP reports whether pkt is a compound RTCP packet this package can
// walk: one or more packets of version 2 whose length fields add up to
// exactly len(pkt). Contents are not checked; the rewriters touch only
// fields that lie within their packet's length.
func validRTCP(pkt []byte) bool {
	if len(pkt) < rtcpHeaderLen {
		return false
	}
	for off := 0; off < len(pkt); {
		if len(pkt)-off < rtcpHeaderLen || pkt[off]>>6 != 2 {
			return false
		}
		n := rtcpLen(pkt[off:])
		if n > len(pkt)-off {
			return false
		}
		off += n
	}
	return true
}

// rtcpLen is the length of the RTCP packet at the start of p, from its
// header; p holds at least the header.
func rtcpLen(p []byte) int { return 4 * (int(binary.BigEndian.Uint16(p[2:])) + 1) }

// nextRTCP splits the first packet off a compound packet that validRTCP
// accepted.
func nextRTCP(pkt []byte) (p, rest []byte) {
	n := rtcpLen(pkt)
	return pkt[:n], pkt[n:]
}

// swapSSRC replaces the SSRC at p[off:] by to when it is from, if it lies
// within p.
func swapSSRC(p []byte, off int, from, to uint32) {
	if off >= 0 && off+4 <= len(p) && binary.BigEndian.Uint32(p[off:]) == from {
		binary.BigEndian.PutUint32(p[off:], to)
	}
}

// RewriteSenderRTCP maps a compound RTCP packet from the source side into
// the output stream's terms, in place: wherever the current source SSRC
// names the sender (SR and RR sender, SDES chunk, BYE, APP, RTPFB, PSFB
// and XR sender fields) it becomes OutSSRC, and the SR's RTP timestamp is
// moved into the output timestamp space. Report blocks and feedback about
// the other direction are left alone: map them with RewriteFeedbackRTCP
// and the other direction's Normalizer. A BYE of the source is kept and
// mapped, like the rest.
//
// It reports false, leaving pkt unchanged, when pkt is not a compound RTCP
// packet, or when it holds a sender report from an SSRC other than the
// current source (a stale SR, or one before the first RTP packet: its
// NTP-to-RTP mapping would mislead the receiver); the caller drops those.
// It may be called from any goroutine and does not allocate.
func (n *Normalizer) RewriteSenderRTCP(pkt []byte) bool {
	if !validRTCP(pkt) {
		return false
	}
	src, known := n.source.Load(), n.hasSource.Load()
	in, tsOff := uint32(src>>32), uint32(src)
	for p, rest := nextRTCP(pkt); ; p, rest = nextRTCP(rest) {
		if p[1] == rtcpSR && len(p) >= 8 && (!known || binary.BigEndian.Uint32(p[4:]) != in) {
			return false
		}
		if len(rest) == 0 {
			break
		}
	}
	if !known {
		return true // no SR, and no source to map
	}
	for p, rest := nextRTCP(pkt); ; p, rest = nextRTCP(rest) {
		n.rewriteSender(p, in, tsOff)
		if len(rest) == 0 {
			return true
		}
	}
}

// rewriteSender maps the sender fields of one RTCP packet from in to the
// output SSRC.
func (n *Normalizer) rewriteSender(p []byte, in, tsOff uint32) {
	switch p[1] {
	case rtcpSR:
		swapSSRC(p, 4, in, n.out)
		if len(p) >= 20 {
			binary.BigEndian.PutUint32(p[16:], binary.BigEndian.Uint32(p[16:])+tsOff)
		}
	case rtcpRR, rtcpAPP, rtcpRTPFB, rtcpPSFB, rtcpXR:
		swapSSRC(p, 4, in, n.out)
	case rtcpSDES:
		rewriteSDES(p, in, n.out)
	case rtcpBYE:
		for i := range int(p[0] & 0x1f) {
			swapSSRC(p, rtcpHeaderLen+4*i, in, n.out)
		}
	}
}

// rewriteSDES maps the SSRC of each SDES chunk (RFC 3550 section 6.5):
// an SSRC, items (type, length, text) up to a null type, padding to 32
// bits.
func rewriteSDES(p []byte, from, to uint32) {
	pos := rtcpHeaderLen
	for range int(p[0] & 0x1f) {
		if pos+4 > len(p) {
			return
		}
		swapSSRC(p, pos, from, to)
		pos += 4
		for pos < len(p) && p[pos] != 0 {
			if pos+2 > len(p) {
				return
			}
			pos += 2 + int(p[pos+1])
		}
		pos = (pos + 1 + 3) &^ 3 // the null item, then padding
	}
}

// RewriteFeedbackRTCP maps a compound RTCP packet from the receiving side
// of a normalized stream, in place, so that the stream's original sender
// understands it: every field that names the media source `out` (the
// normalized stream's SSRC) is changed to `in` (the sender's own SSRC).
// Those are SR and RR report blocks, the media SSRC of RTPFB and PSFB
// packets (NACK, transport-cc, PLI, ...), FIR entries, REMB SSRC lists and
// the source SSRCs of XR report blocks (RFC 3611: loss and duplicate RLE,
// receipt times, DLRR, statistics summary, VoIP metrics).
//
// Sequence numbers are not translated: NACK lists and the extended
// highest sequence number of report blocks stay in the output's numbering.
//
// It reports false, leaving pkt unchanged, when pkt is not a compound RTCP
// packet. It never changes the length of pkt, may be called from any
// goroutine and does not allocate.
func RewriteFeedbackRTCP(pkt []byte, out, in uint32) bool {
	if !validRTCP(pkt) {
		return false
	}
	if out == in {
		return true
	}
	for p, rest := nextRTCP(pkt); ; p, rest = nextRTCP(rest) {
		rewriteFeedback(p, out, in)
		if len(rest) == 0 {
			return true
		}
	}
}

// rewriteFeedback maps the media SSRC fields of one RTCP packet.
func rewriteFeedback(p []byte, out, in uint32) {
	count := int(p[0] & 0x1f)
	switch p[1] {
	case rtcpSR:
		for i := range count {
			swapSSRC(p, senderInfoEnd+i*reportBlockLen, out, in)
		}
	case rtcpRR:
		for i := range count {
			swapSSRC(p, 8+i*reportBlockLen, out, in)
		}
	case rtcpRTPFB:
		swapSSRC(p, 8, out, in)
	case rtcpPSFB:
		swapSSRC(p, 8, out, in)
		rewritePSFB(p, count, out, in)
	case rtcpXR:
		rewriteXR(p, out, in)
	}
}

// rewritePSFB maps the SSRCs in the FCI of FIR (RFC 5104 section 4.3.1)
// and REMB packets.
func rewritePSFB(p []byte, format int, out, in uint32) {
	switch format {
	case psfbFIR:
		for off := feedbackFCI; off+firEntryLen <= len(p); off += firEntryLen {
			swapSSRC(p, off, out, in)
		}
	case psfbREMB:
		if len(p) < rembSSRCListOff || string(p[feedbackFCI:feedbackFCI+4]) != "REMB" {
			return
		}
		for i := range int(p[feedbackFCI+4]) {
			swapSSRC(p, rembSSRCListOff+4*i, out, in)
		}
	}
}

// XR report block types (RFC 3611 section 4) that carry an SSRC.
const (
	xrLossRLE      = 1
	xrDupRLE       = 2
	xrReceiptTimes = 3
	xrDLRR         = 5
	xrStatsSummary = 6
	xrVoIPMetrics  = 7
)

// rewriteXR maps the source SSRC of each XR report block: a block is a
// type, a type-specific byte, a length in 32-bit words after the block
// header, and contents.
func rewriteXR(p []byte, out, in uint32) {
	for off := 8; off+4 <= len(p); {
		end := min(off+4+4*int(binary.BigEndian.Uint16(p[off+2:])), len(p))
		switch p[off] {
		case xrLossRLE, xrDupRLE, xrReceiptTimes, xrStatsSummary, xrVoIPMetrics:
			swapSSRC(p[:end], off+4, out, in)
		case xrDLRR:
			for sub := off + 4; sub+dlrrSubBlockLen <= end; sub += dlrrSubBlockLen {
				swapSSRC(p, sub, out, in)
			}
		}
		off = end
	}
}
