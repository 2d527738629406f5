package poll

import (
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
)

// blockHandler holds the loop inside Datagram until release is closed.
type blockHandler struct {
	in       chan struct{}
	release  chan struct{}
	finished atomic.Bool
}

func (h *blockHandler) Datagram([]byte, netip.AddrPort, int64, *Batch) {
	close(h.in)
	<-h.release
	h.finished.Store(true)
}

// TestQuiesceWaitsForTheWakeUp: Quiesce, called while the loop is inside
// a handler, returns only once the handler has returned; on a loop that
// waits it returns at once.
func TestQuiesceWaitsForTheWakeUp(t *testing.T) {
	for _, noRing := range []bool{false, true} {
		t.Run(map[bool]string{false: "ring", true: "recvmmsg"}[noRing], func(t *testing.T) {
			eng := NewEngine(Config{Loops: 1, NoRing: noRing})
			defer eng.Stop()
			lp := eng.Loop(0)
			lp.Quiesce() // idle: at once
			fd, addr := listen(t)
			h := &blockHandler{in: make(chan struct{}), release: make(chan struct{})}
			s := &Socket{Handler: h}
			s.FD.Init(fd, false, false)
			if !lp.Add(s) {
				t.Fatal("Add refused")
			}
			defer s.Close()
			tx, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 44, 73)}, net.UDPAddrFromAddrPort(addr))
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			if _, err := tx.Write([]byte{1}); err != nil {
				t.Fatal(err)
			}
			<-h.in
			released := false
			defer func() {
				if !released {
					close(h.release) // a failed check must not leave the loop blocked
				}
			}()
			var returned atomic.Bool
			sawFinished := make(chan bool, 1)
			go func() {
				lp.Quiesce()
				returned.Store(true)
				sawFinished <- h.finished.Load()
			}()
			// While the handler blocks, Quiesce must not return.
			for range 1000 {
				runtime.Gosched()
				if returned.Load() {
					t.Fatal("Quiesce returned while the loop was inside a handler")
				}
			}
			released = true
			close(h.release)
			if !<-sawFinished {
				t.Fatal("Quiesce returned before the handler did")
			}
		})
	}
}
