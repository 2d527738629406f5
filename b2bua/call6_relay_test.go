package b2bua

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// transferRoutes gives the harness's route the transfer mode.
func transferRoutes(t testing.TB, h *callHarness, mode string) {
	t.Helper()
	table, err := routing.New(routing.TableSpec{
		Trunks: []routing.TrunkSpec{{Name: "pbx", URI: "sip:192.0.2.20:5060"}},
		Routes: []routing.RouteSpec{{Name: "out", Target: routing.TargetTrunks, Trunks: []string{"pbx"}, Transfer: mode}},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h.s.SetRoutes(table)
}

// TestTransferRelay: in mode relay the callee's REFER reaches the caller
// with Refer-To naming the target's user at the SBC (nothing of the
// callee's side), the caller's 202 goes back, and the caller's NOTIFY
// comes back with its Event, Subscription-State and only the status line.
func TestTransferRelay(t *testing.T) {
	h := newCallHarness(t, nil)
	transferRoutes(t, h, routing.TransferRelay)
	tag, b := h.answered(t)
	referTx := newFakeServerTx(referFromCallee(t, b, 2, "<sip:3000@pbx.internal.example:5070;user=phone>"))
	h.s.inDialog(referTx.req, referTx)
	out := h.txs.next(t, sip.REFER)
	if sipmsg.CallID(out.req) != "c1" {
		t.Fatalf("REFER sent on Call-ID %s, want the caller's c1", sipmsg.CallID(out.req))
	}
	rt := sipmsg.Header(out.req, "Refer-To")
	if !strings.HasPrefix(rt, "<sip:3000@127.0.0.1:") || strings.Contains(out.req.String(), "pbx.internal") {
		t.Errorf("relayed REFER leaks or lacks the target: Refer-To %q\n%s", rt, out.req)
	}
	out.answer(202, "")
	if res := referTx.final(t); res.StatusCode() != 202 {
		t.Errorf("callee's REFER answered %d, want 202", res.StatusCode())
	}
	notify := callerNotify(t, tag, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.1.1.1\r\n")
	ntx := newFakeServerTx(notify)
	h.s.inDialog(notify, ntx)
	fwd := h.txs.next(t, sip.NOTIFY)
	if got := fwd.req.Body(); got != "SIP/2.0 200 OK\r\n" {
		t.Errorf("relayed sipfrag %q, want the status line only", got)
	}
	if ev, ss := sipmsg.Header(fwd.req, "Event"), sipmsg.Header(fwd.req, "Subscription-State"); ev != "refer" ||
		ss != "terminated;reason=noresource" {
		t.Errorf("relayed NOTIFY Event %q Subscription-State %q", ev, ss)
	}
	fwd.answer(200, "")
	if res := ntx.final(t); res.StatusCode() != 200 {
		t.Errorf("caller's NOTIFY answered %d", res.StatusCode())
	}
}

// callerNotify parses the caller's NOTIFY of the refer event.
func callerNotify(t testing.TB, toTag, frag string) sip.Request {
	t.Helper()
	raw := fmt.Sprintf("NOTIFY sip:sbc@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnotify\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:alice@caller.example>;tag=a1\r\nTo: <sip:2125550100@sbc.example>;tag=%s\r\n"+
		"Call-ID: c1\r\nCSeq: 2 NOTIFY\r\nContact: <sip:alice@192.0.2.10:5060>\r\nEvent: refer\r\n"+
		"Subscription-State: terminated;reason=noresource\r\nContent-Type: message/sipfrag;version=2.0\r\n"+
		"Content-Length: %d\r\n\r\n%s", toTag, len(frag), frag)
	msg, err := sipmsg.NewParser(sipmsg.Limits{}).Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse NOTIFY: %v", err)
	}
	return msg.(sip.Request)
}

// TestTransferRefused: in mode refuse a REFER is answered 403 and nothing
// else happens.
func TestTransferRefused(t *testing.T) {
	h := newCallHarness(t, nil)
	transferRoutes(t, h, routing.TransferRefuse)
	_, b := h.answered(t)
	if res := h.refer(t, b, "<sip:3000@sbc.example>"); res.StatusCode() != 403 {
		t.Errorf("REFER answered %d, want 403", res.StatusCode())
	}
}

// TestTransferTrunkChallenge: the trunk's digest challenge to the transfer
// INVITE is answered once with its credentials.
func TestTransferTrunkChallenge(t *testing.T) {
	h := newCallHarness(t, nil)
	h.trunkWithPassword(t)
	_, b := h.answered(t)
	if res := h.refer(t, b, "<sip:3000@sbc.example>"); res.StatusCode() != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode())
	}
	wantNotify(t, h, "SIP/2.0 100 Trying", "active")
	inv := h.txs.next(t, sip.INVITE)
	res := txn.NewResponse(inv.req, 407, "Proxy Authentication Required")
	sipmsg.SetTag(mustTo(t, res), "callee")
	res.AppendHeader(sipmsg.Generic("Proxy-Authenticate", `Digest realm="pbx", nonce="abc123", algorithm=MD5`))
	inv.call.post(event{kind: evResponse, client: inv, res: res})
	again := h.txs.next(t, sip.INVITE)
	auth := sipmsg.Header(again.req, "Proxy-Authorization")
	if !strings.Contains(auth, `username="sbc"`) || !strings.Contains(auth, `nonce="abc123"`) ||
		sipmsg.CallID(again.req) != sipmsg.CallID(inv.req) {
		t.Fatalf("second INVITE without the credentials: %q on %s", auth, sipmsg.CallID(again.req))
	}
	again.answer(486, "")
	wantNotify(t, h, "SIP/2.0 486 Busy Here", "terminated")
}

func mustTo(t testing.TB, res sip.Response) *sip.ToHeader {
	t.Helper()
	to, ok := res.To()
	if !ok {
		t.Fatal("response without To")
	}
	return to
}
