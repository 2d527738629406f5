package routing

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ValidHost reports whether s is a host the SBC may name toward a peer: an
// IP address (IPv6 without brackets, without a zone) or a host name by the
// rules of ParseURI. It is the host rule of trunk URIs, for hosts written
// outside a URI (from_domain, public_addr...).
func ValidHost(s string) bool {
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Zone() == ""
	}
	return checkHostname(s) == nil
}

// checkHost checks the host of a URI written without brackets: an IPv4
// address or a host name.
func checkHost(host string) error {
	if host == "" {
		return errors.New("missing host")
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		return nil
	}
	return checkHostname(host)
}

// checkHostname checks an RFC 3261 host name within the DNS limits (63
// bytes a label, 253 the name, RFC 1035):
//
//	hostname    = *( domainlabel "." ) toplabel [ "." ]
//	domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum
//	toplabel    = ALPHA / ALPHA *( alphanum / "-" ) alphanum
func checkHostname(host string) error {
	name := strings.TrimSuffix(host, ".")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("host %q: want an IP address or a host name of 1 to 253 characters", host)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return fmt.Errorf("host %q: %w", host, err)
		}
	}
	if top := labels[len(labels)-1]; !isAlpha(top[0]) {
		if strings.Trim(name, "0123456789.") == "" {
			return fmt.Errorf("host %q is not an IPv4 address (four numbers 0..255 without leading zeros)", host)
		}
		return fmt.Errorf("host %q: the last label of a host name starts with a letter", host)
	}
	return nil
}

// checkLabel checks one label of a host name.
func checkLabel(l string) error {
	switch {
	case l == "":
		return errors.New("empty label")
	case len(l) > 63:
		return fmt.Errorf("label %q is longer than 63 characters", l)
	case strings.Contains(l, "_"):
		// Only SRV owner names (_sip._udp.example.com) carry '_', and the
		// SBC resolves A and AAAA records of the host it dials.
		return errors.New("'_' is not allowed in a host name (an SRV name such as _sip._udp.example.com is not a host: name the host itself)")
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Errorf("label %q starts or ends with '-'", l)
	}
	for i := 0; i < len(l); i++ {
		if !isAlnum(l[i]) && l[i] != '-' {
			return fmt.Errorf("invalid character %q in a host name", l[i])
		}
	}
	return nil
}

// unescape decodes the %HH escapes of s; every other byte must be one that
// allowed accepts.
func unescape(s string, allowed func(byte) bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", fmt.Errorf("invalid escape %q (want %%HH)", s[i:min(i+3, len(s))])
			}
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		case allowed(c):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("invalid character %q", c)
		}
	}
	return b.String(), nil
}

// escape writes s with every byte that allowed refuses as %HH.
func escape(s string, allowed func(byte) bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; allowed(c) {
			b.WriteByte(c)
		} else {
			b.Write([]byte{'%', hex[c>>4], hex[c&15]})
		}
	}
	return b.String()
}

// isUserChar reports whether c may stand unescaped in the user part: RFC
// 3261 unreserved and user-unreserved characters, but '?' (see ParseURI).
func isUserChar(c byte) bool {
	return isUnreserved(c) || strings.IndexByte("&=+$,;/", c) >= 0
}

// isParamChar reports whether c may stand unescaped in a URI parameter
// name or value (RFC 3261 paramchar).
func isParamChar(c byte) bool {
	return isUnreserved(c) || strings.IndexByte("[]/:&+$", c) >= 0
}

// isUnreserved reports whether c is an RFC 3261 unreserved character.
func isUnreserved(c byte) bool {
	return isAlnum(c) || strings.IndexByte("-_.!~*'()", c) >= 0
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isAlnum(c byte) bool { return isAlpha(c) || c >= '0' && c <= '9' }

func isHex(c byte) bool { return unhex(c) < 16 }

// unhex is the value of the hex digit c, or 16 when c is not one.
func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 16
}
