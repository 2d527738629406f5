package routing

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Transports a trunk can be reached over.
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
	TransportTLS = "tls"
)

// Default ports (RFC 3261 section 19.1.2).
const (
	defaultSIPPort  = 5060
	defaultSIPSPort = 5061
)

// URI is a trunk URI taken apart by ParseURI: what the SBC dials. The
// zero value is not a valid URI.
type URI struct {
	Scheme string // "sip" or "sips", lower case
	// User is the user part with its escapes decoded; "" when there is none.
	User string
	// Host is an IPv4 address, an IPv6 address without brackets or a host
	// name, as written.
	Host   string
	Port   uint16  // 0 when the URI names none
	Params []Param // the uri-parameters in order
}

// Param is one URI parameter.
type Param struct {
	Name  string // lower case: parameter names are case-insensitive
	Value string // escapes decoded; "" for a flag such as lr
}

// ParseURI parses a trunk URI: sip: or sips:, an optional user, a host and
// port, and parameters, by the ABNF of RFC 3261 section 25.1 with these
// restrictions, each because the URI names a peer the SBC dials:
//
//   - no password (the trunk has username and password keys) and no
//     headers: '?' is refused anywhere, even in the user part where the
//     ABNF allows it, because parsers commonly cut headers off there;
//   - no whitespace, control or non-ASCII character anywhere: they must
//     be %-escaped in the user and parameters, and never appear elsewhere;
//   - the host is an IP address (IPv6 in brackets, without a zone) or an
//     RFC 3261 host name: labels of letters, digits and inner hyphens, the
//     last one starting with a letter, so 1.2.3.999 is neither. Host
//     names with '_' are refused: they are SRV owner names
//     (_sip._udp.example.com), which the SBC derives from the host itself
//     (RFC 3263, Trunk.Targets);
//   - the port, when given, is 1 to 65535;
//   - each parameter name appears once, with no value or a non-empty one;
//     transport is udp, tcp or tls, and a sips: URI is not carried over
//     udp.
//
// The scheme, parameter names and the transport value are case-insensitive
// and returned in lower case.
func ParseURI(s string) (URI, error) {
	var u URI
	if i := strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }); i >= 0 {
		return u, fmt.Errorf("character %q at byte %d: no whitespace, control or non-ASCII character (escape it as %%HH in the user or a parameter)", s[i], i)
	}
	scheme, rest, ok := strings.Cut(s, ":")
	u.Scheme = strings.ToLower(scheme)
	if !ok || (u.Scheme != "sip" && u.Scheme != "sips") {
		return u, errors.New("want a sip: or sips: URI, such as sip:pbx.example.com:5060;transport=tcp")
	}
	if strings.Contains(rest, "?") {
		return u, errors.New("URI headers (?...) are not allowed")
	}
	var err error
	if user, after, found := strings.Cut(rest, "@"); found {
		if u.User, err = parseUser(user); err != nil {
			return u, err
		}
		rest = after
	}
	hostport, params, hasParams := strings.Cut(rest, ";")
	if u.Host, u.Port, err = parseHostPort(hostport); err != nil {
		return u, err
	}
	if hasParams {
		if u.Params, err = parseParams(params); err != nil {
			return u, err
		}
	}
	return u, checkTransport(u)
}

// String writes u back as a URI that ParseURI reads as u: the user and
// parameters escaped where they must be, an IPv6 host in brackets.
func (u URI) String() string {
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteByte(':')
	if u.User != "" {
		b.WriteString(escape(u.User, isUserChar))
		b.WriteByte('@')
	}
	if strings.Contains(u.Host, ":") {
		b.WriteString("[" + u.Host + "]")
	} else {
		b.WriteString(u.Host)
	}
	if u.Port != 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(int(u.Port)))
	}
	for _, p := range u.Params {
		b.WriteByte(';')
		b.WriteString(escape(p.Name, isParamChar))
		if p.Value != "" {
			b.WriteByte('=')
			b.WriteString(escape(p.Value, isParamChar))
		}
	}
	return b.String()
}

// Param returns the value of the parameter named name (lower case) and
// whether u has it.
func (u URI) Param(name string) (string, bool) {
	for _, p := range u.Params {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// Transport is the transport requests to u go over: tls for sips: (whose
// transport=tcp means TLS over TCP, RFC 3261 section 26.2.2), else the
// transport parameter, else udp.
func (u URI) Transport() string {
	if u.Scheme == "sips" {
		return TransportTLS
	}
	if tr, ok := u.Param("transport"); ok {
		return tr
	}
	return TransportUDP
}

// defaultPort is the port requests to u go to when it names none.
func (u URI) defaultPort() uint16 {
	if u.Port != 0 {
		return u.Port
	}
	if u.Transport() == TransportTLS {
		return defaultSIPSPort
	}
	return defaultSIPPort
}

// parseUser checks and decodes the user part: RFC 3261 user characters
// (unreserved, escaped and &=+$,;/), no password.
func parseUser(user string) (string, error) {
	switch {
	case user == "":
		return "", errors.New("empty user before @")
	case strings.Contains(user, ":"):
		return "", errors.New("no password in the URI; use the trunk's username and password")
	}
	decoded, err := unescape(user, isUserChar)
	if err != nil {
		return "", fmt.Errorf("user part: %w", err)
	}
	return decoded, nil
}

// parseHostPort splits host[:port], where an IPv6 host is in brackets.
func parseHostPort(hp string) (host string, port uint16, err error) {
	portText, hasPort := "", false
	if rest, ok := strings.CutPrefix(hp, "["); ok {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", 0, errors.New("missing ] after IPv6 address")
		}
		host = rest[:end]
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", 0, errors.New("want an IPv6 address without a zone in brackets")
		}
		if after := rest[end+1:]; after != "" {
			if portText, hasPort = strings.CutPrefix(after, ":"); !hasPort {
				return "", 0, errors.New("unexpected text after ]")
			}
		}
	} else {
		host, portText, hasPort = strings.Cut(hp, ":")
		if strings.Contains(portText, ":") {
			return "", 0, errors.New("an IPv6 address must be in brackets")
		}
		if err := checkHost(host); err != nil {
			return "", 0, err
		}
	}
	if !hasPort {
		return host, 0, nil
	}
	if portText == "" {
		return "", 0, errors.New("empty port after :")
	}
	p, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("port %q: want 1..65535", portText)
	}
	return host, uint16(p), nil
}

// parseParams parses ;-separated name[=value] parameters (the text after
// the first ';').
func parseParams(s string) ([]Param, error) {
	var params []Param
	for text := range strings.SplitSeq(s, ";") {
		name, value, hasValue := strings.Cut(text, "=")
		var p Param
		var err error
		switch {
		case name == "":
			return nil, fmt.Errorf("URI parameter %q: empty name", text)
		case hasValue && value == "":
			return nil, fmt.Errorf("URI parameter %q: empty value after =", text)
		}
		if p.Name, err = unescape(name, isParamChar); err != nil {
			return nil, fmt.Errorf("URI parameter %q: %w", text, err)
		}
		if p.Value, err = unescape(value, isParamChar); err != nil {
			return nil, fmt.Errorf("URI parameter %q: %w", text, err)
		}
		p.Name = strings.ToLower(p.Name)
		if p.Name == "transport" {
			p.Value = strings.ToLower(p.Value)
		}
		if slices.ContainsFunc(params, func(q Param) bool { return q.Name == p.Name }) {
			return nil, fmt.Errorf("URI parameter %s given twice", p.Name)
		}
		params = append(params, p)
	}
	return params, nil
}

// checkTransport refuses transports the SBC cannot dial.
func checkTransport(u URI) error {
	tr, ok := u.Param("transport")
	switch {
	case !ok:
		return nil
	case tr != TransportUDP && tr != TransportTCP && tr != TransportTLS:
		return errors.New("want transport=udp, tcp or tls")
	case u.Scheme == "sips" && tr == TransportUDP:
		return errors.New("sips: needs a reliable transport (tcp or tls), not udp")
	}
	return nil
}
