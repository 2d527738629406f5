package b2bua

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/media"
)

// This file holds what operations need from the B2BUA: a tap on every
// SIP message (HEP export, metrics, traces), per-call tracing, a snapshot
// of the calls in progress, hang-up by id, and drain. The rest of the
// package calls into it from a few one-line hooks: send and onPacket
// (tap), newCall (drain, call logger), invite (call logger) and the
// call's event loop (evFunc).

// snapshotTimeout bounds how long Calls and HangupCall wait for one call's
// goroutine to answer.
const snapshotTimeout = 2 * time.Second

// Direction says whether the SBC received or sent a tapped message.
type Direction uint8

// Directions of a TapMessage.
const (
	Received Direction = iota
	Sent
)

// TapMessage is one SIP message crossing the SBC's transport, on either
// leg of a call or outside any call.
type TapMessage struct {
	Dir Direction
	// Data is the message as on the wire. It is only valid during the
	// Tap call: copy what must outlive it.
	Data   []byte
	Src    netip.AddrPort // who sent it (the SBC's address for Sent)
	Dst    netip.AddrPort // who received it (the SBC's address for Received)
	Kind   transport.Kind
	Method string // the request's method, or the CSeq method of a response
	Code   int    // the status code of a response; 0 for a request
	CallID string // this message's Call-ID

	msg  sip.Message
	s    *Server
	corr string
}

// Correlation is the Call-ID of the caller's leg (leg A) of the call the
// message belongs to, the same on both legs; CallID when the message
// belongs to no call. It is looked up when first asked for (HEP, a
// traced call), not for every message. Only valid during the Tap call.
func (m *TapMessage) Correlation() string {
	if m.corr == "" {
		m.corr = m.s.correlate(m.msg, m.CallID)
	}
	return m.corr
}

// Tap sees every SIP message the server parses or sends (responses to
// unparsable requests excepted). It runs on transport and call goroutines
// and must not block. m is only valid during the call: the server reuses
// it (one TapMessage per message was 3 % of the bytes the SBC allocated).
type Tap func(m *TapMessage)

// Tracer decides which calls are traced: logged at debug level, SIP
// messages included, whatever the log level. logging.Traces implements
// it.
type Tracer interface {
	// Traced reports whether any of users (the user parts of From, To
	// and the request-URI) is traced.
	Traced(users ...string) bool
	// Active reports whether anything is traced: when not, the server
	// does not collect the users of each message.
	Active() bool
	// Mark is the attribute a logger carries to let a traced call's debug
	// records through the log handler.
	Mark() slog.Attr
}

// traced reports whether a call with this request is traced; it reads
// the request's users only when anything is traced at all.
func (s *Server) traced(req sip.Message) bool {
	t := s.hooks.Tracer
	return t != nil && t.Active() && t.Traced(msgUsers(req)...)
}

// traced reports whether the call's users are traced: those of A's
// INVITE, or once it is let go, those kept of it.
func (c *Call) traced() bool {
	if c.invReq != nil {
		return c.s.traced(c.invReq)
	}
	t := c.s.hooks.Tracer
	return t != nil && t.Active() && t.Traced(c.users...)
}

// letInviteGo drops A's INVITE once answered, keeping its users when
// calls can be traced (copied: a part of the message would keep all of
// the datagram it was parsed from).
func (c *Call) letInviteGo() {
	if c.invReq == nil {
		return
	}
	if c.s.hooks.Tracer != nil {
		c.users = msgUsers(c.invReq)
		for i, u := range c.users {
			c.users[i] = strings.Clone(u)
		}
	}
	c.invReq = nil
	c.a.detach()
	if c.b != nil {
		c.b.detach()
	}
}

// userOf is the user part of a URI; "" if none.
func userOf(u sip.Uri) string {
	if u == nil || u.User() == nil {
		return ""
	}
	return u.User().String()
}

// msgUsers are the users a message is about: From, To and, for a request,
// the request-URI.
func msgUsers(msg sip.Message) []string {
	var users []string
	if f, ok := msg.From(); ok && f.Address != nil {
		users = append(users, userOf(f.Address))
	}
	if t, ok := msg.To(); ok && t.Address != nil {
		users = append(users, userOf(t.Address))
	}
	if req, ok := msg.(sip.Request); ok {
		users = append(users, userOf(req.Recipient()))
	}
	return users
}

// callLogger builds a call's logger: the caller's Call-ID (call_id, as in
// the media logs), the CDR id (cdr_id), the callee leg's Call-ID once one
// was sent (b_call_id), the route once chosen, the user the auth stage
// authenticated, and the trace mark when the call's users are traced. The
// call's logger (callLog) builds it for each line, so every line about
// the call carries both legs' Call-IDs.
func (s *Server) callLogger(c *Call) *slog.Logger {
	args := []any{"call_id", c.rec.ACallID, "cdr_id", c.rec.ID}
	switch {
	case c.b != nil: // answered: the fork that answered
		args = append(args, "b_call_id", c.b.callID)
	case c.rec.BCallID != "":
		args = append(args, "b_call_id", c.rec.BCallID)
	}
	if c.route != nil {
		args = append(args, "route", c.route.Name)
	}
	if c.user != "" {
		args = append(args, "user", c.user)
	}
	if c.traceOn {
		args = append(args, s.hooks.Tracer.Mark())
	}
	return s.log.With(args...)
}

// tapIn hands a parsed incoming message to the tap and, for a traced call
// when debug logging is off, logs it.
func (s *Server) tapIn(msg sip.Message, p transport.Packet) {
	s.tapMessage(msg, p.Data, Received, p.Src, s.localFor(p.Kind, p.Local), p.Kind)
}

// tapOut does the same for an outgoing message.
func (s *Server) tapOut(msg sip.Message, data []byte, dst transport.Target) {
	s.tapMessage(msg, data, Sent, s.localFor(dst.Kind, dst.Local), dst.Addr, dst.Kind)
}

// tapMessages are the TapMessages handed to Tap, reused.
var tapMessages = sync.Pool{New: func() any { return new(TapMessage) }}

func (s *Server) tapMessage(msg sip.Message, data []byte, dir Direction, src, dst netip.AddrPort, kind transport.Kind) {
	if tl := s.hooks.Timelines; tl != nil {
		s.timelineSIP(tl, msg, data, dir)
	}
	tp, tr := s.hooks.Tap, s.hooks.Tracer
	if tp == nil && tr == nil {
		return
	}
	m := tapMessages.Get().(*TapMessage)
	defer func() {
		*m = TapMessage{} // keeps nothing of this message
		tapMessages.Put(m)
	}()
	*m = TapMessage{Dir: dir, Data: data, Src: src, Dst: dst, Kind: kind, CallID: sipmsg.CallID(msg), msg: msg, s: s}
	switch msg := msg.(type) {
	case sip.Request:
		m.Method = string(msg.Method())
	case sip.Response:
		m.Code = int(msg.StatusCode())
		_, method := sipmsg.CSeq(msg)
		m.Method = string(method)
	}
	if tp != nil {
		tp(m)
	}
	if tr != nil && tr.Active() && !s.log.Enabled(context.Background(), slog.LevelDebug) && tr.Traced(msgUsers(msg)...) {
		what := "sip in"
		if dir == Sent {
			what = "sip out"
		}
		// The trace mark must be on the logger (With) for the handler to
		// let a debug record through.
		s.log.With(tr.Mark(), "call_id", m.Correlation()).Debug(what, "leg_call_id", m.CallID,
			"src", src.String(), "dst", dst.String(), "sip", string(data))
	}
}

// localFor is the SBC's address on a message's path: the local address
// it arrived on or leaves from, else the first listener of its kind.
func (s *Server) localFor(kind transport.Kind, local netip.AddrPort) netip.AddrPort {
	if local.IsValid() && !local.Addr().IsUnspecified() {
		return local
	}
	if lp, ok := s.tp.LocalAddr(kind); ok {
		return lp
	}
	return local
}

// correlate returns the caller-leg Call-ID of the call a message belongs
// to: its dialog is found by Call-ID and the SBC's tag (From on messages
// of dialogs the SBC started, To on the others).
func (s *Server) correlate(msg sip.Message, callID string) string {
	s.mu.Lock()
	l := s.dialogs[dialogKey{callID, sipmsg.FromTag(msg)}]
	if l == nil {
		l = s.dialogs[dialogKey{callID, sipmsg.ToTag(msg)}]
	}
	s.mu.Unlock()
	// c.a is set before the call is published and never changes.
	if l != nil && l.call != nil && l.call.a != nil {
		return l.call.a.callID
	}
	return callID
}

// Drain switches new-call refusal: while on, every new INVITE is answered
// 503 Service Unavailable with Retry-After (sip.retry_after) and calls in
// progress go on; in-dialog requests, OPTIONS and REGISTER are served as
// usual. ActiveCalls tells when the last call has ended.
func (s *Server) Drain(on bool) {
	if s.draining.Swap(on) != on {
		s.log.Info("drain", "on", on, "calls", s.ActiveCalls())
	}
}

// Draining reports whether new calls are refused.
func (s *Server) Draining() bool { return s.draining.Load() }

// refuseWhileDraining answers a new INVITE 503 when draining and reports
// whether it did.
func (s *Server) refuseWhileDraining(tx serverTx) bool {
	if !s.draining.Load() {
		return false
	}
	retry := max(int(s.cfg.RetryAfter/time.Second), 1)
	s.respond(tx, 503, "Service Unavailable", sipmsg.Generic("Retry-After", strconv.Itoa(retry)))
	return true
}

// CallInfo is a snapshot of one call in progress.
type CallInfo struct {
	// Record is the call's record so far: ids, parties, times, trunk.
	// End, SIPCode, Cause and Side are not final.
	Record outcome.CallRecord
	Route  string // the route that matched; "" before routing
	State  string // calling, ringing, answered or ending
	Traced bool
	Legs   []LegInfo // leg A, then leg B once an INVITE was sent
	Codecs [2]string // negotiated with A and with B
	Media  media.Stats
}

// LegInfo describes one leg of a call.
type LegInfo struct {
	Side      string // a or b
	CallID    string
	Transport string // udp, tcp, tls, ws or wss
	Peer      netip.AddrPort
	Confirmed bool
}

// Calls returns a snapshot of every call in progress, each taken on its
// own goroutine. A call that does not answer within a bound (or ends
// meanwhile) is left out.
func (s *Server) Calls() []CallInfo {
	return eachCall(s, func(c *Call) CallInfo { return c.info() })
}

// HangupCall ends the call whose CDR id, caller Call-ID or callee Call-ID
// is id, with BYE (or CANCEL before the answer) on both legs and the
// hangup cause outcome.CauseAdminHangup. It reports whether such a call
// was found.
func (s *Server) HangupCall(id string) bool {
	found := false
	for _, hit := range eachCall(s, func(c *Call) bool {
		if !c.hasID(id) || c.state == stateEnding {
			return false
		}
		c.log.Info("hung up by the operator")
		c.hangup(outcome.CauseAdminHangup, outcome.SideSBC)
		return true
	}) {
		found = found || hit
	}
	return found
}

// eachCall runs f on the goroutine of every call in progress and returns
// the results of those that answered in time.
func eachCall[T any](s *Server, f func(c *Call) T) []T {
	s.mu.Lock()
	calls := make([]*Call, 0, len(s.calls))
	for c := range s.calls {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	replies := make([]chan T, len(calls))
	for i, c := range calls {
		ch := make(chan T, 1) // buffered: a late call never blocks on it
		replies[i] = ch
		if !c.post(event{kind: evFunc, fn: func(c *Call) { ch <- f(c) }}) {
			replies[i] = nil
		}
	}
	deadline := time.NewTimer(snapshotTimeout)
	defer deadline.Stop()
	var out []T
	for i, ch := range replies {
		if ch == nil {
			continue
		}
		select {
		case r := <-ch:
			out = append(out, r)
		case <-calls[i].doneChan():
		case <-deadline.C:
			return out
		}
	}
	return out
}

// hasID reports whether id names this call. Call goroutine only.
func (c *Call) hasID(id string) bool {
	if id == "" {
		return false
	}
	if id == c.rec.ID || id == c.a.callID {
		return true
	}
	for _, l := range c.bLegs() {
		if l.callID == id {
			return true
		}
	}
	return false
}

// bLegs are the callee-side legs: the answered one, or those being tried.
func (c *Call) bLegs() []*leg {
	if c.b != nil {
		return []*leg{c.b}
	}
	var ls []*leg
	if c.try != nil {
		ls = append(ls, c.try.leg)
	}
	for _, f := range c.forks {
		ls = append(ls, f.leg)
	}
	return ls
}

// info is the call's snapshot. Call goroutine only.
func (c *Call) info() CallInfo {
	in := CallInfo{Record: c.rec.full(), State: c.stateName(), Traced: c.traced()}
	if c.route != nil {
		in.Route = c.route.Name
	}
	in.Legs = append(in.Legs, c.a.info())
	if bs := c.bLegs(); len(bs) > 0 {
		in.Legs = append(in.Legs, bs[len(bs)-1].info())
	}
	if c.media != nil {
		in.Codecs = c.media.Codecs()
		in.Media = c.media.Stats()
	}
	return in
}

func (c *Call) stateName() string {
	switch {
	case c.state == stateEnding:
		return "ending"
	case c.state == stateConfirmed:
		return "answered"
	case !c.rec.Ring.IsZero():
		return "ringing"
	}
	return "calling"
}

func (l *leg) info() LegInfo {
	return LegInfo{Side: string(l.name()), CallID: l.callID, Transport: l.dst.Kind.Param(), Peer: l.dst.Addr, Confirmed: l.confirmed}
}
