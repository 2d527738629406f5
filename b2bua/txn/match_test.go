package txn

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

func TestStampViaAndResponseTarget(t *testing.T) {
	cases := []struct {
		name         string
		via          string
		src          transport.Target
		wantReceived string // "" means absent
		wantRport    string // "" means absent
		wantDst      string
	}{
		{
			name: "sent-by is the source: untouched",
			via:  "UDP 192.0.2.1:5062", src: transport.Target{Kind: transport.UDP, Addr: netip.MustParseAddrPort("192.0.2.1:5062")},
			wantDst: "192.0.2.1:5062",
		},
		{
			name: "NATed: received added, sent-by port kept",
			via:  "UDP 10.0.0.5:5062", src: transport.Target{Kind: transport.UDP, Addr: netip.MustParseAddrPort("192.0.2.1:40000")},
			wantReceived: "192.0.2.1", wantDst: "192.0.2.1:5062",
		},
		{
			name: "rport: received and rport filled, response to the source port",
			via:  "UDP 10.0.0.5:5062;rport", src: transport.Target{Kind: transport.UDP, Addr: netip.MustParseAddrPort("192.0.2.1:40000")},
			wantReceived: "192.0.2.1", wantRport: "40000", wantDst: "192.0.2.1:40000",
		},
		{
			name: "rport from the sent-by address still gets received",
			via:  "UDP 192.0.2.1:5062;rport", src: transport.Target{Kind: transport.UDP, Addr: netip.MustParseAddrPort("192.0.2.1:5062")},
			wantReceived: "192.0.2.1", wantRport: "5062", wantDst: "192.0.2.1:5062",
		},
		{
			name: "host name, default port",
			via:  "UDP pc.example.com", src: transport.Target{Kind: transport.UDP, Addr: netip.MustParseAddrPort("192.0.2.1:5060")},
			wantReceived: "192.0.2.1", wantDst: "192.0.2.1:5060",
		},
		{
			name: "IPv6",
			via:  "UDP [2001:db8::1]:5062;rport", src: transport.Target{Kind: transport.UDP, Addr: netip.MustParseAddrPort("[2001:db8::2]:6000")},
			wantReceived: "2001:db8::2", wantRport: "6000", wantDst: "[2001:db8::2]:6000",
		},
		{
			name: "WebSocket: the connection, sent-by port as fallback",
			via:  "WSS abc.invalid;rport", src: transport.Target{Kind: transport.WSS, Addr: netip.MustParseAddrPort("192.0.2.1:50000")},
			wantReceived: "192.0.2.1", wantRport: "50000", wantDst: "192.0.2.1:443",
		},
		{
			name: "TCP without rport: sent-by port as fallback",
			via:  "TCP 192.0.2.1:5062", src: transport.Target{Kind: transport.TCP, Addr: netip.MustParseAddrPort("192.0.2.1:40000")},
			wantReceived: "", wantDst: "192.0.2.1:5062",
		},
		{
			name: "symmetric UDP without rport: stamped as if asked, response to the source port",
			via:  "UDP 10.0.0.5:5062", src: symmetric(transport.UDP, "192.0.2.1:40000"),
			wantReceived: "192.0.2.1", wantRport: "40000", wantDst: "192.0.2.1:40000",
		},
		{
			name: "symmetric UDP from the sent-by address and port",
			via:  "UDP 192.0.2.1:5062", src: symmetric(transport.UDP, "192.0.2.1:5062"),
			wantReceived: "192.0.2.1", wantRport: "5062", wantDst: "192.0.2.1:5062",
		},
		{
			name: "symmetric UDP, host name without port",
			via:  "UDP pc.example.com", src: symmetric(transport.UDP, "192.0.2.1:40000"),
			wantReceived: "192.0.2.1", wantRport: "40000", wantDst: "192.0.2.1:40000",
		},
		{
			name: "symmetric UDP with rport: the same",
			via:  "UDP 10.0.0.5:5062;rport", src: symmetric(transport.UDP, "192.0.2.1:40000"),
			wantReceived: "192.0.2.1", wantRport: "40000", wantDst: "192.0.2.1:40000",
		},
		{
			name: "symmetric IPv6",
			via:  "UDP [2001:db8::1]:5062", src: symmetric(transport.UDP, "[2001:db8::2]:6000"),
			wantReceived: "2001:db8::2", wantRport: "6000", wantDst: "[2001:db8::2]:6000",
		},
		{
			name: "TCP flagged symmetric: unchanged, RFC 3261 18.2.2 fallback",
			via:  "TCP 10.0.0.5:5062", src: symmetric(transport.TCP, "192.0.2.1:40000"),
			wantReceived: "192.0.2.1", wantDst: "192.0.2.1:5062",
		},
		{
			name: "WSS flagged symmetric: unchanged",
			via:  "WSS abc.invalid", src: symmetric(transport.WSS, "192.0.2.1:50000"),
			wantReceived: "192.0.2.1", wantDst: "192.0.2.1:443",
		},
	}
	param := func(hop *sip.ViaHop, name string) string {
		v, ok := hop.Params.Get(name)
		if !ok || v == nil {
			return ""
		}
		return v.String()
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := rq{method: sip.OPTIONS, branch: "z9hG4bK-1", via: tc.via}.req(t)
			hop, _ := req.ViaHop()
			stampVia(hop, tc.src)
			if got := param(hop, "received"); got != tc.wantReceived {
				t.Errorf("received %q, want %q", got, tc.wantReceived)
			}
			if got := param(hop, "rport"); got != tc.wantRport {
				t.Errorf("rport %q, want %q", got, tc.wantRport)
			}
			dst := responseTarget(hop, tc.src)
			if dst.Addr.String() != tc.wantDst || dst.Kind != tc.src.Kind {
				t.Errorf("responses to %v, want %s:%s", dst, tc.src.Kind, tc.wantDst)
			}
			if dst.Local != tc.src.Local || dst.Listener != tc.src.Listener || dst.Conn != tc.src.Conn {
				t.Errorf("responses leave by %v %q, want the request's %v %q", dst.Local, dst.Listener, tc.src.Local, tc.src.Listener)
			}
		})
	}
}

// symmetric is a source on a symmetric listener (ListenOptions.Symmetric).
func symmetric(k transport.Kind, addr string) transport.Target {
	return transport.Target{Kind: k, Addr: netip.MustParseAddrPort(addr), Symmetric: true,
		Local: netip.MustParseAddrPort("198.51.100.1:5060"), Listener: "access"}
}

// TestReplyTarget: the stateless answers' destination and Via stamp are
// the layer's own, and a message without a Via is refused untouched.
func TestReplyTarget(t *testing.T) {
	req := rq{method: sip.OPTIONS, branch: "z9hG4bK-1", via: "UDP 10.0.0.5:5062"}.req(t)
	dst, ok := ReplyTarget(req, symmetric(transport.UDP, "192.0.2.1:40000"))
	if !ok || dst.Addr.String() != "192.0.2.1:40000" || dst.Listener != "access" {
		t.Fatalf("ReplyTarget = %v %q, %v; want the source port by the access listener", dst, dst.Listener, ok)
	}
	res := NewResponse(req, 403, "Forbidden")
	if via := res.GetHeaders("Via"); len(via) == 0 || !strings.Contains(via[0].Value(), "received=192.0.2.1;rport=40000") {
		t.Fatalf("the response's Via lacks received and rport: %v", via)
	}
	req = rq{method: sip.OPTIONS, branch: "z9hG4bK-1", via: "UDP 10.0.0.5:5062"}.req(t)
	dst, ok = ReplyTarget(req, transport.Target{Kind: transport.UDP, Addr: netip.MustParseAddrPort("192.0.2.1:40000")})
	if !ok || dst.Addr.String() != "192.0.2.1:5062" {
		t.Fatalf("RFC 3261 listener: ReplyTarget = %v, %v; want the sent-by port", dst, ok)
	}
	noVia := sip.NewResponse("", "SIP/2.0", 400, "Bad", nil, "", nil)
	if _, ok := ReplyTarget(noVia, udpPeer); ok {
		t.Fatal("ReplyTarget accepted a message without Via")
	}
}

func TestReceiveDefensive(t *testing.T) {
	uri := &sip.SipUri{FHost: "127.0.0.1"}
	via := sip.ViaHeader{&sip.ViaHop{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1",
		Params: sip.NewParams().Add("branch", sip.String{Str: "z9hG4bK-x"})}}
	callID := sip.CallID("c")
	cases := []struct {
		name  string
		msg   func(t *testing.T) sip.Message
		check func(t *testing.T, e *env)
	}{
		{
			name: "request without headers",
			msg: func(*testing.T) sip.Message {
				return sip.NewRequest("", sip.INVITE, uri, "SIP/2.0", nil, "", nil)
			},
			check: func(t *testing.T, e *env) {
				if e.l.Stats().Malformed != 1 {
					t.Fatal("not counted as malformed")
				}
			},
		},
		{
			name: "request without CSeq",
			msg: func(*testing.T) sip.Message {
				return sip.NewRequest("", sip.INVITE, uri, "SIP/2.0", []sip.Header{via, &callID}, "", nil)
			},
			check: func(t *testing.T, e *env) {
				if e.l.Stats().Malformed != 1 {
					t.Fatal("not counted as malformed")
				}
			},
		},
		{
			name: "response without Via",
			msg: func(*testing.T) sip.Message {
				return sip.NewResponse("", "SIP/2.0", 200, "OK", []sip.Header{&callID}, "", nil)
			},
			check: func(t *testing.T, e *env) {
				if e.l.Stats().Malformed != 1 {
					t.Fatal("not counted as malformed")
				}
			},
		},
		{
			name: "RFC 2543 request: a transaction of its own, its retransmission absorbed",
			msg:  func(t *testing.T) sip.Message { return rq{method: sip.OPTIONS}.req(t) },
			check: func(t *testing.T, e *env) {
				c := e.tu.next(t)
				e.l.Receive(rq{method: sip.OPTIONS}.req(t), udpPeer)
				if err := c.tx.Respond(NewResponse(c.req, 200, "OK")); err != nil {
					t.Fatal(err)
				}
				e.out.want(t, 1, status(200), "200")
				if s := e.l.Stats(); s.Legacy != 2 || s.Absorbed != 1 {
					t.Fatalf("legacy %d absorbed %d, want 2 and 1", s.Legacy, s.Absorbed)
				}
				e.advance(t64)
			},
		},
		{
			name: "RFC 2543 ACK of nothing goes to the TU",
			msg:  func(t *testing.T) sip.Message { return rq{method: sip.ACK, branch: "old-style"}.req(t) },
			check: func(t *testing.T, e *env) {
				e.out.want(t, 0, anything, "message")
				if c := e.tu.next(t); c.tx != nil || c.req.Method() != sip.ACK {
					t.Fatal("ACK not handed to the TU without a transaction")
				}
			},
		},
		{
			name: "stray response",
			msg: func(t *testing.T) sip.Message {
				return reply(t, rq{method: sip.BYE, branch: "z9hG4bK-gone"}.req(t), 200, "x")
			},
			check: func(t *testing.T, e *env) {
				if e.l.Stats().Strays != 1 {
					t.Fatal("not counted as stray")
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, rfcTimers)
			e.l.Receive(tc.msg(t), udpPeer)
			tc.check(t, e)
			e.tu.none(t)
		})
	}
}

func TestOnStray(t *testing.T) {
	e := newEnv(t, rfcTimers)
	var got atomic.Int32
	e.l.OnStray = func(res sip.Response, src transport.Target) {
		if res.StatusCode() == 200 && src == udpPeer {
			got.Add(1)
		}
	}
	req := outbound(t, sip.INVITE, "UDP 127.0.0.1:5060")
	tx := startTx(t, e, req, udpPeer)
	e.l.Receive(reply(t, req, 200, "uas-1"), udpPeer)
	e.advance(t64) // Timer M
	drained(t, tx)
	e.l.Receive(reply(t, req, 200, "uas-1"), udpPeer)
	if got.Load() != 1 {
		t.Fatalf("OnStray called %d times, want 1", got.Load())
	}
}

func TestCloseEndsClientTx(t *testing.T) {
	e := newEnv(t, rfcTimers)
	inv := startTx(t, e, outbound(t, sip.INVITE, ""), udpPeer)
	e.l.Receive(reply(t, reqOf(t, inv), 180, "uas-1"), udpPeer)
	if err := inv.Cancel(); err != nil {
		t.Fatal(err)
	}
	opt := startTx(t, e, outbound(t, sip.OPTIONS, ""), udpPeer)
	e.out.want(t, 1, method(sip.CANCEL), "CANCEL")
	if n := e.l.Count(); n != 3 {
		t.Fatalf("Count %d, want 3 (INVITE, CANCEL, OPTIONS)", n)
	}
	e.l.Close()
	if n := e.l.Count(); n != 0 {
		t.Fatalf("Count %d after Close", n)
	}
	if got := drained(t, inv); len(got) != 1 {
		t.Fatalf("INVITE responses %v, want the 180 only", codes(got))
	}
	if got := drained(t, opt); len(got) != 0 {
		t.Fatalf("OPTIONS responses %v after Close", codes(got))
	}
}

func TestNewBranch(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		b := NewBranch()
		if !rfc3261Branch(b) || len(b) < len(magicCookie)+16 || seen[b] {
			t.Fatalf("bad or repeated branch %q", b)
		}
		seen[b] = true
	}
}

func TestNewResponse(t *testing.T) {
	req := rq{method: sip.INVITE, branch: "z9hG4bK-r", extra: "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-up\r\n"}.req(t)
	res := NewResponse(req, 180, "Ringing")
	text := res.String()
	for _, line := range []string{
		"SIP/2.0 180 Ringing",
		"Via: SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bK-r",
		"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-up",
		"From: <sip:alice@127.0.0.1>;tag=from-1",
		"To: <sip:bob@127.0.0.1>",
		"Call-ID: call-1",
		"CSeq: 1 INVITE",
		"Content-Length: 0",
	} {
		if !strings.Contains(text, line+"\r\n") {
			t.Errorf("response lacks %q:\n%s", line, text)
		}
	}
	if strings.Contains(text, "Max-Forwards") {
		t.Errorf("response copied a request-only header:\n%s", text)
	}
	withToTag(res, "t1")
	if sipmsg.ToTag(res) != "t1" || sipmsg.ToTag(req) != "" {
		t.Fatal("To tag not set on the response alone")
	}
}

// TestSentByKey: a server transaction's sent-by key is SentBy in lower
// case, for hosts with and without ports, IPv6 references and names
// beyond ASCII.
func TestSentByKey(t *testing.T) {
	port := sip.Port(5070)
	for _, hop := range []*sip.ViaHop{
		{Host: "192.0.2.1"},
		{Host: "192.0.2.1", Port: &port},
		{Host: "PBX.Example.COM", Port: &port},
		{Host: "[2001:DB8::1]", Port: &port},
		{Host: "ÉCOLE.example"},
	} {
		if got, want := sentByKey(hop), strings.ToLower(hop.SentBy()); got != want {
			t.Errorf("%s: key %q, want %q", hop.SentBy(), got, want)
		}
	}
}
