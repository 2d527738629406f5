package sipmsg

import (
	"github.com/ghettovoice/gosip/sip"
)

// CloneHeader returns h.Clone(): a deep copy that shares nothing a caller
// may change. The headers every response and every relayed request copies
// (Via, From, To, Contact) are copied here with each URI, hop and header
// in one allocation with its port and parameter lists (uriBlock, hopBlock,
// toBlock...), where gosip's Clone makes one object for each: a To header
// was five allocations, now two (the block and its parameter list). Any
// other header, and one holding parameter lists that are not the parser's
// (Params), is copied by its own Clone. clone_test.go holds it to Clone.
func CloneHeader(h sip.Header) sip.Header {
	switch h := h.(type) {
	case sip.ViaHeader:
		return cloneVia(h)
	case *sip.ToHeader:
		if h != nil && ownParams(h.Params) && cloneableURI(h.Address) {
			b := &toCopy{}
			b.h = sip.ToHeader{DisplayName: h.DisplayName, Address: cloneURIIn(&b.u, h.Address), Params: copyParamsIn(&b.p, b.in[:0], h.Params)}
			return &b.h
		}
	case *sip.FromHeader:
		if h != nil && ownParams(h.Params) && cloneableURI(h.Address) {
			b := &fromCopy{}
			b.h = sip.FromHeader{DisplayName: h.DisplayName, Address: cloneURIIn(&b.u, h.Address), Params: copyParamsIn(&b.p, b.in[:0], h.Params)}
			return &b.h
		}
	case *sip.ContactHeader:
		if h != nil && ownParams(h.Params) && cloneableURI(h.Address) {
			b := &contactCopy{}
			b.h = sip.ContactHeader{DisplayName: h.DisplayName, Address: cloneURIIn(&b.u, h.Address), Params: copyParamsIn(&b.p, b.in[:0], h.Params)}
			return &b.h
		}
	}
	return h.Clone()
}

// The copies of address headers, with their SIP URI and room for two
// parameters (a tag and one more, or a tag to add) in the same
// allocation.
type (
	toCopy struct {
		h  sip.ToHeader
		p  Params
		in [2]param
		u  uriBlock
	}
	fromCopy struct {
		h  sip.FromHeader
		p  Params
		in [2]param
		u  uriBlock
	}
	contactCopy struct {
		h  sip.ContactHeader
		p  Params
		in [2]param
		u  uriBlock
	}
)

// CopyHeaders is sip.CopyHeaders with CloneHeader: it appends a copy of
// each of from's headers called name to to.
func CopyHeaders(name string, from, to sip.Message) {
	for _, h := range from.GetHeaders(name) {
		to.AppendHeader(CloneHeader(h))
	}
}

// ownParams reports whether p is nil or the parser's list, which
// copyParams copies as Clone would.
func ownParams(p sip.Params) bool {
	if p == nil {
		return true
	}
	_, ok := p.(*Params)
	return ok
}

// copyParams copies p into dst and returns dst, or nil for a nil p (as
// the header Clones of gosip keep a nil list nil).
func copyParams(dst *Params, p sip.Params) sip.Params { return copyParamsIn(dst, nil, p) }

// copyParamsIn is copyParams with room: the list goes into room (an
// array of the block dst is in) when it fits with one more.
func copyParamsIn(dst *Params, room []param, p sip.Params) sip.Params {
	if p == nil {
		return nil
	}
	own := p.(*Params)
	if own == nil {
		return own.Clone() // a nil list of ours in an interface: Clone's empty one
	}
	dst.inURI = own.inURI
	switch {
	case len(own.list) == 0:
		// nil, as Clone leaves it
	case len(own.list) < cap(room):
		dst.list = append(room, own.list...)
	default:
		dst.list = append(make([]param, 0, len(own.list)+1), own.list...)
	}
	return dst
}

// cloneableURI reports whether cloneURI copies u as u.Clone() would: a
// SIP URI with the parser's lists (gosip's Clone turns a nil list into
// an empty one of its own type), or a URI of another kind, which it
// leaves to its Clone.
func cloneableURI(u sip.Uri) bool {
	su, ok := u.(*sip.SipUri)
	if !ok {
		return true
	}
	if su == nil {
		return false
	}
	_, p := su.FUriParams.(*Params)
	_, h := su.FHeaders.(*Params)
	return p && h
}

// cloneURIIn is u.Clone() for a URI that cloneableURI accepts, a SIP
// URI copied into blk (a field of the header's block).
func cloneURIIn(blk *uriBlock, u sip.Uri) sip.Uri {
	su, ok := u.(*sip.SipUri)
	if !ok {
		if u == nil {
			return nil
		}
		return u.Clone()
	}
	blk.u = sip.SipUri{FIsEncrypted: su.FIsEncrypted, FUser: su.FUser, FPassword: su.FPassword, FHost: su.FHost}
	if su.FPort != nil {
		blk.port = *su.FPort
		blk.u.FPort = &blk.port
	}
	blk.u.FUriParams = copyParams(&blk.params, su.FUriParams)
	blk.u.FHeaders = copyParams(&blk.headers, su.FHeaders)
	return &blk.u
}

// hopCopy is a copied Via hop with room for four parameters (branch,
// rport, received and one more) and, for the first hop, the header's
// slice: a Via of one hop is copied in one allocation.
type hopCopy struct {
	hopBlock
	in [4]param
}

// cloneVia is via.Clone() with each hop in one block.
func cloneVia(via sip.ViaHeader) sip.Header {
	if via == nil {
		return via.Clone()
	}
	var dup sip.ViaHeader
	for i, hop := range via {
		if hop == nil || !ownParams(hop.Params) {
			dup = appendHop(dup, len(via), hop.Clone())
			continue
		}
		blk := &hopCopy{hopBlock: hopBlock{hop: sip.ViaHop{ProtocolName: hop.ProtocolName, ProtocolVersion: hop.ProtocolVersion,
			Transport: hop.Transport, Host: hop.Host}}}
		if hop.Port != nil {
			blk.port = *hop.Port
			blk.hop.Port = &blk.port
		}
		blk.hop.Params = copyParamsIn(&blk.params, blk.in[:0], hop.Params)
		if i == 0 && len(via) == 1 {
			dup = blk.via[:0:1]
		}
		dup = appendHop(dup, len(via), &blk.hop)
	}
	return dup
}

// appendHop appends hop to dup, made for n hops when it has no room.
func appendHop(dup sip.ViaHeader, n int, hop *sip.ViaHop) sip.ViaHeader {
	if dup == nil {
		dup = make(sip.ViaHeader, 0, n)
	}
	return append(dup, hop)
}
