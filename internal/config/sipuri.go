package config

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// sipURI is a trunk URI taken apart: sip:[user@]host[:port][;params].
type sipURI struct {
	Scheme string // "sip" or "sips"
	User   string
	Host   string // an IP address (IPv6 without brackets) or a DNS name
	Port   int    // 0 when absent
	// Params holds the URI parameters by lower-case name; flags map to "".
	Params map[string]string
}

// trunkTransports are the transport parameter values a trunk may name.
var trunkTransports = []string{"udp", "tcp", "tls"}

// parseSIPURI parses the trunk URI forms the SBC supports (RFC 3261 section
// 19.1 without passwords or headers). The scheme and transport value are
// case-insensitive; sips: with transport=udp is refused.
func parseSIPURI(s string) (sipURI, error) {
	var u sipURI
	scheme, rest, ok := strings.Cut(s, ":")
	u.Scheme = strings.ToLower(scheme)
	if !ok || (u.Scheme != "sip" && u.Scheme != "sips") {
		return u, errors.New("want a sip: or sips: URI, such as sip:pbx.example.com:5060;transport=tcp")
	}
	if strings.ContainsAny(rest, "?") {
		return u, errors.New("URI headers (?...) are not allowed")
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		u.User, rest = rest[:at], rest[at+1:]
		if err := checkUser(u.User); err != nil {
			return u, err
		}
	}
	hostport, params, _ := strings.Cut(rest, ";")
	var err error
	if u.Host, u.Port, err = splitHostPort(hostport); err != nil {
		return u, err
	}
	if u.Params, err = parseParams(params); err != nil {
		return u, err
	}
	if tr, ok := u.Params["transport"]; ok {
		tr = strings.ToLower(tr)
		switch {
		case !slices.Contains(trunkTransports, tr):
			return u, errors.New("want transport=udp, tcp or tls")
		case u.Scheme == "sips" && tr == "udp":
			return u, errors.New("sips: needs a reliable transport (tcp or tls), not udp")
		}
		u.Params["transport"] = tr
	}
	return u, nil
}

// checkUser checks the user part: non-empty, no password, RFC 3261
// user characters (unreserved, escaped, and &=+$,;?/).
func checkUser(user string) error {
	switch {
	case user == "":
		return errors.New("empty user before @")
	case strings.Contains(user, ":"):
		return errors.New("no password in the URI; use the trunk's username and password")
	}
	for i := 0; i < len(user); i++ {
		c := user[i]
		switch {
		case isAlnum(c), strings.IndexByte("-_.!~*'()&=+$,;?/", c) >= 0:
		case c == '%' && i+2 < len(user) && isHex(user[i+1]) && isHex(user[i+2]):
			i += 2
		default:
			return errors.New("invalid character " + strconv.QuoteRune(rune(c)) + " in the user part")
		}
	}
	return nil
}

// splitHostPort splits host[:port], where an IPv6 host is in brackets.
func splitHostPort(hp string) (host string, port int, err error) {
	portText := ""
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", 0, errors.New("missing ] after IPv6 address")
		}
		host, rest := hp[1:end], hp[end+1:]
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() {
			return "", 0, errors.New("invalid IPv6 address in brackets")
		}
		if rest != "" {
			var ok bool
			if portText, ok = strings.CutPrefix(rest, ":"); !ok {
				return "", 0, errors.New("unexpected text after ]")
			}
		}
		hp = host
	} else {
		var hasPort bool
		hp, portText, hasPort = strings.Cut(hp, ":")
		switch {
		case hasPort && strings.Contains(portText, ":"):
			return "", 0, errors.New("an IPv6 address must be in brackets")
		case !validHost(hp):
			return "", 0, errors.New("want a host: an IP address, [IPv6 address] or DNS name")
		case hasPort && portText == "":
			return "", 0, errors.New("empty port after :")
		}
	}
	if portText != "" {
		p, err := strconv.Atoi(portText)
		if err != nil || p < 1 || p > 65535 || portText[0] == '+' {
			return "", 0, errors.New("want a port 1..65535")
		}
		port = p
	}
	return hp, port, nil
}

// parseParams parses ;-separated name[=value] URI parameters.
func parseParams(s string) (map[string]string, error) {
	params := map[string]string{}
	if s == "" {
		return params, nil
	}
	for p := range strings.SplitSeq(s, ";") {
		name, value, _ := strings.Cut(p, "=")
		name = strings.ToLower(name)
		switch {
		case !isToken(name):
			return nil, errors.New("invalid URI parameter " + strconv.Quote(p))
		case strings.ContainsFunc(value, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
			return nil, errors.New("invalid value in URI parameter " + strconv.Quote(p))
		}
		if _, dup := params[name]; dup {
			return nil, errors.New("URI parameter " + name + " given twice")
		}
		params[name] = value
	}
	return params, nil
}

// validHost reports whether s is an IP address (IPv6 without brackets) or a
// DNS name of letters, digits and hyphens whose last label does not start
// with a digit (so that 1.2.3.999 is a bad IPv4 address, not a name).
func validHost(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	name := strings.TrimSuffix(s, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if !isAlnum(l[i]) && l[i] != '-' {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return last[0] < '0' || last[0] > '9'
}

// isToken reports whether s is a non-empty RFC 3261 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && strings.IndexByte("-.!%*_+`'~", s[i]) < 0 {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
