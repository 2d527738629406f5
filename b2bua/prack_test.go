package b2bua

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// RFC 3262 on each leg, through the call state machine: the caller's side
// (the SBC sends reliable provisionals and answers PRACK) and the callee's
// (the SBC PRACKs), each on its own.

const calleeSDP = "v=0\r\no=b 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"

// callWith starts a call whose INVITE carries extra headers (Supported,
// Require) and returns its transaction and leg B's INVITE.
func (h *callHarness) callWith(t *testing.T, hdrs ...string) (*fakeServerTx, *fakeClientTx) {
	t.Helper()
	req := callerRequest(t, "INVITE", 1, "", callerSDP)
	for _, hd := range hdrs {
		name, value, _ := strings.Cut(hd, ": ")
		req.AppendHeader(sipmsg.Generic(name, value))
	}
	a := newFakeServerTx(req)
	h.s.newCall(a.req, a)
	return a, h.txs.next(t, sip.INVITE)
}

// prack sends the caller's PRACK (CSeq seq) with RAck rack in A's dialog.
func (h *callHarness) prack(t *testing.T, seq int, tag, rack string) sip.Response {
	t.Helper()
	req := callerRequest(t, "PRACK", seq, tag, "")
	req.AppendHeader(sipmsg.Generic("RAck", rack))
	tx := newFakeServerTx(req)
	h.s.inDialog(req, tx)
	return tx.final(t)
}

// provisional waits for the caller's next answer, skipping 100 Trying.
func provisional(t *testing.T, a *fakeServerTx) sip.Response {
	t.Helper()
	for {
		if res := a.next(t); res.StatusCode() != 100 {
			return res
		}
	}
}

// settle waits until the call has handled every event posted before it.
func settle(t *testing.T, h *callHarness) {
	t.Helper()
	var c *Call
	h.s.mu.Lock()
	for call := range h.s.calls {
		c = call
	}
	h.s.mu.Unlock()
	if c == nil {
		return
	}
	done := make(chan struct{})
	if !c.post(event{kind: evFunc, fn: func(*Call) { close(done) }}) {
		return
	}
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("call never handled its events")
	}
}

// noAnswer fails if the caller got an answer it should not have yet.
func noAnswer(t *testing.T, a *fakeServerTx, what string) {
	t.Helper()
	select {
	case res := <-a.answers:
		t.Fatalf("%s: caller got %d", what, res.StatusCode())
	default:
	}
}

// reliable has the callee answer b with a reliable provisional (RFC 3262
// 4: Require 100rel, RSeq) with its Contact, and SDP if given.
func reliable(b *fakeClientTx, code int, rseq uint32, sdp string) {
	res := txn.NewResponse(b.req, code, outcome.Phrase(code))
	to, _ := res.To()
	sipmsg.SetTag(to, "callee")
	uri, _ := sipmsg.ParseURI("sip:callee@192.0.2.20:5070")
	res.AppendHeader(&sip.ContactHeader{Address: uri, Params: sipmsg.NewParams()})
	res.AppendHeader(sipmsg.Generic("Require", "100rel"))
	res.AppendHeader(sipmsg.Generic("RSeq", strconv.FormatUint(uint64(rseq), 10)))
	if sdp != "" {
		sipmsg.SetBody(res, "application/sdp", sdp)
	}
	b.call.post(event{kind: evResponse, client: b, res: res})
}

// rseqOf returns a reliable provisional's RSeq; it fails t on an unreliable one.
func rseqOf(t *testing.T, res sip.Response) uint32 {
	t.Helper()
	if !sipmsg.HasOption(res, "Require", "100rel") {
		t.Fatalf("%d without Require: 100rel", res.StatusCode())
	}
	n, err := strconv.ParseUint(sipmsg.Header(res, "RSeq"), 10, 32)
	if err != nil || n == 0 || n >= 1<<31 {
		t.Fatalf("%d RSeq %q", res.StatusCode(), sipmsg.Header(res, "RSeq"))
	}
	return uint32(n)
}

func rack(rseq uint32) string { return strconv.FormatUint(uint64(rseq), 10) + " 1 INVITE" }

// TestPRACKCallerRequires: a caller that requires 100rel gets every
// provisional reliably, one at a time; a PRACK that acknowledges nothing
// outstanding gets 481; the 2xx waits for the PRACK of the provisional
// that carried the SDP answer (RFC 3262 3).
func TestPRACKCallerRequires(t *testing.T) {
	h := newCallHarness(t, nil)
	a, b := h.callWith(t, "Require: 100rel")
	b.answer(180, "")
	ring := provisional(t, a)
	if ring.StatusCode() != 180 {
		t.Fatalf("caller got %d, want 180", ring.StatusCode())
	}
	r1, tag := rseqOf(t, ring), sipmsg.ToTag(ring)
	b.answer(183, calleeSDP) // must wait for the 180's PRACK
	settle(t, h)
	noAnswer(t, a, "183 before the 180 was PRACKed")
	if res := h.prack(t, 2, tag, rack(r1+1)); res.StatusCode() != 481 {
		t.Fatalf("PRACK of an RSeq never sent: %d, want 481", res.StatusCode())
	}
	if res := h.prack(t, 3, tag, rack(r1)); res.StatusCode() != 200 {
		t.Fatalf("PRACK: %d, want 200", res.StatusCode())
	}
	early := provisional(t, a)
	if early.StatusCode() != 183 || early.Body() == "" || rseqOf(t, early) != r1+1 {
		t.Fatalf("caller got %d (body %q, RSeq %s), want 183 with SDP and RSeq %d",
			early.StatusCode(), early.Body(), sipmsg.Header(early, "RSeq"), r1+1)
	}
	b.answer(200, calleeSDP)
	h.txs.ack(t)
	settle(t, h)
	noAnswer(t, a, "2xx before the 183 with SDP was PRACKed")
	if res := h.prack(t, 4, tag, rack(r1)); res.StatusCode() != 481 {
		t.Fatalf("second PRACK of one RSeq: %d, want 481", res.StatusCode())
	}
	if res := h.prack(t, 5, tag, rack(r1+1)); res.StatusCode() != 200 {
		t.Fatalf("PRACK of the 183: %d, want 200", res.StatusCode())
	}
	if res := a.final(t); res.StatusCode() != 200 {
		t.Fatalf("caller got %d, want 200", res.StatusCode())
	}
	h.inDialog(t, "ACK", 1, tag, "")
	if res := h.inDialog(t, "BYE", 6, tag, "").final(t); res.StatusCode() != 200 {
		t.Fatalf("BYE: %d", res.StatusCode())
	}
	h.txs.next(t, sip.BYE).answer(200, "")
	if rec := h.rec.next(t); rec.Cause != outcome.CauseCallerBye || rec.SIPCode != 200 || rec.Answer.IsZero() {
		t.Errorf("record: cause %q code %d answered %v", rec.Cause, rec.SIPCode, !rec.Answer.IsZero())
	}
}

// TestPRACKCallerSupports: a caller that only supports 100rel gets its
// early media reliably, retransmitted until the PRACK, and other
// provisionals as they are.
func TestPRACKCallerSupports(t *testing.T) {
	h := newCallHarness(t, nil)
	h.s.cfg.Timers.T1 = 20 * time.Millisecond
	a, b := h.callWith(t, "Supported: 100rel, timer")
	b.answer(180, "")
	if res := provisional(t, a); res.StatusCode() != 180 || sipmsg.Header(res, "RSeq") != "" || sipmsg.HasOption(res, "Require", "100rel") {
		t.Fatalf("caller got %d RSeq %q Require %q, want an unreliable 180",
			res.StatusCode(), sipmsg.Header(res, "RSeq"), sipmsg.Header(res, "Require"))
	}
	b.answer(183, calleeSDP)
	early := provisional(t, a)
	r := rseqOf(t, early)
	again := provisional(t, a) // the retransmission, T1 later
	if again.StatusCode() != 183 || rseqOf(t, again) != r {
		t.Fatalf("retransmission: %d RSeq %s, want 183 RSeq %d", again.StatusCode(), sipmsg.Header(again, "RSeq"), r)
	}
	if res := h.prack(t, 2, sipmsg.ToTag(early), rack(r)); res.StatusCode() != 200 {
		t.Fatalf("PRACK: %d, want 200", res.StatusCode())
	}
	b.answer(200, calleeSDP)
	h.txs.ack(t)
	if res := a.final(t); res.StatusCode() != 200 {
		t.Fatalf("caller got %d, want 200", res.StatusCode())
	}
}

// TestPRACKCallerNeverAcknowledges: no PRACK within 64*T1 fails the call
// toward the caller with 504 and BYEs the callee that answered meanwhile.
func TestPRACKCallerNeverAcknowledges(t *testing.T) {
	h := newCallHarness(t, nil)
	h.s.cfg.Timers.T1 = 5 * time.Millisecond
	a, b := h.callWith(t, "Supported: 100rel")
	b.answer(183, calleeSDP)
	rseqOf(t, provisional(t, a))
	b.answer(200, calleeSDP)
	h.txs.ack(t)
	if res := a.final(t); res.StatusCode() != 504 {
		t.Fatalf("caller got %d, want 504", res.StatusCode())
	}
	h.txs.next(t, sip.BYE).answer(200, "")
	rec := h.rec.next(t)
	if rec.Cause != outcome.CausePRACKTimeout || rec.Side != outcome.SideA || rec.SIPCode != 504 || !rec.Answer.IsZero() {
		t.Errorf("record: cause %q side %q code %d answered %v", rec.Cause, rec.Side, rec.SIPCode, !rec.Answer.IsZero())
	}
}

// TestPRACKWithoutReliableProvisional: a caller without 100rel gets plain
// provisionals, and its PRACK acknowledges nothing: 481.
func TestPRACKWithoutReliableProvisional(t *testing.T) {
	h := newCallHarness(t, nil)
	a, b := h.callWith(t)
	b.answer(183, calleeSDP)
	res := provisional(t, a)
	if res.StatusCode() != 183 || sipmsg.Header(res, "RSeq") != "" {
		t.Fatalf("caller got %d RSeq %q, want an unreliable 183", res.StatusCode(), sipmsg.Header(res, "RSeq"))
	}
	if res := h.prack(t, 2, sipmsg.ToTag(res), "1 1 INVITE"); res.StatusCode() != 481 {
		t.Fatalf("PRACK: %d, want 481", res.StatusCode())
	}
}

// TestPRACKCallerGoneBeforeAnswer: a caller that never PRACKs while the
// callee still rings gets 504 and the callee a CANCEL; a caller that
// CANCELs while its 2xx waits for its PRACK gets 487 and the callee that
// answered a BYE. Neither call counts as answered.
func TestPRACKCallerGoneBeforeAnswer(t *testing.T) {
	tests := []struct {
		name   string
		t1     time.Duration
		answer bool // the callee answers before the caller's move
		code   int
		cause  outcome.Cause
	}{
		{"no PRACK while ringing", 5 * time.Millisecond, false, 504, outcome.CausePRACKTimeout},
		{"CANCEL while the 2xx waits", time.Second, true, 487, outcome.CauseCallerCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newCallHarness(t, nil)
			h.s.cfg.Timers.T1 = tt.t1
			a, b := h.callWith(t, "Require: 100rel")
			b.answer(183, calleeSDP)
			rseqOf(t, provisional(t, a))
			if tt.answer {
				b.answer(200, calleeSDP)
				h.txs.ack(t)
				settle(t, h)
				a.cancel()
			}
			if res := a.final(t); int(res.StatusCode()) != tt.code {
				t.Fatalf("caller got %d, want %d", res.StatusCode(), tt.code)
			}
			if tt.answer {
				h.txs.next(t, sip.BYE).answer(200, "")
			} else {
				select {
				case <-b.cancels:
				case <-time.After(wait):
					t.Fatal("the ringing callee was not cancelled")
				}
				b.answer(487, "")
			}
			rec := h.rec.next(t)
			if rec.Cause != tt.cause || rec.Side != outcome.SideA || rec.SIPCode != tt.code || !rec.Answer.IsZero() {
				t.Errorf("record: cause %q side %q code %d answered %v", rec.Cause, rec.Side, rec.SIPCode, !rec.Answer.IsZero())
			}
		})
	}
}

// TestPRACKAfterAnswer: a reliable 180 without SDP does not hold the 2xx,
// so the caller may PRACK it after the answer, when the call has let its
// INVITE go (letInviteGo): the RAck is still checked against the INVITE's
// CSeq and the PRACK answered 200; the call goes on.
func TestPRACKAfterAnswer(t *testing.T) {
	h := newCallHarness(t, nil)
	a, b := h.callWith(t, "Require: 100rel")
	b.answer(180, "")
	ring := provisional(t, a)
	r1, tag := rseqOf(t, ring), sipmsg.ToTag(ring)
	b.answer(200, calleeSDP)
	h.txs.ack(t)
	if res := a.final(t); res.StatusCode() != 200 {
		t.Fatalf("caller got %d, want 200", res.StatusCode())
	}
	h.inDialog(t, "ACK", 1, tag, "")
	if res := h.prack(t, 2, tag, "1 2 INVITE"); res.StatusCode() != 481 {
		t.Fatalf("PRACK with another INVITE's CSeq: %d, want 481", res.StatusCode())
	}
	if res := h.prack(t, 3, tag, rack(r1)); res.StatusCode() != 200 {
		t.Fatalf("PRACK after the answer: %d, want 200", res.StatusCode())
	}
	if res := h.inDialog(t, "BYE", 4, tag, "").final(t); res.StatusCode() != 200 {
		t.Fatalf("BYE: %d", res.StatusCode())
	}
	h.txs.next(t, sip.BYE).answer(200, "")
	if rec := h.rec.next(t); rec.Cause != outcome.CauseCallerBye {
		t.Errorf("record: cause %q", rec.Cause)
	}
}
