package registration

import (
	"context"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// ConnClosed removes the bindings that lived on a closed connection and,
// for relayed ones, de-registers them at the PBX. Give it to the transport
// layer's OnConnClose.
func (s *Service) ConnClosed(c *transport.Conn) {
	s.relays.dropConn(c)
	removed := s.store.RemoveFlow(func(f registrar.Flow) bool { return f.Target.Conn == c })
	for _, b := range removed {
		s.log.Info("binding removed: connection closed", "aor", b.AOR, "conn", c.String())
		s.forgetRelay(b.Token, true)
	}
}

// Bindings are the places a call to a registered user rings: the binding
// named by the request-URI user (a token, for calls the PBX sends to a
// relayed registration), else every live binding of that user.
func (s *Service) Bindings(ruri sip.Uri) []registrar.Binding {
	user := ""
	if u := ruri.User(); u != nil {
		user = u.String()
	}
	if b, ok := s.store.ByToken(user); ok {
		return []registrar.Binding{b}
	}
	aor := registrar.AOR(ruri)
	if aor == "" {
		return nil
	}
	bs := s.store.Lookup(aor)
	if len(bs) == 0 {
		// The caller may name the SBC's address instead of the users'
		// domain: match the user part.
		for _, b := range s.store.List() {
			if u, _, _ := strings.Cut(b.AOR, "@"); strings.EqualFold(u, user) {
				bs = append(bs, b)
			}
		}
	}
	return bs
}

// UserOn returns the user of a live binding on src's connection: the one of
// the user from when the connection holds several. Bindings exist only once
// a registrar accepted the password, and a call on such a connection is
// that user's; UDP sources can be spoofed and never count.
func (s *Service) UserOn(src transport.Target, from string) (string, bool) {
	if src.Conn == nil || !src.Kind.Reliable() {
		return "", false
	}
	b, ok := s.BindingOn(src.Conn, from)
	if !ok {
		return "", false
	}
	user, _, _ := strings.Cut(b.AOR, "@")
	return user, true
}

// BindingOn returns a live binding registered on conn, preferring one of
// user prefer (see registrar.Store.FindFlow): who the connection is, with
// its RFC 5626 instance. It scans the bindings; nil conn: none.
func (s *Service) BindingOn(conn *transport.Conn, prefer string) (registrar.Binding, bool) {
	if conn == nil {
		return registrar.Binding{}, false
	}
	return s.store.FindFlow(func(f registrar.Flow) bool { return f.Target.Conn == conn }, prefer)
}

// keepalives pings every registered UA now and then: WebSocket pings or
// CRLF on stream connections, OPTIONS to UDP contacts (behind NAT the
// pinhole must stay open for the calls to come in).
func (s *Service) keepalives(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, b := range s.store.List() {
			tg := b.Flow.Target
			if tg.Conn != nil {
				_ = tg.Conn.Ping()
				continue
			}
			s.optionsPing(b)
		}
	}
}

// optionsPing sends one OPTIONS to a UDP binding; the answer is not waited
// for beyond the transaction.
func (s *Service) optionsPing(b registrar.Binding) {
	uri, err := sipmsg.ParseURI(b.Contact)
	if err != nil {
		return
	}
	host, port, err := s.host(transport.UDP, b.Flow.Target.Addr.Addr())
	if err != nil {
		return
	}
	p := sip.Port(port)
	via := sip.ViaHeader{&sip.ViaHop{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: host, Port: &p,
		Params: sipmsg.NewParams().Add("branch", sip.String{Str: txn.NewBranch()}).Add("rport", nil)}}
	self, _ := sipmsg.ParseURI("sip:sbc@" + hostPort(host, port))
	aor, _ := sipmsg.ParseURI("sip:" + b.AOR)
	mf := sip.MaxForwards(70)
	cid := sip.CallID(sipmsg.NewToken(12))
	hdrs := []sip.Header{via, &mf,
		&sip.FromHeader{Address: self, Params: sipmsg.NewParams().Add("tag", sip.String{Str: sipmsg.NewToken(8)})},
		&sip.ToHeader{Address: aor, Params: sipmsg.NewParams()}, &cid, &sip.CSeq{SeqNo: 1, MethodName: sip.OPTIONS},
		sipmsg.Generic("User-Agent", s.cfg.UserAgent)}
	req := sipmsg.NewRequest(sip.OPTIONS, uri, hdrs, "", "")
	if ct, err := s.tx.Request(req, b.Flow.Target); err == nil {
		s.track(func() {
			for range ct.Responses() {
			}
		})
	}
}

// StartKeepalives runs the binding keepalives until ctx is done; Wait
// waits for them.
func (s *Service) StartKeepalives(ctx context.Context, every time.Duration) {
	if every <= 0 {
		return
	}
	s.track(func() { s.keepalives(ctx, every) })
}
