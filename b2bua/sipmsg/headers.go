package sipmsg

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ghettovoice/gosip/sip"
)

// headerList is the header part of a message: the headers in wire
// order, those of one name next to each other (where the first of the
// name stood), with a code for each one's name in a parallel slice
// (nameCode), so that GetHeaders returns a piece of hdrs without
// allocating. Its methods lock like gosip's: a message may be read by one
// goroutine while another builds a copy of it.
type headerList struct {
	mu    sync.RWMutex
	codes []uint8 // codes[i] is hdrs[i]'s name's
	hdrs  []sip.Header
	// The first inlineHeaders live in the message itself: one
	// allocation for a message and its headers. A code is one byte where
	// the lower-case name was a string of 16: a message was 768 bytes,
	// now 480.
	codesIn [inlineHeaders]uint8
	hdrsIn  [inlineHeaders]sip.Header
	shared  atomic.Bool // GetHeaders handed out a piece of hdrs: copy before a change
}

// inlineHeaders covers the headers of most messages (an INVITE from a
// browser has 12 to 14).
const inlineHeaders = 16

// commonNames are the names the SBC sees on every call. Their codes are
// their index + 1; code 0 (otherName) is any other name, told apart by the
// header's own Name().
var commonNames = []string{
	"Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards",
	"Content-Length", "Content-Type", "Route", "Record-Route", "Allow",
	"Supported", "Require", "User-Agent", "Server", "Expires", "Accept",
	"Authorization", "Proxy-Authorization", "WWW-Authenticate",
	"Proxy-Authenticate", "P-Asserted-Identity", "Privacy", "Session-Expires",
	"Min-SE", "Reason", "Retry-After", "Event", "Subscription-State",
	"Allow-Events", "Date", "Timestamp", "Warning", "Unsupported",
	"Organization", "Content-Disposition", "Refer-To", "Referred-By",
	"Replaces", "RSeq", "RAck", "Path", "X-Call-ID",
}

const otherName uint8 = 0

// knownNames maps a common name as written, in lower and in upper case,
// to its lower case and code, without allocating.
var knownNames = func() map[string]headerName {
	m := map[string]headerName{}
	for i, n := range commonNames {
		hn := headerName{lower: strings.ToLower(n), code: uint8(i + 1)}
		m[n], m[hn.lower], m[strings.ToUpper(n)] = hn, hn, hn
	}
	return m
}()

// headerName is a common name in lower case and its code, or another
// name as written and otherName.
type headerName struct {
	lower string
	code  uint8
}

// nameOf returns s's headerName, without allocating.
func nameOf(s string) headerName {
	if hn, ok := knownNames[s]; ok {
		return hn
	}
	// A common name in mixed case? Lower-cased on the stack (the map
	// lookup of a converted []byte does not allocate).
	var buf [32]byte
	if len(s) <= len(buf) {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		if hn, ok := knownNames[string(buf[:len(s)])]; ok {
			return hn
		}
		return headerName{lower: s, code: otherName}
	}
	if hn, ok := knownNames[strings.ToLower(s)]; ok {
		return hn
	}
	return headerName{lower: s, code: otherName}
}

// lowerName returns a common name in lower case, and any other as it is
// (what parseHeader and simpleHeader switch on: the common names).
func lowerName(s string) string { return nameOf(s).lower }

// Codes of the names the accessors below read.
var (
	codeVia           = nameOf("via").code
	codeFrom          = nameOf("from").code
	codeTo            = nameOf("to").code
	codeCallID        = nameOf("call-id").code
	codeCSeq          = nameOf("cseq").code
	codeContact       = nameOf("contact").code
	codeContentLength = nameOf("content-length").code
	codeContentType   = nameOf("content-type").code
	codeRoute         = nameOf("route").code
)

// is reports whether hdrs[i] is called hn. Called with mu held.
func (hl *headerList) is(i int, hn headerName) bool {
	c := hl.codes[i]
	return c == hn.code && (c != otherName || strings.EqualFold(hl.hdrs[i].Name(), hn.lower))
}

// span returns where hn's headers are, [i, j); i == j == -1 when there
// are none. Called with mu held.
func (hl *headerList) span(hn headerName) (int, int) {
	for i := range hl.codes {
		if hl.is(i, hn) {
			j := i + 1
			for j < len(hl.codes) && hl.is(j, hn) {
				j++
			}
			return i, j
		}
	}
	return -1, -1
}

// insert puts h (named hn) at index i. Called with mu held.
func (hl *headerList) insert(i int, hn headerName, h sip.Header) {
	if hl.hdrs == nil {
		hl.codes, hl.hdrs = hl.codesIn[:0], hl.hdrsIn[:0]
	}
	hl.own()
	hl.codes = slices.Insert(hl.codes, i, hn.code)
	hl.hdrs = slices.Insert(hl.hdrs, i, h)
}

// cut removes [i, j). Called with mu held.
func (hl *headerList) cut(i, j int) {
	hl.own()
	hl.codes = slices.Delete(hl.codes, i, j)
	hl.hdrs = slices.Delete(hl.hdrs, i, j)
}

// own gives the list arrays of its own before a change once GetHeaders
// has handed out a piece of the current ones: as with gosip's message, a
// slice GetHeaders returned never changes under its holder (code that
// reads the Vias, removes them and adds new ones relies on it). Messages
// being built are not read in between, and are not copied. Called with mu
// held for writing.
func (hl *headerList) own() {
	if hl.shared.Load() {
		hl.codes = append(make([]uint8, 0, len(hl.codes)+4), hl.codes...)
		hl.hdrs = append(make([]sip.Header, 0, len(hl.hdrs)+4), hl.hdrs...)
		hl.shared.Store(false)
	}
}

func (hl *headerList) Headers() []sip.Header {
	hl.mu.RLock()
	defer hl.mu.RUnlock()
	return slices.Clone(hl.hdrs)
}

// GetHeaders returns the headers of name. The slice is the message's own
// (as gosip's): do not change it; appending to it copies; later changes
// of the message do not change it (see own).
func (hl *headerList) GetHeaders(name string) []sip.Header {
	hn := nameOf(name)
	hl.mu.RLock()
	defer hl.mu.RUnlock()
	if i, j := hl.span(hn); i >= 0 {
		hl.shared.Store(true)
		return hl.hdrs[i:j:j]
	}
	return nil
}

// first returns the first header of a common name's code.
func (hl *headerList) first(code uint8) sip.Header {
	hl.mu.RLock()
	defer hl.mu.RUnlock()
	if i := slices.Index(hl.codes, code); i >= 0 {
		return hl.hdrs[i]
	}
	return nil
}

// AppendHeader adds h after the headers of its name, or last.
func (hl *headerList) AppendHeader(h sip.Header) {
	hn := nameOf(h.Name())
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if _, j := hl.span(hn); j >= 0 {
		hl.insert(j, hn, h)
		return
	}
	hl.insert(len(hl.hdrs), hn, h)
}

// PrependHeader puts h first among the headers of its name, or first of
// all when there are none.
func (hl *headerList) PrependHeader(h sip.Header) {
	hn := nameOf(h.Name())
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if i, _ := hl.span(hn); i >= 0 {
		hl.insert(i, hn, h)
		return
	}
	hl.insert(0, hn, h)
}

// PrependHeaderAfter puts h first among the headers of its name, and the
// name right after afterName's headers; without afterName, as
// PrependHeader.
func (hl *headerList) PrependHeaderAfter(h sip.Header, afterName string) {
	name, after := nameOf(h.Name()), nameOf(afterName)
	hl.mu.Lock()
	a0, a1 := hl.span(after)
	if a0 < 0 {
		hl.mu.Unlock()
		hl.PrependHeader(h)
		return
	}
	defer hl.mu.Unlock()
	i, j := hl.span(name)
	if i == a0 {
		hl.insert(i, name, h)
		return
	}
	moved := []sip.Header{h}
	if i >= 0 {
		moved = append(moved, hl.hdrs[i:j]...)
		hl.cut(i, j)
		if i < a0 {
			a1 -= j - i
		}
	}
	for k, m := range moved {
		hl.insert(a1+k, name, m)
	}
}

func (hl *headerList) RemoveHeader(name string) {
	hn := nameOf(name)
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if i, j := hl.span(hn); i >= 0 {
		hl.cut(i, j)
	}
}

// ReplaceHeaders replaces the headers of name, if there are any (as
// gosip: a name not present is not added).
func (hl *headerList) ReplaceHeaders(name string, hs []sip.Header) {
	hn := nameOf(name)
	hl.mu.Lock()
	defer hl.mu.Unlock()
	i, j := hl.span(hn)
	if i < 0 {
		return
	}
	hl.cut(i, j)
	for k, h := range hs {
		hl.insert(i+k, hn, h)
	}
}

func (hl *headerList) cloneHeaders() []sip.Header {
	hl.mu.RLock()
	defer hl.mu.RUnlock()
	out := make([]sip.Header, len(hl.hdrs))
	for i, h := range hl.hdrs {
		out[i] = CloneHeader(h)
	}
	return out
}

// headersOf returns the header list of the SBC's own messages, nil for
// another implementation.
func headersOf(msg sip.Message) *headerList {
	switch m := msg.(type) {
	case *Request:
		return &m.headerList
	case *Response:
		return &m.headerList
	}
	return nil
}

func (hl *headerList) CallID() (*sip.CallID, bool) {
	h, ok := hl.first(codeCallID).(*sip.CallID)
	return h, ok
}

func (hl *headerList) Via() (sip.ViaHeader, bool) {
	h, ok := hl.first(codeVia).(sip.ViaHeader)
	return h, ok
}

func (hl *headerList) ViaHop() (*sip.ViaHop, bool) {
	via, ok := hl.Via()
	if !ok || len(via) == 0 {
		return nil, false
	}
	return via[0], true
}

func (hl *headerList) From() (*sip.FromHeader, bool) {
	h, ok := hl.first(codeFrom).(*sip.FromHeader)
	return h, ok
}

func (hl *headerList) To() (*sip.ToHeader, bool) {
	h, ok := hl.first(codeTo).(*sip.ToHeader)
	return h, ok
}

func (hl *headerList) CSeq() (*sip.CSeq, bool) {
	h, ok := hl.first(codeCSeq).(*sip.CSeq)
	return h, ok
}

func (hl *headerList) ContentLength() (*sip.ContentLength, bool) {
	h, ok := hl.first(codeContentLength).(*sip.ContentLength)
	return h, ok
}

func (hl *headerList) ContentType() (*sip.ContentType, bool) {
	h, ok := hl.first(codeContentType).(*sip.ContentType)
	return h, ok
}

func (hl *headerList) Contact() (*sip.ContactHeader, bool) {
	h, ok := hl.first(codeContact).(*sip.ContactHeader)
	return h, ok
}
