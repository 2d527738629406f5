package transport

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// TestUDPReplySource checks which socket a UDP Send leaves from.
func TestUDPReplySource(t *testing.T) {
	checkRoutines(t)
	l, _ := newTestLayer(t, Limits{})
	a := listen(t, l, "a", UDP, nil)
	b := listen(t, l, "b", UDP, nil)
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	to := addrPortOf(peer.LocalAddr())
	tests := []struct {
		name string
		t    Target
		from netip.AddrPort
	}{
		{"first of the family", Target{Kind: UDP, Addr: to}, a},
		{"by listener name", Target{Kind: UDP, Addr: to, Listener: "b"}, b},
		{"by local address", Target{Kind: UDP, Addr: to, Local: b}, b},
		{"name wins over local", Target{Kind: UDP, Addr: to, Listener: "a", Local: b}, a},
		{"unknown name falls back", Target{Kind: UDP, Addr: to, Listener: "zz"}, a},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Send(tc.t, []byte("SIP/2.0 200 OK\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			_ = peer.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 100)
			_, from, err := peer.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			if from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port()); from != tc.from {
				t.Fatalf("sent from %v, want %v", from, tc.from)
			}
		})
	}
}

func TestBoundAddr(t *testing.T) {
	tests := []struct {
		name      string
		requested string
		socket    net.Addr
		want      string
	}{
		{"ipv4 wildcard stays ipv4", "0.0.0.0:5060", &net.TCPAddr{IP: net.IPv6unspecified, Port: 5060}, "0.0.0.0:5060"},
		{"empty host is dual-stack", ":5060", &net.TCPAddr{IP: net.IPv6unspecified, Port: 5060}, "[::]:5060"},
		{"ipv6 wildcard", "[::]:0", &net.UDPAddr{IP: net.IPv6unspecified, Port: 7}, "[::]:7"},
		{"mapped address unmapped", "127.0.0.1:0", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, "127.0.0.1:9"},
		{"nil socket address", "127.0.0.1:0", nil, "invalid AddrPort"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := boundAddr(tc.requested, tc.socket).String(); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestUDPWorkers: a UDP listener's datagrams are handled by several
// workers; one source's datagrams reach the handler in the order sent;
// while the handler is stuck, the worker's queue fills and the rest is
// dropped and counted, and the reader keeps reading.
func TestUDPWorkers(t *testing.T) {
	release := make(chan struct{})
	got := make(chan Packet, 4*udpQueueLen)
	l := New(nil, Limits{}, func(p Packet) {
		<-release
		got <- p
	})
	defer l.Close()
	addr, err := l.Listen("u", UDP, "127.0.0.1:0", ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := 0
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats().Dropped.QueueFull == 0 {
		if time.Now().After(deadline) || sent > 20*udpQueueLen {
			t.Fatalf("no queue-full drop after %d datagrams to a stuck handler", sent)
		}
		if _, err := c.Write([]byte(strconv.Itoa(sent))); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	close(release)
	last, n := -1, 0
	for {
		select {
		case p := <-got:
			seq, _ := strconv.Atoi(string(p.Data))
			if seq <= last {
				t.Fatalf("datagram %d handled after %d", seq, last)
			}
			last, n = seq, n+1
		case <-time.After(time.Second):
			if n == 0 || n >= sent {
				t.Fatalf("%d of %d datagrams handled, want some dropped", n, sent)
			}
			return
		}
	}
}

// TestCallIDOfRaw: the worker of a datagram is chosen by the Call-ID read
// from its raw header lines, in either form; none is found past the end of
// the headers.
func TestCallIDOfRaw(t *testing.T) {
	cases := map[string]string{
		"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nCall-ID: abc@host\r\n\r\n":         "abc@host",
		"BYE sip:a@b SIP/2.0\r\ni:   short-form \r\nCSeq: 2 BYE\r\n\r\n":        "short-form",
		"SIP/2.0 200 OK\r\ncall-id: lower\r\n\r\n":                              "lower",
		"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\nCall-ID: in-the-body\r\n\r\n": "",
		"garbage": "",
	}
	for msg, want := range cases {
		if got := string(callID([]byte(msg))); got != want {
			t.Errorf("%q: Call-ID %q, want %q", msg, got, want)
		}
	}
}

// TestHandAllocatesNothing: choosing a datagram's worker costs no
// allocation (it runs for every UDP message).
func TestHandAllocatesNothing(t *testing.T) {
	w := &udpWorkers{queues: []chan Packet{make(chan Packet, 1), make(chan Packet, 1)}}
	l := New(nil, Limits{}, nil)
	defer l.Close()
	p := Packet{Data: []byte("BYE sip:a@b SIP/2.0\r\nVia: x\r\nCall-ID: abc@host\r\n\r\n")}
	allocs := testing.AllocsPerRun(100, func() {
		w.hand(l, p)
		for _, q := range w.queues {
			select {
			case <-q:
			default:
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%.0f allocations per datagram", allocs)
	}
}
