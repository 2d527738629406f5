package media

import (
	"encoding/binary"
	"testing"

	"github.com/sbc-project/sbc/media/rtpproc"
)

// FuzzLatch sends an arbitrary datagram from a stranger's address to a
// port latched to a call's phone, which has been silent since its first
// packet. Nothing may panic, and the latch may move only for what the
// rules allow a stranger: valid RTP of a negotiated payload type (PCMU,
// PCMA, telephone-event) that continues the phone's SSRC, 0xdeadbeef,
// 1 to relatchMaxAhead past its sequence number 1.
func FuzzLatch(f *testing.F) {
	for _, seed := range [][]byte{
		{0x42},
		rtpPacket(2),
		withSSRC(rtpPacket(2), 0x66),
		withPT(rtpPacket(2), 96),
		rtpPacket(1 + relatchMaxAhead + 1),
		rtcpPacket(),
		append(rtpPacket(9), 0, 0, 0, 4),
	} {
		f.Add(seed)
	}
	rig := newForwardRig(f)
	latched, last := rig.r.in.dst.Load(), rig.r.last
	f.Fuzz(func(t *testing.T, pkt []byte) {
		defer func() { rig.r.in.dst.Store(latched); rig.r.last = last }()
		// Silent for long enough, whatever the fuzzer's pace.
		rig.r.last.at = monotonic() - int64(relatchSilence)
		in := append([]byte(nil), pkt...)
		rig.r.forward(pkt, attackerSrc)
		if p := rig.r.in.dst.Load(); p != latched && !continues(in) {
			t.Fatalf("%x from a stranger moved the latch to %s", in, p.addr)
		}
	})
}

// continues reports whether pkt is what FuzzLatch lets a stranger move
// the latch with.
func continues(pkt []byte) bool {
	if !rtpproc.ValidRTP(pkt) {
		return false
	}
	pt := pkt[1] & 0x7f
	d := binary.BigEndian.Uint16(pkt[2:]) - 1
	return (pt == 0 || pt == 8 || pt == 101) && binary.BigEndian.Uint32(pkt[8:]) == 0xdeadbeef && d >= 1 && d <= relatchMaxAhead
}
