package routing

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sbc-project/sbc/b2bua/routing/dnsres"
)

// resolveTTL is how long a DNS answer for a trunk host is reused.
const resolveTTL = 60 * time.Second

// errNoAddress means a trunk's DNS name resolved to no usable address.
var errNoAddress = errors.New("no addresses")

// Trunk is a named upstream compiled from a TrunkSpec. The exported fields
// are fixed by New and must not be modified; the up/down state and the
// address cache are safe for concurrent use. A Trunk must not be copied.
type Trunk struct {
	Name   string
	Scheme string // sip or sips
	User   string // user part of the trunk URI; empty if none
	// Host is the host of the trunk URI as configured: an IP literal
	// (IPv6 without brackets) or a DNS name.
	Host      string
	Port      uint16 // 5060 unless configured; 5061 for tls
	Transport string // TransportUDP, TransportTCP or TransportTLS

	Username, Password string // answers to the trunk's digest challenges
	FromDomain         string // empty: use Host
	PassHeaders        []string
	Trusted            bool
	SRTP               bool     // media is SDES-SRTP (MediaSRTP)
	DTMFInfo           bool     // digits as SIP INFO (DTMFInfo)
	Transfer           string   // TransferLocal, TransferRelay, TransferRefuse or "" (the route's)
	Codecs             []string // audio codecs offered and accepted, in preference order; empty: any

	// TLS is the client configuration for dialing a tls trunk: its CA
	// bundle (nil RootCAs: the system roots) and client certificate, from
	// TrunkSpec.TLS. The server name is left to the dialer, which verifies
	// Host. Nil for other transports.
	TLS *tls.Config

	// Caller identity toward the trunk (IdentitySpec, RFC 3325).
	AssertIdentity bool   // send P-Asserted-Identity (assert: user)
	RewriteFrom    bool   // From names the authenticated caller (from: asserted)
	IdentityDomain string // host of asserted identities; "": FromDomain, else the SBC's
	// TrustDomain puts the trunk in the trust domain: it gets
	// P-Asserted-Identity despite Privacy: id, and the identity it asserts
	// is kept. Trusted trunks always are.
	TrustDomain bool

	// Register is the registration the SBC keeps at the trunk; nil: none.
	Register *Registration

	OptionsInterval  time.Duration // 0: no probing, always up
	OptionsTimeout   time.Duration // bound on one probe
	FailureThreshold int           // failed probes in a row before down

	ip netip.Addr // valid when Host is an IP literal
	// portSet and transportSet say whether the URI named a port and a
	// transport: RFC 3263 skips SRV, or NAPTR, when it did.
	portSet, transportSet bool
	locator               *dnsres.Resolver // nil: Host's A/AAAA only
	lookup                func(ctx context.Context, host string) ([]netip.Addr, error)
	now                   func() time.Time
	ttl                   time.Duration

	resolved atomic.Pointer[resolution] // last successful DNS answer

	up    atomic.Bool // read on the call path without locking
	mu    sync.Mutex
	state TrunkState // guarded by mu
}

// TrunkState is a snapshot of a trunk's health for the admin API.
type TrunkState struct {
	Up        bool
	LastProbe time.Time // zero until the first probe completes
	// LastError is the error of the last probe; empty when it succeeded.
	LastError           string
	ConsecutiveFailures int
}

// resolution is one DNS answer: addrs is non-empty, unmapped, IPv4 first.
type resolution struct {
	addrs []netip.Addr
	at    time.Time
}

// newTrunk checks and compiles one trunk. Errors do not name the trunk;
// the caller adds that.
func newTrunk(c TrunkSpec) (*Trunk, error) {
	u, err := ParseURI(c.URI)
	if err != nil {
		return nil, fmt.Errorf("uri %q: %w", c.URI, err)
	}
	switch {
	case !ValidTransfer(c.Transfer):
		return nil, fmt.Errorf("transfer %q: want %s", c.Transfer, TransferModes)
	case c.OptionsInterval < 0:
		return nil, fmt.Errorf("options_interval %s is negative", c.OptionsInterval)
	case c.OptionsInterval > 0 && c.OptionsTimeout <= 0:
		return nil, fmt.Errorf("options_timeout %s must be positive when probing", c.OptionsTimeout)
	case c.OptionsInterval > 0 && c.FailureThreshold < 1:
		return nil, fmt.Errorf("failure_threshold %d must be at least 1 when probing", c.FailureThreshold)
	}
	tr := &Trunk{
		Name:             c.Name,
		Scheme:           u.Scheme,
		User:             u.User,
		Host:             u.Host,
		Port:             u.defaultPort(),
		Transport:        u.Transport(),
		Username:         c.Username,
		Password:         c.Password,
		FromDomain:       c.FromDomain,
		PassHeaders:      slices.Clone(c.PassHeaders),
		Trusted:          c.Trusted,
		SRTP:             c.Media == MediaSRTP,
		DTMFInfo:         c.DTMF == DTMFInfo,
		Codecs:           slices.Clone(c.Codecs),
		Transfer:         c.Transfer,
		OptionsInterval:  c.OptionsInterval,
		OptionsTimeout:   c.OptionsTimeout,
		FailureThreshold: c.FailureThreshold,
		lookup:           lookupHost,
		now:              time.Now,
		ttl:              resolveTTL,
		portSet:          u.Port != 0,
	}
	_, tr.transportSet = u.Param("transport")
	tr.transportSet = tr.transportSet || u.Scheme == "sips"
	if err := tr.compilePeer(c); err != nil {
		return nil, err
	}
	if c.Register != nil {
		if err := tr.compileRegister(*c.Register); err != nil {
			return nil, err
		}
	}
	if ip, err := netip.ParseAddr(u.Host); err == nil {
		tr.ip = ip.Unmap()
	}
	tr.up.Store(true)
	tr.state.Up = true
	return tr, nil
}

// compilePeer sets what the trunk is told about callers and how it is
// reached over TLS.
func (tr *Trunk) compilePeer(c TrunkSpec) error {
	switch c.Identity.Assert {
	case "", IdentityAssertUser:
		tr.AssertIdentity = true
	case IdentityAssertNone:
	default:
		return fmt.Errorf("identity.assert %q is not %s or %s", c.Identity.Assert, IdentityAssertUser, IdentityAssertNone)
	}
	switch c.Identity.From {
	case "", IdentityFromAsserted:
		tr.RewriteFrom = true
	case IdentityFromKeep:
	default:
		return fmt.Errorf("identity.from %q is not %s or %s", c.Identity.From, IdentityFromAsserted, IdentityFromKeep)
	}
	tr.IdentityDomain = c.Identity.Domain
	tr.TrustDomain = c.Trusted || c.Identity.TrustDomain
	switch {
	case tr.Transport != TransportTLS && c.TLS != nil:
		return fmt.Errorf("tls keys are set on a %s trunk", tr.Transport)
	case tr.Transport != TransportTLS:
	case c.TLS != nil:
		tr.TLS = c.TLS
	default:
		tr.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return nil
}

func lookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// RequestURI is the request-URI of a request to the trunk for user ("":
// none): the trunk's scheme, host and port, and its transport as a
// parameter unless it is the scheme's default (udp for sip, tls for sips).
// The other parameters of the configured URI are not sent.
func (tr *Trunk) RequestURI(user string) URI {
	u := URI{Scheme: tr.Scheme, User: user, Host: tr.Host, Port: tr.Port}
	if tr.Scheme == "sip" && tr.Transport != TransportUDP {
		u.Params = []Param{{Name: "transport", Value: tr.Transport}}
	}
	return u
}

// URI returns the trunk's address as a SIP URI, e.g.
// sip:user@[::1]:5070;transport=tcp: its RequestURI for its own user.
func (tr *Trunk) URI() string { return tr.RequestURI(tr.User).String() }

// String names the trunk without its credentials.
func (tr *Trunk) String() string { return fmt.Sprintf("trunk %s (%s)", tr.Name, tr.URI()) }

// LogValue keeps credentials out of logs when a *Trunk is logged whole.
func (tr *Trunk) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", tr.Name), slog.String("uri", tr.URI()))
}

// Addr returns the address to send to: Host:Port, with a DNS name resolved
// (IPv4 preferred) and the answer reused for 60 seconds. IP literals need no
// lookup. A failed lookup returns an error naming the trunk and the host and
// keeps the previous answer for TrunkBySource.
func (tr *Trunk) Addr(ctx context.Context) (netip.AddrPort, error) {
	if tr.ip.IsValid() {
		return netip.AddrPortFrom(tr.ip, tr.Port), nil
	}
	if r := tr.resolved.Load(); r != nil && tr.now().Sub(r.at) < tr.ttl {
		return netip.AddrPortFrom(r.addrs[0], tr.Port), nil
	}
	r, err := tr.resolve(ctx)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(r.addrs[0], tr.Port), nil
}

// resolve looks Host up now (RFC 3263 with the table's resolver) and
// stores the answer.
func (tr *Trunk) resolve(ctx context.Context) (*resolution, error) {
	if tr.locator != nil {
		if _, err := tr.Targets(ctx); err != nil {
			return nil, err
		}
		return tr.resolved.Load(), nil
	}
	addrs, err := tr.lookup(ctx, tr.Host)
	if err != nil {
		return nil, fmt.Errorf("trunk %q: resolve %s: %w", tr.Name, tr.Host, err)
	}
	clean := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if a.IsValid() && !slices.Contains(clean, a) {
			clean = append(clean, a)
		}
	}
	if len(clean) == 0 {
		return nil, fmt.Errorf("trunk %q: resolve %s: %w", tr.Name, tr.Host, errNoAddress)
	}
	// IPv4 first: listeners are most often bound to IPv4 only.
	slices.SortStableFunc(clean, func(a, b netip.Addr) int {
		switch {
		case a.Is4() && !b.Is4():
			return -1
		case !a.Is4() && b.Is4():
			return 1
		}
		return 0
	})
	r := &resolution{addrs: clean, at: tr.now()}
	tr.resolved.Store(r)
	return r, nil
}

// hasIP reports whether a is the trunk's IP literal or one of the addresses
// its name last resolved to (however old: the refresh in Monitor keeps it
// current). A DNS-named trunk never resolved has no IP.
func (tr *Trunk) hasIP(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return false
	}
	if tr.ip.IsValid() {
		return a == tr.ip
	}
	r := tr.resolved.Load()
	return r != nil && slices.Contains(r.addrs, a)
}

// Up reports whether calls may be sent to the trunk: always when probing is
// off (OptionsInterval 0), otherwise unless the last FailureThreshold probes
// all failed. A trunk starts up.
func (tr *Trunk) Up() bool {
	return tr.OptionsInterval <= 0 || tr.up.Load()
}

// State returns a snapshot of the trunk's health.
func (tr *Trunk) State() TrunkState {
	tr.mu.Lock()
	s := tr.state
	tr.mu.Unlock()
	s.Up = tr.Up()
	return s
}

// record applies one probe result at time now and reports whether the
// trunk changed state, with the failure count after this result.
func (tr *Trunk) record(err error, now time.Time) (changed bool, failures int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.state.LastProbe = now
	if err == nil {
		tr.state.LastError = ""
		tr.state.ConsecutiveFailures = 0
		changed = !tr.state.Up
		tr.state.Up = true
		tr.up.Store(true)
		return changed, 0
	}
	tr.state.LastError = err.Error()
	tr.state.ConsecutiveFailures++
	if tr.state.Up && tr.state.ConsecutiveFailures >= tr.FailureThreshold {
		tr.state.Up = false
		tr.up.Store(false)
		changed = true
	}
	return changed, tr.state.ConsecutiveFailures
}
