package b2bua

import (
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// Unit tests of the call state machine (call1 to call5) against a fake
// transaction layer: what the caller and the callee see at each step, and
// the record each call leaves.

func TestCallAnsweredThenCallerBye(t *testing.T) {
	h := newCallHarness(t, nil)
	tag, _ := h.answered(t)
	bye := h.inDialog(t, "BYE", 2, tag, "")
	if res := bye.final(t); res.StatusCode() != 200 {
		t.Fatalf("caller's BYE: %d", res.StatusCode())
	}
	byeB := h.txs.next(t, sip.BYE)
	if sipmsg.CallID(byeB.req) == "c1" {
		t.Error("leg B's BYE carries the caller's Call-ID")
	}
	byeB.answer(200, "")
	rec := h.rec.next(t)
	if rec.Cause != outcome.CauseCallerBye || rec.Side != outcome.SideA || rec.Answer.IsZero() || rec.SIPCode != 200 {
		t.Errorf("record: cause %q side %q answered %v code %d", rec.Cause, rec.Side, !rec.Answer.IsZero(), rec.SIPCode)
	}
}

func TestCallCalleeRejects(t *testing.T) {
	h := newCallHarness(t, nil)
	a := h.call(t)
	b := h.txs.next(t, sip.INVITE)
	b.answer(180, "")
	if res := a.next(t); res.StatusCode() == 100 {
		if res = a.next(t); res.StatusCode() != 180 {
			t.Fatalf("caller got %d, want 180", res.StatusCode())
		}
	}
	b.answer(486, "")
	res := a.final(t)
	if res.StatusCode() != 486 || res.Reason() != "Busy Here" {
		t.Fatalf("caller got %d %s, want 486 Busy Here", res.StatusCode(), res.Reason())
	}
	rec := h.rec.next(t)
	if rec.Cause != outcome.CauseRejected || rec.Side != outcome.SideB || rec.SIPCode != 486 || rec.Ring.IsZero() {
		t.Errorf("record: cause %q side %q code %d ring %v", rec.Cause, rec.Side, rec.SIPCode, rec.Ring)
	}
}

func TestCallCancelWhileRinging(t *testing.T) {
	h := newCallHarness(t, nil)
	a := h.call(t)
	b := h.txs.next(t, sip.INVITE)
	b.answer(180, "")
	a.cancel()
	if res := a.final(t); res.StatusCode() != 487 {
		t.Fatalf("caller got %d after CANCEL, want 487", res.StatusCode())
	}
	select {
	case <-b.cancels:
	case <-time.After(wait):
		t.Fatal("leg B's INVITE was not cancelled")
	}
	b.answer(487, "")
	if rec := h.rec.next(t); rec.Cause != outcome.CauseCallerCancel || rec.Side != outcome.SideA {
		t.Errorf("record: cause %q side %q", rec.Cause, rec.Side)
	}
}

// TestCallCancelDuringLateStages: a CANCEL that arrives while a late
// policy stage waits on the network is answered at once (the stage's wait
// ends with the call's context), and no INVITE leaves for the callee.
func TestCallCancelDuringLateStages(t *testing.T) {
	pol := &stallingPolicy{entered: make(chan struct{}), left: make(chan struct{})}
	h := newCallHarness(t, pol)
	a := h.call(t)
	select {
	case <-pol.entered:
	case <-time.After(wait):
		t.Fatal("the late stages never ran")
	}
	a.cancel()
	if res := a.final(t); res.StatusCode() != 487 {
		t.Fatalf("caller got %d, want 487", res.StatusCode())
	}
	select {
	case <-pol.left:
	default:
		t.Error("the stage's wait did not end with the CANCEL")
	}
	select {
	case tx := <-h.txs.sent:
		t.Fatalf("the call sent %s after its CANCEL", tx.req.Method())
	default:
	}
	if rec := h.rec.next(t); rec.Cause != outcome.CauseCallerCancel {
		t.Errorf("record: cause %q", rec.Cause)
	}
}

// TestCallReinviteThenBye: a relayed re-INVITE still waiting for the callee
// when the caller hangs up is answered 487; the callee's late 200 is
// ACKed.
func TestCallReinviteThenBye(t *testing.T) {
	h := newCallHarness(t, nil)
	tag, _ := h.answered(t)
	reinv := h.inDialog(t, "INVITE", 2, tag, callerSDP+"a=sendonly\r\n")
	reinvB := h.txs.next(t, sip.INVITE)
	bye := h.inDialog(t, "BYE", 3, tag, "")
	if res := reinv.final(t); res.StatusCode() != 487 {
		t.Errorf("caller's re-INVITE: %d, want 487", res.StatusCode())
	}
	if res := bye.final(t); res.StatusCode() != 200 {
		t.Errorf("caller's BYE: %d, want 200", res.StatusCode())
	}
	h.txs.next(t, sip.BYE).answer(200, "")
	reinvB.answer(200, callerSDP)
	if ack := h.txs.ack(t); ack.(sip.Request).Method() != sip.ACK {
		t.Errorf("late 200 of the re-INVITE not ACKed: %s", ack.Short())
	}
	if rec := h.rec.next(t); rec.Cause != outcome.CauseCallerBye {
		t.Errorf("record: cause %q", rec.Cause)
	}
}

// TestCallAnswerAfterCancel: a 2xx that crosses the CANCEL is ACKed and
// the callee's leg hung up with BYE; the caller still gets its 487.
func TestCallAnswerAfterCancel(t *testing.T) {
	h := newCallHarness(t, nil)
	a := h.call(t)
	b := h.txs.next(t, sip.INVITE)
	a.cancel()
	if res := a.final(t); res.StatusCode() != 487 {
		t.Fatalf("caller got %d, want 487", res.StatusCode())
	}
	b.answer(200, callerSDP)
	h.txs.ack(t)
	h.txs.next(t, sip.BYE).answer(200, "")
	if rec := h.rec.next(t); rec.Cause != outcome.CauseCallerCancel || !rec.Answer.IsZero() {
		t.Errorf("record: cause %q answered %v", rec.Cause, !rec.Answer.IsZero())
	}
}

// TestCallCalleeNeverAnswers: no provisional answer within the invite
// timeout, and no other trunk: the caller gets 408.
func TestCallCalleeNeverAnswers(t *testing.T) {
	h := newCallHarness(t, nil)
	h.s.cfg.InviteTimeout = 100 * time.Millisecond
	a := h.call(t)
	b := h.txs.next(t, sip.INVITE)
	select {
	case <-b.cancels:
	case <-time.After(wait):
		t.Fatal("the silent attempt was not cancelled")
	}
	b.answer(487, "")
	if res := a.final(t); res.StatusCode() != 408 {
		t.Fatalf("caller got %d, want 408", res.StatusCode())
	}
	if rec := h.rec.next(t); rec.Cause != outcome.CauseNoAnswer {
		t.Errorf("record: cause %q", rec.Cause)
	}
}

// TestCallCalleeBye: the callee hangs up; its BYE is answered and the
// caller's leg gets a BYE of the SBC's own.
func TestCallCalleeBye(t *testing.T) {
	h := newCallHarness(t, nil)
	_, b := h.answered(t)
	req := calleeRequest(t, b, "BYE", 2)
	bye := newFakeServerTx(req)
	h.s.inDialog(req, bye)
	if res := bye.final(t); res.StatusCode() != 200 {
		t.Fatalf("callee's BYE: %d", res.StatusCode())
	}
	byeA := h.txs.next(t, sip.BYE)
	if sipmsg.CallID(byeA.req) != "c1" {
		t.Errorf("BYE toward the caller on Call-ID %q, want the caller's c1", sipmsg.CallID(byeA.req))
	}
	byeA.answer(200, "")
	if rec := h.rec.next(t); rec.Cause != outcome.CauseCalleeBye || rec.Side != outcome.SideB {
		t.Errorf("record: cause %q side %q", rec.Cause, rec.Side)
	}
}

// TestCallInDialogRelayAndGlare: the caller's INFO goes to the callee and
// its answer comes back; a second offer while one is pending gets 491.
func TestCallInDialogRelayAndGlare(t *testing.T) {
	h := newCallHarness(t, nil)
	tag, _ := h.answered(t)
	info := h.inDialog(t, "INFO", 2, tag, "")
	infoB := h.txs.next(t, sip.INFO)
	infoB.answer(200, "")
	if res := info.final(t); res.StatusCode() != 200 {
		t.Errorf("caller's INFO: %d, want the callee's 200", res.StatusCode())
	}
	first := h.inDialog(t, "INVITE", 3, tag, callerSDP+"a=sendonly\r\n")
	firstB := h.txs.next(t, sip.INVITE)
	second := h.inDialog(t, "INVITE", 4, tag, callerSDP+"a=inactive\r\n")
	if res := second.final(t); res.StatusCode() != 491 || len(res.GetHeaders("Retry-After")) == 0 {
		t.Errorf("second offer while one is pending: %d, want 491 with Retry-After", res.StatusCode())
	}
	firstB.answer(200, callerSDP)
	h.txs.ack(t)
	if res := first.final(t); res.StatusCode() != 200 {
		t.Errorf("first re-INVITE: %d, want 200", res.StatusCode())
	}
}

// TestCallRingTimeout: the callee rings past the ring timeout; the SBC
// gives up (408 to the caller, CANCEL to the callee) and says it did.
func TestCallRingTimeout(t *testing.T) {
	h := newCallHarness(t, nil)
	h.s.cfg.RingTimeout = 200 * time.Millisecond
	a := h.call(t)
	b := h.txs.next(t, sip.INVITE)
	b.answer(180, "")
	if res := a.final(t); res.StatusCode() != 408 {
		t.Fatalf("caller got %d, want 408", res.StatusCode())
	}
	select {
	case <-b.cancels:
	case <-time.After(wait):
		t.Fatal("the ringing callee was not cancelled")
	}
	b.answer(487, "")
	if rec := h.rec.next(t); rec.Cause != outcome.CauseNoAnswer || rec.Side != outcome.SideSBC {
		t.Errorf("record: cause %q side %q", rec.Cause, rec.Side)
	}
}

// TestCallOutOfMediaPorts: when the media ports run out the caller gets
// 503 with Retry-After (the SBC's shortage), not 488 (its SDP is fine).
func TestCallOutOfMediaPorts(t *testing.T) {
	h := newCallHarness(t, nil)
	h.s.cfg.RetryAfter = 30 * time.Second
	h.s.hooks.Media = func(string) (MediaSession, error) { return noPortsMedia{}, nil }
	a := h.call(t)
	res := a.final(t)
	if res.StatusCode() != 503 || sipmsg.Header(res, "Retry-After") != "30" {
		t.Fatalf("caller got %d Retry-After %q, want 503 with 30", res.StatusCode(), sipmsg.Header(res, "Retry-After"))
	}
	if rec := h.rec.next(t); rec.Cause != outcome.CauseMediaUnavailable {
		t.Errorf("record: cause %q", rec.Cause)
	}
}
