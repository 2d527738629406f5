package codec

import (
	"encoding/binary"
	"testing"
)

// FuzzTranscoderPacket feeds arbitrary packets between valid ones to
// transcoders of each direction with telephone-events: no panic, and all
// that comes out is well-formed RTP of the To side.
func FuzzTranscoderPacket(f *testing.F) {
	f.Add(rtpPacket(0, true, 1001, 90160, 0x1234, make([]byte, 160)))
	f.Add(rtpPacket(101, true, 1001, 90000, 0x1234, []byte{5, 0x8a, 0x03, 0x20}))
	f.Add([]byte{0x90, 0x00, 0x03, 0xe9, 0, 1, 0x60, 0x30, 0, 0, 0x12, 0x34, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0, 0xd5})
	f.Add([]byte{0xa0, 0x00, 0x03, 0xe9, 0, 1, 0x60, 0x30, 0, 0, 0x12, 0x34, 0xd5, 0xd5, 0x03})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for _, d := range directions() {
			checkFuzzPacket(t, d.from, d.to, pkt)
		}
	})
}

func checkFuzzPacket(t *testing.T, from, to Format, pkt []byte) {
	tr, err := NewTranscoder(Direction{From: from, To: to, FromDTMF: 101, ToDTMF: 96, SSRC: 9})
	if err != nil {
		t.Fatal(err)
	}
	s := newSender(t, from, 20)
	emit := func(p []byte) {
		if _, err := rtpPayload(p); err != nil || binary.BigEndian.Uint32(p[8:]) != 9 {
			t.Fatalf("sent %x", p)
		}
		if pt := p[1] & 0x7f; pt != to.PT && pt != 96 {
			t.Fatalf("sent payload type %d", pt)
		}
	}
	_ = tr.Packet(s.next(1000, 8000), emit)
	if len(pkt) >= 12 && pkt[1]&0x7f == 0 {
		// Payload type 0 stands for From's audio, so that every
		// decoder sees the fuzzed payloads.
		pkt = append([]byte(nil), pkt...)
		pkt[1] = pkt[1]&0x80 | from.PT
	}
	_ = tr.Packet(pkt, emit)
	_ = tr.Packet(s.next(1000, 8000), emit)
	_ = tr.Packet(s.next(1000, 8000), emit)
}
