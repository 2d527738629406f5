package poll

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// echoHandler sends each datagram back to its source from the socket it
// came in on, queued in the loop's batch.
type echoHandler struct {
	s *Socket
	n atomic.Int32
}

func (h *echoHandler) Datagram(pkt []byte, from netip.AddrPort, _ int64, b *Batch) {
	if b.Queue(&h.s.FD, pkt, from, nil, 0) {
		h.n.Add(1)
	}
}

// userFiles reads how many files the io_uring ring fd has in its
// registered table, as the kernel lists them (/proc/self/fdinfo: the
// entries under "UserFiles:", the table's size).
func userFiles(t *testing.T, ringFD int) int {
	t.Helper()
	info, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(ringFD))
	if err != nil {
		t.Fatal(err)
	}
	in, seen, n := false, false, 0
	for _, line := range strings.Split(string(info), "\n") {
		switch {
		case strings.HasPrefix(line, "UserFiles:"):
			in, seen = true, true
		case in && strings.Contains(line, ": socket:"):
			n++
		case in:
			in = false
		}
	}
	if !seen {
		t.Skip("this kernel's io_uring fdinfo lists no UserFiles")
	}
	return n
}

// TestRingRegisteredFiles: a socket a ring loop reads is in the ring's
// registered file table while it is in the loop (the kernel lists it),
// its datagrams are read and its replies, queued from its own loop, sent
// through that entry; once it is closed the table lets go of it, so the
// socket really closes: its port can be bound again at once.
func TestRingRegisteredFiles(t *testing.T) {
	eng := NewEngine(Config{Loops: 1})
	defer eng.Stop()
	lp := eng.Loop(0)
	if !lp.Batched() {
		t.Skip("no io_uring on this kernel")
	}
	if lp.out.ring.files == 0 {
		t.Fatal("the ring has no registered file table")
	}
	ringFD := lp.out.ring.fd
	fd, addr := listen(t)
	h := &echoHandler{}
	var done atomic.Int32
	s := &Socket{Handler: h, Done: func() { done.Add(1) }}
	h.s = s
	s.FD.Init(fd, false, false)
	if !lp.Add(s) {
		t.Fatal("Add refused")
	}
	lp.Sockets() // a round trip: the loop registered it
	if n := userFiles(t, ringFD); n != 1 {
		t.Fatalf("the ring holds %d registered files, want 1", n)
	}
	if s.FD.fixedIn.Load() != lp.out {
		t.Fatal("the socket's descriptor does not name the loop's registered entry")
	}

	tx, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 44, 72)}, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	const n = 50
	buf := make([]byte, 64)
	for i := range n {
		if _, err := tx.Write(binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
			t.Fatal(err)
		}
		if err := tx.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		k, err := tx.Read(buf)
		if err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		if k != 4 || binary.BigEndian.Uint32(buf) != uint32(i) {
			t.Fatalf("echo %d: got % x", i, buf[:k])
		}
	}

	s.Close()
	if lp.Sockets() != 0 || done.Load() != 1 || !s.FD.Closed() {
		t.Fatalf("after Close: %d sockets, Done %d times, closed %v", lp.Sockets(), done.Load(), s.FD.Closed())
	}
	again, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(again)
	if err := unix.Bind(again, &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())}); err != nil {
		t.Fatalf("binding the closed socket's port %v again: %v (the ring keeps the socket open)", addr, err)
	}
	if n := userFiles(t, ringFD); n != 0 {
		t.Fatalf("the ring still holds %d registered files after Close", n)
	}
}
