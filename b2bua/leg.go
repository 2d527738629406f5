package b2bua

import (
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/media"
)

// leg is one dialog of a call, seen from the SBC. Leg A is the caller's
// dialog, in which the SBC is the UAS; leg B is the callee's, in which the
// SBC is the UAC. Only the call's goroutine touches a leg after creation.
type leg struct {
	call *Call
	side media.Side // its name for logs and CDRs: name

	callID    string
	localTag  string
	remoteTag string
	local     *sip.Address // our From (leg B) or To (leg A), without tag
	remote    *sip.Address
	localSeq  uint32
	inviteSeq uint32 // CSeq of the latest INVITE sent, for its ACK
	remoteSeq uint32
	viaPort   uint16
	// The flags sit in the bytes after the CSeqs: a leg is 384 bytes
	// (its size class), 416 with them and its name as fields.
	peerAllowsUpdate bool
	dtmfInfo         bool // the peer wants digits as SIP INFO
	confirmed        bool
	// acked: the 2xx to the leg's latest INVITE was ACKed (the ACK kept
	// in lastACK until the call's INVITE transactions end).
	acked        bool
	remoteTarget sip.Uri
	routeSet     []sip.Header // Route headers for requests we send
	dst          transport.Target
	contact      sip.Header
	viaHost      string
	pass         map[string]bool // extra headers passed to and from this leg

	lastSDPIn  string // last SDP received from this side
	lastSDPOut string // last SDP sent to this side (sentSDP: the media session's bytes)
	// lastACK is the ACK of the 2xx to the leg's latest INVITE as sent,
	// sent again on each retransmission of that 2xx (bytes: a tenth of the
	// message it was rendered from). It is let go when the call's INVITE
	// transactions have ended (afterFinalEnded), 64*T1 after a 2xx: the callee
	// retransmits its 2xx for at most that long (RFC 3261 13.3.1.4,
	// RFC 6026 Timer M), so no 2xx needing it comes later.
	lastACK []byte
	timer   sessionTimer
}

// name is the leg's side as logs and CDRs name it: a or b.
func (l *leg) name() outcome.Side {
	if l.side == media.SideA {
		return outcome.SideA
	}
	return outcome.SideB
}

// newRequest builds an in-dialog request on the leg.
func (l *leg) newRequest(method sip.RequestMethod, contentType, body string) sip.Request {
	if method != sip.ACK && method != sip.CANCEL {
		l.localSeq++
	}
	if method == sip.INVITE {
		l.inviteSeq = l.localSeq
	}
	return l.request(method, l.localSeq, contentType, body)
}

// request builds a request on the leg with the given CSeq number.
func (l *leg) request(method sip.RequestMethod, seq uint32, contentType, body string) sip.Request {
	from := l.local.AsFromHeader()
	sipmsg.SetTag(from, l.localTag)
	to := l.remote.AsToHeader()
	if l.remoteTag != "" {
		sipmsg.SetTag(to, l.remoteTag)
	}
	cid := sip.CallID(l.callID)
	mf := sip.MaxForwards(70)
	hdrs := []sip.Header{
		l.via(),
		&mf,
		from,
		to,
		&cid,
		&sip.CSeq{SeqNo: seq, MethodName: method},
	}
	hdrs = append(hdrs, l.routeSet...)
	if method == sip.INVITE || method == sip.UPDATE {
		hdrs = append(hdrs, l.contact, sipmsg.Generic("Allow", allowed), sipmsg.Generic("Supported", "timer"))
	}
	if method != sip.ACK {
		hdrs = append(hdrs, sipmsg.Generic("User-Agent", l.call.s.cfg.UserAgent))
	}
	return sipmsg.NewRequest(method, l.remoteTarget.Clone(), hdrs, contentType, body)
}

// via is a fresh top Via for a request the SBC originates on this leg.
func (l *leg) via() sip.Header {
	port := sip.Port(l.viaPort)
	params := sipmsg.NewParams().Add("branch", sip.String{Str: txn.NewBranch()}).Add("rport", nil)
	return sip.ViaHeader{&sip.ViaHop{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       l.dst.Kind.String(),
		Host:            l.viaHost,
		Port:            &port,
		Params:          params,
	}}
}

// ourContact builds the SBC's Contact for a leg on a transport: a SIPS
// URI only when sips (the dialog must be SIPS, see sipsDialog) and the
// transport is secure. A TLS transport alone does not make it one: a
// phone that called sip: over TLS cannot send its ACK to a sips: Contact.
func ourContact(host string, port uint16, kind transport.Kind, sips bool) sip.Header {
	p := sip.Port(port)
	uri := &sip.SipUri{FUser: sip.String{Str: "sbc"}, FHost: host, FPort: &p, FUriParams: sipmsg.NewParams(), FHeaders: sipmsg.NewParams()}
	if kind != transport.UDP {
		uri.FUriParams.Add("transport", sip.String{Str: kind.Param()})
	}
	uri.FIsEncrypted = sips && kind.Secure()
	return &sip.ContactHeader{Address: uri, Params: sipmsg.NewParams()}
}

// detach gives the leg copies of what it keeps of the messages it
// received: the remote tag, target, route set and SDP were substrings of
// A's INVITE and B's 2xx, and kept both texts (some 1 kB a call) for the
// call's life. The local and remote parties are made with strings of
// their own (ownedAddress). The call detaches its legs once answered
// (letInviteGo); a later re-offer's SDP is copied where it is taken.
func (l *leg) detach() {
	l.remoteTag = strings.Clone(l.remoteTag)
	l.lastSDPIn = strings.Clone(l.lastSDPIn)
	l.remoteTarget = ownURI(l.remoteTarget)
	for i, h := range l.routeSet {
		if r, ok := h.(*sip.RouteHeader); ok {
			own := &sip.RouteHeader{Addresses: make([]sip.Uri, len(r.Addresses))}
			for j, u := range r.Addresses {
				own.Addresses[j] = ownURI(u)
			}
			l.routeSet[i] = own
		}
	}
}

// ownedAddress is an address of name and u on strings of its own (no
// parameters): a leg's local or remote party, made so when the leg is,
// at the cost of the clone it replaces, so that detach need not copy it.
func ownedAddress(name sip.MaybeString, u sip.Uri) *sip.Address {
	a := &sip.Address{Uri: ownURI(u)}
	if name != nil {
		a.DisplayName = sip.String{Str: strings.Clone(name.String())}
	}
	return a
}

// ownURI is a copy of u on strings of its own: a SIP URI copied as the
// parser lays one out (sipmsg.OwnSIPURI: two allocations and the boxing
// of its user, against three times that, and six times the time, to
// render and parse it again), an absolute URI (tel:) field by field,
// another parsed again from its rendering; one that does not parse again
// is cloned.
func ownURI(u sip.Uri) sip.Uri {
	switch v := u.(type) {
	case nil:
		return nil
	case *sip.SipUri:
		if v == nil {
			return u
		}
		if o, ok := sipmsg.OwnSIPURI(v); ok {
			return o
		}
	case *sipmsg.AbsoluteURI:
		return &sipmsg.AbsoluteURI{Scheme: strings.Clone(v.Scheme), Opaque: strings.Clone(v.Opaque)}
	}
	o, err := sipmsg.ParseURI(u.String())
	if err != nil {
		return u.Clone()
	}
	return o
}

// maxContacts bounds the Contacts a server keeps to share: one per
// advertised host, listener port, transport and SIPS-ness, so a handful;
// past the bound a leg gets a Contact of its own.
const maxContacts = 64

// sharedContacts are the SBC's Contacts that legs share (contactFor).
type sharedContacts struct {
	m sync.Map // contactKey → sip.Header
	n atomic.Int64
}

type contactKey struct {
	host string
	port uint16
	kind transport.Kind
	sips bool
}

// contactFor is ourContact, one header for every leg with the same host,
// port, transport and SIPS-ness: a leg's Contact is only ever appended to
// the messages the leg sends, never changed, and each leg kept its own
// (two URIs' and their parameters' worth, some 250 bytes a leg).
func (s *Server) contactFor(host string, port uint16, kind transport.Kind, sips bool) sip.Header {
	k := contactKey{host, port, kind, sips}
	if h, ok := s.contacts.m.Load(k); ok {
		return h.(sip.Header)
	}
	h := ourContact(host, port, kind, sips)
	if s.contacts.n.Add(1) > maxContacts {
		return h
	}
	got, _ := s.contacts.m.LoadOrStore(k, h)
	return got.(sip.Header)
}

// sipsDialog reports whether the dialog a request creates is SIPS, so
// that the SBC's Contact in it must be a SIPS URI: as the UAS (leg A,
// RFC 3261 12.1.1) when the request's Request-URI or top Record-Route is
// sips, or its Contact is and it has no Record-Route; as the UAC (leg B,
// 8.1.1.8) when the Request-URI or top Route is sips.
func sipsDialog(ruri sip.Uri, route []sip.Header, contact sip.Uri) bool {
	if ruri != nil && ruri.IsEncrypted() {
		return true
	}
	if len(route) > 0 {
		return topRouteSIPS(route[0])
	}
	return contact != nil && contact.IsEncrypted()
}

// topRouteSIPS reports whether the first address of a Route or
// Record-Route header is a SIPS URI.
func topRouteSIPS(h sip.Header) bool {
	var addrs []sip.Uri
	switch r := h.(type) {
	case *sip.RecordRouteHeader:
		addrs = r.Addresses
	case *sip.RouteHeader:
		addrs = r.Addresses
	}
	return len(addrs) > 0 && addrs[0].IsEncrypted()
}

// respondTo builds a response on leg A to one of its requests.
func (l *leg) response(req sip.Request, code int, reason string) sip.Response {
	res := txn.NewResponse(req, code, reason)
	if code > 100 {
		if to, ok := res.To(); ok && sipmsg.ToTag(res) == "" {
			sipmsg.SetTag(to, l.localTag)
		}
	}
	res.AppendHeader(sipmsg.Generic("Server", l.call.s.cfg.UserAgent))
	if m := req.Method(); (m == sip.INVITE || m == sip.UPDATE) && code > 100 && code < 300 {
		for _, rr := range req.GetHeaders("Record-Route") {
			if l.side == media.SideA {
				res.AppendHeader(rr.Clone())
			}
		}
		res.AppendHeader(l.contact)
		res.AppendHeader(sipmsg.Generic("Allow", allowed))
	}
	return res
}

// seqOK checks an in-dialog request's CSeq against the remote sequence
// (RFC 3261 12.2.2) and advances it.
func (l *leg) seqOK(req sip.Request) bool {
	n, m := sipmsg.CSeq(req)
	if m == sip.ACK || m == sip.CANCEL {
		return true
	}
	if l.remoteSeq != 0 && n <= l.remoteSeq {
		return false
	}
	l.remoteSeq = n
	return true
}

// sentSDP is an SDP body the media session returned (Offer, Answer,
// Absorb), as a string on the same bytes: the session keeps them as what
// it last sent toward that side and never changes them (MediaSession),
// so the leg's lastSDPOut and the message's body need no copy of their
// own (a second copy of each side's SDP, kept for the call's life).
func sentSDP(body []byte) string { return unsafe.String(unsafe.SliceData(body), len(body)) }
