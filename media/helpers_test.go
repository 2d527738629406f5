package media

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"

	"github.com/sbc-project/sbc/media/sdpconv"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// freeRange returns an even-aligned range of 2*pairs UDP ports on loopback
// that were all free a moment ago: the kernel picks a port, and the range
// around it is probed by binding every port once. A load run beside the
// tests (thousands of media sockets) can leave few free ranges: a probe
// stops at its first busy port, so many tries cost little.
func freeRange(t testing.TB, pairs int) (min, max int) {
	t.Helper()
	for range 1000 {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		base := c.LocalAddr().(*net.UDPAddr).Port &^ 1
		c.Close()
		if base+2*pairs > 65535 {
			continue
		}
		if probe(base, 2*pairs) {
			return base, base + 2*pairs - 1
		}
	}
	t.Fatalf("no free range of %d port pairs found", pairs)
	return 0, 0
}

func probe(base, n int) bool {
	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for p := base; p < base+n; p++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err != nil {
			return false
		}
		conns = append(conns, c)
	}
	return true
}

// testLog logs to stderr at debug level when MEDIA_TEST_LOG is set.
func testLog() *slog.Logger {
	if os.Getenv("MEDIA_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTestManager returns a manager on loopback with a fresh port range of
// the given size, a public IP of pub (loopback if invalid), and a short
// quarantine; it is closed when the test ends.
func newTestManager(t testing.TB, pairs int, pub netip.Addr, edit func(*Config)) *Manager {
	t.Helper()
	min, max := freeRange(t, pairs)
	cfg := Config{Addrs: []Addr{{Bind: loopback, Public: pub}}, PortMin: min, PortMax: max, Quarantine: time.Nanosecond}
	if edit != nil {
		edit(&cfg)
	}
	m, err := NewManager(cfg, testLog())
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// sipSDP is a SIPp-like audio SDP from ip:port with extra lines appended
// to the audio m-line.
func sipSDP(ip string, port int, extra ...string) []byte {
	typ := "IP4"
	if strings.Contains(ip, ":") {
		typ = "IP6"
	}
	lines := []string{
		"v=0",
		fmt.Sprintf("o=user1 53655765 2353687637 IN %s %s", typ, ip),
		"s=-",
		fmt.Sprintf("c=IN %s %s", typ, ip),
		"t=0 0",
		fmt.Sprintf("m=audio %d RTP/AVP 0 8 101", port),
		"a=rtpmap:0 PCMU/8000",
		"a=rtpmap:8 PCMA/8000",
		"a=rtpmap:101 telephone-event/8000",
		"a=fmtp:101 0-15",
		"a=ptime:20",
	}
	lines = append(lines, extra...)
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

// parse unmarshals an SDP the session produced, failing the test if it
// cannot: pion/sdp's parse, with T.38 image m-lines (sdpconv.Unmarshal).
func parse(t testing.TB, body []byte) *sdp.SessionDescription {
	t.Helper()
	sd, err := sdpconv.Unmarshal(body)
	if err != nil {
		t.Fatalf("session produced unparsable SDP: %v\n%s", err, body)
	}
	return sd
}

// mPort returns the port of m-line i.
func mPort(t testing.TB, body []byte, i int) int {
	t.Helper()
	sd := parse(t, body)
	if i >= len(sd.MediaDescriptions) {
		t.Fatalf("no m-line %d in\n%s", i, body)
	}
	return sd.MediaDescriptions[i].MediaName.Port.Value
}

// mediaGoroutines returns the stacks of goroutines this package started.
func mediaGoroutines() []string {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	var out []string
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		// Readers are created by the package (a goroutine not yet running
		// has no frame of its own); watchdog polls run on timer goroutines.
		// The poll loops are media/poll's, started by the package.
		if strings.Contains(g, "created by github.com/sbc-project/sbc/media.") ||
			strings.Contains(g, "created by github.com/sbc-project/sbc/media/poll.") ||
			strings.Contains(g, "sbc/media.(*Session).checkIdle") ||
			strings.Contains(g, "sbc/media.(*Manager).pollIdle") {
			out = append(out, g)
		}
	}
	return out
}

// checkNoGoroutines fails t if goroutines of this package are still
// running. Close waits for the readers' WaitGroup, but a reader that has
// just run its deferred Done may not have returned yet, and a watchdog poll
// already running may still finish: both get a moment (up to 1s) to exit.
func checkNoGoroutines(t testing.TB) {
	t.Helper()
	for range 100 {
		if len(mediaGoroutines()) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("goroutines left after Close:\n%s", strings.Join(mediaGoroutines(), "\n\n"))
}

// udpPeer is a test media endpoint: an RTP and an RTCP socket on loopback.
type udpPeer struct {
	ip        string // the loopback address both sockets are on
	rtp, rtcp *net.UDPConn
}

// newPeer opens an RTP socket and an RTCP socket on 127.0.0.1. With
// adjacent, RTCP is on RTP port+1 (so the SDP needs no a=rtcp); otherwise
// anywhere.
func newPeer(t testing.TB, adjacent bool) *udpPeer {
	t.Helper()
	return newPeerAt(t, "127.0.0.1", adjacent)
}

// newPeerAt is newPeer on another loopback address (IPv4 or IPv6).
func newPeerAt(t testing.TB, ip string, adjacent bool) *udpPeer {
	t.Helper()
	for range 50 {
		rtp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		port := 0
		if adjacent {
			port = rtp.LocalAddr().(*net.UDPAddr).Port + 1
		}
		rtcp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
		if err != nil {
			rtp.Close()
			continue
		}
		p := &udpPeer{ip: ip, rtp: rtp, rtcp: rtcp}
		t.Cleanup(func() { rtp.Close(); rtcp.Close() })
		return p
	}
	t.Fatal("no socket pair for a test peer")
	return nil
}

func portOfConn(c *net.UDPConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

// sdp returns the peer's SDP; the RTCP port is named by a=rtcp unless it
// is RTP port+1.
func (p *udpPeer) sdp(extra ...string) []byte {
	rtp, rtcp := portOfConn(p.rtp), portOfConn(p.rtcp)
	if rtcp != rtp+1 {
		extra = append([]string{fmt.Sprintf("a=rtcp:%d", rtcp)}, extra...)
	}
	return sipSDP(p.ip, rtp, extra...)
}

// recv reads one datagram within a second.
func recv(t testing.TB, c *net.UDPConn) ([]byte, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, maxPacket)
	c.SetReadDeadline(time.Now().Add(time.Second))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("read on %s: %v", c.LocalAddr(), err)
	}
	return buf[:n], from
}

// expectNothing fails if c receives a datagram within d.
func expectNothing(t testing.TB, c *net.UDPConn, d time.Duration) {
	t.Helper()
	buf := make([]byte, maxPacket)
	c.SetReadDeadline(time.Now().Add(d))
	if n, from, err := c.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("unexpected %d-byte datagram from %s on %s", n, from, c.LocalAddr())
	}
}

func send(t testing.TB, c *net.UDPConn, pkt []byte, port int) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(loopback, uint16(port))); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// sendTo sends pkt from c to dst.
func sendTo(t testing.TB, c *net.UDPConn, pkt []byte, dst netip.AddrPort) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(pkt, dst); err != nil {
		t.Fatalf("send to %s: %v", dst, err)
	}
}

// rtpPacket is a 172-byte RTP packet (12-byte header, 160 bytes of PCMU).
func rtpPacket(seq uint16) []byte {
	pkt := make([]byte, 172)
	pkt[0] = 0x80
	pkt[1] = 0 // PCMU
	pkt[2], pkt[3] = byte(seq>>8), byte(seq)
	pkt[8], pkt[9], pkt[10], pkt[11] = 0xde, 0xad, 0xbe, 0xef
	return pkt
}

// rtcpPacket is a minimal RTCP receiver report.
func rtcpPacket() []byte {
	return []byte{0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef}
}

// waitFor polls cond for up to two seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
