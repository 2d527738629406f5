package b2bua

import (
	"testing"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// TestPRACKToCallee: leg B's INVITE advertises 100rel; each reliable
// provisional of the callee is PRACKed in its early dialog (its To tag,
// its Contact, the RAck of its RSeq and the INVITE's CSeq, a CSeq of its
// own); a retransmission or an RSeq out of order is not PRACKed nor
// relayed; the caller, without 100rel, gets a plain 183 with the SDP; the
// ACK of the 2xx carries the INVITE's CSeq, not the PRACK's.
func TestPRACKToCallee(t *testing.T) {
	h := newCallHarness(t, nil)
	a, b := h.callWith(t)
	if !sipmsg.HasOption(b.req, "Supported", "100rel") || !sipmsg.HasOption(b.req, "Supported", "timer") {
		t.Fatalf("leg B's INVITE Supported %q, want timer and 100rel", sipmsg.Header(b.req, "Supported"))
	}
	inviteSeq, _ := sipmsg.CSeq(b.req)
	reliable(b, 183, 7, calleeSDP)
	pr := h.txs.next(t, sip.PRACK)
	checkPRACK(t, pr, b, "7", inviteSeq+1)
	pr.answer(200, "")
	early := provisional(t, a)
	if early.StatusCode() != 183 || early.Body() == "" || sipmsg.Header(early, "RSeq") != "" ||
		sipmsg.HasOption(early, "Require", "100rel") {
		t.Fatalf("caller got %d body %q RSeq %q Require %q, want an unreliable 183 with SDP", early.StatusCode(),
			early.Body(), sipmsg.Header(early, "RSeq"), sipmsg.Header(early, "Require"))
	}
	reliable(b, 183, 7, calleeSDP) // a retransmission: the callee missed the PRACK's 200 or is slow
	reliable(b, 180, 9, "")        // out of order: 8 is missing
	settle(t, h)
	noAnswer(t, a, "a retransmitted or out-of-order provisional")
	reliable(b, 180, 8, "")
	pr = h.txs.next(t, sip.PRACK)
	checkPRACK(t, pr, b, "8", inviteSeq+2)
	pr.answer(200, "")
	if res := provisional(t, a); res.StatusCode() != 180 {
		t.Fatalf("caller got %d, want 180", res.StatusCode())
	}
	b.answer(200, calleeSDP)
	ack := h.txs.ack(t).(sip.Request)
	if n, m := sipmsg.CSeq(ack); m != sip.ACK || n != inviteSeq {
		t.Errorf("ACK CSeq %d %s, want %d ACK", n, m, inviteSeq)
	}
	if res := a.final(t); res.StatusCode() != 200 {
		t.Fatalf("caller got %d, want 200", res.StatusCode())
	}
}

func checkPRACK(t *testing.T, pr *fakeClientTx, b *fakeClientTx, rseq string, seq uint32) {
	t.Helper()
	n, m := sipmsg.CSeq(pr.req)
	want := rseq + " " + sipmsg.Header(b.req, "CSeq")
	switch {
	case sipmsg.Header(pr.req, "RAck") != want:
		t.Errorf("PRACK RAck %q, want %q", sipmsg.Header(pr.req, "RAck"), want)
	case m != sip.PRACK || n != seq:
		t.Errorf("PRACK CSeq %d %s, want %d PRACK", n, m, seq)
	case sipmsg.ToTag(pr.req) != "callee" || sipmsg.CallID(pr.req) != sipmsg.CallID(b.req):
		t.Errorf("PRACK in dialog %s/%s, want the early dialog %s/callee",
			sipmsg.CallID(pr.req), sipmsg.ToTag(pr.req), sipmsg.CallID(b.req))
	case pr.req.Recipient().String() != "sip:callee@192.0.2.20:5070":
		t.Errorf("PRACK to %s, want the 183's Contact", pr.req.Recipient())
	}
}

// TestPRACKAdvertised: sip.prack decides what leg B's INVITE says.
func TestPRACKAdvertised(t *testing.T) {
	tests := []struct {
		name               string
		mode               Rel100
		supported, require bool
	}{
		{"supported", Rel100Supported, true, false},
		{"required", Rel100Required, true, true},
		{"off", Rel100Off, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newCallHarness(t, nil)
			h.s.cfg.Rel100 = tt.mode
			_, b := h.callWith(t)
			if got := sipmsg.HasOption(b.req, "Supported", "100rel"); got != tt.supported {
				t.Errorf("Supported %q: 100rel %v, want %v", sipmsg.Header(b.req, "Supported"), got, tt.supported)
			}
			if got := sipmsg.HasOption(b.req, "Require", "100rel"); got != tt.require {
				t.Errorf("Require %q: 100rel %v, want %v", sipmsg.Header(b.req, "Require"), got, tt.require)
			}
			b.answer(486, "")
		})
	}
}

// TestRequire100relAccepted: a caller's Require: 100rel is no longer
// refused with 420 (RFC 3262 is served, understood.go).
func TestRequire100relAccepted(t *testing.T) {
	req := callerRequest(t, "INVITE", 1, "", callerSDP)
	req.AppendHeader(sipmsg.Generic("Require", "100rel, timer"))
	if u := unsupported(req); u != "" {
		t.Fatalf("unsupported %q, want none", u)
	}
	req.AppendHeader(sipmsg.Generic("Require", "foo"))
	if u := unsupported(req); u != "foo" {
		t.Fatalf("unsupported %q, want foo", u)
	}
}
