package policy

import (
	"net/netip"
	"testing"
)

func TestTableBounded(t *testing.T) {
	for _, capacity := range []int{1, 10, 1000, 4096} {
		tb := newTable[int](capacity)
		for i := range 100000 {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			tb.do(a, func(v *int, _ bool) { *v++ })
			if i%9973 == 0 && tb.len() > capacity {
				t.Fatalf("capacity %d: %d entries after %d sources", capacity, tb.len(), i+1)
			}
		}
		if n := tb.len(); n > capacity || n < capacity/2 {
			t.Errorf("capacity %d: %d entries after 1e5 sources, want at most %d and not far below", capacity, n, capacity)
		}
	}
}

func TestTableKeepsBusySources(t *testing.T) {
	tb := newTable[int](256)
	busy := netip.MustParseAddr("192.0.2.1")
	for i := range 50000 {
		tb.do(busy, func(v *int, _ bool) { *v++ })
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		tb.do(a, func(v *int, _ bool) {})
	}
	var got int
	if !tb.peek(busy, func(v *int) { got = *v }) || got != 50000 {
		t.Errorf("busy source: present %v count %d, want it kept with 50000", got != 0, got)
	}
}

func TestTableFresh(t *testing.T) {
	tb := newTable[int](4)
	a := netip.MustParseAddr("192.0.2.1")
	var fresh []bool
	for range 3 {
		tb.do(a, func(v *int, f bool) { fresh = append(fresh, f); *v = 7 })
	}
	if !fresh[0] || fresh[1] || fresh[2] {
		t.Errorf("fresh = %v, want true only on first use", fresh)
	}
}

func TestSourceKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"2001:db8:1:2::99", "2001:db8:1:2::"},
		{"fe80::1%eth0", "fe80::"},
	}
	for _, tt := range tests {
		if got := sourceKey(netip.MustParseAddr(tt.in)); got.String() != tt.want {
			t.Errorf("sourceKey(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
