package poll

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// failCount is a Failer that counts.
type failCount struct{ tags []int }

func (f *failCount) SendFailed(tag, _ int) { f.tags = append(f.tags, tag) }

// kernelAtLeast reports whether the running kernel is major.minor or
// later.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(unix.ByteSliceToString(u.Release[:]), ".", 3)
	ma, _ := strconv.Atoi(parts[0])
	mi := 0
	if len(parts) > 1 {
		mi, _ = strconv.Atoi(parts[1])
	}
	return ma > major || ma == major && mi >= minor
}

// TestBatchSendsLikeSendmsg: a batch's queued sends arrive whole, in
// order, from the sending socket's address, to IPv4 and IPv6
// destinations, whether they go out as IORING_OP_SEND with a destination
// (Linux 6.0 on) or as IORING_OP_SENDMSG; a send the kernel refuses (to a
// broadcast address without SO_BROADCAST) reaches its Failer.
func TestBatchSendsLikeSendmsg(t *testing.T) {
	b, err := NewBatch()
	if err != nil {
		t.Skip("no io_uring on this kernel")
	}
	defer b.Close()
	if kernelAtLeast(t, 6, 0) && !b.ring.sendTo {
		t.Fatal("Linux 6.0 or later, but the probe did not find IORING_OP_SEND's destination")
	}
	modes := []bool{false}
	if b.ring.sendTo {
		modes = append(modes, true)
	}
	for _, sendTo := range modes {
		for _, network := range []string{"udp4", "udp6"} {
			t.Run(fmt.Sprintf("sendto=%v/%s", sendTo, network), func(t *testing.T) {
				b.ring.sendTo = sendTo
				batchSendCase(t, b, network)
			})
		}
	}
}

func batchSendCase(t *testing.T, b *Batch, network string) {
	ip, fam := net.IPv4(127, 0, 9, 41), unix.AF_INET
	if network == "udp6" {
		ip, fam = net.IPv6loopback, unix.AF_INET6
	}
	rx, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	defer rx.Close()
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 9, 42}}
	if fam == unix.AF_INET6 {
		sa = &unix.SockaddrInet6{Addr: [16]byte{15: 1}}
	}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	var f FD
	f.Init(fd, fam == unix.AF_INET6, false)
	defer f.Close()
	local, _ := unix.Getsockname(fd)
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	const n = 40
	fails := &failCount{}
	for i := range n {
		pkt := append(b.Scratch(), bytes.Repeat([]byte{byte(i)}, 20+i)...)
		if !b.Queue(&f, pkt, to, fails, i) {
			t.Fatalf("send %d not queued", i)
		}
	}
	if fam == unix.AF_INET {
		// The kernel refuses a broadcast without SO_BROADCAST (EACCES).
		if !b.Queue(&f, []byte("x"), netip.MustParseAddrPort("255.255.255.255:9"), fails, n) {
			t.Fatal("broadcast not queued")
		}
	}
	b.Flush()
	if fam == unix.AF_INET && (len(fails.tags) != 1 || fails.tags[0] != n) {
		t.Fatalf("failed sends reported: %v, want [%d]", fails.tags, n)
	}
	buf := make([]byte, 256)
	_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range n {
		k, from, err := rx.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if !bytes.Equal(buf[:k], bytes.Repeat([]byte{byte(i)}, 20+i)) {
			t.Fatalf("datagram %d: %x", i, buf[:k])
		}
		if want := sockaddrPort(local); from.Port() != want {
			t.Fatalf("datagram %d from %v, want port %d", i, from, want)
		}
	}
}

func sockaddrPort(sa unix.Sockaddr) uint16 {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return uint16(a.Port)
	case *unix.SockaddrInet6:
		return uint16(a.Port)
	}
	return 0
}

// TestBatchFallsBackToSendmsg: when the kernel refuses IORING_OP_SEND's
// destination (EINVAL, as before Linux 6.0; made here with the SQE's
// reserved half of addr_len set), that send fails to its Failer and the
// batch sends with SENDMSG from then on.
func TestBatchFallsBackToSendmsg(t *testing.T) {
	b, err := NewBatch()
	if err != nil {
		t.Skip("no io_uring on this kernel")
	}
	defer b.Close()
	if !b.ring.sendTo {
		t.Skip("IORING_OP_SEND takes no destination on this kernel")
	}
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 9, 43)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var f FD
	f.Init(fd, false, false)
	defer f.Close()
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	fails := &failCount{}
	if !b.Queue(&f, append(b.Scratch(), "refused"...), to, fails, 1) {
		t.Fatal("not queued")
	}
	b.ring.sqe(0).spliceFdIn |= 1 << 16 // __pad3: the kernel refuses the SQE
	b.Flush()
	if b.ring.sendTo || len(fails.tags) != 1 {
		t.Fatalf("after EINVAL: sendTo %v, failed %v; want false, [1]", b.ring.sendTo, fails.tags)
	}
	if !b.Queue(&f, append(b.Scratch(), "sent"...), to, fails, 2) {
		t.Fatal("not queued")
	}
	b.Flush()
	buf := make([]byte, 64)
	_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := rx.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "sent" || len(fails.tags) != 1 {
		t.Fatalf("after the fallback: %q, %v, failed %v", buf[:n], err, fails.tags)
	}
}
