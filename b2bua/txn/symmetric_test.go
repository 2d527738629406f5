package txn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	gosiplog "github.com/ghettovoice/gosip/log"
	"github.com/ghettovoice/gosip/sip"
	"github.com/ghettovoice/gosip/sip/parser"

	"github.com/sbc-project/sbc/b2bua/transport"
)

// answering is a TU that refuses every INVITE 404 and answers the rest 200.
type answering struct{}

func (answering) OnRequest(req sip.Request, tx *ServerTx) {
	if tx == nil {
		return
	}
	code := 200
	if req.IsInvite() {
		code = 404
	}
	_ = tx.Respond(withToTag(NewResponse(req, code, "Reason"), "uas-tag"))
}

// TestSymmetricListener runs the transaction layer on real listeners: a
// client behind NAT sends from one socket while its Via names another
// address and port, without rport. The symmetric listener answers on the
// sending socket, stamping received and rport; the RFC 3261 one answers at
// the source address and the Via's port (18.2.2).
func TestSymmetricListener(t *testing.T) {
	tp, _ := newTransportNode(t)
	access, err := tp.Listen("access", transport.UDP, "127.0.0.1:0", transport.ListenOptions{Symmetric: true})
	if err != nil {
		t.Fatal(err)
	}
	trunk, err := tp.Listen("trunk", transport.UDP, "127.0.0.1:0", transport.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		listener  netip.AddrPort
		method    sip.RequestMethod
		rport     string
		symmetric bool // the answer goes to the sending socket
	}{
		{"symmetric OPTIONS", access, sip.OPTIONS, "", true},
		{"symmetric INVITE", access, sip.INVITE, "", true},
		{"RFC 3261 OPTIONS", trunk, sip.OPTIONS, "", false},
		{"RFC 3261 INVITE", trunk, sip.INVITE, "", false},
		{"RFC 3261 with rport", trunk, sip.OPTIONS, ";rport", true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nat := natClient(t)
			req := rq{method: tc.method, branch: NewBranch(), callID: fmt.Sprintf("sym-%d", i),
				via: "UDP " + nat.viaHost.String() + tc.rport}.raw()
			if _, err := nat.sender.WriteToUDPAddrPort([]byte(req), tc.listener); err != nil {
				t.Fatal(err)
			}
			got, other := nat.viaPort, nat.sender
			if tc.symmetric {
				got, other = nat.sender, nat.viaPort
			}
			res, from := readSIP(t, got, wait)
			if from != tc.listener {
				t.Fatalf("answer from %v, want the listener written to, %v", from, tc.listener)
			}
			via := res.GetHeaders("Via")[0].Value()
			wantRport := tc.symmetric
			if strings.Contains(via, ";rport="+itoa(nat.sender)) != wantRport || !strings.Contains(via, "received=127.0.0.1") {
				t.Fatalf("answer's Via %q: want received, and rport=%d: %v", via, addrOf(nat.sender).Port(), wantRport)
			}
			for _, c := range []*net.UDPConn{other, nat.viaHostConn} {
				if _, _, err := readRaw(c, 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("%v got a message too (err %v)", addrOf(c), err)
				}
			}
		})
	}
}

// TestSymmetricStream: a stream listener answers on the connection the
// request came on whatever its Symmetric setting and the Via say.
func TestSymmetricStream(t *testing.T) {
	tp, _ := newTransportNode(t)
	for _, symmetric := range []bool{true, false} {
		t.Run(fmt.Sprint("symmetric ", symmetric), func(t *testing.T) {
			addr, err := tp.Listen(fmt.Sprint("tcp-", symmetric), transport.TCP, "127.0.0.1:0",
				transport.ListenOptions{Symmetric: symmetric})
			if err != nil {
				t.Fatal(err)
			}
			conn, err := net.DialTimeout("tcp", addr.String(), wait)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := rq{method: sip.OPTIONS, branch: NewBranch(), callID: fmt.Sprint("tcp-", symmetric),
				via: "TCP 127.0.0.9:5099"}.raw()
			if _, err := conn.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			// The answer has no body: it ends with its header block.
			_ = conn.SetReadDeadline(time.Now().Add(wait))
			var got []byte
			for !strings.HasSuffix(string(got), "\r\n\r\n") {
				buf := make([]byte, 65535)
				n, err := conn.Read(buf)
				if err != nil {
					t.Fatalf("no answer on the connection (%q so far): %v", got, err)
				}
				got = append(got, buf[:n]...)
			}
			res, ok := parse(t, string(got)).(sip.Response)
			if !ok || res.StatusCode() != 200 {
				t.Fatalf("answer %q", got)
			}
			if via := res.GetHeaders("Via")[0].Value(); strings.Contains(via, "rport") {
				t.Fatalf("answer's Via %q: rport stamped on a stream", via)
			}
		})
	}
}

// newTransportNode is a transport layer wired to a transaction layer whose
// TU answers (answering), the way the server wires them; both are closed
// at the end of the test.
func newTransportNode(t *testing.T) (*transport.Layer, *Layer) {
	t.Helper()
	var l *Layer
	logger := gosiplog.NewDefaultLogrusLogger()
	tp := transport.New(nil, transport.Limits{}, func(p transport.Packet) {
		msg, err := parser.ParseMessage(p.Data, logger)
		if err == nil {
			l.Receive(msg, p.Source())
		}
	})
	l = New(func(msg sip.Message, dst transport.Target) error {
		return tp.Send(dst, []byte(msg.String()))
	}, answering{}, testTimers, nil)
	t.Cleanup(func() {
		l.Close()
		_ = tp.Close()
	})
	return tp, l
}

// nat is a client behind NAT as the SBC sees it: it sends from sender
// (127.0.0.1), while its Via names viaHost (127.0.0.9, the address it
// believes it has) with the port of viaPort, which listens on the source
// address, where RFC 3261 18.2.2 sends the answer.
type nat struct {
	sender, viaPort, viaHostConn *net.UDPConn
	viaHost                      netip.AddrPort
}

func natClient(t *testing.T) nat {
	t.Helper()
	var n nat
	n.sender = udpSocket(t, "127.0.0.1:0")
	n.viaPort = udpSocket(t, "127.0.0.1:0")
	n.viaHost = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.9"), addrOf(n.viaPort).Port())
	n.viaHostConn = udpSocket(t, n.viaHost.String())
	return n
}

func udpSocket(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

func itoa(c *net.UDPConn) string { return fmt.Sprint(addrOf(c).Port()) }

// readRaw reads one datagram within d.
func readRaw(c *net.UDPConn, d time.Duration) ([]byte, netip.AddrPort, error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 65535)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	return buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), err
}

// readSIP reads one response within d, skipping a 100 Trying.
func readSIP(t *testing.T, c *net.UDPConn, d time.Duration) (sip.Response, netip.AddrPort) {
	t.Helper()
	for {
		data, from, err := readRaw(c, d)
		if err != nil {
			t.Fatalf("no answer on %v: %v", addrOf(c), err)
		}
		res, ok := parse(t, string(data)).(sip.Response)
		if !ok {
			t.Fatalf("not a response: %q", data)
		}
		if res.StatusCode() > 100 {
			return res, from
		}
	}
}
