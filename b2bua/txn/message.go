package txn

import (
	"fmt"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// NewBranch returns a fresh RFC 3261 branch: the magic cookie "z9hG4bK" and
// 24 hex characters from crypto/rand (96 bits), so an off-path attacker
// cannot guess the branch of a transaction to forge its responses. Safe for
// concurrent use.
func NewBranch() string {
	return sipmsg.PrefixedToken(magicCookie, 12)
}

// newTag returns a From/To tag for the responses the layer makes itself.
func newTag() string { return sipmsg.NewToken(12) }

// NewResponse builds a response to req with the given status: it copies all
// Via headers (which already carry received/rport), From, To, Call-ID and
// CSeq, and sets Content-Length: 0 (SetBody replaces it). It adds no To tag:
// the TU adds one (To.Params is never nil) to every response but 100. It
// copies no Record-Route either: a UAS copies those into the responses that
// create a dialog (RFC 3261 12.1.1), which is the dialog layer's business.
func NewResponse(req sip.Request, code int, reason string) sip.Response {
	res := sipmsg.EmptyResponse(req.SipVersion(), code, reason)
	if res.SipVersion() == "" {
		res.SetSipVersion("SIP/2.0")
	}
	sipmsg.CopyHeaders("Via", req, res)
	sipmsg.CopyHeaders("From", req, res)
	sipmsg.CopyHeaders("To", req, res)
	sipmsg.CopyHeaders("Call-ID", req, res)
	sipmsg.CopyHeaders("CSeq", req, res)
	if to, ok := res.To(); ok && to != nil && to.Params == nil {
		to.Params = sipmsg.NewParams()
	}
	res.SetBody("", true)
	return res
}

// withToTag sets the To tag of res, replacing any.
func withToTag(res sip.Response, tag string) sip.Response {
	if to, ok := res.To(); ok && to != nil {
		sipmsg.SetTag(to, tag)
	}
	return res
}

// newAck builds the ACK for a non-2xx final response to inv (RFC 3261
// 17.1.1.3): same Request-URI, Call-ID, From, CSeq number and top Via
// (branch included) as the INVITE, To from the response, Route from the
// INVITE. It is part of the INVITE transaction and goes where the INVITE went.
func newAck(inv sip.Request, res sip.Response) sip.Request {
	return hopByHop(inv, sip.ACK, res)
}

// newCancel builds the CANCEL for inv (RFC 3261 9.1): as the ACK above, but
// with the INVITE's To. It gets its own client transaction, keyed apart from
// the INVITE's by its CSeq method.
func newCancel(inv sip.Request) sip.Request {
	return hopByHop(inv, sip.CANCEL, inv)
}

func hopByHop(inv sip.Request, m sip.RequestMethod, toFrom sip.Message) sip.Request {
	req := sipmsg.EmptyRequest(m, inv.Recipient().Clone(), inv.SipVersion())
	if hop, ok := inv.ViaHop(); ok {
		req.AppendHeader(sip.ViaHeader{hop.Clone()})
	}
	mf := sip.MaxForwards(70)
	req.AppendHeader(&mf)
	sipmsg.CopyHeaders("Route", inv, req)
	sipmsg.CopyHeaders("From", inv, req)
	sipmsg.CopyHeaders("To", toFrom, req)
	sipmsg.CopyHeaders("Call-ID", inv, req)
	if cseq, ok := inv.CSeq(); ok && cseq != nil {
		req.AppendHeader(&sip.CSeq{SeqNo: cseq.SeqNo, MethodName: m})
	}
	req.SetBody("", true)
	return req
}

// Own makes res the TU's own answer rather than one carried from another
// element: a final response without a To tag gets one (RFC 3261 8.2.6.2),
// and every response names the answering software in Server (none when
// server is "").
func Own(res sip.Response, server string) {
	if res.StatusCode() >= 200 && sipmsg.ToTag(res) == "" {
		if to, ok := res.To(); ok {
			sipmsg.SetTag(to, sipmsg.NewToken(6))
		}
	}
	if server != "" {
		res.AppendHeader(sipmsg.Generic("Server", server))
	}
}

// Answer responds to tx with the TU's own response (see Own) and the extra
// header fields. Errors are Respond's.
func Answer(tx *ServerTx, code int, reason, server string, extra ...sip.Header) error {
	req := tx.Request()
	if req == nil {
		return fmt.Errorf("respond %d to %s: %w", code, tx.key.method, ErrFinalSent)
	}
	res := NewResponse(req, code, reason)
	Own(res, server)
	for _, h := range extra {
		res.AppendHeader(h)
	}
	return tx.Respond(res)
}
