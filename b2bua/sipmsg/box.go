package sipmsg

import (
	"unsafe"

	"github.com/ghettovoice/gosip/sip"
)

// boxes hands out sip.MaybeString values (a sip.String in the interface)
// whose strings live in one array, for a message being parsed. Putting a
// sip.String in an interface the usual way allocates a copy of it, 16
// bytes, for every user part, display name and parameter value a message
// carries: some 25 allocations a call through the B2BUA core. Here one
// array per message holds them all.
//
// The interface made is exactly the usual one (dynamic type sip.String,
// so type switches and Equals see no difference); only its data pointer
// points into the array rather than to a copy of its own. That is sound
// because Go never changes the value an interface holds: an element is
// written once, before its interface is made, and never again (a full
// array is left to the interfaces that point into it, and a new one
// made). A nil *boxes boxes the usual way.
type boxes struct {
	free []sip.String // elements not yet handed out
}

// iface is the layout of a non-empty interface value.
type iface struct {
	tab  unsafe.Pointer
	data unsafe.Pointer
}

// stringTab is the interface table of sip.String as a sip.MaybeString.
var stringTab = func() unsafe.Pointer {
	var v sip.MaybeString = sip.String{}
	return (*iface)(unsafe.Pointer(&v)).tab
}()

// newBoxes returns boxes for about n values (more cost another array).
func newBoxes(n int) *boxes {
	return &boxes{free: make([]sip.String, n)}
}

// box returns sip.String{Str: s} as a sip.MaybeString.
func (b *boxes) box(s string) sip.MaybeString {
	if b == nil {
		return sip.String{Str: s}
	}
	if len(b.free) == 0 {
		b.free = make([]sip.String, 4)
	}
	p := &b.free[0]
	b.free = b.free[1:]
	return boxAt(p, s)
}

// boxAt writes s into *p and returns it as a sip.MaybeString pointing
// there: p must be written by nothing else, ever (a field of a block made
// for it, see box).
func boxAt(p *sip.String, s string) sip.MaybeString {
	p.Str = s
	var v sip.MaybeString
	*(*iface)(unsafe.Pointer(&v)) = iface{tab: stringTab, data: unsafe.Pointer(p)}
	return v
}
