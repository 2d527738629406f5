package transport

import (
	"net/netip"
	"testing"
)

// TestListenerSymmetric: each packet reports its own listener's Symmetric
// setting (UDP only: streams answer on the connection), and its Source is
// the target a reply leaves from that same listener by.
func TestListenerSymmetric(t *testing.T) {
	checkRoutines(t)
	l, rec := newTestLayer(t, Limits{})
	bind := func(name string, kind Kind, symmetric bool) netip.AddrPort {
		t.Helper()
		addr, err := l.Listen(name, kind, "127.0.0.1:0", ListenOptions{Symmetric: symmetric})
		if err != nil {
			t.Fatalf("listen %s: %v", name, err)
		}
		return addr
	}
	access := bind("access", UDP, true)
	trunk := bind("trunk", UDP, false)
	stream := bind("stream", TCP, true)
	tests := []struct {
		name          string
		kind          Kind
		addr          netip.AddrPort
		wantSymmetric bool
	}{
		{"access", UDP, access, true},
		{"trunk", UDP, trunk, false},
		{"stream", TCP, stream, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialClient(t, tc.kind, tc.addr, nil)
			msg := []byte(sipMsg("OPTIONS", "Content-Length", ""))
			c.send(t, msg)
			p := rec.next(t)
			if p.Listener != tc.name || p.Symmetric != tc.wantSymmetric {
				t.Fatalf("packet from listener %q symmetric %v, want %q %v", p.Listener, p.Symmetric, tc.name, tc.wantSymmetric)
			}
			src := p.Source()
			want := Target{Kind: tc.kind, Addr: c.local(), Conn: p.Conn, Local: tc.addr, Listener: tc.name, Symmetric: tc.wantSymmetric}
			if src != want {
				t.Fatalf("source %+v, want %+v", src, want)
			}
			// The reply by Source leaves from the listener the client wrote
			// to: a client behind NAT gets nothing from another socket.
			if err := l.Send(src, msg); err != nil {
				t.Fatal(err)
			}
			if got := c.recv(t, len(msg)); string(got) != string(msg) {
				t.Fatalf("reply %q", got)
			}
		})
	}
}
