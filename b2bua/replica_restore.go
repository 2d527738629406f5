package b2bua

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/media"
)

// cseqJump is how far a restored leg's local CSeq jumps past the saved
// one: requests the call sent after its last save (INFO, a refresh
// UPDATE) are not in it, and a peer refuses a CSeq that does not grow
// (RFC 3261 12.2.2); gaps are allowed.
const cseqJump = 100

// ErrNoMediaRestore is Restore's error when the server has no
// Hooks.RestoreMedia.
var ErrNoMediaRestore = errors.New("no media restore hook")

// Restore continues an answered call from its state (CallState's JSON)
// where another node left it; from, that node's id, is noted in the
// call's record (TakenOverFrom). Its dialogs are indexed (in-dialog
// requests from either side reach it), its session timers and maximum
// duration re-armed, its media session restored (Hooks.RestoreMedia),
// and its record is written by this server when it ends. The server's
// listeners must be up where the call's were: a leg's messages go out by
// the listener's name, else its local address. A leg on a connection
// (TCP, TLS) dials again; a WebSocket leg waits for its party's new
// connection when a flow grace is set, as after a lost connection.
func (s *Server) Restore(data []byte, from string) error {
	var st CallState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("restore call: %w", err)
	}
	if s.hooks.RestoreMedia == nil {
		return fmt.Errorf("restore call %s: %w", st.Rec.ID, ErrNoMediaRestore)
	}
	c := &Call{s: s, log: s.log, started: time.Now(), rec: ownRecord(st.Rec), user: st.User, users: st.Users,
		maxDuration: st.MaxDuration, state: stateConfirmed, answered: true}
	c.rec.TakenOverFrom = from
	var err error
	if c.a, err = c.restoreLeg(st.A, media.SideA, outcome.SideA); err != nil {
		return fmt.Errorf("restore call %s: leg a: %w", st.Rec.ID, err)
	}
	if c.b, err = c.restoreLeg(st.B, media.SideB, outcome.SideB); err != nil {
		return fmt.Errorf("restore call %s: leg b: %w", st.Rec.ID, err)
	}
	c.log, c.traceOn = newCallLog(c), c.traced()
	m, err := s.hooks.RestoreMedia(st.Rec.ACallID, st.Media)
	if err != nil {
		return fmt.Errorf("restore call %s: media: %w", st.Rec.ID, err)
	}
	c.media = m
	c.ctx, c.stop = context.WithCancelCause(context.WithoutCancel(s.ctx))
	if err := s.track(c); err != nil {
		c.stop(err)
		m.Close()
		return fmt.Errorf("restore call %s: %w", st.Rec.ID, err)
	}
	m.Notify(func(ev media.Event) { c.post(event{kind: evMedia, media: &ev}) })
	c.armSessionTimers()
	if c.maxDuration > 0 {
		c.startTimer(timerMaxDuration, max(c.maxDuration-time.Since(c.rec.Answer), time.Millisecond))
	}
	s.addDialog(c.a)
	s.addDialog(c.b)
	c.log.Info("call restored", "from", from)
	// Its first event saves it as this server's (replicate, after each
	// event), and the flow grace starts for a leg that has no way out.
	owners := [2]flowOwner{{st.A.FlowUser, st.A.FlowInstance}, {st.B.FlowUser, st.B.FlowInstance}}
	c.post(event{kind: evFunc, fn: func(c *Call) { c.restored(owners) }})
	return nil
}

// restored runs first on a restored call's goroutine: a WebSocket leg
// has no connection until its party makes one, as if it had lost it;
// without a flow grace, or a party known to take it over, the call ends.
func (c *Call) restored(owners [2]flowOwner) {
	for i, l := range []*leg{c.a, c.b} {
		k := l.dst.Kind
		if k != transport.WS && k != transport.WSS {
			continue
		}
		if c.keepFor(l, nil, owners[i]) {
			c.registeredBefore(owners[i])
			continue
		}
		c.log.Info("restored call: its WebSocket leg cannot wait for its party", "leg", l.name())
		l.confirmed = false // no BYE: no connection to send it on
		c.hangup(outcome.CauseConnectionLost, l.name())
		return
	}
}

func (c *Call) restoreLeg(st LegState, side media.Side, name outcome.Side) (*leg, error) {
	kind, err := transport.ParseKind(st.Kind)
	if err != nil {
		return nil, err
	}
	l := &leg{call: c, side: side, callID: st.CallID, localTag: st.LocalTag, remoteTag: st.RemoteTag,
		localSeq: st.LocalSeq + cseqJump, remoteSeq: st.RemoteSeq,
		dst:     transport.Target{Kind: kind, Addr: st.Addr, Local: st.Local, Listener: st.Listener, Host: st.Host},
		viaHost: st.ViaHost, viaPort: st.ViaPort, pass: lowerSet(st.Pass),
		peerAllowsUpdate: st.Update, dtmfInfo: st.DTMFInfo, confirmed: true, lastSDPIn: st.SDPIn, lastSDPOut: st.SDPOut,
		timer: sessionTimer{interval: time.Duration(st.SessionExpires) * time.Second, weRefresh: st.WeRefresh}}
	l.inviteSeq = l.localSeq
	if st.CallID == "" || st.LocalTag == "" || st.RemoteTag == "" || !st.Addr.IsValid() {
		return nil, errors.New("dialog incomplete (Call-ID, tags, address)")
	}
	if l.local, err = address(st.LocalName, st.LocalURI); err != nil {
		return nil, fmt.Errorf("local uri: %w", err)
	}
	if l.remote, err = address(st.RemoteName, st.RemoteURI); err != nil {
		return nil, fmt.Errorf("remote uri: %w", err)
	}
	if l.remoteTarget, err = sipmsg.ParseURI(st.Target); err != nil {
		return nil, fmt.Errorf("remote target: %w", err)
	}
	contact, err := sipmsg.ParseURI(st.Contact)
	if err != nil {
		return nil, fmt.Errorf("contact: %w", err)
	}
	l.contact = &sip.ContactHeader{Address: contact, Params: sipmsg.NewParams()}
	for _, r := range st.Routes {
		u, err := sipmsg.ParseURI(r)
		if err != nil {
			return nil, fmt.Errorf("route: %w", err)
		}
		l.routeSet = append(l.routeSet, &sip.RouteHeader{Addresses: []sip.Uri{u}})
	}
	return l, nil
}

func address(name, uri string) (*sip.Address, error) {
	u, err := sipmsg.ParseURI(uri)
	if err != nil {
		return nil, err
	}
	a := &sip.Address{Uri: u}
	if name != "" {
		a.DisplayName = sip.String{Str: name}
	}
	return a, nil
}

// Abandon drops every call without a word, as a crashed node would: no
// BYE, no answer, no record, nothing forgotten in the replica, so that
// another node continues them (Restore). Nothing goes out from the
// moment it is called and nothing coming in is read; then the calls let
// go of their dialogs and media and the server closes. For tests of a
// node's death within one process; Close is the way to stop.
func (s *Server) Abandon() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	calls := make([]*Call, 0, len(s.calls))
	for c := range s.calls {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	s.mute.Store(true)
	for _, c := range calls {
		c.halt(errAbandoned)
		c.post(event{kind: evFunc, fn: (*Call).drop}) // refused: the call is ending on its own
	}
	s.wg.Wait()
	// Not the registration service's goroutines (Close waits for them):
	// they end with the caller's context, and what they send is muted.
	s.tx.Close()
	s.cancel()
	_ = s.tp.Close()
}

var errAbandoned = &stopped{cause: "abandoned", side: outcome.SideSBC}

// drop lets the call go without a word: no BYE, no final answer, no
// record; its state stays in the replica. Call goroutine; the loop
// returns after it (dropped).
func (c *Call) drop() {
	for _, e := range c.timers {
		c.s.deadlines.stop(e)
	}
	c.timers = nil
	c.grace.stop()
	if c.media != nil {
		c.media.Close()
	}
	if c.admitted != nil {
		c.admitted()
	}
	c.unindex()
	c.stop(errFinished)
	if c.self != nil {
		c.self.p.Store(nil)
	}
	c.qmu.Lock()
	c.ended, c.queue = true, nil
	c.qmu.Unlock()
	c.dropped = true
	c.markDone()
	c.s.untrack(c)
}
