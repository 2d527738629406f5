package routing

import (
	"errors"
	"fmt"
	"net/netip"
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

// trunkURI is a trunk URI split into the parts the B2BUA needs.
type trunkURI struct {
	scheme    string // sip or sips, lower case
	user      string // may be empty
	host      string // IP literal without brackets, or DNS name as written
	port      uint16
	transport string // udp, tcp or tls
}

// parseTrunkURI parses a sip: or sips: URI of the form
// scheme:[user@]host[:port][;params]. The host is an IPv4 address, a
// bracketed IPv6 address or a DNS name. Only the transport parameter is
// interpreted (udp, tcp or tls; sips implies tls); other parameters are
// ignored. A password in the user part, URI headers and anything else that
// cannot be the address of a SIP peer are errors.
func parseTrunkURI(s string) (trunkURI, error) {
	var u trunkURI
	scheme, rest, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return u, errors.New("missing scheme (want sip: or sips:)")
	}
	u.scheme = strings.ToLower(scheme)
	if u.scheme != "sip" && u.scheme != "sips" {
		return u, fmt.Errorf("scheme %q is not sip or sips", scheme)
	}
	if strings.Contains(rest, "?") {
		return u, errors.New("uri headers (?...) are not allowed in a trunk uri")
	}
	// The user part may itself contain ';' (user parameters), so split it
	// off before looking for URI parameters.
	if user, after, found := strings.Cut(rest, "@"); found {
		if err := checkUser(user); err != nil {
			return u, err
		}
		u.user, rest = user, after
	}
	hostport, params, hasParams := strings.Cut(rest, ";")
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return u, err
	}
	u.host = host
	transport, err := transportParam(params, hasParams)
	if err != nil {
		return u, err
	}
	if u.transport, err = pickTransport(u.scheme, transport); err != nil {
		return u, err
	}
	u.port = port
	if u.port == 0 {
		u.port = defaultSIPPort
		if u.transport == TransportTLS {
			u.port = defaultSIPSPort
		}
	}
	return u, nil
}

// checkUser rejects user parts that cannot be sent on a request-URI.
func checkUser(user string) error {
	switch {
	case user == "":
		return errors.New("empty user part before '@'")
	case strings.Contains(user, ":"):
		return errors.New("password in uri user part; use the trunk's username and password")
	case strings.ContainsAny(user, " \t"):
		return fmt.Errorf("user part %q contains whitespace", user)
	}
	return nil
}

// splitHostPort splits host[:port] where an IPv6 host must be bracketed.
// The port is 0 when absent.
func splitHostPort(hp string) (string, uint16, error) {
	if hp == "" {
		return "", 0, errors.New("missing host")
	}
	var host, portStr string
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("host %q: missing ']'", hp)
		}
		host = hp[1:end]
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() {
			return "", 0, fmt.Errorf("host %q: not an IPv6 address", hp[:end+1])
		}
		rest := hp[end+1:]
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return "", 0, fmt.Errorf("unexpected %q after IPv6 host", rest)
			}
			portStr = p
			if portStr == "" {
				return "", 0, errors.New("empty port")
			}
		}
	} else {
		var hasPort bool
		host, portStr, hasPort = strings.Cut(hp, ":")
		if strings.Contains(portStr, ":") {
			return "", 0, fmt.Errorf("host %q: an IPv6 address must be in brackets", hp)
		}
		if hasPort && portStr == "" {
			return "", 0, errors.New("empty port")
		}
		if err := checkHost(host); err != nil {
			return "", 0, err
		}
	}
	if portStr == "" {
		return host, 0, nil
	}
	p, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("port %q is not in 1-65535", portStr)
	}
	return host, uint16(p), nil
}

// checkHost accepts an IPv4 address or a DNS name (RFC 1123 labels; a
// trailing dot is allowed).
func checkHost(host string) error {
	if host == "" {
		return errors.New("missing host")
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.Is6() {
			return fmt.Errorf("host %q: an IPv6 address must be in brackets", host)
		}
		return nil
	}
	name := strings.TrimSuffix(host, ".")
	if len(name) == 0 || len(name) > 253 {
		return fmt.Errorf("host %q is not a valid DNS name", host)
	}
	for label := range strings.SplitSeq(name, ".") {
		if !validLabel(label) {
			return fmt.Errorf("host %q is not a valid DNS name", host)
		}
	}
	return nil
}

func validLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// transportParam returns the lower-cased value of the transport parameter,
// or "" if there is none.
func transportParam(params string, hasParams bool) (string, error) {
	if !hasParams {
		return "", nil
	}
	var transport string
	for p := range strings.SplitSeq(params, ";") {
		name, value, _ := strings.Cut(p, "=")
		if strings.TrimSpace(name) == "" {
			return "", fmt.Errorf("empty uri parameter in %q", params)
		}
		if !strings.EqualFold(name, "transport") {
			continue
		}
		if transport != "" {
			return "", errors.New("transport parameter given twice")
		}
		if value == "" {
			return "", errors.New("empty transport parameter")
		}
		transport = strings.ToLower(value)
	}
	return transport, nil
}

// pickTransport applies the scheme's default and rejects combinations the
// SBC cannot dial: sips always runs over TLS (RFC 5630: sips with
// transport=tcp means TLS over TCP), and WebSocket trunks are not supported.
func pickTransport(scheme, transport string) (string, error) {
	if scheme == "sips" {
		switch transport {
		case "", TransportTCP, TransportTLS:
			return TransportTLS, nil
		}
		return "", fmt.Errorf("transport %q cannot carry sips (want tls or tcp)", transport)
	}
	switch transport {
	case "":
		return TransportUDP, nil
	case TransportUDP, TransportTCP, TransportTLS:
		return transport, nil
	}
	return "", fmt.Errorf("transport %q is not udp, tcp or tls", transport)
}
