// Package dnsres locates SIP servers by DNS as RFC 3263 section 4 says:
// NAPTR picks the transport when the URI names none, SRV gives the
// servers in priority order with weighted random selection within a
// priority (RFC 2782), and A/AAAA give their addresses. A numeric host
// or an explicit port skips NAPTR and SRV (section 4.2).
//
// Answers are cached for their TTL, clamped to the resolver's bounds.
// A Resolver is safe for concurrent use.
package dnsres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Transports a target can be reached over (as routing names them).
const (
	UDP = "udp"
	TCP = "tcp"
	TLS = "tls"
)

// Defaults of Config.
const (
	DefaultMinTTL  = 5 * time.Second
	DefaultMaxTTL  = time.Hour
	DefaultTimeout = 2 * time.Second
	// negativeTTL is how long a name with no records of a type is
	// remembered (before clamping).
	negativeTTL = 30 * time.Second
)

// ErrNoRecords means the name has no usable address at all.
var ErrNoRecords = errors.New("no DNS records")

// Config configures a Resolver. The zero value asks the servers of
// /etc/resolv.conf with the default bounds.
type Config struct {
	// Servers are host:port addresses of DNS servers, asked in order;
	// empty: the nameservers of /etc/resolv.conf, and A/AAAA through the
	// system's resolver (so /etc/hosts still counts).
	Servers []string
	MinTTL  time.Duration // an answer is kept at least this long; 0: DefaultMinTTL
	MaxTTL  time.Duration // and at most this long; 0: DefaultMaxTTL
	Timeout time.Duration // one query to one server; 0: DefaultTimeout
}

// Query is what a SIP URI says about where it is served.
type Query struct {
	Host string // a DNS name or an IP literal (IPv6 without brackets)
	// Port is the URI's explicit port; 0 when it names none.
	Port uint16
	// Transport is the URI's explicit transport (UDP, TCP or TLS); "" when
	// it names none.
	Transport string
	Secure    bool // a sips: URI: TLS only
}

// Target is one place to send to, in the order to try them.
type Target struct {
	Addr      netip.AddrPort
	Transport string // UDP, TCP or TLS
	// Name is the SRV target (or the URI's host) the address belongs to;
	// TLS is still verified against the URI's host (RFC 5922).
	Name string
}

// Resolver answers Lookup with a cache in front of the DNS.
type Resolver struct {
	servers []string
	system  bool // A/AAAA through net.DefaultResolver
	client  *dns.Client
	minTTL  time.Duration
	maxTTL  time.Duration
	now     func() time.Time

	mu    sync.Mutex
	cache map[cacheKey]cacheEntry
}

type cacheKey struct {
	name  string
	qtype uint16
}

type cacheEntry struct {
	rrs     []dns.RR
	expires time.Time
}

// New builds a Resolver; with no servers it reads /etc/resolv.conf.
func New(c Config) (*Resolver, error) {
	r := &Resolver{servers: slices.Clone(c.Servers), minTTL: c.MinTTL, maxTTL: c.MaxTTL,
		now: time.Now, cache: make(map[cacheKey]cacheEntry)}
	if r.minTTL <= 0 {
		r.minTTL = DefaultMinTTL
	}
	if r.maxTTL <= 0 {
		r.maxTTL = DefaultMaxTTL
	}
	if r.maxTTL < r.minTTL {
		return nil, fmt.Errorf("max ttl %s is below min ttl %s", r.maxTTL, r.minTTL)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	r.client = &dns.Client{Net: "udp", Timeout: timeout}
	if len(r.servers) == 0 {
		r.system = true
		conf, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err == nil {
			for _, s := range conf.Servers {
				r.servers = append(r.servers, net.JoinHostPort(s, conf.Port))
			}
		}
	}
	for i, s := range r.servers {
		if _, err := netip.ParseAddrPort(s); err != nil {
			return nil, fmt.Errorf("servers[%d] %q: want ip:port", i, s)
		}
	}
	return r, nil
}

// Lookup returns the targets for q in the order to try them. The order
// within an SRV priority is random by weight, drawn anew on each call.
func (r *Resolver) Lookup(ctx context.Context, q Query) ([]Target, error) {
	host := strings.TrimSuffix(q.Host, ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		tr := pickTransport(q)
		return []Target{{Addr: netip.AddrPortFrom(ip.Unmap(), portFor(q.Port, tr)), Transport: tr, Name: host}}, nil
	}
	if q.Port != 0 {
		return r.hostTargets(ctx, host, q.Port, pickTransport(q))
	}
	services := r.services(ctx, host, q)
	var out []Target
	var errs []error
	for _, s := range services {
		ts, err := r.srvTargets(ctx, s)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, ts...)
	}
	if len(out) > 0 {
		return out, nil
	}
	// No SRV: the host itself, at the default port, over UDP (TLS for
	// sips:) unless the URI or NAPTR chose (RFC 3263 section 4.2).
	tr := pickTransport(q)
	if q.Transport == "" && len(services) > 0 && services[0].fromNAPTR {
		tr = services[0].transport
	}
	ts, err := r.hostTargets(ctx, host, 0, tr)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	return ts, nil
}

// pickTransport is the transport when DNS does not choose: the URI's,
// else TLS for sips:, else UDP.
func pickTransport(q Query) string {
	switch {
	case q.Transport != "":
		return q.Transport
	case q.Secure:
		return TLS
	}
	return UDP
}

func portFor(port uint16, transport string) uint16 {
	switch {
	case port != 0:
		return port
	case transport == TLS:
		return 5061
	}
	return 5060
}

// service is one SRV name to ask and the transport its targets speak.
type service struct {
	name      string
	transport string
	fromNAPTR bool // NAPTR named it, choosing its transport
}

// srvPrefix is the SRV owner name prefix of each transport.
func srvPrefix(transport string) string {
	switch transport {
	case TCP:
		return "_sip._tcp."
	case TLS:
		return "_sips._tcp."
	}
	return "_sip._udp."
}

// services lists the SRV names to ask for q: the URI's transport's only
// when it names one; else what NAPTR says, in its order; else, with no
// NAPTR, each transport the URI allows (TLS first, RFC 3263 section 4.1).
func (r *Resolver) services(ctx context.Context, host string, q Query) []service {
	if q.Transport != "" {
		return []service{{name: srvPrefix(q.Transport) + host, transport: q.Transport}}
	}
	if s := r.naptr(ctx, host, q.Secure); len(s) > 0 {
		return s
	}
	if q.Secure {
		return []service{{name: srvPrefix(TLS) + host, transport: TLS}}
	}
	return []service{{name: srvPrefix(TLS) + host, transport: TLS}, {name: srvPrefix(TCP) + host, transport: TCP}, {name: srvPrefix(UDP) + host, transport: UDP}}
}
