package transport

import "testing"

// TestKindParam: each transport's parameter name, made without
// allocating (the SBC asks it of every message received).
func TestKindParam(t *testing.T) {
	for k, want := range map[Kind]string{UDP: "udp", TCP: "tcp", TLS: "tls", WS: "ws", WSS: "wss", Kind(9): "kind(9)"} {
		if got := k.Param(); got != want {
			t.Errorf("%v.Param() = %q, want %q", k, got, want)
		}
	}
	if raceEnabled {
		return
	}
	if a := testing.AllocsPerRun(50, func() { _ = WSS.Param() }); a != 0 {
		t.Errorf("Param: %.0f allocations, want 0", a)
	}
}
