package calls

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

// TestSymmetricResponses: a client behind NAT sends from one socket while
// its Via, without rport, names another address and port (the private
// ones it believes it has). On a symmetric listener (the default) every
// answer, from a transaction, from an early policy stage or to an
// unparsable request, reaches the sending socket with received and rport
// recorded in its Via, and nothing goes anywhere else. On a listener with
// symmetric: false the answers follow RFC 3261 18.2.2: the source address
// at the Via's port.
func TestSymmetricResponses(t *testing.T) {
	s := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
		c.SIP.Listeners = append(c.SIP.Listeners,
			config.Listener{Name: "trunk-udp", Transport: "udp", Addr: "127.0.0.1:0", Symmetric: false})
	}})
	trunk, ok := s.App.Addr("trunk-udp")
	if !ok {
		t.Fatal("trunk-udp listener not bound")
	}
	tests := []struct {
		name      string
		listener  netip.AddrPort
		symmetric bool
		request   natRequest
		wantCode  int
		stamped   bool // the answer's Via is the stamped request's (not a verbatim 400)
		ack       bool // an INVITE transaction: the answer is ACKed
	}{
		{"OPTIONS", s.UDP, true, natOptions, 200, true, false},
		{"INVITE refused by routing", s.UDP, true, natInvite, 404, true, true},
		{"early policy refusal", s.UDP, true, natNoFromTag, 400, true, false},
		{"unparsable", s.UDP, true, natCSeqMismatch, 400, false, false},
		{"RFC 3261 OPTIONS", trunk, false, natOptions, 200, true, false},
		{"RFC 3261 INVITE refused by routing", trunk, false, natInvite, 404, true, true},
		{"RFC 3261 early policy refusal", trunk, false, natNoFromTag, 400, true, false},
		{"RFC 3261 unparsable", trunk, false, natCSeqMismatch, 400, false, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A source of its own per case: the policy's per-source
			// counters see one request each.
			c := newNATClient(t, e2e.IP(60+i), e2e.IP(160+i))
			branch := "z9hG4bK-nat-" + sipmsg.NewToken(8)
			c.send(t, tc.listener, tc.request(c.via, branch, s.UDP))
			want, others := c.viaPort, []*net.UDPConn{c.sender, c.viaHost}
			if tc.symmetric {
				want, others = c.sender, []*net.UDPConn{c.viaPort, c.viaHost}
			}
			res, from := recvFinal(t, want)
			if from != tc.listener {
				t.Errorf("answer from %v, want the listener written to, %v", from, tc.listener)
			}
			if int(res.StatusCode()) != tc.wantCode {
				t.Fatalf("answer %d %s, want %d", res.StatusCode(), res.Reason(), tc.wantCode)
			}
			if tc.stamped {
				checkStamp(t, res, addrOf(c.sender), tc.symmetric)
			}
			if tc.ack {
				// The ACK ends the 404's retransmissions.
				c.send(t, tc.listener, natAck(c.via, branch, s.UDP, sipmsg.ToTag(res)))
			}
			for _, o := range others {
				if data, err := readDatagram(o, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("%v got %q (err %v), want nothing", addrOf(o), firstLine(data), err)
				}
			}
		})
	}
	s.WaitIdle(t)
}

// checkStamp checks the answer's top Via: received with the source address
// always (the Via names another), and rport with the source port exactly
// when the listener is symmetric (the request asked for none).
func checkStamp(t *testing.T, res sip.Response, src netip.AddrPort, symmetric bool) {
	t.Helper()
	hop, ok := res.ViaHop()
	if !ok || hop.Params == nil {
		t.Fatal("answer without Via")
	}
	if got, _ := hop.Params.Get("received"); got == nil || got.String() != src.Addr().String() {
		t.Errorf("Via received %v, want %s", got, src.Addr())
	}
	rport, has := hop.Params.Get("rport")
	switch {
	case symmetric && (rport == nil || rport.String() != fmt.Sprint(src.Port())):
		t.Errorf("Via rport %v, want %d", rport, src.Port())
	case !symmetric && has:
		t.Errorf("Via rport %v on an RFC 3261 listener, want none", rport)
	}
}

// natClient is a client behind NAT as the SBC sees it: it sends from
// sender, while its Via names via, an address on another host (viaHost
// listens there) with the port of viaPort, which listens on the sender's
// address: where RFC 3261 18.2.2 sends the answers.
type natClient struct {
	sender, viaPort, viaHost *net.UDPConn
	via                      netip.AddrPort
}

func newNATClient(t *testing.T, srcIP, viaIP string) *natClient {
	t.Helper()
	c := &natClient{sender: udpAt(t, srcIP+":0"), viaPort: udpAt(t, srcIP+":0")}
	c.via = netip.AddrPortFrom(netip.MustParseAddr(viaIP), addrOf(c.viaPort).Port())
	c.viaHost = udpAt(t, c.via.String())
	return c
}

func (c *natClient) send(t *testing.T, to netip.AddrPort, msg string) {
	t.Helper()
	if _, err := c.sender.WriteToUDPAddrPort([]byte(e2e.CRLF(msg)), to); err != nil {
		t.Fatal(err)
	}
}

func udpAt(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort {
	a := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

func readDatagram(c *net.UDPConn, d time.Duration) ([]byte, error) {
	data, _, err := readDatagramFrom(c, d)
	return data, err
}

func readDatagramFrom(c *net.UDPConn, d time.Duration) ([]byte, netip.AddrPort, error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 65535)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	return buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), err
}

// recvFinal returns the first final response on c and who sent it.
func recvFinal(t *testing.T, c *net.UDPConn) (sip.Response, netip.AddrPort) {
	t.Helper()
	parser := sipmsg.NewParser(sipmsg.Limits{})
	for {
		data, from, err := readDatagramFrom(c, 10*time.Second)
		if err != nil {
			t.Fatalf("no answer on %v: %v", addrOf(c), err)
		}
		msg, err := parser.Parse(data)
		if err != nil {
			t.Fatalf("unparsable answer %q: %v", data, err)
		}
		if res, ok := msg.(sip.Response); ok && res.StatusCode() >= 200 {
			return res, from
		}
	}
}

func firstLine(data []byte) string {
	line, _, _ := strings.Cut(string(data), "\r\n")
	return line
}

// natRequest builds a request whose top Via names via without rport.
type natRequest func(via netip.AddrPort, branch string, sbc netip.AddrPort) string

func natMessage(method, cseqMethod, fromTag string, via netip.AddrPort, branch string, sbc netip.AddrPort, callID string) string {
	if fromTag != "" {
		fromTag = ";tag=" + fromTag
	}
	return fmt.Sprintf("%s sip:nobody@%s SIP/2.0\n"+
		"Via: SIP/2.0/UDP %s;branch=%s\n"+
		"Max-Forwards: 70\n"+
		"From: <sip:alice@%s>%s\n"+
		"To: <sip:nobody@%s>\n"+
		"Call-ID: %s\n"+
		"CSeq: 1 %s\n"+
		"Contact: <sip:alice@%s>\n"+
		"Content-Length: 0\n\n", method, sbc, via, branch, via.Addr(), fromTag, sbc, callID, cseqMethod, via)
}

func natOptions(via netip.AddrPort, branch string, sbc netip.AddrPort) string {
	return natMessage("OPTIONS", "OPTIONS", "nat", via, branch, sbc, "opt-"+branch)
}

func natInvite(via netip.AddrPort, branch string, sbc netip.AddrPort) string {
	return natMessage("INVITE", "INVITE", "nat", via, branch, sbc, "inv-"+branch)
}

// natNoFromTag is refused by the sanity stage, before any transaction.
func natNoFromTag(via netip.AddrPort, branch string, sbc netip.AddrPort) string {
	return natMessage("INVITE", "INVITE", "", via, branch, sbc, "tagless-"+branch)
}

// natCSeqMismatch does not parse (RFC 4475 mismatch01): answered 400 with
// the request's Via copied verbatim.
func natCSeqMismatch(via netip.AddrPort, branch string, sbc netip.AddrPort) string {
	return natMessage("OPTIONS", "INVITE", "nat", via, branch, sbc, "mismatch-"+branch)
}

func natAck(via netip.AddrPort, branch string, sbc netip.AddrPort, toTag string) string {
	ack := natMessage("ACK", "ACK", "nat", via, branch, sbc, "inv-"+branch)
	return strings.Replace(ack, "To: <sip:nobody@"+sbc.String()+">", "To: <sip:nobody@"+sbc.String()+">;tag="+toTag, 1)
}
