package registrar

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ghettovoice/gosip/sip"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// AOR returns the canonical address-of-record of uri: "user@host" with the
// host lower-cased and without port, parameters or scheme; "" when uri is
// nil or has no user part. The user part stays case-sensitive (RFC 3261
// section 19.1.4).
func AOR(uri sip.Uri) string {
	if uri == nil {
		return ""
	}
	user := userOf(uri)
	if user == "" || uri.Host() == "" {
		return ""
	}
	return user + "@" + strings.ToLower(uri.Host())
}

func userOf(u sip.Uri) string {
	if u.User() == nil {
		return ""
	}
	return u.User().String()
}

func portOf(u sip.Uri) int {
	if p := u.Port(); p != nil {
		return int(*p)
	}
	return -1
}

// param returns the value of the URI or header parameter named name
// (case-insensitively) and whether it is there.
func param(p sip.Params, name string) (string, bool) {
	if p == nil {
		return "", false
	}
	for _, k := range p.Keys() {
		if strings.EqualFold(k, name) {
			v, _ := p.Get(k)
			if v == nil {
				return "", true
			}
			return v.String(), true
		}
	}
	return "", false
}

// contactKey identifies a Contact URI for matching bindings: scheme, user,
// lower-case host, port, and the parameters RFC 3261 section 19.1.4 makes
// significant when present (transport, user, maddr, ttl, method), sorted.
func contactKey(u sip.Uri) string {
	var b strings.Builder
	if u.IsEncrypted() {
		b.WriteString("sips:")
	} else {
		b.WriteString("sip:")
	}
	b.WriteString(userOf(u))
	b.WriteByte('@')
	b.WriteString(strings.ToLower(u.Host()))
	if p := portOf(u); p >= 0 {
		b.WriteString(":" + strconv.Itoa(p))
	}
	var ps []string
	for _, name := range []string{"transport", "user", "maddr", "ttl", "method"} {
		if v, ok := param(u.UriParams(), name); ok {
			ps = append(ps, name+"="+strings.ToLower(v))
		}
	}
	sort.Strings(ps)
	for _, p := range ps {
		b.WriteString(";" + p)
	}
	return b.String()
}

// broadcast4 is the limited broadcast address, never a registrable host.
var broadcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// forbiddenHost reports whether host (a URI host, maybe a bracketed IPv6
// literal) is an IP address that may not be registered: unspecified,
// multicast, limited broadcast, or inside one of the prefixes. Domain
// names are never forbidden here: the SBC routes to a binding's Flow, not
// to its Contact.
func forbiddenHost(host string, prefixes []netip.Prefix) bool {
	addr, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if err != nil {
		return false
	}
	addr = addr.WithZone("").Unmap()
	if addr.IsUnspecified() || addr.IsMulticast() || addr == broadcast4 {
		return true
	}
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// parseURI parses a sip: or sips: URI. gosip's parser indexes before it
// checks lengths and panics on some short inputs, so the scheme is checked
// first and any panic left becomes an error.
func parseURI(s string) (u sip.Uri, err error) {
	if !hasPrefixFold(s, "sip:") && !hasPrefixFold(s, "sips:") {
		return nil, errors.New("not a sip or sips URI")
	}
	defer func() {
		if r := recover(); r != nil {
			u, err = nil, fmt.Errorf("uri parser panic: %v", r)
		}
	}()
	return sipmsg.ParseURI(s)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
