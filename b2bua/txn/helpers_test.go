package txn

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// rfcTimers are the RFC 3261 defaults, for the tests on the fake clock;
// the automatic 100 Trying is off except where a test wants it.
var rfcTimers = Timers{Trying: -1}

const (
	t1   = DefaultT1
	t2   = DefaultT2
	t4   = DefaultT4
	t64  = 64 * DefaultT1 // Timers B, D, F, H, J, L, M
	tick = time.Millisecond
)

// testTimers keep the real-clock test short: 64*T1 is 640ms.
var testTimers = Timers{T1: 10 * time.Millisecond, T2: 40 * time.Millisecond, T4: 50 * time.Millisecond, Trying: -1}

// wait bounds every wait on the real clock; nothing legitimate takes this long.
const wait = 10 * time.Second

var (
	peer    = netip.MustParseAddrPort("127.0.0.1:5070")
	udpPeer = transport.Target{Kind: transport.UDP, Addr: peer}
	tcpPeer = transport.Target{Kind: transport.TCP, Addr: peer}
)

// sent is one message the layer wrote.
type sent struct {
	msg  sip.Message
	dst  transport.Target
	text string
}

// capture is a Sender that records what it is given.
type capture struct {
	mu   sync.Mutex
	msgs []sent
	fail error // returned by send when set
}

func (c *capture) send(msg sip.Message, dst transport.Target) error {
	text := msg.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.msgs = append(c.msgs, sent{msg: msg, dst: dst, text: text})
	return nil
}

func (c *capture) matching(pred func(sent) bool) []sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []sent
	for _, s := range c.msgs {
		if pred(s) {
			out = append(out, s)
		}
	}
	return out
}

func (c *capture) count(pred func(sent) bool) int { return len(c.matching(pred)) }

// want checks how many sent messages satisfy pred.
func (c *capture) want(t *testing.T, n int, pred func(sent) bool, what string) []sent {
	t.Helper()
	got := c.matching(pred)
	if len(got) != n {
		t.Fatalf("%s sent %d times, want %d", what, len(got), n)
	}
	return got
}

func anything(sent) bool { return true }

func status(code int) func(sent) bool {
	return func(s sent) bool {
		res, ok := s.msg.(sip.Response)
		return ok && int(res.StatusCode()) == code
	}
}

func statusFor(code int, m sip.RequestMethod) func(sent) bool {
	return func(s sent) bool {
		res, ok := s.msg.(sip.Response)
		cseq, _ := s.msg.CSeq()
		return ok && int(res.StatusCode()) == code && cseq.MethodName == m
	}
}

func method(m sip.RequestMethod) func(sent) bool {
	return func(s sent) bool {
		req, ok := s.msg.(sip.Request)
		return ok && req.Method() == m
	}
}

// call is one Handler.OnRequest call.
type call struct {
	req sip.Request
	tx  *ServerTx
}

// recorder is a Handler that queues its calls.
type recorder struct{ calls chan call }

func newRecorder() *recorder { return &recorder{calls: make(chan call, 64)} }

func (r *recorder) OnRequest(req sip.Request, tx *ServerTx) {
	if tx != nil {
		requests.Store(tx, req)
	}
	r.calls <- call{req, tx}
}

// requests are the requests of the transactions the tests started or
// received: a transaction lets its own go once answered for good
// (ClientTx.Request, ServerTx.Request), and the tests still build
// responses to it.
var requests sync.Map // *ClientTx or *ServerTx → sip.Request

// reqOf is the request tx was started with or received.
func reqOf(t *testing.T, tx any) sip.Request {
	t.Helper()
	r, ok := requests.Load(tx)
	if !ok {
		t.Fatalf("no request recorded for %T", tx)
	}
	return r.(sip.Request)
}

func (r *recorder) next(t *testing.T) call {
	t.Helper()
	select {
	case c := <-r.calls:
		return c
	default:
		t.Fatal("no request handed to the TU")
		return call{}
	}
}

func (r *recorder) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-r.calls:
		t.Fatalf("unexpected request to the TU: %s", c.req.StartLine())
	default:
	}
}

// env is one scenario: a layer on a fake clock wired to a capture and a
// recorder.
type env struct {
	l   *Layer
	clk *fakeClock
	out *capture
	tu  *recorder
}

// newEnv returns a layer whose leaks are checked when the test ends: every
// transaction must have ended on its own, with its timers stopped.
func newEnv(t *testing.T, timers Timers) *env {
	t.Helper()
	e := &env{clk: &fakeClock{}, out: &capture{}, tu: newRecorder()}
	e.l = New(e.out.send, e.tu, timers, nil)
	e.l.sched.clock = e.clk
	e.l.sched.slack = 0 // exact: the tests check RFC 3261 deadlines to the tick
	t.Cleanup(func() {
		defer e.l.Close()
		if t.Failed() {
			return
		}
		if n := e.l.Count(); n != 0 {
			t.Errorf("%d transactions live at the end", n)
		}
		if n := e.l.sched.armed(); n != 0 {
			t.Errorf("%d timers live at the end", n)
		}
	})
	return e
}

// advance lets d pass on the fake clock.
func (e *env) advance(d time.Duration) { e.clk.Advance(d) }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func closed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	if !isClosed(ch) {
		t.Fatalf("%s not closed", what)
	}
}

func open(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	if isClosed(ch) {
		t.Fatalf("%s closed", what)
	}
}

// rq describes a request arriving from, or sent to, the peer.
type rq struct {
	method sip.RequestMethod
	branch string
	via    string // sent-by and transport, default "UDP 127.0.0.1:5070;rport"
	callID string
	cseq   int
	toTag  string
	extra  string // more header lines, each ending in \r\n
}

func (r rq) raw() string {
	via := r.via
	if via == "" {
		via = "UDP 127.0.0.1:5070;rport"
	}
	branch := ""
	if r.branch != "" {
		branch = ";branch=" + r.branch
	}
	to := ""
	if r.toTag != "" {
		to = ";tag=" + r.toTag
	}
	callID, cseq := r.callID, r.cseq
	if callID == "" {
		callID = "call-1"
	}
	if cseq == 0 {
		cseq = 1
	}
	cseqMethod := r.method
	return fmt.Sprintf("%s sip:bob@127.0.0.1:5060 SIP/2.0\r\n"+
		"Via: SIP/2.0/%s%s\r\n"+
		"Max-Forwards: 70\r\n%s"+
		"From: <sip:alice@127.0.0.1>;tag=from-1\r\n"+
		"To: <sip:bob@127.0.0.1>%s\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: %d %s\r\n"+
		"Content-Length: 0\r\n\r\n", r.method, via, branch, r.extra, to, callID, cseq, cseqMethod)
}

func (r rq) req(t *testing.T) sip.Request {
	t.Helper()
	return parse(t, r.raw()).(sip.Request)
}

// parse runs text through the SBC's parser, as the server does: each call
// yields a new message, as a retransmission would.
func parse(t *testing.T, text string) sip.Message {
	t.Helper()
	msg, err := sipmsg.NewParser(sipmsg.Limits{}).Parse([]byte(text))
	if err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	return msg
}

// reply builds a response to req as the peer would send it, fresh each time.
func reply(t *testing.T, req sip.Request, code int, tag string) sip.Response {
	t.Helper()
	res := NewResponse(req, code, "Reason")
	if tag != "" {
		res = withToTag(res, tag)
	}
	return parse(t, res.String()).(sip.Response)
}

// respond has the TU answer tx, failing the test on error.
func respond(t *testing.T, tx *ServerTx, code int, tag string) sip.Response {
	t.Helper()
	res := NewResponse(reqOf(t, tx), code, "Reason")
	if tag != "" {
		res = withToTag(res, tag)
	}
	if err := tx.Respond(res); err != nil {
		t.Fatalf("respond %d: %v", code, err)
	}
	return res
}

// next reads the next response of a client transaction, waiting on the
// real clock (the UDP test) but returning at once when one is queued.
func next(t *testing.T, tx *ClientTx) sip.Response {
	t.Helper()
	select {
	case res, ok := <-tx.Responses():
		if !ok {
			t.Fatal("responses closed")
		}
		return res
	case <-time.After(wait):
		t.Fatal("no response delivered")
		return nil
	}
}

// noResponse checks that nothing is queued on Responses and it is open.
func noResponse(t *testing.T, tx *ClientTx) {
	t.Helper()
	select {
	case res, ok := <-tx.Responses():
		if ok {
			t.Fatalf("unexpected response %s", res.StartLine())
		}
		t.Fatal("responses closed")
	default:
	}
}

// drained checks that Responses is closed, returning what came before.
func drained(t *testing.T, tx *ClientTx) []sip.Response {
	t.Helper()
	var got []sip.Response
	for {
		select {
		case res, ok := <-tx.Responses():
			if !ok {
				return got
			}
			got = append(got, res)
		default:
			t.Fatalf("responses not closed (queued: %v)", codes(got))
		}
	}
}

func branchOfMsg(msg sip.Message) string {
	hop, _ := msg.ViaHop()
	return branchOf(hop)
}

func hasLine(text, line string) bool {
	return strings.Contains(text, "\r\n"+line+"\r\n")
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
