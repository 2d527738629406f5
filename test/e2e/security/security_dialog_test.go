package security

import (
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/test/e2e"
)

// answeredCall sets up caller → SBC → PBX, answered, and returns both ends.
func answeredCall(t *testing.T) (*e2e.SBC, *e2e.UA, *e2e.UACall, *e2e.UAS, *e2e.UASDialog) {
	t.Helper()
	pbx := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx)})
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := ua.Invite("1000", "")
	inv := pbx.ExpectReq("INVITE")
	pbx.Respond(inv, 200, "OK", "pbx1", e2e.UASSDP())
	call.Answered(ua.Expect(200))
	call.Ack()
	pbx.ExpectReq("ACK")
	return sbc, ua, call, pbx, pbx.Dialog(inv, "pbx1")
}

// holdSDP is the caller's re-offer putting the call on hold: a real change
// the SBC relays to the callee.
var holdSDP = strings.Replace(strings.Replace(e2e.CallerSDP(), "2890844526 IN", "2890844527 IN", 1), "a=sendrecv", "a=sendonly", 1)

// finals reads until n final responses to requests with a CSeq of at least
// minSeq arrived (retransmitted answers to older ones are skipped) and
// returns them by method.
func finals(u *e2e.UA, n int, minSeq uint32) map[sip.RequestMethod]int {
	u.T.Helper()
	got := map[sip.RequestMethod]int{}
	for len(got) < n {
		m := u.Recv(10 * time.Second)
		res, ok := m.(sip.Response)
		if !ok || res.StatusCode() < 200 {
			continue
		}
		if cseq, _ := res.CSeq(); cseq.SeqNo >= minSeq {
			got[cseq.MethodName] = int(res.StatusCode())
		}
	}
	return got
}

// TestSecurityReinviteThenByeEndsTransactions is issue 13 point 6: a
// relayed re-INVITE followed by the caller's BYE. The caller's re-INVITE is
// answered 487 at once (RFC 3261 15.1.2), the callee's late answer to it
// is ACKed and goes nowhere, and no transaction is left: before the fix the
// caller's re-INVITE stayed unanswered with its server transaction alive
// forever, one per call.
func TestSecurityReinviteThenByeEndsTransactions(t *testing.T) {
	cases := []struct {
		name string
		late func(pbx *e2e.UAS, reinv sip.Request) // what the callee does with the re-INVITE after the BYE
	}{
		{"callee answers 200 late", func(pbx *e2e.UAS, reinv sip.Request) {
			pbx.Respond(reinv, 200, "OK", "", e2e.UASSDP())
			pbx.ExpectReq("ACK")
		}},
		{"callee answers 481 late", func(pbx *e2e.UAS, reinv sip.Request) {
			pbx.Respond(reinv, 481, "Call/Transaction Does Not Exist", "", "")
			pbx.ExpectReq("ACK")
		}},
		{"callee never answers", func(*e2e.UAS, sip.Request) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sbc, ua, call, pbx, _ := answeredCall(t)
			call.Request("INVITE", "application/sdp", holdSDP)
			reinv := pbx.ExpectReq("INVITE")
			call.Bye()
			got := finals(ua, 2, 2)
			if got[sip.INVITE] != 487 || got[sip.BYE] != 200 {
				t.Fatalf("caller's re-INVITE and BYE answered %v, want INVITE 487 and BYE 200", got)
			}
			pbx.Respond(pbx.ExpectReq("BYE"), 200, "OK", "", "")
			tc.late(pbx, reinv)
			sbc.WaitIdle(t) // no call, no transaction, no media left
			if n := sbc.App.Server().TxStats().TUTimeouts; n != 0 {
				t.Errorf("%d requests were left to the transaction layer's 500", n)
			}
		})
	}
}

// TestSecurityCalleeByeDuringRelayedRequest: the callee hangs up while the
// caller's relayed INFO waits for its answer: the INFO is answered 487 and
// nothing is left.
func TestSecurityCalleeByeDuringRelayedRequest(t *testing.T) {
	sbc, ua, call, pbx, d := answeredCall(t)
	call.Request("INFO", "application/x-test", "still there?\n")
	info := pbx.ExpectReq("INFO")
	d.Request("BYE", "", "")
	var infoCode int
	for bye := sip.Request(nil); bye == nil || infoCode == 0; {
		switch m := ua.Recv(10 * time.Second).(type) {
		case sip.Request:
			if m.Method() == sip.BYE {
				bye = m
				ua.RespondTo(bye, 200, "")
			}
		case sip.Response:
			if cseq, _ := m.CSeq(); cseq.MethodName == sip.INFO && m.StatusCode() >= 200 {
				infoCode = int(m.StatusCode())
			}
		}
	}
	if infoCode != 487 {
		t.Fatalf("caller's INFO answered %d, want 487", infoCode)
	}
	pbx.ExpectRes(200) // the BYE
	pbx.Respond(info, 200, "OK", "", "")
	sbc.WaitIdle(t)
}

// TestSecurityFarEndReasonPhrasesAreStandard is issue 13 point 11: a far
// end's reason phrases (free text that names its software, hosts or
// whatever an attacker wrote there) do not cross the SBC; the caller gets
// the standard phrase of each code, on provisional, final and in-dialog
// answers alike.
func TestSecurityFarEndReasonPhrasesAreStandard(t *testing.T) {
	pbx := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx)})
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := ua.Invite("1000", "")
	inv := pbx.ExpectReq("INVITE")
	pbx.Respond(inv, 180, "Ringing at pbx7.corp.internal (Asterisk 13.1)", "pbx1", "")
	if res := ua.Expect(180); res.Reason() != "Ringing" {
		t.Errorf("180 reason %q, want Ringing", res.Reason())
	}
	pbx.Respond(inv, 486, "Busy <script>alert(1)</script> 10.20.30.40", "pbx1", "")
	pbx.ExpectReq("ACK")
	res := ua.Expect(486)
	if res.Reason() != "Busy Here" {
		t.Errorf("486 reason %q, want Busy Here", res.Reason())
	}
	call.AckFailure("")

	sbc2, ua2, call2, pbx2, _ := answeredCall(t)
	call2.Request("INVITE", "application/sdp", holdSDP)
	reinv := pbx2.ExpectReq("INVITE")
	pbx2.Respond(reinv, 488, "Codec refused by media-gw-3.internal", "", "")
	pbx2.ExpectReq("ACK")
	if res := ua2.Expect(488); res.Reason() != "Not Acceptable Here" {
		t.Errorf("re-INVITE 488 reason %q, want Not Acceptable Here", res.Reason())
	}
	call2.Bye()
	ua2.Expect(200)
	pbx2.Respond(pbx2.ExpectReq("BYE"), 200, "OK", "", "")
	sbc.WaitIdle(t)
	sbc2.WaitIdle(t)
}

// endObserver records what the SBC still held when a call's record was
// handed over to be made durable.
type endObserver struct {
	sbc   *e2e.SBC
	ended chan endSeen
}

// endSeen is what the SBC held when a record was handed over.
type endSeen struct {
	media, calls int
	rec          outcome.CallRecord
}

func (o *endObserver) CallStarted(outcome.CallRecord)  {}
func (o *endObserver) CallAnswered(outcome.CallRecord) {}
func (o *endObserver) CallEnded(r outcome.CallRecord) {
	o.ended <- endSeen{media: o.sbc.App.Media().Active(), calls: o.sbc.App.Server().ActiveCalls(), rec: r}
}

// TestSecurityRecordBeforeTheCallIsGone is issue 13 point 11 (no lost
// CDRs) as it holds since issue 15's seventh step: the call's media ports
// go back once its media has stopped and its counters are in the record,
// before the record's fsync (the fsync's wait ran a busy pool dry), but
// the call itself, with its admission counts, stays until the record is
// durable: a stalled CDR disk keeps calls counted, and past
// maxPendingRecords ended calls waiting for their records new INVITEs
// get 503 (b2bua TestRefusedWhileRecordsPending), instead of letting
// calls run without records.
func TestSecurityRecordBeforeTheCallIsGone(t *testing.T) {
	sbc, ua, call, pbx, _ := answeredCall(t)
	o := &endObserver{sbc: sbc, ended: make(chan endSeen, 1)}
	sbc.App.Observe(o)
	call.Bye()
	ua.Expect(200)
	pbx.Respond(pbx.ExpectReq("BYE"), 200, "OK", "", "")
	select {
	case got := <-o.ended:
		if got.media != 0 || got.calls != 1 {
			t.Errorf("while the record was written: %d media sessions, %d calls; want the ports back (0) and the call held (1)", got.media, got.calls)
		}
		if got.rec.End.IsZero() || got.rec.Cause == "" {
			t.Errorf("record handed over without its end: end %v, cause %q", got.rec.End, got.rec.Cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("call record never handed over")
	}
	sbc.WaitIdle(t) // and the call released right after
}
