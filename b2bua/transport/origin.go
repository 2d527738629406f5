package transport

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// AnyOrigin in an allowlist accepts every Origin.
const AnyOrigin = "*"

// OriginChecker returns a Layer.CheckOrigin that enforces an allowlist of
// WebSocket origins (config policy.websocket.allowed_origins):
//
//   - an upgrade without an Origin header (not from a browser) is accepted;
//   - AnyOrigin in allowed accepts every Origin;
//   - an empty list accepts the same origin only: the Origin's host:port
//     equals the Host the client connected to (default ports 80 and 443
//     left out on both sides; the scheme is not compared);
//   - otherwise the Origin must equal an entry after ParseOrigin.
//
// Entries that ParseOrigin refuses match nothing (configuration validation
// reports them). A malformed Origin (including "null") is refused unless
// AnyOrigin is listed. The returned function is safe for concurrent use and
// does not keep allowed.
func OriginChecker(allowed []string) func(*http.Request) bool {
	set := make(map[string]bool, len(allowed))
	anyOrigin := false
	for _, a := range allowed {
		if strings.TrimSpace(a) == AnyOrigin {
			anyOrigin = true
			continue
		}
		if o, err := ParseOrigin(a); err == nil {
			set[o] = true
		}
	}
	return func(r *http.Request) bool {
		raw := r.Header.Get("Origin")
		if raw == "" || anyOrigin {
			return true
		}
		o, err := ParseOrigin(raw)
		if err != nil {
			return false
		}
		if len(allowed) == 0 {
			return sameOrigin(o, r)
		}
		return set[o]
	}
}

// ParseOrigin returns the canonical form of an origin scheme://host[:port]:
// scheme and host lower-cased, the default port of the scheme (80 for http
// and ws, 443 for https and wss) left out, no trailing slash. A path, query,
// fragment or user info, or a missing scheme or host, is an error.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", s, err)
	}
	switch {
	case u.Scheme == "" || u.Host == "":
		return "", fmt.Errorf("origin %q: want scheme://host[:port]", s)
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return "", fmt.Errorf("origin %q: only scheme://host[:port] is an origin", s)
	}
	scheme := strings.ToLower(u.Scheme)
	host := hostPort(strings.ToLower(u.Host), defaultPort(scheme))
	if host == "" {
		return "", fmt.Errorf("origin %q: %w", s, errBadHost)
	}
	return scheme + "://" + host, nil
}

var errBadHost = errors.New("bad host")

// sameOrigin compares a canonical origin's host[:port] with the request's
// Host, default ports (80, 443) left out on both sides: the scheme is not
// compared, since behind a TLS-terminating proxy the request arrives
// without TLS for an https page.
func sameOrigin(origin string, r *http.Request) bool {
	_, host, _ := strings.Cut(origin, "://")
	h := strings.ToLower(r.Host)
	return host != "" && (host == hostPort(h, "80") || host == hostPort(h, "443"))
}

// hostPort returns host[:port] with port def left out; "" when hp has an
// empty host or a non-numeric port.
func hostPort(hp, def string) string {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		// No port (or an IPv6 literal without one).
		host, port = strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]"), ""
	}
	if host == "" || strings.ContainsAny(host, "/ ") {
		return ""
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return ""
		}
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || port == def {
		return host
	}
	return host + ":" + port
}

func defaultPort(scheme string) string {
	switch scheme {
	case "https", "wss":
		return "443"
	default:
		return "80"
	}
}
