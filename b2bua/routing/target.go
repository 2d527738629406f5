package routing

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"slices"

	"github.com/sbc-project/sbc/b2bua/routing/dnsres"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// Target is where requests to the trunk go: the address its host resolves
// to now, its transport and, for TLS, the name the trunk's certificate must
// carry (the host of its URI, also sent as SNI) and the trunk's own CA
// bundle and client certificate. Calls, OPTIONS probes and relayed
// REGISTERs all reach a trunk through it, so they verify it alike. With an
// RFC 3263 resolver it is the first of Targets.
func (t *Trunk) Target(ctx context.Context) (transport.Target, error) {
	if t.locator != nil && !t.ip.IsValid() {
		ts, err := t.Targets(ctx)
		if err != nil {
			return transport.Target{}, err
		}
		return ts[0], nil
	}
	addr, err := t.Addr(ctx)
	if err != nil {
		return transport.Target{}, err
	}
	return t.target(t.Transport, addr)
}

// Targets lists every place the trunk may be reached, in the order to try
// them: with the table's RFC 3263 resolver (TableSpec.Resolver) the
// NAPTR, SRV and A/AAAA answers for its host (a numeric host or an
// explicit port skips SRV), SRV priorities in order and weights drawn anew
// on each call; without one, Target alone. Each target keeps the URI's
// host as the TLS name (RFC 5922: never the SRV target). The addresses
// found also count for TrunkBySource.
func (t *Trunk) Targets(ctx context.Context) ([]transport.Target, error) {
	if t.locator == nil || t.ip.IsValid() {
		tg, err := t.Target(ctx)
		if err != nil {
			return nil, err
		}
		return []transport.Target{tg}, nil
	}
	found, err := t.locator.Lookup(ctx, t.query())
	if err != nil {
		return nil, fmt.Errorf("trunk %q: locate %s: %w", t.Name, t.Host, err)
	}
	out := make([]transport.Target, 0, len(found))
	addrs := make([]netip.Addr, 0, len(found))
	for _, f := range found {
		tg, err := t.target(f.Transport, f.Addr)
		if err != nil {
			return nil, err
		}
		out = append(out, tg)
		if !slices.Contains(addrs, f.Addr.Addr()) {
			addrs = append(addrs, f.Addr.Addr())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("trunk %q: locate %s: %w", t.Name, t.Host, errNoAddress)
	}
	t.resolved.Store(&resolution{addrs: addrs, at: t.now()})
	return out, nil
}

// query is what the trunk's URI tells the resolver.
func (t *Trunk) query() dnsres.Query {
	q := dnsres.Query{Host: t.Host, Secure: t.Scheme == "sips"}
	if t.portSet {
		q.Port = t.Port
	}
	if t.transportSet {
		q.Transport = t.Transport
	}
	return q
}

// target builds the transport target for one address of the trunk.
func (t *Trunk) target(kind string, addr netip.AddrPort) (transport.Target, error) {
	k, err := transport.ParseKind(kind)
	if err != nil {
		return transport.Target{}, fmt.Errorf("trunk %q: %w", t.Name, err)
	}
	conf := t.TLS
	if k == transport.TLS && conf == nil {
		// NAPTR chose TLS for a URI that named no transport.
		conf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if k != transport.TLS {
		conf = nil
	}
	return transport.Target{
		Kind: k,
		Addr: netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()),
		Host: t.Host,
		TLS:  conf,
	}, nil
}
