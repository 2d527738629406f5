package app

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/sbc-project/sbc/internal/admin"
)

// trunkLookupTimeout bounds the DNS lookups of trunk names when an admin
// ban is checked against them.
const trunkLookupTimeout = 3 * time.Second

// protectedFromBans lists what an admin ban may not cover unless forced:
// every address of every trunk in force (a name is looked up again, so
// every address it has now counts, not only the one in use) and every
// routes[].trusted_sources range. A trunk name that does not resolve is
// an error: the ban cannot be checked, and the admin API refuses it
// unless forced.
func (a *App) protectedFromBans(ctx context.Context) ([]admin.Protected, error) {
	var out []admin.Protected
	for i, rt := range a.Config().Routes {
		for _, s := range rt.TrustedSources {
			p, err := parsePrefix(s)
			if err != nil {
				continue // refused by Validate; nothing to protect
			}
			out = append(out, admin.Protected{Prefix: p,
				Why: "routes[" + strconv.Itoa(i) + "].trusted_sources (route " + strconv.Quote(rt.Name) + ")"})
		}
	}
	ctx, cancel := context.WithTimeout(ctx, trunkLookupTimeout)
	defer cancel()
	for _, tr := range a.Routes().Trunks() {
		addrs, err := lookupHost(ctx, tr.Host)
		if err != nil {
			return nil, fmt.Errorf("trunk %q: %w", tr.Name, err)
		}
		for _, ip := range addrs {
			out = append(out, admin.Protected{Prefix: netip.PrefixFrom(ip, ip.BitLen()), Why: "trunk " + strconv.Quote(tr.Name)})
		}
	}
	return out, nil
}

// lookupHost returns the addresses of an IP literal or a DNS name, IPv4
// unmapped.
func lookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap().WithZone("")}, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	for i, ip := range addrs {
		addrs[i] = ip.Unmap().WithZone("")
	}
	return addrs, nil
}

// parsePrefix parses an IP (as a full-length prefix) or a CIDR prefix,
// IPv4 unmapped and masked.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	ip = ip.Unmap().WithZone("")
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}
