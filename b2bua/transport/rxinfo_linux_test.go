package transport

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// queued is the number of bytes waiting in sock's receive buffer.
func queued(t *testing.T, sock *net.UDPConn) int {
	rc, err := sock.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || ierr != nil {
		t.Fatal(err, ierr)
	}
	return n
}

// rxSocket is a loopback UDP socket with receive info enabled and the
// smallest receive buffer, and a sender aimed at it.
func rxSocket(t testing.TB) (rx, tx *net.UDPConn) {
	t.Helper()
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rx.Close() })
	if err := enableRxInfo(rx); err != nil {
		t.Fatal(err)
	}
	if err := rx.SetReadBuffer(1); err != nil { // the kernel rounds it up to its minimum
		t.Fatal(err)
	}
	tx, err = net.DialUDP("udp", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Close() })
	return rx, tx
}

// TestRxInfo: a datagram read carries the time the kernel received it,
// before the read began (so the wait in the socket buffer shows, where the
// time of the read would not), and a datagram queued after the small
// buffer overflowed carries the count of datagrams the socket dropped.
func TestRxInfo(t *testing.T) {
	rx, tx := rxSocket(t)
	// The kernel turns arrival stamping on a moment after the option is
	// set (until then it stamps at the read): wait for a stamp that
	// precedes its read.
	buf, oob := make([]byte, 2048), make([]byte, rxInfoSize)
	eventually(t, "arrival stamps", func() bool {
		if _, err := tx.Write([]byte("probe")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the probe in the socket buffer", func() bool { return queued(t, rx) > 0 })
		read := time.Now()
		_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, oobn, _, _, err := rx.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		arrived, _, _ := parseRxInfo(oob[:oobn])
		return arrived.Before(read)
	})
	sent := time.Now()
	payload := make([]byte, 1200)
	for range 200 { // far more than the minimal buffer holds
		if _, err := tx.Write(payload); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "a datagram in the socket buffer", func() bool { return queued(t, rx) > 0 })
	read := time.Now()
	_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, oobn, _, _, err := rx.ReadMsgUDPAddrPort(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	arrived, _, _ := parseRxInfo(oob[:oobn])
	if arrived.Before(sent.Add(-time.Second)) || !arrived.Before(read) {
		t.Errorf("arrived %v, want between the send %v and the read %v", arrived, sent, read)
	}
	// Drain what the buffer held, then one more: the kernel reports with
	// each datagram the drops counted when it was queued.
	for {
		_ = rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, _, _, _, err := rx.ReadMsgUDPAddrPort(buf, oob); err != nil {
			break
		}
	}
	if _, err := tx.Write([]byte("end")); err != nil {
		t.Fatal(err)
	}
	_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, oobn, _, _, err := rx.ReadMsgUDPAddrPort(buf, oob)
	if err != nil || string(buf[:n]) != "end" {
		t.Fatalf("read %q, %v; want the last datagram", buf[:n], err)
	}
	if _, drops, ok := parseRxInfo(oob[:oobn]); !ok || drops == 0 || drops >= 200 {
		t.Errorf("drop count %d (reported %v), want some of 200 datagrams dropped from a minimal buffer", drops, ok)
	}
}

// TestRxInfoAllocatesNothing: reading a datagram with its receive info
// costs no allocation (it runs for every UDP message).
func TestRxInfoAllocatesNothing(t *testing.T) {
	rx, tx := rxSocket(t)
	buf, oob, msg := make([]byte, 2048), make([]byte, rxInfoSize), []byte("OPTIONS sip:a@b SIP/2.0\r\n\r\n")
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = tx.Write(msg)
		_, oobn, _, _, err := rx.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		if at, _, _ := parseRxInfo(oob[:oobn]); at.IsZero() {
			t.Fatal("no arrival time")
		}
	})
	if allocs != 0 {
		t.Errorf("%.0f allocations per datagram read", allocs)
	}
}

// BenchmarkRxInfo: one datagram sent and read with its receive info.
func BenchmarkRxInfo(b *testing.B) {
	rx, tx := rxSocket(b)
	_ = rx.SetReadBuffer(1 << 20)
	buf, oob, msg := make([]byte, 2048), make([]byte, rxInfoSize), make([]byte, 800)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = tx.Write(msg)
		_, oobn, _, _, _ := rx.ReadMsgUDPAddrPort(buf, oob)
		parseRxInfo(oob[:oobn])
	}
}

// TestUDPListenerReadBuffer: a SIP UDP listener's socket has the large
// receive buffer, as far as the system lets the process have it (all of
// it with CAP_NET_ADMIN, else up to net.core.rmem_max), never the
// default.
func TestUDPListenerReadBuffer(t *testing.T) {
	l, _ := newTestLayer(t, Limits{})
	ap := listen(t, l, "udp", UDP, nil)
	l.mu.Lock()
	var sock *net.UDPConn
	for _, li := range l.listeners {
		if li.udp != nil && li.addr == ap {
			sock = li.udp
		}
	}
	l.mu.Unlock()
	if sock == nil {
		t.Fatalf("no listener on %s", ap)
	}
	rc, err := sock.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	limit := udpReadBuffer
	if b, err := os.ReadFile("/proc/sys/net/core/rmem_max"); err == nil {
		if max, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && max < limit {
			limit = max // without CAP_NET_ADMIN the kernel caps at rmem_max
		}
	}
	// The kernel reports twice what was set (its bookkeeping overhead).
	if got < limit {
		t.Fatalf("SO_RCVBUF %d, want at least %d", got, limit)
	}
}
