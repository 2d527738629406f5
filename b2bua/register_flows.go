package b2bua

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// connClosed removes the bindings that lived on a closed connection and,
// for relayed ones, de-registers them at the PBX.
func (s *Server) connClosed(c *transport.Conn) {
	s.reg.relays.dropConn(c)
	removed := s.reg.store.RemoveFlow(func(f registrar.Flow) bool { return f.Target.Conn == c })
	for _, b := range removed {
		s.log.Info("binding removed: connection closed", "aor", b.AOR, "conn", c.String())
		s.forgetRelay(b.Token, true)
	}
}

// registeredDests are the places a call to a registered user rings: the
// binding named by the request-URI user (a token, for calls the PBX sends
// to a relayed registration), else every live binding of that user.
func (s *Server) registeredDests(req sip.Request) []dest {
	if s.reg == nil {
		return nil
	}
	ruri := req.Recipient()
	user := ""
	if u := ruri.User(); u != nil {
		user = u.String()
	}
	var bs []registrar.Binding
	if b, ok := s.reg.store.ByToken(user); ok {
		bs = []registrar.Binding{b}
	} else if aor := registrar.AOR(ruri); aor != "" {
		bs = s.reg.store.Lookup(aor)
		if len(bs) == 0 {
			// The caller may name the SBC's address instead of the
			// users' domain: match the user part.
			for _, b := range s.reg.store.List() {
				if u, _, _ := strings.Cut(b.AOR, "@"); strings.EqualFold(u, user) {
					bs = append(bs, b)
				}
			}
		}
	}
	var out []dest
	for _, b := range bs {
		uri, err := sipmsg.ParseURI(b.Contact)
		if err != nil {
			continue
		}
		aor, _ := sipmsg.ParseURI("sip:" + b.AOR)
		out = append(out, dest{name: "registered", ruri: uri, aor: aor, to: b.Flow.Target})
	}
	return out
}

// keepalives pings every registered UA now and then: WebSocket pings or
// CRLF on stream connections, OPTIONS to UDP contacts (behind NAT the
// pinhole must stay open for the calls to come in).
func (s *Server) keepalives(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, b := range s.reg.store.List() {
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
func (s *Server) optionsPing(b registrar.Binding) {
	uri, err := sipmsg.ParseURI(b.Contact)
	if err != nil {
		return
	}
	host, port, err := s.hostFor(transport.UDP, netip.AddrPort{})
	if err != nil {
		return
	}
	p := sip.Port(port)
	via := sip.ViaHeader{&sip.ViaHop{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: host, Port: &p,
		Params: sip.NewParams().Add("branch", sip.String{Str: txn.NewBranch()}).Add("rport", nil)}}
	self, _ := sipmsg.ParseURI("sip:sbc@" + hostPort(host, port))
	aor, _ := sipmsg.ParseURI("sip:" + b.AOR)
	mf := sip.MaxForwards(70)
	cid := sip.CallID(sipmsg.NewToken(12))
	hdrs := []sip.Header{via, &mf,
		&sip.FromHeader{Address: self, Params: sip.NewParams().Add("tag", sip.String{Str: sipmsg.NewToken(8)})},
		&sip.ToHeader{Address: aor, Params: sip.NewParams()}, &cid, &sip.CSeq{SeqNo: 1, MethodName: sip.OPTIONS},
		sipmsg.Generic("User-Agent", s.cfg.UserAgent)}
	req := sipmsg.NewRequest(sip.OPTIONS, uri, hdrs, "", "")
	if ct, err := s.tx.Request(req, b.Flow.Target); err == nil {
		s.pumps.Add(1)
		go func() {
			defer s.pumps.Done()
			for range ct.Responses() {
			}
		}()
	}
}

// StartKeepalives runs the binding keepalives until ctx is done.
func (s *Server) StartKeepalives(ctx context.Context, every time.Duration) {
	if s.reg == nil || every <= 0 {
		return
	}
	s.pumps.Add(1)
	go func() {
		defer s.pumps.Done()
		s.keepalives(ctx, every)
	}()
}
