package poll

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// nowHandler records, for each datagram, the time it was handed and the
// time its batch says the loop read it at.
type nowHandler struct {
	n, bad atomic.Int32
}

func (h *nowHandler) Datagram(_ []byte, _ netip.AddrPort, now int64, b *Batch) {
	if b == nil || b.Now() != now || now == 0 {
		h.bad.Add(1)
	}
	h.n.Add(1)
}

// TestBatchNowIsTheWakeUps: a handler handed a loop's batch reads from it
// the time the loop stamped the datagram with (its Config.Clock, read
// once per wake-up), so a handler deeper in the path (the WebRTC demux's
// Sink) need not read the clock per packet.
func TestBatchNowIsTheWakeUps(t *testing.T) {
	if _, err := NewBatch(); err != nil {
		t.Skip("no io_uring on this kernel")
	}
	var ticks atomic.Int64
	eng := NewEngine(Config{Loops: 1, Clock: func() int64 { return ticks.Add(1000) }})
	defer eng.Stop()
	fd, addr := listen(t)
	tx, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 44, 72)}, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	h := &nowHandler{}
	s := &Socket{Handler: h, Done: func() {}}
	s.FD.Init(fd, false, false)
	if !eng.Loop(0).Add(s) {
		t.Fatal("Add refused")
	}
	defer s.Close()
	const n = 50
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < n && time.Now().Before(deadline); {
		if _, err := tx.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		i++
		for h.n.Load() < int32(i) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	if got, bad := h.n.Load(), h.bad.Load(); got != n || bad != 0 {
		t.Fatalf("%d datagrams handed, %d with a batch whose Now is not their time; want %d and 0", got, bad, n)
	}
	if ticks.Load() < 2000 {
		t.Fatalf("the clock was read %d times for %d wake-ups", ticks.Load()/1000, n)
	}
}
