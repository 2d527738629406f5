package sipmsg

import (
	"strings"

	"github.com/ghettovoice/gosip/sip"
)

// Params is the parameter list of a header or a URI as the parser read it:
// names in their order, values raw (quotes and %-escapes as they were
// written), so a message renders back byte for byte what it carried; a Via
// branch such as "z9hG4bK-.!%66*_+`'~" (RFC 4475 3.1.1.2) comes back to
// its sender unchanged, which gosip's own list, re-escaping on output,
// could not promise. Names match case-insensitively (RFC 3261 7.3.1). It
// implements sip.Params; like a message, it is not for concurrent change.
type Params struct {
	list []param
	// inURI marks the parameters and headers of a URI, whose values are
	// never quoted (a quoted-string is no URI syntax): they render as
	// read, escapes included.
	inURI bool
}

type param struct {
	key string
	val sip.MaybeString // nil: a parameter without a value
}

var _ sip.Params = (*Params)(nil)

// NewParams returns an empty list.
func NewParams() *Params { return &Params{} }

func (p *Params) index(key string) int {
	for i := range p.list {
		if strings.EqualFold(p.list[i].key, key) {
			return i
		}
	}
	return -1
}

// Get returns the value of key (nil for a parameter without one).
func (p *Params) Get(key string) (sip.MaybeString, bool) {
	if p == nil {
		return nil, false
	}
	if i := p.index(key); i >= 0 {
		return p.list[i].val, true
	}
	return nil, false
}

// Add sets key to val, in place when key is there already.
func (p *Params) Add(key string, val sip.MaybeString) sip.Params {
	if i := p.index(key); i >= 0 {
		p.list[i].val = val
		return p
	}
	if cap(p.list) == 0 {
		// Room for two: a Via the SBC makes gets a branch and rport.
		p.list = make([]param, 0, 2)
	}
	p.list = append(p.list, param{key: key, val: val})
	return p
}

// Remove deletes key.
func (p *Params) Remove(key string) sip.Params {
	if i := p.index(key); i >= 0 {
		p.list = append(p.list[:i], p.list[i+1:]...)
	}
	return p
}

// Has reports whether key is there, with or without a value.
func (p *Params) Has(key string) bool { return p != nil && p.index(key) >= 0 }

// Clone returns a copy that shares nothing with p.
func (p *Params) Clone() sip.Params {
	if p == nil {
		return NewParams()
	}
	return &Params{list: append([]param(nil), p.list...), inURI: p.inURI}
}

// Length is the number of parameters.
func (p *Params) Length() int {
	if p == nil {
		return 0
	}
	return len(p.list)
}

// Keys returns the names in order.
func (p *Params) Keys() []string {
	if p == nil {
		return nil
	}
	keys := make([]string, len(p.list))
	for i := range p.list {
		keys[i] = p.list[i].key
	}
	return keys
}

// Items returns the parameters as a map (a copy).
func (p *Params) Items() map[string]sip.MaybeString {
	m := make(map[string]sip.MaybeString, p.Length())
	if p != nil {
		for _, kv := range p.list {
			m[kv.key] = kv.val
		}
	}
	return m
}

// Equals reports whether other holds the same names with the same values,
// in any order.
func (p *Params) Equals(other interface{}) bool {
	q, ok := other.(sip.Params)
	if !ok || p.Length() != q.Length() {
		return false
	}
	for _, kv := range p.list {
		v, ok := q.Get(kv.key)
		if !ok || (v == nil) != (kv.val == nil) || (v != nil && v.String() != kv.val.String()) {
			return false
		}
	}
	return true
}

// String renders the list as URI headers ('&' between them).
func (p *Params) String() string { return p.ToString('&') }

// ToString renders the list with sep between parameters: values as they
// were read; a value set by the SBC that would not survive as a token
// (white space, a separator, a quote) is written as a quoted-string.
func (p *Params) ToString(sep uint8) string {
	if p == nil || len(p.list) == 0 {
		return ""
	}
	var b strings.Builder
	for i, kv := range p.list {
		if i > 0 {
			b.WriteByte(sep)
		}
		b.WriteString(kv.key)
		if kv.val == nil {
			continue
		}
		b.WriteByte('=')
		if p.inURI {
			b.WriteString(kv.val.String())
			continue
		}
		writeValue(&b, kv.val.String())
	}
	return b.String()
}

func writeValue(b *strings.Builder, v string) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' || !strings.ContainsAny(v, " \t;,\"\\") {
		b.WriteString(v)
		return
	}
	b.WriteString(Quote(v))
}

// Quote renders s as a quoted-string, escaping '"' and '\\'.
func Quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// Unquote returns a parameter value without its quotes and quoted-pair
// escapes (a quoted-string), or v as it is.
func Unquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	v = v[1 : len(v)-1]
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
