package b2bua

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/media"
	"github.com/sbc-project/sbc/policy"
)

// Step 6, transfer: a REFER (RFC 3515) on one leg of an answered call.
// The leg that sends it is the transferor; the other leg, the transferee,
// stays and is connected to the Refer-To target. In mode local the SBC
// performs the transfer itself: the target is routed and judged by the
// late policy stages like a new call from the transferor (a transfer is
// no way around the dial rules), the REFER is answered 202, the
// transferor hears the progress as NOTIFY message/sipfrag (RFC 3515 2.4.5),
// a new leg is INVITEd with the transferee's media, and once it answers
// the transferee is re-INVITEd with the new party's SDP and the
// transferor's leg gets BYE. A Refer-To with Replaces (RFC 3891) naming
// another call through the SBC (attended transfer) reaches that call's
// other party instead (call6_replaces.go).

// transfer is a REFER being carried out.
type transfer struct {
	from, to *leg // the transferor's leg and the transferee's
	eventID  string
	target   sip.Uri
	replaces string       // Replaces header of the INVITE; "": a blind transfer
	routeSet []sip.Header // attended: the route set of the replaced dialog
	dests    []dest
	at       *attempt
	route    *routing.Route
	admitted func() // the admission counts the target took; nil: none
	dial     string
	linked   *Call // attended: the call whose party the transfer takes
	// media is the session opened for the target when it speaks another
	// kind of media than the transferor's side (call6_media.go); nil: the
	// call's own session.
	media    MediaSession
	timer    *time.Timer
	timedOut bool
	noSub    bool // Refer-Sub: false (RFC 4488): no NOTIFY wanted
}

// transfers is what a call keeps of its transfers.
type transfers struct {
	cur  *transfer
	done []*leg // legs a transfer replaced, whose dialogs stay until the call ends
	// base are the media counters when the call's current record began;
	// nil: zero (no transfer yet; a pointer, as most calls never have one).
	base *outcome.Media
}

// since is what media relayed since the call's current record began.
func (x *transfers) since(total outcome.Media) outcome.Media {
	if x.base == nil {
		return total
	}
	return subtractMedia(total, *x.base)
}

// onRefer handles a REFER on leg l of a confirmed call.
func (c *Call) onRefer(l *leg, req sip.Request, stx serverTx) {
	mode := c.transferMode(l)
	if mode == routing.TransferRefuse {
		c.reply(l, stx, req, 403, "Forbidden (transfer refused)")
		return
	}
	if c.xfer.cur != nil || c.pending != nil {
		c.reply(l, stx, req, 491, "Request Pending")
		return
	}
	target, replaces, err := parseReferTo(req)
	if err != nil {
		c.reply(l, stx, req, 400, "Bad Refer-To", sipmsg.Generic("Warning", `399 sbc "`+err.Error()+`"`))
		return
	}
	if mode == routing.TransferRelay && replaces == "" {
		c.relayRefer(l, req, stx, target)
		return
	}
	to := c.other(l)
	if to == nil || !to.confirmed || to.lastSDPIn == "" {
		c.reply(l, stx, req, 488, "Not Acceptable Here")
		return
	}
	seq, _ := sipmsg.CSeq(req)
	x := &transfer{from: l, to: to, eventID: strconv.FormatUint(uint64(seq), 10), target: target}
	c.log.Info("transfer requested", "leg", l.name(), "target", target.String(), "attended", replaces != "")
	code, reason := 0, ""
	if replaced := c.s.replacedLeg(replaces); replaced != nil {
		code, reason = c.resolveReplaces(x, replaced)
	} else {
		// Blind, or a Replaces naming no dialog of the SBC's: the
		// transferor's own dialog with the target, on the transferor's
		// side. The target is routed and judged like a blind transfer's
		// and gets that Replaces as given (RFC 3891).
		x.replaces = replaces
		if d, ok := c.admitTransfer(x, req, l); !ok {
			if d.Code == 407 { // the transferor must authenticate, as for a call
				c.reply(l, stx, req, d.Code, d.Reason, decisionHeaders(d)...)
				return
			}
			code, reason = d.Code, d.Reason
		}
	}
	if strings.EqualFold(strings.TrimSpace(sipmsg.Header(req, "Refer-Sub")), "false") {
		x.noSub = true
		c.reply(l, stx, req, 202, "Accepted", sipmsg.Generic("Refer-Sub", "false"))
	} else {
		c.reply(l, stx, req, 202, "Accepted")
	}
	c.xfer.cur = x
	c.timelineTransfer(l, target)
	c.notifyTransfer(x, 100, "Trying", false)
	if code != 0 {
		c.endTransfer(x, code, reason)
		return
	}
	c.nextTransferAttempt(x)
}

// transferMode is what a REFER from leg l does: the mode of the trunk the
// leg faces, else the route's.
func (c *Call) transferMode(l *leg) string {
	if tr, ok := c.s.routes.Load().TrunkBySource(l.dst.Addr.Addr().Unmap()); ok && tr.Transfer != "" {
		return tr.Transfer
	}
	if c.route != nil && c.route.Transfer != "" {
		return c.route.Transfer
	}
	return routing.TransferLocal
}

// admitTransfer routes the blind transfer's target as a call from the
// transferor and runs the late policy stages on it. It reports false with
// the decision (its code and reason, 404 or 480 for no route or no
// destination) when the transfer may not go on.
func (c *Call) admitTransfer(x *transfer, req sip.Request, l *leg) (policy.Decision, bool) {
	src := l.dst
	rr := routing.Request{Listener: src.Listener, Src: src.Addr.Addr().Unmap(), RURIUser: userinfo(x.target)}
	if f, ok := req.From(); ok && f.Address != nil {
		rr.FromDomain = f.Address.Host()
	}
	route, ok := c.s.routes.Load().Route(rr)
	if !ok {
		return policy.Decision{Code: 404, Reason: "Not Found"}, false
	}
	x.route = route
	if p := c.s.policy(); p != nil {
		r := policyRequest(req, src)
		r.Method, r.RURI, r.RURIUser = string(sip.INVITE), x.target.String(), rr.RURIUser
		r.Route, r.Target = route.Name, policyTarget(route.Target)
		if cands := route.Candidates(); r.Target == policy.TargetTrunks && len(cands) > 0 {
			r.Trunk = cands[0].Name
		}
		r.Trusted = route.Trusts(rr.Src)
		if tr, ok := c.s.routes.Load().TrunkBySource(rr.Src); ok && tr.Trusted {
			r.Trusted = true
		}
		r.Auth = c.s.inviteAuthenticator(req, src)
		if l == c.a && c.user != "" {
			r.Auth = flowAuth{user: c.user, group: c.userGroup()} // the caller authenticated this call
		}
		d := p.Late(c.ctx, r)
		if d.Action != policy.Continue {
			c.log.Info("transfer refused by policy", "stage", d.Stage, "cause", d.Cause, "code", d.Code)
			if d.Code == 0 {
				d.Code, d.Reason = 403, "Forbidden"
			}
			return d, false
		}
		x.admitted, x.dial = r.Admitted, r.Dial
	}
	x.dests = c.transferDests(x, rr.RURIUser)
	if len(x.dests) == 0 {
		return policy.Decision{Code: 480, Reason: "Temporarily Unavailable"}, false
	}
	return policy.Decision{}, true
}

// userGroup is the dial group of the call's authenticated user.
func (c *Call) userGroup() string {
	if c.s.reg == nil {
		return ""
	}
	return c.s.reg.Auth().Group(c.user)
}

// transferDests are where the transfer's route sends its target, tried in
// order (a registered user's bindings one after the other).
func (c *Call) transferDests(x *transfer, user string) []dest {
	switch x.route.Target {
	case routing.TargetTrunks:
		if x.dial != "" {
			user = x.dial
		}
		var out []dest
		for _, tr := range x.route.Candidates() {
			// Every address of the trunk (RFC 3263 SRV targets), in order.
			if ds, err := c.trunkDests(tr, user); err == nil {
				out = append(out, ds...)
			}
		}
		return out
	case routing.TargetRegistered:
		return c.s.registeredDests(x.target)
	}
	return nil // echo and unknown targets: nobody to transfer to
}

// nextTransferAttempt INVITEs the next destination of the transfer; with
// none left it ends the transfer with the last failure.
func (c *Call) nextTransferAttempt(x *transfer) {
	code := 503
	for len(x.dests) > 0 {
		d := x.dests[0]
		x.dests = x.dests[1:]
		if err := c.inviteTransfer(x, d); err != nil {
			c.log.Warn("transfer invite not sent", "dest", d.name, "err", err)
			if errors.Is(err, errKindChange) || errors.Is(err, media.ErrNoCodec) {
				code = 488
			}
			continue
		}
		return
	}
	c.endTransfer(x, code, "")
}

// inviteTransfer sends the INVITE toward the target, offering what the
// transferee last said, through the media session's transferor side.
func (c *Call) inviteTransfer(x *transfer, d dest) error {
	n, err := c.newTransferLeg(x, d)
	if err != nil {
		return err
	}
	m, err := c.transferMedia(x, d, n)
	if err != nil {
		return err
	}
	offer, err := m.Offer(x.to.side, []byte(x.to.lastSDPIn))
	if err != nil {
		c.dropTransferMedia(x)
		return err
	}
	n.lastSDPOut = sentSDP(offer)
	req := n.newRequest(sip.INVITE, "application/sdp", n.lastSDPOut)
	if x.replaces != "" {
		req.AppendHeader(sipmsg.Generic("Replaces", x.replaces))
		req.AppendHeader(sipmsg.Generic("Require", "replaces"))
	}
	req.AppendHeader(sipmsg.Generic("Referred-By", "<"+x.from.local.Uri.String()+">"))
	at := &attempt{leg: n, dest: d, req: req, offer: true}
	c.s.addDialog(n)
	c.s.watchConn(c, d.to.Conn)
	c.timelineLeg(n)
	tx, err := c.send(n, req, func(res sip.Response) { c.onTransferResponse(x, at, res) })
	if err != nil {
		c.s.removeDialog(n)
		c.dropTransferMedia(x)
		return err
	}
	at.tx, x.at = tx, at
	c.xfer.done = append(c.xfer.done, n) // its dialog goes with the call, answered or not
	if x.timer == nil {
		x.timer = time.AfterFunc(c.s.cfg.RingTimeout, func() {
			c.post(event{kind: evFunc, fn: func(c *Call) { c.transferTimeout(x) }})
		})
	}
	c.log.Info("transfer calling", "dest", d.name)
	return nil
}

// newTransferLeg builds the leg toward the transfer's target: it takes the
// transferor's media side and name; its From is the transferee's user at
// the SBC.
func (c *Call) newTransferLeg(x *transfer, d dest) (*leg, error) {
	host, port, err := c.s.hostFor(d.to.Kind, netipZero, d.to.Addr.Addr())
	if err != nil {
		return nil, err
	}
	fromURI := &sip.SipUri{FHost: host, FUriParams: sipmsg.NewParams(), FHeaders: sipmsg.NewParams()}
	if u := x.to.remote.Uri.User(); u != nil {
		fromURI.FUser = sip.String{Str: u.String()}
	}
	var toURI sip.Uri = &sip.SipUri{FHost: d.ruri.Host(), FUriParams: sipmsg.NewParams(), FHeaders: sipmsg.NewParams()}
	if u := d.ruri.User(); u != nil {
		toURI.(*sip.SipUri).FUser = sip.String{Str: u.String()}
	}
	if d.aor != nil {
		toURI = d.aor
	}
	n := &leg{
		call: c, side: x.from.side,
		callID:       sipmsg.NewToken(12),
		localTag:     sipmsg.NewToken(8),
		local:        &sip.Address{DisplayName: x.to.remote.DisplayName, Uri: fromURI},
		remote:       &sip.Address{Uri: toURI},
		remoteTarget: d.ruri,
		routeSet:     x.routeSet,
		dst:          d.to,
		contact:      c.s.contactFor(host, port, d.to.Kind, sipsDialog(d.ruri, x.routeSet, nil)),
		viaHost:      host,
		viaPort:      port,
		pass:         c.s.pass,
	}
	if d.trunk != nil {
		n.dtmfInfo = d.trunk.DTMFInfo
	}
	return n, nil
}
