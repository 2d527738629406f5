package poll

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// seqHandler records the sequence numbers of the datagrams it is handed.
type seqHandler struct {
	mu   sync.Mutex
	seqs []uint32
	n    atomic.Int32
}

func (h *seqHandler) Datagram(pkt []byte, _ netip.AddrPort, _ int64, _ *Batch) {
	h.mu.Lock()
	h.seqs = append(h.seqs, binary.BigEndian.Uint32(pkt))
	h.mu.Unlock()
	h.n.Add(1)
}

// listen opens a non-blocking UDP socket on 127.0.44.71 and returns it
// with its address.
func listen(t *testing.T) (int, netip.AddrPort) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 44, 71}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 44, 71}), uint16(sa.(*unix.SockaddrInet4).Port))
}

// TestLoopDrainsBacklogInOrder: a socket holding a backlog when it joins
// a loop is drained, in order, whichever way the loop reads (io_uring
// with its growing number of receives per socket, or recvmmsg); Close
// then has the loop let go (Done, once) and closes the descriptor.
func TestLoopDrainsBacklogInOrder(t *testing.T) {
	for _, noRing := range []bool{false, true} {
		t.Run(map[bool]string{false: "ring", true: "recvmmsg"}[noRing], func(t *testing.T) {
			eng := NewEngine(Config{Loops: 1, NoRing: noRing})
			defer eng.Stop()
			fd, addr := listen(t)
			tx, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 44, 72)}, net.UDPAddrFromAddrPort(addr))
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			const n = 200
			for i := range n {
				if _, err := tx.Write(binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
					t.Fatal(err)
				}
			}
			h := &seqHandler{}
			var done atomic.Int32
			s := &Socket{Handler: h, Done: func() { done.Add(1) }}
			s.FD.Init(fd, false, false)
			if !eng.Loop(0).Add(s) {
				t.Fatal("Add refused")
			}
			deadline := time.Now().Add(5 * time.Second)
			for h.n.Load() < n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			h.mu.Lock()
			for i, seq := range h.seqs {
				if seq != uint32(i) {
					t.Fatalf("datagram %d has sequence %d", i, seq)
				}
			}
			got := len(h.seqs)
			h.mu.Unlock()
			if got != n {
				t.Fatalf("%d datagrams handed, want %d", got, n)
			}
			s.Close()
			s.Close() // idempotent
			if eng.Loop(0).Sockets() != 0 {
				t.Fatal("the socket is still in the loop after Close")
			}
			if done.Load() != 1 || !s.FD.Closed() {
				t.Fatalf("Done called %d times, descriptor closed %v; want 1 and true", done.Load(), s.FD.Closed())
			}
		})
	}
}

// TestRingOneReceivePerDatagram: a socket that gets one datagram per
// wake-up (a call's own, every 20 ms) gets one io_uring receive per
// round, not a second one that finds nothing every other round; a
// backlog still grows its receives (TestLoopDrainsBacklogInOrder).
func TestRingOneReceivePerDatagram(t *testing.T) {
	eng := NewEngine(Config{Loops: 1})
	defer eng.Stop()
	lp := eng.Loop(0)
	if !lp.Batched() {
		t.Skip("no io_uring on this kernel")
	}
	fd, addr := listen(t)
	tx, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 44, 72)}, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	h := &seqHandler{}
	s := &Socket{Handler: h}
	s.FD.Init(fd, false, false)
	if !lp.Add(s) {
		t.Fatal("Add refused")
	}
	defer s.Close()
	const n = 20
	for i := range n {
		if _, err := tx.Write(binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for h.n.Load() <= int32(i) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if h.n.Load() != int32(i+1) {
			t.Fatalf("datagram %d not handed", i)
		}
		lp.Sockets() // a round trip: the loop is done with the wake-up
	}
	if lp.recvs != n {
		t.Fatalf("%d receives for %d datagrams, one a wake-up: want %d", lp.recvs, n, n)
	}
}
