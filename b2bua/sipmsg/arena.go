package sipmsg

import (
	"strings"

	"github.com/ghettovoice/gosip/sip"
)

// arena is what the parse of one message allocates in bulk: its
// parameter lists (list) and its one-value headers (fixed); and where an
// address header's URI goes (uri). It lives on the parser's stack; what it
// hands out is on the heap. A nil *arena allocates each the usual way.
type arena struct {
	params []param // room for parameter lists not yet handed out
	fixed  *fixedHeaders
	uri    *uriBlock // where the next SIP URI goes, when set (appendAddresses)
}

// uriBlock returns the block for the next SIP URI parsed: the one set
// in uri (taken), or a new one.
func (a *arena) uriBlock() *uriBlock {
	if a == nil || a.uri == nil {
		return &uriBlock{}
	}
	blk := a.uri
	a.uri = nil
	return blk
}

// fixedHeaders are the one-value headers every message has, in one
// allocation instead of one each (a second one of a name, which check
// refuses, gets its own).
type fixedHeaders struct {
	callID         sip.CallID
	cseq           sip.CSeq
	maxForwards    sip.MaxForwards
	contentLength  sip.ContentLength
	hasCallID      bool
	hasCSeq        bool
	hasMaxForwards bool
	hasLength      bool
}

// headers returns the message's fixedHeaders, made when first asked for.
func (a *arena) headers() *fixedHeaders {
	if a == nil {
		return &fixedHeaders{}
	}
	if a.fixed == nil {
		a.fixed = &fixedHeaders{}
	}
	return a.fixed
}

// callID returns a Call-ID header of v.
func (a *arena) callID(v sip.CallID) *sip.CallID {
	f := a.headers()
	return fixedSlot(&f.callID, &f.hasCallID, v)
}

// newCSeq returns a CSeq header of v.
func (a *arena) newCSeq(v sip.CSeq) *sip.CSeq {
	f := a.headers()
	return fixedSlot(&f.cseq, &f.hasCSeq, v)
}

// maxForwards returns a Max-Forwards header of v.
func (a *arena) maxForwards(v sip.MaxForwards) *sip.MaxForwards {
	f := a.headers()
	return fixedSlot(&f.maxForwards, &f.hasMaxForwards, v)
}

// contentLength returns a Content-Length header of v.
func (a *arena) contentLength(v sip.ContentLength) *sip.ContentLength {
	f := a.headers()
	return fixedSlot(&f.contentLength, &f.hasLength, v)
}

// fixedSlot puts v in slot and returns it, the first time (used is set);
// a second header of the name gets an allocation of its own.
func fixedSlot[T any](slot *T, used *bool, v T) *T {
	if *used {
		h := new(T) // not &v: v would be on the heap in every call
		*h = v
		return h
	}
	*slot, *used = v, true
	return slot
}

// newArena returns an arena for a message's head: room for its
// parameters (';') and the one the SBC adds to the top Via (received).
// Needing more costs another array.
func newArena(head string) arena {
	return arena{params: make([]param, 0, strings.Count(head, ";")+2)}
}

// list returns an empty parameter list with room for n, its own: no other
// list's appends reach it.
func (a *arena) list(n int) []param {
	if a == nil || n > cap(a.params)-len(a.params) {
		return make([]param, 0, n)
	}
	l := a.params[len(a.params) : len(a.params) : len(a.params)+n]
	a.params = a.params[:len(a.params)+n]
	return l
}
