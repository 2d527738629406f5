package rtpproc

import (
	"bytes"
	"slices"
	"testing"

	"github.com/pion/rtcp"
)

// sdesOf returns the CNAME and every other item of each SDES chunk in
// the compound pkt, as pion reads them.
func sdesOf(t *testing.T, pkt []byte) (cnames map[uint32]string, others []string) {
	t.Helper()
	pkts, err := rtcp.Unmarshal(pkt)
	if err != nil {
		t.Fatalf("rewritten compound does not parse: %v\n%x", err, pkt)
	}
	cnames = map[uint32]string{}
	for _, p := range pkts {
		sd, ok := p.(*rtcp.SourceDescription)
		if !ok {
			continue
		}
		for _, c := range sd.Chunks {
			for _, it := range c.Items {
				if it.Type == rtcp.SDESCNAME {
					cnames[c.Source] = it.Text
				} else {
					others = append(others, it.Text)
				}
			}
		}
	}
	return cnames, others
}

func TestReplaceSDES(t *testing.T) {
	ours, err := SDESPacket(0x0f0f, "sbc-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	sdes := func(chunks ...rtcp.SourceDescriptionChunk) rtcp.Packet {
		return &rtcp.SourceDescription{Chunks: chunks}
	}
	chunk := func(ssrc uint32, items ...rtcp.SourceDescriptionItem) rtcp.SourceDescriptionChunk {
		return rtcp.SourceDescriptionChunk{Source: ssrc, Items: items}
	}
	cname := rtcp.SourceDescriptionItem{Type: rtcp.SDESCNAME, Text: "alice@192.0.2.10"}
	rr := &rtcp.ReceiverReport{SSRC: 0x1111}
	tests := []struct {
		name  string
		in    []rtcp.Packet
		spare int    // capacity beyond the packet
		types []byte // packet types of the result, in order
		ours  bool   // the SBC's SDES is in the result
	}{
		{"rr and sdes", []rtcp.Packet{rr, sdes(chunk(0x1111, cname))}, 512, []byte{201, 202}, true},
		{"every item kind", []rtcp.Packet{rr, sdes(chunk(0x1111, cname,
			rtcp.SourceDescriptionItem{Type: rtcp.SDESName, Text: "Alice Example"},
			rtcp.SourceDescriptionItem{Type: rtcp.SDESEmail, Text: "alice@example.com"},
			rtcp.SourceDescriptionItem{Type: rtcp.SDESPhone, Text: "+12125551234"},
			rtcp.SourceDescriptionItem{Type: rtcp.SDESLocation, Text: "Room 42"},
			rtcp.SourceDescriptionItem{Type: rtcp.SDESTool, Text: "Linphone 5.2"},
			rtcp.SourceDescriptionItem{Type: rtcp.SDESNote, Text: "busy"},
			rtcp.SourceDescriptionItem{Type: rtcp.SDESPrivate, Text: "xyz"}),
			chunk(0x2222, rtcp.SourceDescriptionItem{Type: rtcp.SDESCNAME, Text: "x"}))}, 512, []byte{201, 202}, true},
		{"sdes in the middle and twice", []rtcp.Packet{rr, sdes(chunk(1, cname)), &rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2},
			sdes(chunk(3, cname)), &rtcp.Goodbye{Sources: []uint32{1}}}, 512, []byte{201, 202, 206, 203}, true},
		{"short sdes grows", []rtcp.Packet{rr, sdes(chunk(1, rtcp.SourceDescriptionItem{Type: rtcp.SDESCNAME, Text: "a"}))}, 64, []byte{201, 202}, true},
		{"empty sdes", []rtcp.Packet{rr, sdes()}, 64, []byte{201, 202}, true},
		{"no room: sdes removed", []rtcp.Packet{rr, sdes(chunk(1, rtcp.SourceDescriptionItem{Type: rtcp.SDESCNAME, Text: "a"}))}, 0, []byte{201}, false},
		{"no sdes", []rtcp.Packet{rr, &rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2}}, 0, []byte{201, 206}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := marshalRTCP(t, tc.in...)
			buf := make([]byte, len(raw), len(raw)+tc.spare)
			copy(buf, raw)
			out, ok := ReplaceSDES(buf, ours)
			if !ok {
				t.Fatal("ReplaceSDES refused a valid compound")
			}
			if !ValidRTCP(out) {
				t.Fatalf("result is not a valid compound: %x", out)
			}
			var types []byte
			for p, rest := nextRTCP(out); ; p, rest = nextRTCP(rest) {
				types = append(types, p[1])
				if len(rest) == 0 {
					break
				}
			}
			if !slices.Equal(types, tc.types) {
				t.Fatalf("packet types %v, want %v", types, tc.types)
			}
			cnames, others := sdesOf(t, out)
			if len(others) > 0 {
				t.Errorf("items crossed: %q", others)
			}
			want := map[uint32]string{}
			if tc.ours {
				want[0x0f0f] = "sbc-0123456789abcdef"
			}
			if len(cnames) != len(want) || cnames[0x0f0f] != want[0x0f0f] {
				t.Errorf("CNAMEs %v, want %v", cnames, want)
			}
			if bytes.Contains(out, []byte("alice")) {
				t.Errorf("the sender's identity is still in %x", out)
			}
		})
	}
}

func TestReplaceSDESRefusesJunk(t *testing.T) {
	ours, _ := SDESPacket(1, "sbc")
	for _, junk := range [][]byte{nil, {0x80}, {0x80, 202, 0, 9, 0, 0, 0, 1}, {0x40, 202, 0, 0}} {
		in := slices.Clone(junk)
		if out, ok := ReplaceSDES(in, ours); ok || !bytes.Equal(out, junk) {
			t.Errorf("ReplaceSDES(%x) = %x, %v; want it refused unchanged", junk, out, ok)
		}
	}
}

func TestSDESPacket(t *testing.T) {
	for _, name := range []string{"s", "sbc", "sbc-0123456789abcdef", string(bytes.Repeat([]byte{'x'}, 255))} {
		p, err := SDESPacket(0xabcdef01, name)
		if err != nil {
			t.Fatalf("SDESPacket(%d bytes): %v", len(name), err)
		}
		if len(p)%4 != 0 || !ValidRTCP(p) {
			t.Fatalf("SDESPacket(%d bytes) = %x: not a valid RTCP packet", len(name), p)
		}
		var sd rtcp.SourceDescription
		if err := sd.Unmarshal(p); err != nil || len(sd.Chunks) != 1 || sd.Chunks[0].Source != 0xabcdef01 ||
			len(sd.Chunks[0].Items) != 1 || sd.Chunks[0].Items[0].Text != name {
			t.Fatalf("SDESPacket(%d bytes) reads as %+v, %v", len(name), sd, err)
		}
	}
	for _, bad := range []string{"", string(bytes.Repeat([]byte{'x'}, 256))} {
		if _, err := SDESPacket(1, bad); err == nil {
			t.Errorf("SDESPacket with a %d-byte CNAME: no error", len(bad))
		}
	}
}

func TestValidRTCP(t *testing.T) {
	tests := []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"receiver report", []byte{0x80, 201, 0, 1, 0, 0, 0, 1}, true},
		{"source side compound", marshalRTCP(t, sourceSide(1, 2)...), true},
		{"feedback first (RFC 5506)", marshalRTCP(t, &rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2}), true},
		{"empty", nil, false},
		{"one byte", []byte{0x80}, false},
		{"header only", []byte{0x80, 201, 0, 0}, true},
		{"version 1", []byte{0x40, 201, 0, 1, 0, 0, 0, 1}, false},
		{"length past the end", []byte{0x80, 201, 0, 2, 0, 0, 0, 1}, false},
		{"trailing bytes", []byte{0x80, 201, 0, 1, 0, 0, 0, 1, 0}, false},
		{"old FIR first", []byte{0x80, 192, 0, 1, 0, 0, 0, 1}, false},
		{"rtp-looking second packet", []byte{0x80, 201, 0, 1, 0, 0, 0, 1, 0x80, 0, 0, 1, 0, 0, 0, 1}, false},
		{"padding before the last", []byte{0xa0, 201, 0, 1, 0, 0, 0, 1, 0x80, 201, 0, 1, 0, 0, 0, 1}, false},
		{"padding on the last", []byte{0x80, 201, 0, 1, 0, 0, 0, 1, 0xa0, 201, 0, 1, 0, 0, 0, 4}, true},
		{"rtp", pkt(1, 2, 3), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidRTCP(tc.pkt); got != tc.want {
				t.Fatalf("ValidRTCP(%x) = %v, want %v", tc.pkt, got, tc.want)
			}
		})
	}
}

func TestValidRTP(t *testing.T) {
	tests := []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"pcmu", pkt(1, 2, 3), true},
		{"one byte", []byte{0x80}, false},
		{"header cut", pkt(1, 2, 3)[:11], false},
		{"version 1", append([]byte{0x40}, pkt(1, 2, 3)[1:]...), false},
		{"rtcp type", []byte{0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0}, false},
		{"csrcs missing", append([]byte{0x82}, pkt(1, 2, 3)[1:12]...), false},
		{"padding longer than the payload", append(append([]byte{0xa0}, pkt(1, 2, 3)[1:12]...), 0, 200), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidRTP(tc.pkt); got != tc.want {
				t.Fatalf("ValidRTP(%x) = %v, want %v", tc.pkt, got, tc.want)
			}
		})
	}
}

func TestReplaceSDESDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	ours, _ := SDESPacket(2, "sbc-0123456789abcdef")
	src := marshalRTCP(t, sourceSide(1, 5)...)
	buf := make([]byte, 0, 2048)
	allocs := testing.AllocsPerRun(1000, func() {
		p := append(buf[:0], src...)
		ValidRTCP(p)
		ReplaceSDES(p, ours)
	})
	if allocs != 0 {
		t.Fatalf("ReplaceSDES allocates %.1f times per packet, want 0", allocs)
	}
}
