package poll

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// touchLog is a Toucher that records, in order, each Touch and each
// Datagram with the datagram and its source.
type touchLog struct {
	mu     *sync.Mutex
	events *[]string
}

func (h touchLog) Touch(pkt []byte, from netip.AddrPort) uintptr {
	h.add(fmt.Sprintf("touch %s from %v", pkt, from))
	return uintptr(len(pkt))
}

func (h touchLog) Datagram(pkt []byte, from netip.AddrPort, _ int64, _ *Batch) {
	h.add(fmt.Sprintf("datagram %s from %v", pkt, from))
}

func (h touchLog) add(e string) {
	h.mu.Lock()
	*h.events = append(*h.events, e)
	h.mu.Unlock()
}

// TestRingTouchesAhead: when one io_uring round receives datagrams from
// several sockets, the loop has each socket's Toucher read ahead for
// every datagram (same bytes, same source) before it hands any of them
// over, and then hands them all; a round of one datagram is handed
// without a touch.
func TestRingTouchesAhead(t *testing.T) {
	eng := NewEngine(Config{Loops: 1})
	defer eng.Stop()
	lp := eng.Loop(0)
	if !lp.Batched() {
		t.Skip("no io_uring on this kernel")
	}
	// The gate holds the loop in a handler while the others' datagrams
	// arrive, so that one round receives them all.
	gfd, gaddr := listen(t)
	gate := &blockHandler{in: make(chan struct{}), release: make(chan struct{})}
	gs := &Socket{Handler: gate}
	gs.FD.Init(gfd, false, false)
	if !lp.Add(gs) {
		t.Fatal("Add refused")
	}
	defer gs.Close()
	var mu sync.Mutex
	var events []string
	const n = 4
	var want []string
	var txs []*net.UDPConn
	for range n {
		fd, addr := listen(t)
		s := &Socket{Handler: touchLog{&mu, &events}}
		s.FD.Init(fd, false, false)
		if !lp.Add(s) {
			t.Fatal("Add refused")
		}
		defer s.Close()
		tx, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 44, 72)}, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		txs = append(txs, tx)
	}
	lp.Sockets() // a round trip: all are in the epoll set
	g, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 44, 72)}, net.UDPAddrFromAddrPort(gaddr))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Write([]byte("gate")); err != nil {
		t.Fatal(err)
	}
	<-gate.in
	for i, tx := range txs {
		msg := fmt.Sprintf("p%d", i)
		if _, err := tx.Write([]byte(msg)); err != nil {
			close(gate.release)
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%s from %v", msg, tx.LocalAddr().(*net.UDPAddr).AddrPort()))
	}
	close(gate.release)
	got := waitEvents(t, &mu, &events, 2*n)
	touched, handed := map[string]bool{}, map[string]bool{}
	for i, e := range got {
		kind, rest, _ := strings.Cut(e, " ")
		switch {
		case kind == "touch" && len(handed) > 0:
			t.Fatalf("event %d, %q, after a datagram was handed: %q", i, e, got)
		case kind == "touch":
			touched[rest] = true
		default:
			handed[rest] = true
		}
	}
	for _, w := range want {
		if !touched[w] || !handed[w] {
			t.Fatalf("%q touched %v, handed %v; events %q", w, touched[w], handed[w], got)
		}
	}

	// One datagram in a round: handed, not touched.
	if _, err := txs[0].Write([]byte("alone")); err != nil {
		t.Fatal(err)
	}
	got = waitEvents(t, &mu, &events, 2*n+1)
	if e := got[2*n]; !strings.HasPrefix(e, "datagram alone") {
		t.Fatalf("a round of one datagram: %q, want it handed without a touch", got[2*n:])
	}
}

// waitEvents waits until events holds at least n entries and returns
// a copy of them.
func waitEvents(t *testing.T, mu *sync.Mutex, events *[]string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		got := append([]string(nil), *events...)
		mu.Unlock()
		if len(got) >= n {
			return got
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("%d events after 5 s, want %d: %q", len(*events), n, *events)
	return nil
}
