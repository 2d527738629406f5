package b2bua

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/media"
	"github.com/sbc-project/sbc/media/sdpconv"
)

// Step 2, offer: leg B toward a destination, the INVITE with the offer the
// media session rewrote, and the next destination when one fails.

// dest is one place a call may be sent: a trunk or the echo destination.
type dest struct {
	name  string // trunk name, "echo" or "registered"
	trunk *routing.Trunk
	ruri  sip.Uri
	aor   sip.Uri // registered users: the To of the INVITE
	to    transport.Target
	peer  string // the cluster node a registered user is reached through
	// contact and registered: a registered user's binding as the UA
	// registered it and when (newestPerContact).
	contact    string
	registered time.Time
}

// attempt is one INVITE toward one dest.
type attempt struct {
	leg         *leg
	dest        dest
	tx          clientTx
	req         sip.Request
	provisional bool
	authTried   bool
	offer       bool // our INVITE carried an offer
}

// settle lets the attempt's INVITE and its destination's URIs go once
// it had its final response: a digest retry has cloned the INVITE and
// copied the destination by then, and what stays (the handler of the
// 2xx retransmissions, 32 s in Accepted) needs only the leg (the URIs
// were 0.18 kB a call through those 32 s; leg B's target is the 2xx's
// Contact by then).
func (at *attempt) settle() {
	at.req = nil
	at.dest.ruri, at.dest.aor = nil, nil
}

// callSetup is what a call keeps only while it looks for its callee, let
// go when answered (a Call in the 896-byte size class, not 1,024).
type callSetup struct {
	optsA media.SideOptions // what the caller's side was configured with (openMedia)
	dests []dest            // B-leg targets not yet tried
	// dial is the user part leg B dials toward a trunk, as the dial rules
	// read and checked it (policy.Request.Dial); "": the one dialed.
	dial     string
	attempts int // INVITEs sent toward destinations, for the timeline
	best     int // best final failure among the forks (RFC 3261 16.7)
}

// nextAttempt sends the INVITE to the next destination; with none left it
// answers A from the last failure and returns false.
func (c *Call) nextAttempt() bool {
	if c.forking {
		return c.forkAll()
	}
	for len(c.setup.dests) > 0 {
		d := c.setup.dests[0]
		c.setup.dests = c.setup.dests[1:]
		if err := c.invite(d); err != nil {
			var se *sipError
			if errors.As(err, &se) {
				c.log.Info("call refused", "err", err)
				o := outcome.Classify(se.cause, 0, false)
				warning := se.warning
				if warning == "" {
					warning = `399 sbc "` + o.Reason + `"`
				}
				c.failWith(o, append(se.extra, sipmsg.Generic("Warning", warning))...)
				return false
			}
			c.log.Warn("invite not sent", "dest", d.name, "err", err)
			c.lastFailure, c.tlsFailed = 503, errors.Is(err, transport.ErrTLSHandshake)
			c.rec.Trunk = d.name // the attempt the CDR's cause is about
			continue
		}
		c.tlsFailed = false
		return true
	}
	switch c.lastFailure {
	case 408, 0:
		c.fail(outcome.CauseNoAnswer)
	case 503:
		if c.tlsFailed {
			c.failTLS()
			return false
		}
		c.fail(outcome.CauseUpstreamUnavailable,
			sipmsg.Generic("Retry-After", strconv.Itoa(int(c.s.cfg.RetryAfter/time.Second))))
	default:
		c.fail(outcome.CauseUpstreamFailed)
	}
	return false
}

// invite builds leg B toward d and sends the INVITE with the offer.
func (c *Call) invite(d dest) error {
	b, identity, err := c.newLegB(d)
	if err != nil {
		return err
	}
	at := &attempt{leg: b, dest: d}
	req, err := c.offerB(at, identity)
	if err != nil {
		return err
	}
	c.s.addDialog(b)
	c.s.watchConn(c, d.to.Conn)
	c.setup.attempts++
	c.timelineLeg(b)
	c.timelineAttempt(d.name, d.ruri, c.setup.attempts)
	tx, err := c.send(b, req, func(res sip.Response) { c.onInviteResponse(at, res) })
	if err != nil {
		c.s.removeDialog(b)
		return err
	}
	at.tx = tx
	c.rec.BCallID, c.rec.Trunk = b.callID, d.name
	c.traceOn = c.traced()
	c.log.Info("calling", "dest", d.name)
	if c.forking {
		c.forks = append(c.forks, at)
		return nil
	}
	c.try = at
	c.startTimer(timerAttempt, c.s.cfg.InviteTimeout)
	return nil
}

// newLegB builds leg B toward d, with the identity the SBC asserts for the
// caller there, and tells the media session what d's side speaks.
func (c *Call) newLegB(d dest) (*leg, []sip.Header, error) {
	host, port, err := c.s.hostFor(d.to.Kind, netip.AddrPort{}, d.to.Addr.Addr())
	if err != nil {
		return nil, nil, err
	}
	from, identity := c.identityFor(d, host)
	var toURI sip.Uri = &sip.SipUri{FHost: d.ruri.Host(), FUriParams: sipmsg.NewParams(), FHeaders: sipmsg.NewParams()}
	if u := d.ruri.User(); u != nil {
		toURI.(*sip.SipUri).FUser = sip.String{Str: u.String()}
	}
	if d.aor != nil {
		toURI = ownURI(d.aor) // A's To: a part of its INVITE (leg.detach)
	}
	pass := c.s.pass
	if d.trunk != nil && len(d.trunk.PassHeaders) > 0 {
		pass = lowerSet(c.s.cfg.HeaderWhitelist, d.trunk.PassHeaders)
	}
	b := &leg{
		call: c, side: media.SideB,
		callID:       sipmsg.NewToken(12),
		localTag:     sipmsg.NewToken(8),
		local:        from,
		remote:       &sip.Address{Uri: toURI},
		remoteTarget: d.ruri,
		dst:          d.to,
		contact:      c.s.contactFor(host, port, d.to.Kind, sipsDialog(d.ruri, nil, nil)),
		viaHost:      host,
		viaPort:      port,
		pass:         pass,
	}
	c.configureB(b, d)
	return b, identity, nil
}

// configureB tells the media session what leg B's side speaks.
func (c *Call) configureB(b *leg, d dest) {
	optsB := media.SideOptions{Kind: media.KindRTP, Signaling: d.to.Addr.Addr().Unmap()}
	if d.to.Kind == transport.WS || d.to.Kind == transport.WSS {
		optsB.Kind = media.KindWebRTC // a browser registered over WebSocket
	}
	if d.trunk != nil {
		b.dtmfInfo = d.trunk.DTMFInfo
		optsB.DTMFInfo = d.trunk.DTMFInfo
		if d.trunk.SRTP {
			optsB.Kind = media.KindSRTP
		}
	}
	optsB.Codecs = c.sideCodecs(d, optsB.Kind)
	c.media.Configure(media.SideB, optsB)
	if c.setup.optsA.Kind == media.KindWebRTC && c.route != nil && len(c.route.WebRTCCodecs) > 0 {
		// The caller is a browser: the route says what it may speak.
		c.setup.optsA.Codecs = c.route.WebRTCCodecs
		c.media.Configure(media.SideA, c.setup.optsA)
	}
}

// sideCodecs are the codecs the side toward d may use: a trunk's list, or
// for a browser the route's webrtc_codecs; nil: any.
func (c *Call) sideCodecs(d dest, kind media.Kind) []string {
	switch {
	case d.trunk != nil:
		return d.trunk.Codecs
	case kind == media.KindWebRTC && c.route != nil:
		return c.route.WebRTCCodecs
	}
	return nil
}

// offerB builds the INVITE of attempt at: the caller's offer rewritten by
// the media session for leg B's side, Max-Forwards one less than the
// caller's, the session timer, the whitelisted headers and the identity.
func (c *Call) offerB(at *attempt, identity []sip.Header) (sip.Request, error) {
	b := at.leg
	body := ""
	if sdp := c.invReq.Body(); sdp != "" {
		out, err := c.media.Offer(media.SideA, []byte(sdp))
		if errors.Is(err, media.ErrNoCodec) {
			return nil, &sipError{cause: outcome.CauseNoCommonCodec, err: err, warning: sdpconv.NoCodecWarning}
		}
		if errors.Is(err, media.ErrNoFax) {
			return nil, &sipError{cause: outcome.CauseNoCommonCodec, err: err, warning: media.NoFaxWarning}
		}
		if errors.Is(err, media.ErrTranscodeCapacity) {
			// 488, not 503: the refusal is this offer's (an offer sharing a
			// codec is still taken), and a 503 with Retry-After would make
			// the caller's proxy shun the whole SBC (RFC 3261 21.5.4).
			c.log.Warn("call refused: transcoding capacity reached", "dest", at.dest.name)
			return nil, &sipError{cause: outcome.CauseTranscodingFull, err: err, warning: media.TranscodeWarning}
		}
		if errors.Is(err, media.ErrNoPorts) {
			// Out of ports is the SBC's shortage, not the caller's SDP:
			// 503 with Retry-After, so the caller tries again or elsewhere.
			return nil, &sipError{cause: outcome.CauseMediaUnavailable, err: err,
				extra: []sip.Header{sipmsg.Generic("Retry-After", strconv.Itoa(int(c.s.cfg.RetryAfter/time.Second)))}}
		}
		if err != nil {
			return nil, &sipError{cause: outcome.CauseBadSDP, err: err}
		}
		c.a.lastSDPIn = sdp
		body = sentSDP(out)
		b.lastSDPOut = body
		at.offer = true
	}
	req := b.newRequest(sip.INVITE, "application/sdp", body)
	if mf, ok := sipmsg.HeaderInt(c.invReq, "Max-Forwards"); ok && mf-1 < 70 {
		v := sip.MaxForwards(mf - 1)
		req.ReplaceHeaders("Max-Forwards", []sip.Header{&v})
	}
	c.offerTimer(req)
	c.advertise100rel(req)
	copyHeaders(c.invReq, req, b.pass)
	for _, h := range identity {
		req.AppendHeader(h)
	}
	c.signForPeer(at.dest, req)
	at.req = req
	return req, nil
}

// copyHeaders copies the headers named in pass from src to dst, never the
// identity headers (identity.go writes those).
func copyHeaders(src, dst sip.Message, pass map[string]bool) {
	if len(pass) == 0 {
		return
	}
	for _, h := range src.Headers() {
		if name := strings.ToLower(h.Name()); pass[name] && !isIdentityHeader(name) {
			dst.AppendHeader(h.Clone())
		}
	}
}

func isSDP(m sip.Message) bool {
	ct := strings.ToLower(sipmsg.Header(m, "Content-Type"))
	return ct == "" || strings.HasPrefix(ct, "application/sdp")
}

// sipError is a failure that ends the call with cause; the classifier
// gives its SIP answer.
type sipError struct {
	cause   outcome.Cause
	warning string // Warning header value; "" for a generic 399
	extra   []sip.Header
	err     error
}

func (e *sipError) Error() string { return string(e.cause) + ": " + e.err.Error() }

func (e *sipError) Unwrap() error { return e.err }

// lowerSet turns header names into a lookup set.
func lowerSet(names ...[]string) map[string]bool {
	m := make(map[string]bool)
	for _, list := range names {
		for _, n := range list {
			m[strings.ToLower(strings.TrimSpace(n))] = true
		}
	}
	return m
}
