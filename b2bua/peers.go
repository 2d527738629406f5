package b2bua

import (
	"context"
	"net/netip"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// Peers connects the server to the other nodes of a cluster (internal/app
// adapts internal/cluster to it). Nodes speak SIP to each other: a call
// for a user registered on another node is sent to that node's internal
// listener, over TCP, with the binding's token as the request-URI user
// and a header proving it comes from a node; that node sends it on over
// the user's own connection.
type Peers interface {
	// Listener is the name of the listener other nodes send to.
	Listener() string
	// ProofHeader names the header a request between nodes proves its
	// origin in.
	ProofHeader() string
	// Verify checks that header's value (empty: missing) on an
	// out-of-dialog request with callID and ruri that came in on that
	// listener.
	Verify(proof, callID, ruri string) error
	// Sign returns the header's value for a request to another node.
	Sign(callID, ruri string) string
	// Bindings returns the bindings other nodes hold for the AOR, or for
	// the user part when none holds the AOR itself.
	Bindings(ctx context.Context, aor, user string) []PeerBinding
}

// PeerBinding is a user's binding held by another node.
type PeerBinding struct {
	Node  string
	Addr  netip.AddrPort // the node's internal listener (TCP)
	Token string         // the binding's token on that node
	AOR   string
	// Contact (as the UA registered it) and Registered (when it last
	// did): a phone whose REGISTERs reached two nodes is rung once, where
	// it registered last (newestPerContact). Empty and zero when unknown.
	Contact    string
	Registered time.Time
}

// peerLookup bounds the lookup of other nodes' bindings for one call.
const peerLookup = 500 * time.Millisecond

// fromPeer reports whether src is the listener other nodes send to.
func (s *Server) fromPeer(src transport.Target) bool {
	p := s.hooks.Peers
	return p != nil && src.Listener != "" && src.Listener == p.Listener()
}

// admitPeer judges a request on the peers' listener: an out-of-dialog
// request (but ACK and CANCEL, which only reach a transaction the peer
// started) must carry a valid proof, else it is answered 403. It reports
// whether the request goes on; the early policy stages do not judge
// peers.
func (s *Server) admitPeer(req sip.Request, src transport.Target) bool {
	if sipmsg.ToTag(req) != "" || req.Method() == sip.ACK || req.Method() == sip.CANCEL {
		return true
	}
	p := s.hooks.Peers
	proof := ""
	if hs := req.GetHeaders(p.ProofHeader()); len(hs) > 0 {
		proof = hs[0].Value()
	}
	if err := p.Verify(proof, sipmsg.CallID(req), req.Recipient().String()); err != nil {
		s.log.Warn("request on the cluster listener refused", "src", src.Addr.String(), "method", string(req.Method()), "err", err)
		s.answerStateless(req, src, 403, "Cluster Authentication Failed", nil)
		return false
	}
	return true
}

// peerDests are the bindings other nodes hold for the call's user, as
// destinations through those nodes; none for a call that came from a node
// (it rings that node's own bindings only: no loop between nodes).
func (c *Call) peerDests(ruri sip.Uri) []dest {
	p := c.s.hooks.Peers
	if p == nil || c.s.fromPeer(c.inv.Source()) {
		return nil
	}
	user := ""
	if u := ruri.User(); u != nil {
		user = u.String()
	}
	ctx, done := c.lookupCtx(peerLookup)
	defer done()
	var out []dest
	for _, b := range p.Bindings(ctx, registrar.AOR(ruri), user) {
		uri, err := sipmsg.ParseURI("sip:" + b.Token + "@" + b.Addr.String() + ";transport=tcp")
		if err != nil {
			continue
		}
		aor, _ := sipmsg.ParseURI("sip:" + b.AOR)
		out = append(out, dest{name: "registered", ruri: uri, aor: aor, peer: b.Node,
			to: transport.Target{Kind: transport.TCP, Addr: b.Addr, Listener: p.Listener()}, contact: b.Contact, registered: b.Registered})
	}
	return out
}

// signForPeer adds the proof to a request toward another node.
func (c *Call) signForPeer(d dest, req sip.Request) {
	if p := c.s.hooks.Peers; d.peer != "" && p != nil {
		req.AppendHeader(sipmsg.Generic(p.ProofHeader(), p.Sign(sipmsg.CallID(req), req.Recipient().String())))
	}
}
