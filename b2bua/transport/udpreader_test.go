package transport

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// udpPair is a UDP listener on loopback and a socket sending to it.
func udpPair(t *testing.T, handler func(Packet)) (*Layer, *udpWorkers, *net.UDPConn) {
	t.Helper()
	l := New(nil, Limits{}, handler)
	t.Cleanup(func() { l.Close() })
	addr, err := l.Listen("u", UDP, "127.0.0.1:0", ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	w := l.listeners[len(l.listeners)-1].workers
	l.mu.Unlock()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr.Addr(), addr.Port())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return l, w, c
}

func sipWithCallID(id string, n int) []byte {
	return fmt.Appendf(nil, "BYE sip:a@b SIP/2.0\r\nCall-ID: %s\r\nCSeq: %d BYE\r\n\r\n", id, n)
}

// TestUDPReaderDeliversWhenIdle: a datagram that finds its worker idle
// and nothing else waiting in the socket is delivered by the reader
// itself, without a hand-off to the worker.
func TestUDPReaderDeliversWhenIdle(t *testing.T) {
	got := make(chan Packet, 1)
	_, w, c := udpPair(t, func(p Packet) { got <- p })
	const n = 20
	for i := range n {
		if _, err := c.Write(sipWithCallID(fmt.Sprint("call-", i), 1)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("datagram %d not delivered", i)
		}
	}
	// One at a time, each sent after the one before was handled: the
	// socket never held two, and the workers had nothing.
	if in := w.inline.Load(); in != n {
		t.Fatalf("%d of %d datagrams delivered by the reader itself, want all", in, n)
	}
}

// TestUDPReaderTakenOver: while the reader's own delivery of a datagram
// is stuck, another goroutine reads on: another call's datagram is
// delivered meanwhile, and the stuck call's next datagram waits for it
// and comes after it.
func TestUDPReaderTakenOver(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	unstick := func() { once.Do(func() { close(release) }) }
	defer unstick() // before the cleanup's Close, which waits for the handler
	got := make(chan string, 8)
	_, w, c := udpPair(t, func(p Packet) {
		id := string(callID(p.Data))
		if id == "stuck" && cseqOf(p.Data) == 1 {
			<-release
		}
		got <- fmt.Sprintf("%s %d", id, cseqOf(p.Data))
	})
	send := func(id string, n int) {
		if _, err := c.Write(sipWithCallID(id, n)); err != nil {
			t.Fatal(err)
		}
	}
	send("stuck", 1)
	deadline := time.Now().Add(10 * time.Second)
	for w.inline.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if w.inline.Load() == 0 {
		t.Fatal("the reader did not deliver the first datagram itself")
	}
	// The stuck call's next datagram is read and queued behind it.
	send("stuck", 2)
	stuck := w.slot(&Packet{Data: sipWithCallID("stuck", 2)})
	for stuck.pending.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if stuck.pending.Load() == 0 {
		t.Fatal("the socket was not read while the reader's delivery was stuck")
	}
	// Another call's, in another slot, is delivered meanwhile.
	other := ""
	for i := 0; other == "" && i < 100 && len(w.slots) > 1; i++ {
		id := fmt.Sprint("other-", i)
		if w.slot(&Packet{Data: sipWithCallID(id, 1)}) != stuck {
			other = id
		}
	}
	if other != "" {
		send(other, 1)
		select {
		case s := <-got:
			if s != other+" 1" {
				t.Fatalf("delivered %q while the first was stuck, want %s 1", s, other)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("another call's datagram was not delivered while the reader's delivery was stuck")
		}
	}
	unstick()
	for _, want := range []string{"stuck 1", "stuck 2"} {
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("delivered %q, want %q", s, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s not delivered", want)
		}
	}
}

// cseqOf reads the CSeq number of sipWithCallID's messages.
func cseqOf(b []byte) int {
	var n int
	for _, line := range bytesLines(b) {
		if _, err := fmt.Sscanf(line, "CSeq: %d BYE", &n); err == nil {
			return n
		}
	}
	return -1
}

func bytesLines(b []byte) []string {
	var out []string
	start := 0
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' {
			out = append(out, string(b[start:i]))
			start = i + 2
		}
	}
	return out
}
