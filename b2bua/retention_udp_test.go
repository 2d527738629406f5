package b2bua

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// TestAnsweredCallLetsMessagesGo: once a call is answered and both 2xx
// are ACKed, the call keeps no SIP message of its setup: A's INVITE, the
// INVITE to B and the ACK to B can all be collected while the call is up
// (an established call's memory, issue 15 point 6), no goroutine runs it
// while it waits for its next request, and the ACK is kept as
// the bytes sent: a retransmitted 2xx from B gets the same ACK byte for
// byte during B's INVITE transaction, the window of B's retransmissions
// (64*T1, RFC 3261 13.3.1.4, RFC 6026 Timer M), and those bytes go when
// it ends. Real UDP
// sockets on 127.0.43.x and the real transaction layer (T1 50 ms).
func TestAnsweredCallLetsMessagesGo(t *testing.T) {
	callee := newRawPeerAt(t, "127.0.43.3")
	tap := &weakTap{}
	s := startTappedUDPServer(t, callee.addr(), tap.tap)
	sbc, err := s.Listen("udp", transport.UDP, "127.0.43.1:0", transport.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	callee.sbc = net.UDPAddrFromAddrPort(sbc)
	caller := newRawPeer(t, "127.0.43.2", sbc)
	dialog := func(method string, seq int, toTag string, extra ...string) []string {
		to := "<sip:1000@127.0.43.1>"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		return append([]string{
			fmt.Sprintf("%s sip:1000@%s SIP/2.0", method, sbc),
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s%d;rport", caller.addr(), strings.ToLower(method), seq),
			"Max-Forwards: 70", "From: <sip:alice@127.0.43.2>;tag=a1", "To: " + to, "Call-ID: retention-udp",
			fmt.Sprintf("CSeq: %d %s", seq, method), "Contact: <sip:alice@" + caller.addr() + ">",
		}, extra...)
	}
	caller.send(dialog("INVITE", 1, "", "Content-Type: application/sdp", "", callerSDP)...)
	inv := callee.recv("INVITE", isRequest(sip.INVITE))
	ok200 := func() { callee.answer(inv, "200 OK", "Content-Type: application/sdp", "", calleeSDP) }
	ok200()
	first := recvRaw(t, callee, "ACK")
	tag := sipmsg.ToTag(caller.recv("200 to INVITE", isResponse(200, sip.INVITE)))
	caller.send(dialog("ACK", 1, tag)...)

	ok200() // lost ACK: B retransmits its 2xx within its INVITE transaction
	if again := recvRaw(t, callee, "ACK again"); !bytes.Equal(again, first) {
		t.Fatalf("ACK to the retransmitted 2xx differs:\n--- first\n%s\n--- again\n%s", first, again)
	}
	tap.collected(t, "A's INVITE", "the INVITE to B", "the ACK to B")
	idleCallsRunNoGoroutine(t)

	// B's INVITE transaction ends 64*T1 after the 2xx (Timer M).
	for deadline := time.Now().Add(wait); s.tx.Count() > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d transactions still live", s.tx.Count())
		}
	}
	// No 2xx retransmission of B's comes after that: the ACK's bytes go.
	if n := ackBytesKept(t, s); n != 0 {
		t.Fatalf("the call still keeps %d bytes of ACK after B's INVITE transaction ended", n)
	}
	caller.send(dialog("BYE", 2, tag)...)
	bye := callee.recv("BYE", isRequest(sip.BYE))
	callee.answer(bye, "200 OK")
	caller.recv("200 to BYE", isResponse(200, sip.BYE))
}

// ackBytesKept reads, on the call's goroutine, how many bytes of ACK the
// legs of the server's one call keep.
func ackBytesKept(t *testing.T, s *Server) int {
	return onTheCall(t, s, func(c *Call) int { return len(c.a.lastACK) + len(c.b.lastACK) })
}

// idleCallsRunNoGoroutine waits, bounded, until no goroutine runs a call:
// an established call waiting for its next request has none.
func idleCallsRunNoGoroutine(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "b2bua.(*Call).run(") && !strings.Contains(stacks, "b2bua.(*Call).loop(") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a goroutine still runs the idle call:\n%s", stacks)
		}
	}
}

// recvRaw returns the bytes of the next request of method p receives.
func recvRaw(t *testing.T, p *rawPeer, method string) []byte {
	t.Helper()
	buf := make([]byte, 65535)
	deadline := time.Now().Add(wait)
	verb := strings.Fields(method)[0] + " "
	for {
		_ = p.conn.SetReadDeadline(deadline)
		n, err := p.conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v", method, err)
		}
		if bytes.HasPrefix(buf[:n], []byte(verb)) {
			return bytes.Clone(buf[:n])
		}
	}
}

// weakTap watches, without keeping them, the messages of a call's setup
// the SBC received (A's INVITE) and sent (the INVITE and ACK to B).
type weakTap struct {
	mu   sync.Mutex
	msgs map[string]weak.Pointer[sipmsg.Request]
}

func (w *weakTap) tap(m *TapMessage) {
	req, ok := m.msg.(*sipmsg.Request)
	if !ok {
		return
	}
	var name string
	switch {
	case m.Dir == Received && m.Method == "INVITE":
		name = "A's INVITE"
	case m.Dir == Sent && m.Method == "INVITE":
		name = "the INVITE to B"
	case m.Dir == Sent && m.Method == "ACK":
		name = "the ACK to B"
	default:
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.msgs == nil {
		w.msgs = make(map[string]weak.Pointer[sipmsg.Request])
	}
	if _, seen := w.msgs[name]; !seen { // the first: an ACK re-sent is parsed anew for the tap
		w.msgs[name] = weak.Make(req)
	}
}

// collected fails unless the named messages were seen and can be collected.
func (w *weakTap) collected(t *testing.T, names ...string) {
	t.Helper()
	for range 3 { // a finalizer-free object goes in one cycle; spare two
		runtime.GC()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, name := range names {
		p, seen := w.msgs[name]
		switch {
		case !seen:
			t.Errorf("%s never passed the tap", name)
		case p.Value() != nil:
			t.Errorf("%s is still held by the answered call", name)
		}
	}
}

// startTappedUDPServer is startUDPServer with a tap.
func startTappedUDPServer(t testing.TB, callee string, tap Tap) *Server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	table, err := routing.New(routing.TableSpec{
		Trunks: []routing.TrunkSpec{{Name: "pbx", URI: "sip:" + callee}},
		Routes: []routing.RouteSpec{{Name: "out", Target: routing.TargetTrunks, Trunks: []string{"pbx"}}},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{RingTimeout: 5 * time.Second, InviteTimeout: 5 * time.Second, MinSE: 90 * time.Second,
		SessionExpires: 1800 * time.Second, Timers: txn.Timers{T1: 50 * time.Millisecond}},
		Hooks{Routes: table, Tap: tap, Media: func(string) (MediaSession, error) { return fakeMedia{}, nil }}, log)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}
