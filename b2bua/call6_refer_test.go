package b2bua

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/policy"
)

// referFromCallee parses a REFER the callee sends in leg B's dialog.
func referFromCallee(t testing.TB, b *fakeClientTx, seq int, referTo string) sip.Request {
	t.Helper()
	from, _ := b.req.From()
	raw := fmt.Sprintf("REFER sip:sbc@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKrefer%d\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:2125550100@192.0.2.20>;tag=callee\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d REFER\r\n"+
		"Contact: <sip:callee@192.0.2.20:5060>\r\nRefer-To: %s\r\nContent-Length: 0\r\n\r\n",
		seq, from.Value(), sipmsg.CallID(b.req), seq, referTo)
	msg, err := sipmsg.NewParser(sipmsg.Limits{}).Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse REFER: %v", err)
	}
	return msg.(sip.Request)
}

// refer sends the callee's REFER and returns the SBC's answer.
func (h *callHarness) refer(t testing.TB, b *fakeClientTx, referTo string) sip.Response {
	t.Helper()
	tx := newFakeServerTx(referFromCallee(t, b, 2, referTo))
	tx.src.Addr = netip.MustParseAddrPort("192.0.2.20:5060")
	h.s.inDialog(tx.req, tx)
	return tx.final(t)
}

// wantNotify waits for the NOTIFY toward the transferor, checks its
// sipfrag and subscription state, and answers it.
func wantNotify(t testing.TB, h *callHarness, frag, state string) {
	t.Helper()
	n := h.txs.next(t, sip.NOTIFY)
	if got := strings.TrimSpace(n.req.Body()); got != frag {
		t.Errorf("NOTIFY sipfrag %q, want %q", got, frag)
	}
	if ct := sipmsg.Header(n.req, "Content-Type"); !strings.HasPrefix(ct, "message/sipfrag") {
		t.Errorf("NOTIFY Content-Type %q", ct)
	}
	if ev := sipmsg.Header(n.req, "Event"); ev != "refer;id=2" {
		t.Errorf("NOTIFY Event %q, want refer;id=2", ev)
	}
	if ss := sipmsg.Header(n.req, "Subscription-State"); !strings.HasPrefix(ss, state) {
		t.Errorf("NOTIFY Subscription-State %q, want %s...", ss, state)
	}
	n.answer(200, "")
}

// TestBlindTransferLocal: the callee REFERs the caller to 3000; the SBC
// answers 202, NOTIFYs 100, INVITEs 3000 with the caller's media, NOTIFYs
// 200 once it answers, BYEs the transferor and re-INVITEs the caller with
// the new party's SDP; the two records name each other.
func TestBlindTransferLocal(t *testing.T) {
	h := newCallHarness(t, nil)
	tag, b := h.answered(t)
	if res := h.refer(t, b, "<sip:3000@sbc.example>"); res.StatusCode() != 202 {
		t.Fatalf("REFER answered %d, want 202", res.StatusCode())
	}
	wantNotify(t, h, "SIP/2.0 100 Trying", "active")
	inv := h.txs.next(t, sip.INVITE)
	if u := inv.req.Recipient().User(); u == nil || u.String() != "3000" {
		t.Fatalf("transfer INVITE to %s, want user 3000", inv.req.Recipient())
	}
	if sipmsg.Header(inv.req, "Referred-By") == "" || inv.req.Body() == "" {
		t.Errorf("transfer INVITE without Referred-By or offer:\n%s", inv.req)
	}
	const targetSDP = "v=0\r\no=c 1 1 IN IP4 192.0.2.30\r\ns=-\r\nc=IN IP4 192.0.2.30\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
	inv.answer(200, targetSDP)
	h.txs.ack(t)
	wantNotify(t, h, "SIP/2.0 200 OK", "terminated")
	bye := h.txs.next(t, sip.BYE)
	if sipmsg.CallID(bye.req) != sipmsg.CallID(b.req) {
		t.Errorf("BYE on Call-ID %s, want the transferor's %s", sipmsg.CallID(bye.req), sipmsg.CallID(b.req))
	}
	bye.answer(200, "")
	re := h.txs.next(t, sip.INVITE)
	if sipmsg.CallID(re.req) != "c1" || !strings.Contains(re.req.Body(), "192.0.2.30") {
		t.Errorf("re-INVITE to the transferee: Call-ID %s, body\n%s", sipmsg.CallID(re.req), re.req.Body())
	}
	re.answer(200, callerSDP)
	h.txs.ack(t)
	old := h.rec.next(t)
	if old.Cause != outcome.CauseTransferred || old.Side != outcome.SideB || old.TransferredTo == "" {
		t.Fatalf("first record: cause %q side %q transferred_to %q", old.Cause, old.Side, old.TransferredTo)
	}
	h.inDialog(t, "BYE", 3, tag, "").final(t)
	h.txs.next(t, sip.BYE).answer(200, "") // toward the new party
	next := h.rec.next(t)
	if next.ID != old.TransferredTo || next.TransferredFrom != old.ID || next.Cause != outcome.CauseCallerBye {
		t.Errorf("second record: id %s from %q cause %q; first %s to %s", next.ID, next.TransferredFrom, next.Cause,
			old.ID, old.TransferredTo)
	}
}

// premiumPolicy refuses numbers starting 1900 as the dial rules would.
type premiumPolicy struct{}

func (premiumPolicy) Early(context.Context, *policy.Request) policy.Decision { return policy.Pass }
func (premiumPolicy) Late(_ context.Context, r *policy.Request) policy.Decision {
	if strings.HasPrefix(r.RURIUser, "1900") {
		return policy.Decision{Action: policy.Answer, Code: 403, Reason: "Forbidden (dial rules)", Cause: "premium"}
	}
	return policy.Pass
}
func (premiumPolicy) Banned(netip.Addr, string) bool          { return false }
func (premiumPolicy) Report(netip.Addr, string, policy.Event) {}
func (premiumPolicy) MaxDuration() time.Duration              { return 0 }

// TestTransferRefusedByPolicy: a transfer to a number the dial rules
// refuse is no new call: 202, then NOTIFY 403, no INVITE, and the call
// goes on.
func TestTransferRefusedByPolicy(t *testing.T) {
	h := newCallHarness(t, premiumPolicy{})
	tag, b := h.answered(t)
	if res := h.refer(t, b, "<sip:19005551234@sbc.example>"); res.StatusCode() != 202 {
		t.Fatalf("REFER answered %d, want 202", res.StatusCode())
	}
	wantNotify(t, h, "SIP/2.0 100 Trying", "active")
	wantNotify(t, h, "SIP/2.0 403 Forbidden (dial rules)", "terminated")
	h.inDialog(t, "BYE", 3, tag, "").final(t)
	bye := h.txs.next(t, sip.BYE) // an INVITE first would fail here
	if sipmsg.CallID(bye.req) != sipmsg.CallID(b.req) {
		t.Errorf("BYE on Call-ID %s, want the original callee's", sipmsg.CallID(bye.req))
	}
	bye.answer(200, "")
	if rec := h.rec.next(t); rec.Cause != outcome.CauseCallerBye || rec.TransferredTo != "" {
		t.Errorf("record: cause %q transferred_to %q", rec.Cause, rec.TransferredTo)
	}
}

// TestReferBadReferTo: a REFER without a usable Refer-To is answered 400
// and changes nothing.
func TestReferBadReferTo(t *testing.T) {
	h := newCallHarness(t, nil)
	_, b := h.answered(t)
	if res := h.refer(t, b, "<tel:+15551234>"); res.StatusCode() != 400 {
		t.Errorf("REFER to a tel URI answered %d, want 400", res.StatusCode())
	}
}

// nextRequest waits for whatever request the call sends next.
func (f *fakeTxs) nextRequest(t testing.TB) *fakeClientTx {
	t.Helper()
	select {
	case tx := <-f.sent:
		return tx
	case <-time.After(wait):
		t.Fatal("no request sent")
		return nil
	}
}

// TestTransferorHangsUpFirst: a transferor that hangs up once its REFER
// is accepted (RFC 5589 section 6) does not end the call: the target
// answers and the transferee talks to it, without NOTIFY or BYE to the
// gone transferor; when the target refuses, the transferee is hung up.
func TestTransferorHangsUpFirst(t *testing.T) {
	for _, answer := range []int{200, 486} {
		t.Run(strconv.Itoa(answer), func(t *testing.T) {
			h := newCallHarness(t, nil)
			tag, b := h.answered(t)
			if res := h.refer(t, b, "<sip:3000@sbc.example>"); res.StatusCode() != 202 {
				t.Fatalf("REFER answered %d, want 202", res.StatusCode())
			}
			wantNotify(t, h, "SIP/2.0 100 Trying", "active")
			inv := h.txs.next(t, sip.INVITE)
			bye := newFakeServerTx(calleeRequest(t, b, "BYE", 3))
			h.s.inDialog(bye.req, bye)
			if res := bye.final(t); res.StatusCode() != 200 {
				t.Fatalf("transferor's BYE answered %d", res.StatusCode())
			}
			const targetSDP = "v=0\r\no=c 1 1 IN IP4 192.0.2.30\r\ns=-\r\nc=IN IP4 192.0.2.30\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
			if answer != 200 {
				inv.answer(answer, "")
				req := h.txs.nextRequest(t)
				if req.req.Method() != sip.BYE || sipmsg.CallID(req.req) != "c1" {
					t.Fatalf("after the failed transfer the SBC sent %s on %s, want BYE to the transferee",
						req.req.Method(), sipmsg.CallID(req.req))
				}
				req.answer(200, "")
				if rec := h.rec.next(t); rec.Cause != outcome.CauseCalleeBye || rec.TransferredTo != "" {
					t.Errorf("record: cause %q transferred_to %q", rec.Cause, rec.TransferredTo)
				}
				return
			}
			inv.answer(200, targetSDP)
			h.txs.ack(t)
			re := h.txs.nextRequest(t)
			if re.req.Method() != sip.INVITE || sipmsg.CallID(re.req) != "c1" {
				t.Fatalf("after the answer the SBC sent %s on %s, want the re-INVITE to the transferee",
					re.req.Method(), sipmsg.CallID(re.req))
			}
			re.answer(200, callerSDP)
			h.txs.ack(t)
			if rec := h.rec.next(t); rec.Cause != outcome.CauseTransferred {
				t.Errorf("first record cause %q", rec.Cause)
			}
			h.inDialog(t, "BYE", 3, tag, "").final(t)
			h.txs.next(t, sip.BYE).answer(200, "")
			if rec := h.rec.next(t); rec.Cause != outcome.CauseCallerBye || rec.TransferredFrom == "" {
				t.Errorf("second record: cause %q transferred_from %q", rec.Cause, rec.TransferredFrom)
			}
		})
	}
}

// TestTransferNoSubscription: a REFER with Refer-Sub: false (RFC 4488)
// gets 202 with Refer-Sub: false, and no NOTIFY follows.
func TestTransferNoSubscription(t *testing.T) {
	h := newCallHarness(t, nil)
	tag, b := h.answered(t)
	req := referFromCallee(t, b, 2, "<sip:3000@sbc.example>")
	req.AppendHeader(sipmsg.Generic("Refer-Sub", "false"))
	tx := newFakeServerTx(req)
	h.s.inDialog(req, tx)
	res := tx.final(t)
	if res.StatusCode() != 202 || sipmsg.Header(res, "Refer-Sub") != "false" {
		t.Fatalf("REFER answered %d with Refer-Sub %q", res.StatusCode(), sipmsg.Header(res, "Refer-Sub"))
	}
	inv := h.txs.nextRequest(t)
	if inv.req.Method() != sip.INVITE {
		t.Fatalf("the SBC sent %s first, want the INVITE to the target", inv.req.Method())
	}
	inv.answer(486, "")
	h.inDialog(t, "BYE", 3, tag, "").final(t)
	next := h.txs.nextRequest(t) // the BYE to the callee, not a NOTIFY before it
	if next.req.Method() != sip.BYE {
		t.Errorf("the SBC sent %s, want only the BYE:\n%s", next.req.Method(), next.req)
	}
	next.answer(200, "")
}

// TestAttendedTransferForeignReplaces: a PBX-side phone transfers its
// call with the SBC's caller to a phone it consulted on its own side (the
// consultation never went through the SBC): the Replaces in Refer-To names
// the PBX side's dialog. The SBC INVITEs the target, routed like a blind
// transfer's, with that Replaces as given, and the target's 200 completes
// the transfer.
func TestAttendedTransferForeignReplaces(t *testing.T) {
	h := newCallHarness(t, nil)
	_, b := h.answered(t)
	const replaces = "consult-7@pbx.example;to-tag=t1;from-tag=f1"
	referTo := "<sip:3001@sbc.example?Replaces=" + url.QueryEscape(replaces) + ">"
	if res := h.refer(t, b, referTo); res.StatusCode() != 202 {
		t.Fatalf("REFER answered %d, want 202", res.StatusCode())
	}
	wantNotify(t, h, "SIP/2.0 100 Trying", "active")
	inv := h.txs.next(t, sip.INVITE)
	if u := inv.req.Recipient().User(); u == nil || u.String() != "3001" {
		t.Fatalf("transfer INVITE to %s, want user 3001", inv.req.Recipient())
	}
	if got := sipmsg.Header(inv.req, "Replaces"); got != replaces {
		t.Fatalf("transfer INVITE Replaces %q, want %q", got, replaces)
	}
	const targetSDP = "v=0\r\no=c 1 1 IN IP4 192.0.2.31\r\ns=-\r\nc=IN IP4 192.0.2.31\r\nt=0 0\r\nm=audio 6002 RTP/AVP 0\r\n"
	inv.answer(200, targetSDP)
	h.txs.ack(t)
	wantNotify(t, h, "SIP/2.0 200 OK", "terminated")
}
