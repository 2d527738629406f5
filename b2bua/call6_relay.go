package b2bua

import (
	"strings"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// Step 6, transfer in mode relay: the REFER goes to the other party, which
// performs the transfer itself by calling the target through the SBC. No
// address of the transferor's side crosses: the Refer-To names the
// target's user at the SBC's own address toward the other party (the SBC
// routes that call like any other, policy included), Referred-By names the
// SBC, and the NOTIFYs that come back carry only the status line of their
// sipfrag.

// relayRefer carries leg l's REFER to the other leg.
func (c *Call) relayRefer(l *leg, req sip.Request, stx serverTx, target sip.Uri) {
	to := c.other(l)
	if to == nil || !to.confirmed {
		c.reply(l, stx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	fwd := to.newRequest(sip.REFER, "", "")
	fwd.AppendHeader(sipmsg.Generic("Refer-To", "<"+atSBC(to, target).String()+">"))
	fwd.AppendHeader(sipmsg.Generic("Referred-By", "<"+to.local.Uri.String()+">"))
	fwd.AppendHeader(to.contact)
	if rs := sipmsg.Header(req, "Refer-Sub"); rs != "" {
		fwd.AppendHeader(sipmsg.Generic("Refer-Sub", rs)) // RFC 4488: the transferor wants no NOTIFY
	}
	c.log.Info("transfer relayed", "leg", l.name(), "target", target.String())
	c.relayWith(l, req, stx, to, fwd)
}

// atSBC is the target's user at the SBC's address on leg to.
func atSBC(to *leg, target sip.Uri) sip.Uri {
	p := sip.Port(to.viaPort)
	u := &sip.SipUri{FHost: to.viaHost, FPort: &p, FUriParams: sipmsg.NewParams(), FHeaders: sipmsg.NewParams()}
	if usr := target.User(); usr != nil {
		u.FUser = sip.String{Str: usr.String()}
	}
	if to.dst.Kind != transport.UDP {
		u.FUriParams.Add("transport", sip.String{Str: to.dst.Kind.Param()})
	}
	return u
}

// relayNotify carries a NOTIFY to the other leg: the progress of a relayed
// REFER with its Event and Subscription-State and only the status line of
// its sipfrag; any other NOTIFY as relayRequest carries requests.
func (c *Call) relayNotify(l *leg, req sip.Request, stx serverTx) {
	event := sipmsg.Header(req, "Event")
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(event)), "refer") {
		c.relayRequest(l, req, stx)
		return
	}
	to := c.other(l)
	line, _, _ := strings.Cut(req.Body(), "\n")
	line = strings.TrimRight(line, "\r")
	ct := sipmsg.Header(req, "Content-Type")
	body := ""
	if line != "" {
		body = line + "\r\n"
	}
	fwd := to.newRequest(sip.NOTIFY, ct, body)
	fwd.AppendHeader(sipmsg.Generic("Event", event))
	if ss := sipmsg.Header(req, "Subscription-State"); ss != "" {
		fwd.AppendHeader(sipmsg.Generic("Subscription-State", ss))
	}
	fwd.AppendHeader(to.contact)
	c.relayWith(l, req, stx, to, fwd)
}

// relayWith sends fwd on leg to and answers req from leg l with its final
// answer's code (the standard phrase, no body).
func (c *Call) relayWith(l *leg, req sip.Request, stx serverTx, to *leg, fwd sip.Request) {
	_, err := c.send(to, fwd, func(res sip.Response) {
		if res.StatusCode() < 200 || !c.release(stx) {
			return
		}
		code := int(res.StatusCode())
		c.reply(l, stx, req, code, outcome.Phrase(code))
	})
	if err != nil {
		c.reply(l, stx, req, 500, "Server Internal Error")
		return
	}
	c.hold(l, req, stx)
}
