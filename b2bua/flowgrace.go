package b2bua

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// A browser's WebSocket may close mid-call (a network change, a proxy's
// idle timeout) and the browser connect again: JsSIP keeps its session
// across the reconnection. An answered call outlives the connection of a
// leg for Config.FlowGrace: media goes on (it never went through the
// connection); requests toward the leg fail at once, as SIP lets a
// transaction fail without ending the dialog (503 and Retry-After), a BYE
// still ends the call; and the same party may take the dialog over from
// its new connection (flowFrom), or its new registration (flowRegistered).
// When the grace ends with nobody having done so, the call ends with
// connection_lost, as it did at once before.
//
// The same party is the one the lost connection was: its user, proven by
// a registration on that connection or by the caller's INVITE
// credentials, and the RFC 5626 instance of that registration. On the new
// connection it is proven again: by a registration there of the same user
// and instance, or, without a registration there, by the request's own
// credentials for the same user (challenged with 407). A connection
// registered as someone else gets 403; a request whose dialog
// identifiers (its From tag) are not the leg's gets 481. A refused
// request changes nothing: not the route, not the dialog's CSeq.

// flowOwner is who a leg's connection belonged to: the user its
// registration or its INVITE's credentials proved, and the RFC 5626
// instance of that registration ("" without one).
type flowOwner struct{ user, instance string }

// lostFlow is a leg whose connection closed, within its grace.
type lostFlow struct {
	leg   *leg
	conn  *transport.Conn // the connection that closed
	owner flowOwner
	since time.Time
	until time.Time
	timer *time.Timer
}

// flowGrace holds a call's legs in their grace: at most its two.
type flowGrace struct {
	lost []*lostFlow
	call *Call
}

// of returns l's lost flow; nil when l is not in its grace (or g is nil).
func (g *flowGrace) of(l *leg) *lostFlow {
	if g == nil || l == nil {
		return nil
	}
	for _, lf := range g.lost {
		if lf.leg == l {
			return lf
		}
	}
	return nil
}

// end takes lf out of the grace and stops its timer.
func (g *flowGrace) end(lf *lostFlow) {
	lf.timer.Stop()
	g.call.s.waiting.remove(lf.owner, g.call)
	for i, x := range g.lost {
		if x == lf {
			g.lost = append(g.lost[:i], g.lost[i+1:]...)
			return
		}
	}
}

// stop ends every grace (the call finished).
func (g *flowGrace) stop() {
	if g == nil {
		return
	}
	for len(g.lost) > 0 {
		g.end(g.lost[0])
	}
}

// ownerOf is who leg l's connection belonged to, from b, the binding
// that was registered on it (zero: none): the caller's INVITE credentials
// win for leg A, and the binding's instance counts only when it is that
// user's.
func (c *Call) ownerOf(l *leg, b registrar.Binding) flowOwner {
	user, _, _ := strings.Cut(b.AOR, "@")
	if l == c.a && c.user != "" && !strings.EqualFold(c.user, user) {
		return flowOwner{user: c.user}
	}
	return flowOwner{user: user, instance: b.Instance}
}

// keepLost puts leg l, whose connection conn closed, in its grace, and
// reports whether it did: only an answered call's confirmed leg whose
// owner is known (someone must be able to take it over), with a grace
// configured.
func (c *Call) keepLost(l *leg, conn *transport.Conn, b registrar.Binding) bool {
	if c.grace.of(l) != nil {
		return true // heard of twice (calls.go watchConn)
	}
	return c.keepFor(l, conn, c.ownerOf(l, b))
}

// keepFor is keepLost for a known owner; conn may be nil (a restored
// call's WebSocket leg: replica_restore.go).
func (c *Call) keepFor(l *leg, conn *transport.Conn, owner flowOwner) bool {
	grace := c.s.cfg.FlowGrace
	if grace <= 0 || c.state != stateConfirmed || !l.confirmed || owner.user == "" {
		return false
	}
	now := time.Now()
	lf := &lostFlow{leg: l, conn: conn, owner: owner, since: now, until: now.Add(grace)}
	lf.timer = time.AfterFunc(grace, func() { c.post(event{kind: evFunc, fn: func(c *Call) { c.graceOver(lf) }}) })
	if c.grace == nil {
		c.grace = &flowGrace{call: c}
	}
	c.grace.lost = append(c.grace.lost, lf)
	c.s.waiting.add(owner, c)
	c.log.Info("connection lost: the call waits for its party to reconnect", "leg", l.name(),
		"conn", l.dst.String(), "grace", grace, "user", owner.user, "instance", owner.instance)
	return true
}

// graceOver ends the call when lf's grace ran out with nobody taking the
// dialog over: what a lost connection did at once without a grace.
func (c *Call) graceOver(lf *lostFlow) {
	if c.grace.of(lf.leg) != lf {
		return // taken over meanwhile
	}
	c.grace.end(lf)
	if c.state == stateEnding {
		return
	}
	c.log.Info("connection lost: nobody took the dialog over; ending the call", "leg", lf.leg.name(),
		"grace", time.Since(lf.since).Round(time.Millisecond))
	lf.leg.confirmed = false // no BYE into a closed connection
	c.hangup(outcome.CauseConnectionLost, lf.leg.name())
}

// flowFrom checks a request on leg l that arrived while l is in its grace
// on a connection other than the lost one, and reports whether the call
// goes on with it: then the leg's route has moved to the request's
// connection. Otherwise the request was answered (481, 403 or a 407
// challenge) and nothing changed.
func (c *Call) flowFrom(l *leg, req sip.Request, stx serverTx) bool {
	lf := c.grace.of(l)
	if lf == nil {
		return true
	}
	src := stx.Source()
	if src.Conn == lf.conn {
		return true // sent before the connection closed
	}
	if sipmsg.FromTag(req) != l.remoteTag {
		c.s.stats.NoDialog.Add(1)
		c.reply(l, stx, req, 481, "Call/Transaction Does Not Exist")
		return false
	}
	if src.Conn == nil || !src.Kind.Reliable() {
		c.refuseTakeover(l, stx, req, "a dialog is taken over from a stream connection only")
		return false
	}
	if !c.sameParty(lf, req, stx) {
		return false
	}
	c.grace.end(lf)
	l.dst = src
	c.s.watchConn(c, src.Conn)
	c.log.Info("dialog taken over from a new connection", "leg", l.name(), "conn", src.Conn.String(),
		"method", string(req.Method()), "after", time.Since(lf.since).Round(time.Millisecond))
	return true
}

// sameParty reports whether req, from a new connection, comes from the
// owner of lf; when not, it answered req.
func (c *Call) sameParty(lf *lostFlow, req sip.Request, stx serverTx) bool {
	src := stx.Source()
	if c.s.reg != nil {
		if b, ok := c.s.reg.BindingOn(src.Conn, lf.owner.user); ok {
			user, _, _ := strings.Cut(b.AOR, "@")
			if strings.EqualFold(user, lf.owner.user) && (lf.owner.instance == "" || b.Instance == lf.owner.instance) {
				return true
			}
			c.log.Warn("dialog takeover refused: the new connection is registered as another party", "leg", lf.leg.name(),
				"conn", src.Conn.String(), "user", user, "instance", b.Instance)
			c.refuseTakeover(lf.leg, stx, req, "the connection is another party's")
			return false
		}
	}
	// No registration on the new connection: the request's own credentials.
	var auth *registrar.Auth
	if c.s.reg != nil {
		auth = c.s.reg.Auth()
	}
	ia := newInviteAuth(auth, req)
	user, _, ok, _, failed := ia.Check(context.Background())
	switch {
	case ok && strings.EqualFold(user, lf.owner.user):
		return true
	case ok || failed:
		if failed {
			c.s.authFailed(src)
		}
		c.log.Warn("dialog takeover refused: credentials of another user", "leg", lf.leg.name(), "conn", src.Conn.String())
		c.refuseTakeover(lf.leg, stx, req, "the credentials are another party's")
		return false
	}
	chs := ia.Challenges()
	if len(chs) == 0 {
		c.refuseTakeover(lf.leg, stx, req, "nobody can authenticate")
		return false
	}
	hs := make([]sip.Header, 0, len(chs))
	for _, ch := range chs {
		hs = append(hs, sipmsg.Generic(ch[0], ch[1]))
	}
	c.reply(lf.leg, stx, req, 407, "Proxy Authentication Required", hs...)
	return false
}

// refuseTakeover answers a request from a new connection that may not
// take the dialog over: 403, with why in a Warning.
func (c *Call) refuseTakeover(l *leg, stx serverTx, req sip.Request, why string) {
	c.reply(l, stx, req, 403, "Forbidden", sipmsg.Generic("Warning", `399 sbc "`+why+`"`))
}

// refuseInGap answers a request on leg l that would have to reach the
// other leg while that one is in its grace, and reports whether it did:
// 503 with Retry-After (the grace left), which fails the transaction and
// leaves the dialog as it was (RFC 5057 5.1). BYE and OPTIONS go on as
// ever, a session refresh is answered by the SBC itself, and a DTMF INFO
// the other side takes as RFC 4733 is played: none needs the connection.
func (c *Call) refuseInGap(l *leg, req sip.Request, stx serverTx) bool {
	lf := c.grace.of(c.other(l))
	if lf == nil {
		return false
	}
	switch req.Method() {
	case sip.BYE, sip.OPTIONS:
		return false
	case sip.INVITE, sip.UPDATE:
		if sdp := req.Body(); sdp == "" || sdp == l.lastSDPIn {
			return false
		}
	case sip.INFO:
		if c.infoToRTP(l, req, stx) {
			return true
		}
	}
	left := int((time.Until(lf.until) + time.Second - 1) / time.Second)
	c.reply(l, stx, req, 503, "Service Unavailable", sipmsg.Generic("Retry-After", strconv.Itoa(max(left, 1))),
		sipmsg.Generic("Warning", `399 sbc "the other party is reconnecting"`))
	return true
}

// A client with an RFC 5626 instance that comes back and registers again
// may send nothing in the dialog (the far end is the next to speak): its
// registration moves the call's route by itself. Only an instance counts
// here; a user alone may be on several devices.

// lostIndex holds the calls waiting for a registration instance, by
// owner (the user lower-cased). Its zero value is empty and ready; safe
// for concurrent use.
type lostIndex struct {
	mu sync.Mutex
	m  map[flowOwner]map[*Call]struct{}
}

func (x *lostIndex) key(o flowOwner) flowOwner { return flowOwner{strings.ToLower(o.user), o.instance} }

func (x *lostIndex) add(o flowOwner, c *Call) {
	if o.instance == "" {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = make(map[flowOwner]map[*Call]struct{})
	}
	k := x.key(o)
	if x.m[k] == nil {
		x.m[k] = make(map[*Call]struct{})
	}
	x.m[k][c] = struct{}{}
}

func (x *lostIndex) remove(o flowOwner, c *Call) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := x.key(o)
	if set := x.m[k]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(x.m, k)
		}
	}
}

func (x *lostIndex) calls(o flowOwner) []*Call {
	x.mu.Lock()
	defer x.mu.Unlock()
	set := x.m[x.key(o)]
	out := make([]*Call, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	return out
}

// flowRegistered takes a binding a REGISTER made or refreshed on a stream
// connection (registration.Deps.Bound): the calls waiting for its
// instance move their route there.
func (s *Server) flowRegistered(b registrar.Binding) {
	if b.Instance == "" || s.cfg.FlowGrace <= 0 {
		return
	}
	user, _, _ := strings.Cut(b.AOR, "@")
	o := flowOwner{user: user, instance: b.Instance}
	dst := b.Flow.Target
	for _, c := range s.waiting.calls(o) {
		c.post(event{kind: evFunc, fn: func(c *Call) { c.reRegistered(o, dst) }})
	}
}

// reRegistered moves the legs in their grace whose owner is o to dst, the
// connection o registered on again.
func (c *Call) reRegistered(o flowOwner, dst transport.Target) {
	if c.grace == nil || c.state == stateEnding {
		return
	}
	for _, lf := range append([]*lostFlow(nil), c.grace.lost...) {
		if lf.conn == dst.Conn || lf.owner.instance != o.instance || !strings.EqualFold(lf.owner.user, o.user) {
			continue
		}
		c.grace.end(lf)
		lf.leg.dst = dst
		c.s.watchConn(c, dst.Conn)
		c.log.Info("dialog moved to its party's new registration", "leg", lf.leg.name(), "conn", dst.Conn.String(),
			"after", time.Since(lf.since).Round(time.Millisecond))
	}
}
