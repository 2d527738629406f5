package rtpproc

import (
	"testing"

	"github.com/pion/rtp"
)

func TestParseRTP(t *testing.T) {
	ext := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 1, CSRC: []uint32{7, 8}}, Payload: make([]byte, 20)}
	if err := ext.SetExtension(1, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	withExt, err := ext.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	padded := pkt(1, 1, 1)
	padded[0] |= 0x20
	padded[len(padded)-1] = 4
	tests := []struct {
		name   string
		pkt    []byte
		ok     bool
		hdr    int
		payEnd int
	}{
		{"plain", pkt(1, 1, 1), true, 12, 172},
		{"csrc and extension", withExt, true, len(withExt) - 20, len(withExt)},
		{"padding", padded, true, 12, 168},
		{"empty", nil, false, 0, 0},
		{"short", pkt(1, 1, 1)[:11], false, 0, 0},
		{"version 1", append([]byte{0x40}, pkt(1, 1, 1)[1:]...), false, 0, 0},
		{"rtcp type", append([]byte{0x80, 200}, pkt(1, 1, 1)[2:]...), false, 0, 0},
		{"csrc beyond end", append([]byte{0x8f}, pkt(1, 1, 1)[1:40]...), false, 0, 0},
		{"extension beyond end", append([]byte{0x90}, make([]byte, 13)...), false, 0, 0},
		{"padding zero", func() []byte { p := pkt(1, 1, 1); p[0] |= 0x20; p[len(p)-1] = 0; return p }(), false, 0, 0},
		{"padding beyond payload", func() []byte { p := pkt(1, 1, 1); p[0] |= 0x20; p[len(p)-1] = 200; return p }(), false, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, ok := parseRTP(tc.pkt)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && (h.hdrLen != tc.hdr || h.payEnd != tc.payEnd) {
				t.Fatalf("header %d, payload end %d; want %d, %d", h.hdrLen, h.payEnd, tc.hdr, tc.payEnd)
			}
		})
	}
}
