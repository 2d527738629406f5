package wrtc

import (
	"bytes"
	"testing"
)

// FuzzClassify: Classify never panics and agrees with RFC 7983's ranges.
func FuzzClassify(f *testing.F) {
	for _, seed := range [][]byte{nil, {0}, {22, 0xfe, 0xfd}, {0x80, 111}, {0x80, 200}, {0xff}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		c := Classify(pkt)
		if len(pkt) == 0 {
			if c != ClassUnknown {
				t.Fatalf("empty packet classified %v", c)
			}
			return
		}
		if b := pkt[0]; (c == ClassDTLS) != (b >= 20 && b <= 63) || (c == ClassSTUN) != (b <= 3) {
			t.Fatalf("first byte %d classified %v", b, c)
		}
		if c == ClassRTP || c == ClassRTCP {
			if pkt[0] < 128 || pkt[0] > 191 {
				t.Fatalf("first byte %d classified %v", pkt[0], c)
			}
		}
	})
}

// capturePath keeps the last packet written.
type capturePath struct{ last []byte }

func (p *capturePath) Write(b []byte) (int, error) {
	p.last = append(p.last[:0], b...)
	return len(b), nil
}

// FuzzDemux feeds arbitrary bytes to the whole receive path (classify,
// SRTP/SRTCP authentication and decryption, BUNDLE routing) and to the send
// path (WriteRTP/WriteRTCP with arbitrary "plain" packets, whose output is
// then received, so the routing code sees fuzzed content after a successful
// decryption). Nothing may panic.
func FuzzDemux(f *testing.F) {
	k := newKeyedDemux(f, benchProfiles[0])
	f.Add(k.srtpPacket(f, testSSRC, testPT, 1, payloadN(1)))
	f.Add(k.srtcpPacket(f, testSSRC))
	f.Add(rtpPacket(f, testSSRC, testPT, 1, []byte("plain")))
	f.Add([]byte{0x80, 201, 0, 1, 0x0a, 0x0b, 0x0c, 0x0d})
	f.Add([]byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42})
	f.Add([]byte{0x90, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, profile := range benchProfiles {
			k := newKeyedDemux(t, profile)
			k.d.handle(data)
			k.d.handle(bytes.Clone(data)) // again: replay handling
			path := &capturePath{}
			tr := &Transport{tx: k.send, path: path, wbuf: make([]byte, maxPacket+srtpOverhead)}
			if tr.WriteRTP(data) == nil {
				k.d.handle(path.last)
			}
			if tr.WriteRTCP(data) == nil {
				k.d.handle(path.last)
			}
			_ = k.d.routes.Load().rtcpSink(data)
		}
	})
}
