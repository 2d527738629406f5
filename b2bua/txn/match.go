package txn

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// magicCookie starts every RFC 3261 branch (section 8.1.1.7).
const magicCookie = sip.RFC3261BranchMagicCookie

// serverKey identifies a server transaction (RFC 3261 17.2.3): the top Via
// branch and sent-by, and the method, with ACK folded into INVITE. CANCEL has
// its own transaction and finds the INVITE's by swapping the method. The
// source address is part of the key too: a stranger who learns or guesses
// a branch cannot CANCEL, ACK or "retransmit" into another source's
// transaction, and two clients that reuse one branch (RFC 4475's unkscm and
// novelsc do) get a transaction each. A client's retransmissions come from
// its address; only its port may change behind a NAT.
type serverKey struct {
	branch string
	sentBy string
	method sip.RequestMethod
	src    netip.Addr
}

// clientKey identifies a client transaction (RFC 3261 17.1.3): the branch
// the layer's caller put in the top Via and the CSeq method.
type clientKey struct {
	branch string
	method sip.RequestMethod
}

// ackKey finds the INVITE server transaction a 2xx was sent on, for the ACK
// of that 2xx, which carries a new branch (RFC 3261 17.2.3, RFC 6026).
type ackKey struct {
	callID string
	seq    uint32
	toTag  string
}

// branchOf returns the branch of a Via hop, or "" when there is none.
func branchOf(hop *sip.ViaHop) string {
	if hop == nil || hop.Params == nil {
		return ""
	}
	v, ok := hop.Params.Get("branch")
	if !ok || v == nil {
		return ""
	}
	return v.String()
}

// rfc3261Branch reports whether b was made by an RFC 3261 element, the only
// kind whose branch is unique enough to key a transaction on.
func rfc3261Branch(b string) bool { return sipmsg.IsRFC3261Branch(b) }

// serverBranch is the branch a server transaction is keyed on. A request
// of an RFC 2543 element has no branch unique enough (no magic cookie):
// RFC 3261 17.2.3 matches it by its Request-URI, From tag, Call-ID, CSeq
// number and top Via (the sent-by is in serverKey; whatever branch it has
// is kept in the key too). The To tag is left out so that the ACK of a
// non-2xx final response, which carries the To tag of that response, and
// the CANCEL find their INVITE.
func serverBranch(req sip.Request, hop *sip.ViaHop) string {
	b := branchOf(hop)
	if rfc3261Branch(b) {
		return b
	}
	seq, _ := sipmsg.CSeq(req)
	return "rfc2543 " + b + " " + req.Recipient().String() + " " + sipmsg.FromTag(req) + " " +
		sipmsg.CallID(req) + " " + strconv.FormatUint(uint64(seq), 10)
}

// keyMethod is the method a request is matched under: ACK belongs to the
// INVITE transaction it acknowledges.
func keyMethod(m sip.RequestMethod) sip.RequestMethod {
	if m == sip.ACK {
		return sip.INVITE
	}
	return m
}

// knownMethods are the methods a key holds as constants rather than as
// the parser's substrings of a datagram received (keptKey).
var knownMethods = []sip.RequestMethod{sip.INVITE, sip.BYE, sip.CANCEL, sip.OPTIONS, sip.REGISTER,
	sip.INFO, sip.UPDATE, sip.PRACK, sip.REFER, sip.NOTIFY, sip.SUBSCRIBE, sip.MESSAGE, sip.PUBLISH}

// keptKey returns k with strings of its own: a server transaction's key
// outlives its request by up to 64*T1 (Timers J, L), and its branch and
// method, substrings of the datagram received, would keep the whole
// datagram alive that long (with the map entry that holds the key).
func keptKey(k serverKey) serverKey {
	k.branch = strings.Clone(k.branch)
	for _, m := range knownMethods {
		if k.method == m {
			k.method = m
			return k
		}
	}
	k.method = sip.RequestMethod(strings.Clone(string(k.method)))
	return k
}

func newServerKey(req sip.Request, hop *sip.ViaHop, m sip.RequestMethod, src transport.Target) serverKey {
	return serverKey{
		branch: serverBranch(req, hop),
		sentBy: sentByKey(hop),
		method: keyMethod(m),
		src:    src.Addr.Addr().Unmap(),
	}
}

// sentByKey is strings.ToLower(hop.SentBy()) in one allocation: gosip's
// SentBy goes through a bytes.Buffer and fmt.Sprintf, and every request
// received is keyed by it (an ACK and a CANCEL twice).
func sentByKey(hop *sip.ViaHop) string {
	var buf [80]byte
	b := append(buf[:0], hop.Host...)
	if hop.Port != nil {
		b = strconv.AppendUint(append(b, ':'), uint64(*hop.Port), 10)
	}
	for i, c := range b {
		switch {
		case c >= 0x80:
			return strings.ToLower(hop.SentBy()) // not the parser's ASCII host
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func newAckKey(msg sip.Message) (ackKey, bool) {
	callID, ok1 := msg.CallID()
	cseq, ok2 := msg.CSeq()
	if !ok1 || !ok2 || callID == nil || cseq == nil {
		return ackKey{}, false
	}
	return ackKey{callID: string(*callID), seq: cseq.SeqNo, toTag: sipmsg.ToTag(msg)}, true
}

// ReplyTarget stamps msg's top Via as Receive does for a request from src
// (stampVia) and returns where the responses to it go (responseTarget). It
// is for answers sent outside any transaction, such as the early policy
// stages' refusals, so that they go where the layer's own would. ok is
// false, and msg untouched, when msg has no Via.
func ReplyTarget(msg sip.Message, src transport.Target) (dst transport.Target, ok bool) {
	hop, ok := msg.ViaHop()
	if !ok || hop == nil {
		return transport.Target{}, false
	}
	stampVia(hop, src)
	return responseTarget(hop, src), true
}

// stampVia records where a request really came from in its top Via (RFC 3261
// 18.2.1 and RFC 3581 section 4): received when the sent-by host is not the
// source address, and received plus a filled rport when the client asked for
// rport or the request came on a symmetric UDP listener, which answers as if
// it had (see responseTarget). The responses copy this Via, so the next hop
// back sees it too.
func stampVia(hop *sip.ViaHop, src transport.Target) {
	if !src.Addr.IsValid() {
		return
	}
	if hop.Params == nil {
		hop.Params = sipmsg.NewParams()
	}
	ip := src.Addr.Addr().Unmap()
	rport := hop.Params.Has("rport") || symmetricUDP(src)
	sent, err := netip.ParseAddr(strings.Trim(hop.Host, "[]"))
	received := rport || err != nil || sent.Unmap() != ip
	sipmsg.StampVia(hop.Params, ip, received, src.Addr.Port(), rport)
}

// symmetricUDP reports whether a request from src is answered at its source
// port whatever its Via says (transport.ListenOptions.Symmetric).
func symmetricUDP(src transport.Target) bool {
	return src.Symmetric && !src.Kind.Reliable()
}

// responseTarget is where responses to a request from src go (RFC 3261
// 18.2.2, RFC 3581 section 4), given its top Via after stampVia. Over UDP:
// the source address, and the source port when rport was asked for or the
// listener is symmetric, else the sent-by port; sent from the socket the
// request arrived on (Local, Listener), the only one a NAT in front of the
// client lets in. Over streams: the connection the request came on (Conn),
// whatever the listener's setting; Addr is RFC 3261 18.2.2's address for
// when that connection is gone, the source address and the sent-by port
// (transport.Send writes only on Conn while it is set).
func responseTarget(hop *sip.ViaHop, src transport.Target) transport.Target {
	port := viaPort(hop, src.Kind)
	if !src.Kind.Reliable() && (symmetricUDP(src) || hop.Params != nil && hop.Params.Has("rport")) {
		port = src.Addr.Port()
	}
	return transport.Target{
		Kind:     src.Kind,
		Addr:     netip.AddrPortFrom(src.Addr.Addr(), port),
		Conn:     src.Conn,
		Local:    src.Local,
		Listener: src.Listener,
	}
}

// viaPort is the sent-by port, or the transport's default port.
func viaPort(hop *sip.ViaHop, k transport.Kind) uint16 {
	if hop.Port != nil && *hop.Port != 0 {
		return uint16(*hop.Port)
	}
	switch k {
	case transport.TLS:
		return 5061
	case transport.WS:
		return 80
	case transport.WSS:
		return 443
	default:
		return 5060
	}
}
