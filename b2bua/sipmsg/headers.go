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
// name stood), with their lower-case names in a parallel slice, so that
// GetHeaders returns a piece of hdrs without allocating. Its methods lock
// like gosip's: a message may be read by one goroutine while another
// builds a copy of it.
type headerList struct {
	mu    sync.RWMutex
	names []string // lower case; names[i] is hdrs[i]'s
	hdrs  []sip.Header
	// The first inlineHeaders live in the message itself: one
	// allocation for a message and its headers.
	namesIn [inlineHeaders]string
	hdrsIn  [inlineHeaders]sip.Header
	shared  atomic.Bool // GetHeaders handed out a piece of hdrs: copy before a change
}

// inlineHeaders covers the headers of most messages (an INVITE from a
// browser has 12 to 14).
const inlineHeaders = 16

// knownNames lower-cases the names the SBC sees on every call without
// allocating; another name goes through strings.ToLower.
var knownNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{
		"Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards",
		"Content-Length", "Content-Type", "Route", "Record-Route", "Allow",
		"Supported", "Require", "User-Agent", "Server", "Expires", "Accept",
		"Authorization", "Proxy-Authorization", "WWW-Authenticate",
		"Proxy-Authenticate", "P-Asserted-Identity", "Privacy", "Session-Expires",
		"Min-SE", "Reason", "Retry-After", "Event", "Subscription-State",
		"Allow-Events", "Date", "Timestamp", "Warning", "Unsupported",
		"Organization", "Content-Disposition", "Refer-To", "Referred-By",
		"Replaces", "RSeq", "RAck", "Path", "X-Call-ID",
	} {
		m[n] = strings.ToLower(n)
		m[strings.ToLower(n)] = strings.ToLower(n)
		m[strings.ToUpper(n)] = strings.ToLower(n)
	}
	return m
}()

func lowerName(s string) string {
	if l, ok := knownNames[s]; ok {
		return l
	}
	return strings.ToLower(s)
}

// span returns where name's headers are, [i, j); i == j == -1 when there
// are none. Called with mu held.
func (hl *headerList) span(name string) (int, int) {
	for i, n := range hl.names {
		if n == name {
			j := i + 1
			for j < len(hl.names) && hl.names[j] == name {
				j++
			}
			return i, j
		}
	}
	return -1, -1
}

// insert puts h (named name) at index i. Called with mu held.
func (hl *headerList) insert(i int, name string, h sip.Header) {
	if hl.hdrs == nil {
		hl.names, hl.hdrs = hl.namesIn[:0], hl.hdrsIn[:0]
	}
	hl.own()
	hl.names = slices.Insert(hl.names, i, name)
	hl.hdrs = slices.Insert(hl.hdrs, i, h)
}

// cut removes [i, j). Called with mu held.
func (hl *headerList) cut(i, j int) {
	hl.own()
	hl.names = slices.Delete(hl.names, i, j)
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
		hl.names = append(make([]string, 0, len(hl.names)+4), hl.names...)
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
	name = lowerName(name)
	hl.mu.RLock()
	defer hl.mu.RUnlock()
	if i, j := hl.span(name); i >= 0 {
		hl.shared.Store(true)
		return hl.hdrs[i:j:j]
	}
	return nil
}

func (hl *headerList) first(name string) sip.Header {
	hl.mu.RLock()
	defer hl.mu.RUnlock()
	for i, n := range hl.names {
		if n == name {
			return hl.hdrs[i]
		}
	}
	return nil
}

// AppendHeader adds h after the headers of its name, or last.
func (hl *headerList) AppendHeader(h sip.Header) {
	name := lowerName(h.Name())
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if _, j := hl.span(name); j >= 0 {
		hl.insert(j, name, h)
		return
	}
	hl.insert(len(hl.hdrs), name, h)
}

// PrependHeader puts h first among the headers of its name, or first of
// all when there are none.
func (hl *headerList) PrependHeader(h sip.Header) {
	name := lowerName(h.Name())
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if i, _ := hl.span(name); i >= 0 {
		hl.insert(i, name, h)
		return
	}
	hl.insert(0, name, h)
}

// PrependHeaderAfter puts h first among the headers of its name, and the
// name right after afterName's headers; without afterName, as
// PrependHeader.
func (hl *headerList) PrependHeaderAfter(h sip.Header, afterName string) {
	name, after := lowerName(h.Name()), lowerName(afterName)
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
	name = lowerName(name)
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if i, j := hl.span(name); i >= 0 {
		hl.cut(i, j)
	}
}

// ReplaceHeaders replaces the headers of name, if there are any (as
// gosip: a name not present is not added).
func (hl *headerList) ReplaceHeaders(name string, hs []sip.Header) {
	name = lowerName(name)
	hl.mu.Lock()
	defer hl.mu.Unlock()
	i, j := hl.span(name)
	if i < 0 {
		return
	}
	hl.cut(i, j)
	for k, h := range hs {
		hl.insert(i+k, name, h)
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
	h, ok := hl.first("call-id").(*sip.CallID)
	return h, ok
}

func (hl *headerList) Via() (sip.ViaHeader, bool) {
	h, ok := hl.first("via").(sip.ViaHeader)
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
	h, ok := hl.first("from").(*sip.FromHeader)
	return h, ok
}

func (hl *headerList) To() (*sip.ToHeader, bool) {
	h, ok := hl.first("to").(*sip.ToHeader)
	return h, ok
}

func (hl *headerList) CSeq() (*sip.CSeq, bool) {
	h, ok := hl.first("cseq").(*sip.CSeq)
	return h, ok
}

func (hl *headerList) ContentLength() (*sip.ContentLength, bool) {
	h, ok := hl.first("content-length").(*sip.ContentLength)
	return h, ok
}

func (hl *headerList) ContentType() (*sip.ContentType, bool) {
	h, ok := hl.first("content-type").(*sip.ContentType)
	return h, ok
}

func (hl *headerList) Contact() (*sip.ContactHeader, bool) {
	h, ok := hl.first("contact").(*sip.ContactHeader)
	return h, ok
}
