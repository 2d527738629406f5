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
			b := &toBlock{}
			b.h = sip.ToHeader{DisplayName: h.DisplayName, Address: cloneURI(h.Address), Params: copyParams(&b.p, h.Params)}
			return &b.h
		}
	case *sip.FromHeader:
		if h != nil && ownParams(h.Params) && cloneableURI(h.Address) {
			b := &fromBlock{}
			b.h = sip.FromHeader{DisplayName: h.DisplayName, Address: cloneURI(h.Address), Params: copyParams(&b.p, h.Params)}
			return &b.h
		}
	case *sip.ContactHeader:
		if h != nil && ownParams(h.Params) && cloneableURI(h.Address) {
			b := &contactBlock{}
			b.h = sip.ContactHeader{DisplayName: h.DisplayName, Address: cloneURI(h.Address), Params: copyParams(&b.p, h.Params)}
			return &b.h
		}
	}
	return h.Clone()
}

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
func copyParams(dst *Params, p sip.Params) sip.Params {
	if p == nil {
		return nil
	}
	own := p.(*Params)
	if own == nil {
		return own.Clone() // a nil list of ours in an interface: Clone's empty one
	}
	dst.inURI = own.inURI
	if len(own.list) > 0 {
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

// cloneURI is u.Clone() for a URI that cloneableURI accepts.
func cloneURI(u sip.Uri) sip.Uri {
	su, ok := u.(*sip.SipUri)
	if !ok {
		if u == nil {
			return nil
		}
		return u.Clone()
	}
	blk := &uriBlock{u: sip.SipUri{FIsEncrypted: su.FIsEncrypted, FUser: su.FUser, FPassword: su.FPassword, FHost: su.FHost}}
	if su.FPort != nil {
		blk.port = *su.FPort
		blk.u.FPort = &blk.port
	}
	blk.u.FUriParams = copyParams(&blk.params, su.FUriParams)
	blk.u.FHeaders = copyParams(&blk.headers, su.FHeaders)
	return &blk.u
}

// cloneVia is via.Clone() with each hop in one block.
func cloneVia(via sip.ViaHeader) sip.Header {
	if via == nil {
		return via.Clone()
	}
	dup := make(sip.ViaHeader, 0, len(via))
	for _, hop := range via {
		if hop == nil || !ownParams(hop.Params) {
			dup = append(dup, hop.Clone())
			continue
		}
		blk := &hopBlock{hop: sip.ViaHop{ProtocolName: hop.ProtocolName, ProtocolVersion: hop.ProtocolVersion,
			Transport: hop.Transport, Host: hop.Host}}
		if hop.Port != nil {
			blk.port = *hop.Port
			blk.hop.Port = &blk.port
		}
		blk.hop.Params = copyParams(&blk.params, hop.Params)
		dup = append(dup, &blk.hop)
	}
	return dup
}
