package b2bua

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/trunkreg"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// A call outlives its caller's WebSocket or TCP connection for the flow
// grace (flowgrace.go), over real sockets: the SBC on 127.0.11.1, the
// caller's connections from 127.0.11.2, the PBX (a raw UDP peer) on
// 127.0.11.3, strangers from 127.0.11.66.

// graceSBC is a server with a registrar (users alice and mallory), a
// route from any user to the PBX and one for REGISTER, and WS and TCP
// listeners.
type graceSBC struct {
	s       *Server
	ws, tcp netip.AddrPort
	pbx     *rawPeer
	rec     *records
}

func startGraceSBC(t *testing.T, grace time.Duration) *graceSBC {
	t.Helper()
	return startGraceSBCAt(t, grace, "127.0.11.1", newRawPeerAt(t, "127.0.11.3"), nil)
}

// startGraceSBCAt is startGraceSBC on ip with the PBX pbx; hooks, if
// not nil, changes the server's hooks before it starts.
func startGraceSBCAt(t *testing.T, grace time.Duration, ip string, pbx *rawPeer, hooks func(*Hooks)) *graceSBC {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	table, err := routing.New(routing.TableSpec{
		Trunks: []routing.TrunkSpec{{Name: "pbx", URI: "sip:" + pbx.addr()}},
		Routes: []routing.RouteSpec{
			{Name: "out", Match: routing.MatchSpec{RURIUser: "^bob$"}, Target: routing.TargetTrunks, Trunks: []string{"pbx"}},
			{Name: "reg", Target: routing.TargetRegistered},
		},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := registrar.NewAuth(registrar.AuthConfig{Realm: "sbc", Algorithms: []string{registrar.AlgMD5},
		Users: map[string]string{"alice": "secret", "mallory": "secret2"}})
	if err != nil {
		t.Fatal(err)
	}
	g := &graceSBC{pbx: pbx, rec: &records{ended: make(chan outcome.CallRecord, 4)}}
	h := Hooks{Routes: table, Media: func(string) (MediaSession, error) { return fakeMedia{}, nil },
		Bindings: registrar.NewStore(registrar.Config{}), Auth: auth, Observer: g.rec}
	if hooks != nil {
		hooks(&h)
	}
	g.s = New(Config{RingTimeout: 5 * time.Second, InviteTimeout: 5 * time.Second, MinSE: 90 * time.Second,
		SessionExpires: 1800 * time.Second, Timers: txn.Timers{T1: 50 * time.Millisecond}, FlowGrace: grace}, h, log)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = g.s.Close(ctx)
	})
	udp, err := g.s.Listen("udp", transport.UDP, ip+":0", transport.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pbx.sbc = net.UDPAddrFromAddrPort(udp)
	if g.ws, err = g.s.Listen("ws", transport.WS, ip+":0", transport.ListenOptions{}); err != nil {
		t.Fatal(err)
	}
	if g.tcp, err = g.s.Listen("tcp", transport.TCP, ip+":0", transport.ListenOptions{}); err != nil {
		t.Fatal(err)
	}
	return g
}

// graceCall is alice's call to bob through the SBC, answered by the PBX.
type graceCall struct {
	tag    string // the SBC's To tag toward alice
	bInv   sip.Message
	seq    int
	callID string
}

// call places alice's call from p and returns it answered and ACKed.
func (g *graceSBC) call(t *testing.T, p *streamPeer) *graceCall {
	t.Helper()
	c := &graceCall{callID: "grace-" + sipmsg.NewToken(6), seq: 1}
	p.send(c.request(p, "INVITE", "", "Content-Type: application/sdp", "", callerSDP)...)
	c.bInv = g.pbx.recv("INVITE", isRequest(sip.INVITE))
	g.pbx.answer(c.bInv, "200 OK", "Content-Type: application/sdp", "", calleeSDP)
	g.pbx.recv("ACK", isRequest(sip.ACK))
	ok := p.recv("200 to INVITE", isResponse(200, sip.INVITE))
	c.tag = sipmsg.ToTag(ok)
	p.send(c.requestSeq(p, "ACK", 1, "a1")...)
	return c
}

// request is the next request of alice's dialog from p, with From tag
// fromTag ("" for a1, hers), and extra lines.
func (c *graceCall) request(p *streamPeer, method, fromTag string, extra ...string) []string {
	if method != "INVITE" || c.tag != "" {
		c.seq++
	}
	if fromTag == "" {
		fromTag = "a1"
	}
	return append(c.requestSeq(p, method, c.seq, fromTag), extra...)
}

func (c *graceCall) requestSeq(p *streamPeer, method string, seq int, fromTag string) []string {
	to := "<sip:bob@example.com>"
	if c.tag != "" {
		to += ";tag=" + c.tag
	}
	return []string{fmt.Sprintf("%s sip:bob@%s SIP/2.0", method, p.sbc), p.via(), "Max-Forwards: 70",
		"From: <sip:alice@example.com>;tag=" + fromTag, "To: " + to, "Call-ID: " + c.callID,
		fmt.Sprintf("CSeq: %d %s", seq, method),
		fmt.Sprintf("Contact: <sip:alice@%s;transport=%s;ob>", p.host, p.kind.Param())}
}

// inGrace reports whether the server's one call has a leg in its grace.
func (g *graceSBC) inGrace() bool {
	g.s.mu.Lock()
	var call *Call
	for c := range g.s.calls {
		call = c
	}
	g.s.mu.Unlock()
	if call == nil {
		return false
	}
	res := make(chan bool, 1)
	if !call.post(event{kind: evFunc, fn: func(c *Call) { res <- c.grace != nil && len(c.grace.lost) > 0 }}) {
		return false
	}
	select {
	case v := <-res:
		return v
	case <-time.After(wait):
		return false
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pbxRequest sends a request of the PBX's dialog (leg B) to the SBC.
func (g *graceSBC) pbxRequest(c *graceCall, method string, seq int, extra ...string) {
	from := sipmsg.Header(c.bInv, "To") + ";tag=pbx1"
	g.pbx.send(append([]string{
		fmt.Sprintf("%s %s SIP/2.0", method, sipmsg.ContactURI(c.bInv.(sip.Request))),
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bKpbx%s%d;rport", g.pbx.addr(), strings.ToLower(method), seq),
		"Max-Forwards: 70", "From: " + from, "To: " + sipmsg.Header(c.bInv, "From"), "Call-ID: " + sipmsg.CallID(c.bInv),
		fmt.Sprintf("CSeq: %d %s", seq, method), "Contact: <sip:pbx@" + g.pbx.addr() + ">"}, extra...)...)
}

// TestFlowGraceTakeover: alice, registered with an RFC 5626 instance,
// calls bob; her connection closes; the call stays up. In the gap a
// re-INVITE from the PBX gets 503 with Retry-After and the call goes on.
// Strangers on new connections cannot take the dialog over: wrong From
// tag 481; another user's registration 403; alice's own user on another
// instance 403; no credentials 407, another user's credentials 403; none
// of them ends the call or moves it. Then alice, registered again with
// her instance on a new connection, sends BYE there: 200 there, the PBX
// gets its BYE, one CDR, caller_bye.
func TestFlowGraceTakeover(t *testing.T) {
	for _, kind := range []transport.Kind{transport.WS, transport.TCP} {
		t.Run(kind.String(), func(t *testing.T) {
			g := startGraceSBC(t, 30*time.Second)
			alice := g.dial(t, kind, "127.0.11.2", "alice")
			alice.register("1111-aaaa")
			c := g.call(t, alice)
			alice.close()
			waitUntil(t, "the call to wait for alice", g.inGrace)

			g.pbxRequest(c, "INVITE", 2, "Content-Type: application/sdp", "", strings.Replace(calleeSDP, "5000", "5002", 1))
			busy := g.pbx.recv("503 to re-INVITE", isResponse(503, sip.INVITE))
			if ra, err := strconv.Atoi(sipmsg.Header(busy, "Retry-After")); err != nil || ra < 1 || ra > 30 {
				t.Errorf("503 Retry-After %q, want the grace left (1-30 s)", sipmsg.Header(busy, "Retry-After"))
			}

			attacks := []struct {
				name     string
				user     string // registered on the attacker's connection; "": none
				instance string
				fromTag  string
				auth     string // digest credentials of this user on a 407
				want     int
			}{
				{name: "right Call-ID, wrong From tag", fromTag: "evil", want: 481},
				{name: "another user's connection", user: "mallory", instance: "6666-mmmm", want: 403},
				{name: "alice on another instance", user: "alice", instance: "2222-bbbb", want: 403},
				{name: "no credentials", want: 407},
				{name: "another user's credentials", auth: "mallory", want: 403},
			}
			for _, a := range attacks {
				p := g.dial(t, kind, "127.0.11.66", a.user)
				if a.user != "" {
					p.register(a.instance)
				}
				p.send(c.request(p, "BYE", a.fromTag)...)
				res := p.recv("answer to the stranger's BYE", isRequestAnswer(sip.BYE)).(sip.Response)
				if a.auth != "" && res.StatusCode() == 407 {
					h, err := trunkreg.Answer(res, trunkreg.Credentials{User: a.auth, Password: passwords[a.auth], Method: "BYE",
						URI: "sip:bob@" + p.sbc.String()}, false)
					if err != nil {
						t.Fatal(err)
					}
					p.send(c.request(p, "BYE", a.fromTag, h.Name()+": "+h.Value())...)
					res = p.recv("answer to the stranger's BYE with credentials", isRequestAnswer(sip.BYE)).(sip.Response)
				}
				if int(res.StatusCode()) != a.want {
					t.Errorf("%s: %d, want %d", a.name, res.StatusCode(), a.want)
				}
				p.close()
			}
			if n := g.s.ActiveCalls(); n != 1 || !g.inGrace() {
				t.Fatalf("after the strangers: %d calls, in grace %v; want the call up and waiting for alice", n, g.inGrace())
			}

			back := g.dial(t, kind, "127.0.11.2", "alice")
			back.register("1111-aaaa")
			back.send(c.request(back, "BYE", "")...)
			back.recv("200 to BYE on the new connection", isResponse(200, sip.BYE))
			bye := g.pbx.recv("BYE", isRequest(sip.BYE))
			g.pbx.answer(bye, "200 OK")
			r := g.rec.next(t)
			if r.Cause != outcome.CauseCallerBye || r.Side != outcome.SideA || r.SIPCode != 200 {
				t.Errorf("record: cause %s side %s code %d; want caller_bye, a, 200", r.Cause, r.Side, r.SIPCode)
			}
			select {
			case r := <-g.rec.ended:
				t.Errorf("a second record: %+v", r)
			default:
			}
		})
	}
}

// isRequestAnswer matches any final response to method.
func isRequestAnswer(method sip.RequestMethod) func(sip.Message) bool {
	return func(m sip.Message) bool {
		res, ok := m.(sip.Response)
		_, cm := sipmsg.CSeq(m)
		return ok && res.StatusCode() >= 200 && cm == method
	}
}

// TestFlowGraceTakeoverByCredentials: a caller without an instance-id
// comes back on a new connection without registering: its first request
// there is challenged, its credentials for the same user move the
// dialog's route there, and the PBX's BYE reaches it on the new
// connection.
func TestFlowGraceTakeoverByCredentials(t *testing.T) {
	g := startGraceSBC(t, 30*time.Second)
	alice := g.dial(t, transport.WS, "127.0.11.2", "alice")
	alice.register("")
	c := g.call(t, alice)
	alice.close()
	waitUntil(t, "the call to wait for alice", g.inGrace)

	back := g.dial(t, transport.WS, "127.0.11.2", "alice")
	back.send(c.request(back, "INFO", "", "Content-Type: text/plain", "", "hello")...)
	ch := back.recv("407 to INFO", isResponse(407, sip.INFO)).(sip.Response)
	h, err := trunkreg.Answer(ch, trunkreg.Credentials{User: "alice", Password: "secret", Method: "INFO",
		URI: "sip:bob@" + back.sbc.String()}, false)
	if err != nil {
		t.Fatal(err)
	}
	back.send(c.request(back, "INFO", "", h.Name()+": "+h.Value(), "Content-Type: text/plain", "", "hello")...)
	info := g.pbx.recv("INFO relayed", isRequest(sip.INFO))
	g.pbx.answer(info, "200 OK")
	back.recv("200 to INFO", isResponse(200, sip.INFO))
	if g.inGrace() {
		t.Fatal("the call still waits for alice after she took it over")
	}

	g.pbxRequest(c, "BYE", 3)
	g.pbx.recv("200 to the PBX's BYE", isResponse(200, sip.BYE))
	bye := back.recv("BYE on the new connection", isRequest(sip.BYE))
	if sipmsg.CallID(bye) != c.callID || sipmsg.FromTag(bye) != c.tag {
		t.Errorf("BYE of dialog %s/%s, want %s/%s", sipmsg.CallID(bye), sipmsg.FromTag(bye), c.callID, c.tag)
	}
	back.answer(bye, "200 OK")
	r := g.rec.next(t)
	if r.Cause != outcome.CauseCalleeBye || r.Side != outcome.SideB {
		t.Errorf("record: cause %s side %s; want callee_bye, b", r.Cause, r.Side)
	}
}

// TestFlowGraceEnds: nobody takes the dialog over: the grace's end ends
// the call with connection_lost and the PBX gets BYE; or the PBX hangs
// up in the gap: 200 to it at once, callee_bye.
func TestFlowGraceEnds(t *testing.T) {
	t.Run("grace runs out", func(t *testing.T) {
		const grace = 300 * time.Millisecond
		g := startGraceSBC(t, grace)
		alice := g.dial(t, transport.WS, "127.0.11.2", "alice")
		alice.register("1111-aaaa")
		g.call(t, alice)
		alice.close()
		lost := time.Now()
		waitUntil(t, "the call to wait for alice", g.inGrace)
		bye := g.pbx.recv("BYE", isRequest(sip.BYE))
		if d := time.Since(lost); d < grace {
			t.Errorf("BYE %v after the connection closed, before the grace (%v) ran out", d, grace)
		}
		g.pbx.answer(bye, "200 OK")
		if r := g.rec.next(t); r.Cause != outcome.CauseConnectionLost || r.Side != outcome.SideA {
			t.Errorf("record: cause %s side %s; want connection_lost, a", r.Cause, r.Side)
		}
	})
	t.Run("far end hangs up in the gap", func(t *testing.T) {
		g := startGraceSBC(t, 30*time.Second)
		alice := g.dial(t, transport.TCP, "127.0.11.2", "alice")
		alice.register("1111-aaaa")
		c := g.call(t, alice)
		alice.close()
		waitUntil(t, "the call to wait for alice", g.inGrace)
		g.pbxRequest(c, "BYE", 2)
		g.pbx.recv("200 to the PBX's BYE", isResponse(200, sip.BYE))
		if r := g.rec.next(t); r.Cause != outcome.CauseCalleeBye || r.Side != outcome.SideB {
			t.Errorf("record: cause %s side %s; want callee_bye, b", r.Cause, r.Side)
		}
	})
}

// TestFlowGraceMovedByRegistration: alice's instance registers again on
// a new connection and sends nothing in the dialog: the PBX's BYE reaches
// her there. Another user registering with her instance-id moves nothing.
func TestFlowGraceMovedByRegistration(t *testing.T) {
	g := startGraceSBC(t, 30*time.Second)
	alice := g.dial(t, transport.WS, "127.0.11.2", "alice")
	alice.register("1111-aaaa")
	c := g.call(t, alice)
	alice.close()
	waitUntil(t, "the call to wait for alice", g.inGrace)

	mallory := g.dial(t, transport.WS, "127.0.11.66", "mallory")
	mallory.register("1111-aaaa")
	back := g.dial(t, transport.WS, "127.0.11.2", "alice")
	if !g.inGrace() {
		t.Fatal("mallory's registration with alice's instance-id took her call")
	}
	back.register("1111-aaaa")
	waitUntil(t, "the call to move to alice's new registration", func() bool { return !g.inGrace() })

	g.pbxRequest(c, "BYE", 3)
	g.pbx.recv("200 to the PBX's BYE", isResponse(200, sip.BYE))
	bye := back.recv("BYE on the new connection", isRequest(sip.BYE))
	back.answer(bye, "200 OK")
	if r := g.rec.next(t); r.Cause != outcome.CauseCalleeBye || r.Side != outcome.SideB {
		t.Errorf("record: cause %s side %s; want callee_bye, b", r.Cause, r.Side)
	}
	select {
	case m, ok := <-mallory.msgs:
		if ok {
			t.Errorf("mallory got %s", m.StartLine())
		}
	default:
	}
}

// TestFlowGraceCallee: the browser is the callee (leg B, reached through
// its registration): its connection closes after it answered, the call
// waits, and its BYE from a new connection, where its instance
// registered again, ends the call: the PBX, the caller here, gets BYE.
func TestFlowGraceCallee(t *testing.T) {
	g := startGraceSBC(t, 30*time.Second)
	alice := g.dial(t, transport.WS, "127.0.11.2", "alice")
	alice.register("1111-aaaa")
	g.pbx.send(fmt.Sprintf("INVITE sip:alice@%s SIP/2.0", g.pbx.sbc),
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bKpbxinv1;rport", g.pbx.addr()), "Max-Forwards: 70",
		"From: <sip:pbx@example.com>;tag=p1", "To: <sip:alice@example.com>", "Call-ID: grace-callee", "CSeq: 1 INVITE",
		"Contact: <sip:pbx@"+g.pbx.addr()+">", "Content-Type: application/sdp", "", calleeSDP)
	inv := alice.recv("INVITE on alice's connection", isRequest(sip.INVITE))
	lines := []string{"SIP/2.0 200 OK"}
	for _, v := range sipmsg.Values(inv, "Via") {
		lines = append(lines, "Via: "+v)
	}
	alice.send(append(lines, "From: "+sipmsg.Header(inv, "From"), "To: "+sipmsg.Header(inv, "To")+";tag=al1",
		"Call-ID: "+sipmsg.CallID(inv), "CSeq: "+sipmsg.Header(inv, "CSeq"),
		"Contact: <sip:alice@"+alice.host+";transport=ws;ob>", "Content-Type: application/sdp", "", callerSDP)...)
	alice.recv("ACK", isRequest(sip.ACK))
	g.pbx.recv("200 to the PBX's INVITE", isResponse(200, sip.INVITE))
	alice.close()
	waitUntil(t, "the call to wait for alice", g.inGrace)

	back := g.dial(t, transport.WS, "127.0.11.2", "alice")
	back.register("1111-aaaa")
	back.send(fmt.Sprintf("BYE %s SIP/2.0", sipmsg.ContactURI(inv)), back.via(), "Max-Forwards: 70",
		"From: "+sipmsg.Header(inv, "To")+";tag=al1", "To: "+sipmsg.Header(inv, "From"), "Call-ID: "+sipmsg.CallID(inv),
		"CSeq: 1 BYE")
	back.recv("200 to BYE on the new connection", isResponse(200, sip.BYE))
	bye := g.pbx.recv("BYE", isRequest(sip.BYE))
	g.pbx.answer(bye, "200 OK")
	if r := g.rec.next(t); r.Cause != outcome.CauseCalleeBye || r.Side != outcome.SideB {
		t.Errorf("record: cause %s side %s; want callee_bye, b", r.Cause, r.Side)
	}
}
