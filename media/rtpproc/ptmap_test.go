package rtpproc

import "testing"

func TestPTMap(t *testing.T) {
	m := IdentityPTMap()
	m[111] = 96  // opus renumbered
	m[101] = 126 // telephone-event renumbered
	m[13] = -1   // comfort noise dropped
	m[50] = 300  // out of range: dropped
	tests := []struct {
		name   string
		b1     byte // second header byte in
		ok     bool
		wantB1 byte
	}{
		{"kept", 0, true, 0},
		{"renumbered", 111, true, 96},
		{"marker kept", 0x80 | 101, true, 0x80 | 126},
		{"dropped", 13, false, 13},
		{"invalid target dropped", 50, false, 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := pkt(1, 2, 3)
			p[1] = tc.b1
			if ok := m.Apply(p); ok != tc.ok || p[1] != tc.wantB1 {
				t.Fatalf("Apply = %v, byte 1 %#x; want %v, %#x", ok, p[1], tc.ok, tc.wantB1)
			}
		})
	}
	for _, p := range [][]byte{nil, pkt(1, 2, 3)[:11], append([]byte{0x40}, pkt(1, 2, 3)[1:]...)} {
		if m.Apply(p) {
			t.Errorf("Apply(% x) = true for a non-RTP packet", p)
		}
	}
	var zero PTMap
	p := pkt(1, 2, 3)
	p[1] = 8
	if !zero.Apply(p) || p[1] != 0 {
		t.Fatalf("zero PTMap: payload type %d, want 0", p[1])
	}
}

func TestPTMapDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	m := IdentityPTMap()
	p := pkt(1, 2, 3)
	if n := testing.AllocsPerRun(1000, func() { m.Apply(p) }); n != 0 {
		t.Fatalf("Apply allocates %.1f times, want 0", n)
	}
}
