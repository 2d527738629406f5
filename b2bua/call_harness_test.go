package b2bua

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/media"
	"github.com/sbc-project/sbc/policy"
)

// The call state machine's unit tests drive a Call through a fake
// transaction layer: the test is the caller (a fakeServerTx per request it
// sends) and the callee (it answers each fakeClientTx the call starts).

// wait bounds every wait of these tests: generous for a loaded machine.
const wait = 10 * time.Second

// fakeServerTx is a request from the caller; the call's answers queue up.
type fakeServerTx struct {
	req     sip.Request
	src     transport.Target
	answers chan sip.Response

	mu        sync.Mutex
	cancelled bool
	onCancel  func()
}

func newFakeServerTx(req sip.Request) *fakeServerTx {
	return &fakeServerTx{req: req, answers: make(chan sip.Response, 32),
		src: transport.Target{Kind: transport.UDP, Addr: netip.MustParseAddrPort("192.0.2.10:5060"), Listener: "udp"}}
}

func (f *fakeServerTx) Request() sip.Request           { return f.req }
func (f *fakeServerTx) Source() transport.Target       { return f.src }
func (f *fakeServerTx) Respond(res sip.Response) error { f.answers <- res; return nil }

// Notify is txn.ServerTx's: a CANCEL that came first is reported at once.
func (f *fakeServerTx) Notify(cancelled, _ func()) {
	f.mu.Lock()
	f.onCancel = cancelled
	now := f.cancelled
	f.mu.Unlock()
	if now && cancelled != nil {
		cancelled()
	}
}

// cancel plays the caller's CANCEL, as the layer reports it.
func (f *fakeServerTx) cancel() {
	f.mu.Lock()
	f.cancelled = true
	fn := f.onCancel
	f.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// final waits for the call's final answer, skipping provisional ones.
func (f *fakeServerTx) final(t testing.TB) sip.Response {
	t.Helper()
	for {
		select {
		case res := <-f.answers:
			if res.StatusCode() >= 200 {
				return res
			}
		case <-time.After(wait):
			t.Fatalf("no final answer to %s", f.req.Method())
		}
	}
}

// next waits for the call's next answer.
func (f *fakeServerTx) next(t testing.TB) sip.Response {
	t.Helper()
	select {
	case res := <-f.answers:
		return res
	case <-time.After(wait):
		t.Fatalf("no answer to %s", f.req.Method())
		return nil
	}
}

// fakeClientTx is a request the call sent; the test answers it.
type fakeClientTx struct {
	req     sip.Request
	dst     transport.Target
	call    *Call // gets the responses and the end, as the real layer posts them
	cancels chan struct{}

	mu    sync.Mutex
	ended bool
}

func (f *fakeClientTx) Cancel() error {
	select {
	case f.cancels <- struct{}{}:
	default:
	}
	return nil
}

// answer sends the callee's response to the request (To tag "callee").
func (f *fakeClientTx) answer(code int, sdp string) {
	res := txn.NewResponse(f.req, code, outcome.Phrase(code))
	if code > 100 {
		if to, ok := res.To(); ok {
			sipmsg.SetTag(to, "callee")
		}
	}
	if code >= 200 && code < 300 && f.req.Method() == sip.INVITE {
		res.AppendHeader(sipmsg.Generic("Contact", "<sip:callee@192.0.2.20:5060>"))
	}
	if sdp != "" {
		sipmsg.SetBody(res, "application/sdp", sdp)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return
	}
	f.call.post(event{kind: evResponse, client: f, res: res})
	if code >= 200 {
		f.ended = true
		f.call.post(event{kind: evTxDone, client: f, req: f.req})
	}
}

// end ends the transaction (Timer K/M passed) if it has not ended.
func (f *fakeClientTx) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ended {
		f.ended = true
		f.call.post(event{kind: evTxDone, client: f, req: f.req})
	}
}

// fakeTxs is the fake transaction layer: every request the calls start
// and every ACK they send arrive on channels for the test.
type fakeTxs struct {
	sent chan *fakeClientTx
	wire chan sip.Message

	mu  sync.Mutex
	all []*fakeClientTx
}

func (f *fakeTxs) Request(req sip.Request, dst transport.Target, c *Call) (clientTx, error) {
	tx := &fakeClientTx{req: req, dst: dst, call: c, cancels: make(chan struct{}, 1)}
	f.mu.Lock()
	f.all = append(f.all, tx)
	f.mu.Unlock()
	f.sent <- tx
	return tx, nil
}

// shutdown plays the far ends while the server closes: each request still
// unanswered ends as the real layer's Close ends it (no final response),
// and each request sent from now on (the BYEs of shutdown) gets a 200.
// The returned func stops it.
func (f *fakeTxs) shutdown() (stop func()) {
	f.mu.Lock()
	pending := f.all
	f.mu.Unlock()
	for _, tx := range pending {
		tx.end()
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case tx := <-f.sent:
				tx.answer(200, "")
			case <-f.wire:
			case <-quit:
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}

func (f *fakeTxs) Send(msg sip.Message, _ transport.Target) error {
	f.wire <- msg
	return nil
}

// SendRendered puts the message on the wire as the far end reads it:
// parsed from the bytes sent.
func (f *fakeTxs) SendRendered(data []byte, _ sip.Message, _ transport.Target) error {
	msg, err := sipmsg.NewParser(sipmsg.Limits{}).Parse(data)
	if err != nil {
		return err
	}
	f.wire <- msg
	return nil
}

// next waits for the next request a call sends to a callee.
func (f *fakeTxs) next(t testing.TB, method sip.RequestMethod) *fakeClientTx {
	t.Helper()
	for {
		select {
		case tx := <-f.sent:
			if tx.req.Method() == method {
				return tx
			}
			tx.answer(200, "") // a request the test does not follow
		case <-time.After(wait):
			t.Fatalf("no %s sent", method)
		}
	}
}

// ack waits for an ACK on the wire (the ACK of a 2xx is no transaction).
func (f *fakeTxs) ack(t testing.TB) sip.Message {
	t.Helper()
	select {
	case m := <-f.wire:
		return m
	case <-time.After(wait):
		t.Fatal("no ACK sent")
		return nil
	}
}

// fakeMedia is a media session that passes SDP through.
type fakeMedia struct{}

func (fakeMedia) Configure(media.Side, media.SideOptions)         {}
func (fakeMedia) Notify(func(media.Event))                        {}
func (fakeMedia) Offer(_ media.Side, sdp []byte) ([]byte, error)  { return sdp, nil }
func (fakeMedia) Answer(_ media.Side, sdp []byte) ([]byte, error) { return sdp, nil }
func (fakeMedia) Absorb(media.Side, []byte) ([]byte, bool)        { return nil, false }
func (fakeMedia) SendDTMF(media.Side, media.DTMF) error           { return nil }
func (fakeMedia) Codecs() [2]string                               { return [2]string{"PCMU/8000", "PCMU/8000"} }
func (fakeMedia) Transcoded() bool                                { return false }
func (fakeMedia) Stats() media.Stats                              { return media.Stats{} }
func (fakeMedia) Stop()                                           {}
func (fakeMedia) Close()                                          {}

// records keeps the call records the server reports.
type records struct{ ended chan outcome.CallRecord }

func (r *records) CallStarted(outcome.CallRecord)   {}
func (r *records) CallAnswered(outcome.CallRecord)  {}
func (r *records) CallEnded(rec outcome.CallRecord) { r.ended <- rec }

func (r *records) next(t testing.TB) outcome.CallRecord {
	t.Helper()
	select {
	case rec := <-r.ended:
		return rec
	case <-time.After(wait):
		t.Fatal("no call record")
		return outcome.CallRecord{}
	}
}

// callHarness is a server with one trunk route, a fake transaction layer
// and a recorder of call records.
type callHarness struct {
	s   *Server
	txs *fakeTxs
	rec *records
}

func newCallHarness(t testing.TB, pol Policy) *callHarness {
	t.Helper()
	return newCallHarnessWith(t, pol, routing.TrunkSpec{Name: "pbx", URI: "sip:192.0.2.20:5060"}, nil)
}

// newCallHarnessWith is newCallHarness with its trunk (named pbx) and the
// server's header whitelist given.
func newCallHarnessWith(t testing.TB, pol Policy, trunk routing.TrunkSpec, whitelist []string) *callHarness {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	table, err := routing.New(routing.TableSpec{
		Trunks: []routing.TrunkSpec{trunk},
		Routes: []routing.RouteSpec{{Name: "out", Target: routing.TargetTrunks, Trunks: []string{"pbx"}}},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	h := &callHarness{txs: &fakeTxs{sent: make(chan *fakeClientTx, 16), wire: make(chan sip.Message, 16)},
		rec: &records{ended: make(chan outcome.CallRecord, 4)}}
	h.s = New(Config{RingTimeout: 5 * time.Second, InviteTimeout: 5 * time.Second, MinSE: 90 * time.Second,
		SessionExpires: 1800 * time.Second, HeaderWhitelist: whitelist},
		Hooks{Routes: table, Media: func(string) (MediaSession, error) { return fakeMedia{}, nil },
			Observer: h.rec, Policy: pol}, log)
	h.s.txs = h.txs
	// The SBC's own address for Via and Contact comes from a listener.
	if _, err := h.s.Listen("udp", transport.UDP, "127.0.0.1:0", transport.ListenOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		stop := h.txs.shutdown()
		defer stop()
		_ = h.s.Close(ctx)
	})
	return h
}

const callerSDP = "v=0\r\no=a 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"

// callerRequest parses a request of the caller's dialog (Call-ID c1, From
// tag a1); toTag "" for the INVITE.
func callerRequest(t testing.TB, method string, seq int, toTag, sdp string) sip.Request {
	t.Helper()
	to := "<sip:2125550100@sbc.example>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	ct := ""
	if sdp != "" {
		ct = "Content-Type: application/sdp\r\n"
	}
	raw := fmt.Sprintf("%s sip:2125550100@sbc.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK%s%d\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:alice@caller.example>;tag=a1\r\nTo: %s\r\nCall-ID: c1\r\nCSeq: %d %s\r\n"+
		"Contact: <sip:alice@192.0.2.10:5060>\r\n%sContent-Length: %d\r\n\r\n%s",
		method, strings.ToLower(method), seq, to, seq, method, ct, len(sdp), sdp)
	msg, err := sipmsg.NewParser(sipmsg.Limits{}).Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse %s: %v", method, err)
	}
	return msg.(sip.Request)
}

// call starts a call from the caller and returns its INVITE's transaction.
func (h *callHarness) call(t testing.TB) *fakeServerTx {
	t.Helper()
	a := newFakeServerTx(callerRequest(t, "INVITE", 1, "", callerSDP))
	h.s.newCall(a.req, a)
	return a
}

// inDialog sends the caller's in-dialog request; nil tx for an ACK.
func (h *callHarness) inDialog(t testing.TB, method string, seq int, toTag, sdp string) *fakeServerTx {
	t.Helper()
	req := callerRequest(t, method, seq, toTag, sdp)
	if method == "ACK" {
		h.s.inDialog(req, nil)
		return nil
	}
	tx := newFakeServerTx(req)
	h.s.inDialog(req, tx)
	return tx
}

// answered sets up an answered call and returns A's To tag and leg B's
// INVITE transaction.
func (h *callHarness) answered(t testing.TB) (string, *fakeClientTx) {
	t.Helper()
	a := h.call(t)
	b := h.txs.next(t, sip.INVITE)
	b.answer(200, callerSDP)
	h.txs.ack(t) // leg B's ACK
	res := a.final(t)
	if res.StatusCode() != 200 {
		t.Fatalf("caller got %d, want 200", res.StatusCode())
	}
	tag := sipmsg.ToTag(res)
	h.inDialog(t, "ACK", 1, tag, "")
	return tag, b
}

// stallingPolicy is a chain whose late stages wait on the network until
// the call's context ends (a lookup stuck behind a dead server).
type stallingPolicy struct{ entered, left chan struct{} }

func (p *stallingPolicy) Early(context.Context, *policy.Request) policy.Decision { return policy.Pass }
func (p *stallingPolicy) Late(ctx context.Context, _ *policy.Request) policy.Decision {
	close(p.entered)
	<-ctx.Done()
	close(p.left)
	return policy.Decision{Action: policy.Answer, Code: 503, Reason: "Service Unavailable", Cause: "lookup_failed"}
}
func (p *stallingPolicy) Banned(netip.Addr, string) bool          { return false }
func (p *stallingPolicy) Report(netip.Addr, string, policy.Event) {}
func (p *stallingPolicy) MaxDuration() time.Duration              { return 0 }

// calleeRequest parses a request of the callee in leg B's dialog, the one
// b's INVITE opened (the callee's tag "callee").
func calleeRequest(t testing.TB, b *fakeClientTx, method string, seq int) sip.Request {
	t.Helper()
	from, _ := b.req.From()
	raw := fmt.Sprintf("%s sip:sbc@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKcallee%d\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:2125550100@192.0.2.20>;tag=callee\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n"+
		"Contact: <sip:callee@192.0.2.20:5060>\r\nContent-Length: 0\r\n\r\n",
		method, seq, from.Value(), sipmsg.CallID(b.req), seq, method)
	msg, err := sipmsg.NewParser(sipmsg.Limits{}).Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse %s: %v", method, err)
	}
	return msg.(sip.Request)
}

// noPortsMedia is a media session whose port range is full.
type noPortsMedia struct{ fakeMedia }

func (noPortsMedia) Offer(media.Side, []byte) ([]byte, error) {
	return nil, fmt.Errorf("allocate: %w", media.ErrNoPorts)
}
