package dnsres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// naptr asks for host's NAPTR records and returns the SIP services they
// name that q allows, in order and preference (RFC 3403, RFC 3263 section
// 4.1): only terminal "s" records whose replacement is an SRV name.
func (r *Resolver) naptr(ctx context.Context, host string, secure bool) []service {
	rrs, err := r.query(ctx, host, dns.TypeNAPTR)
	if err != nil {
		return nil
	}
	var recs []*dns.NAPTR
	for _, rr := range rrs {
		if n, ok := rr.(*dns.NAPTR); ok && strings.EqualFold(n.Flags, "s") && n.Replacement != "." && n.Replacement != "" {
			recs = append(recs, n)
		}
	}
	slices.SortStableFunc(recs, func(a, b *dns.NAPTR) int {
		if a.Order != b.Order {
			return int(a.Order) - int(b.Order)
		}
		return int(a.Preference) - int(b.Preference)
	})
	var out []service
	for _, n := range recs {
		tr, ok := naptrTransport(n.Service)
		if !ok || secure && tr != TLS {
			continue
		}
		name := strings.TrimSuffix(n.Replacement, ".")
		if !slices.ContainsFunc(out, func(s service) bool { return s.name == name }) {
			out = append(out, service{name: name, transport: tr, fromNAPTR: true})
		}
	}
	return out
}

// naptrTransport maps a NAPTR service field to a transport (RFC 3263
// section 4.1; SIPS+D2T is TLS over TCP).
func naptrTransport(svc string) (string, bool) {
	switch strings.ToUpper(svc) {
	case "SIP+D2U":
		return UDP, true
	case "SIP+D2T":
		return TCP, true
	case "SIPS+D2T":
		return TLS, true
	}
	return "", false
}

// srvTargets asks for the SRV records of s and returns the addresses of
// their targets, ordered as RFC 2782 says.
func (r *Resolver) srvTargets(ctx context.Context, s service) ([]Target, error) {
	rrs, err := r.query(ctx, s.name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	var srvs []*dns.SRV
	for _, rr := range rrs {
		if v, ok := rr.(*dns.SRV); ok && v.Target != "." && v.Port != 0 {
			srvs = append(srvs, v)
		}
	}
	var out []Target
	var errs []error
	for _, v := range OrderSRV(srvs, rand.IntN) {
		ts, err := r.hostTargets(ctx, strings.TrimSuffix(v.Target, "."), v.Port, s.transport)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, ts...)
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// OrderSRV orders SRV records by priority, and within a priority by
// weighted random selection (RFC 2782): each record is picked next with
// probability weight/total of those left. As in Go's net package the
// draw is in [0, total), so the proportions are exact and a record of
// weight 0 comes only after the weighted ones of its priority. intn(n)
// returns a number in [0, n). The input is not modified.
func OrderSRV(srvs []*dns.SRV, intn func(int) int) []*dns.SRV {
	sorted := slices.Clone(srvs)
	slices.SortStableFunc(sorted, func(a, b *dns.SRV) int { return int(a.Priority) - int(b.Priority) })
	out := make([]*dns.SRV, 0, len(sorted))
	for len(sorted) > 0 {
		end := 1
		for end < len(sorted) && sorted[end].Priority == sorted[0].Priority {
			end++
		}
		out = append(out, weighted(sorted[:end], intn)...)
		sorted = sorted[end:]
	}
	return out
}

// weighted orders one priority's records by weighted random selection.
func weighted(group []*dns.SRV, intn func(int) int) []*dns.SRV {
	left := slices.Clone(group)
	out := make([]*dns.SRV, 0, len(left))
	for len(left) > 0 {
		total := 0
		for _, v := range left {
			total += int(v.Weight)
		}
		pick := 0
		if total > 0 {
			n, sum := intn(total), 0
			for i, v := range left {
				sum += int(v.Weight)
				if sum > n {
					pick = i
					break
				}
			}
		}
		out = append(out, left[pick])
		left = slices.Delete(left, pick, pick+1)
	}
	return out
}

// hostTargets resolves name to its addresses, IPv4 first, each a target
// at port (0: the transport's default).
func (r *Resolver) hostTargets(ctx context.Context, name string, port uint16, transport string) ([]Target, error) {
	addrs, err := r.addrs(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]Target, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, Target{Addr: netip.AddrPortFrom(a, portFor(port, transport)), Transport: transport, Name: name})
	}
	return out, nil
}

// addrs looks up the A and AAAA records of name (through the system's
// resolver when no servers are configured), IPv4 first.
func (r *Resolver) addrs(ctx context.Context, name string) ([]netip.Addr, error) {
	var out []netip.Addr
	if r.system {
		found, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", name, err)
		}
		out = found
	} else {
		var errs []error
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			rrs, err := r.query(ctx, name, qt)
			if err != nil {
				errs = append(errs, err)
			}
			for _, rr := range rrs {
				switch v := rr.(type) {
				case *dns.A:
					if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
						out = append(out, a)
					}
				case *dns.AAAA:
					if a, ok := netip.AddrFromSlice(v.AAAA); ok {
						out = append(out, a)
					}
				}
			}
		}
		if len(out) == 0 && len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	return cleanAddrs(out, name)
}

// cleanAddrs unmaps, deduplicates and puts IPv4 first.
func cleanAddrs(addrs []netip.Addr, name string) ([]netip.Addr, error) {
	clean := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if a.IsValid() && !slices.Contains(clean, a) {
			clean = append(clean, a)
		}
	}
	if len(clean) == 0 {
		return nil, fmt.Errorf("resolve %s: %w", name, ErrNoRecords)
	}
	slices.SortStableFunc(clean, func(a, b netip.Addr) int {
		switch {
		case a.Is4() && !b.Is4():
			return -1
		case !a.Is4() && b.Is4():
			return 1
		}
		return 0
	})
	return clean, nil
}

// query returns the answer records of one type for name, from the cache
// while its TTL lasts. An empty answer (NXDOMAIN or no data) is cached
// too, and is no error.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	key := cacheKey{name: strings.ToLower(dns.Fqdn(name)), qtype: qtype}
	now := r.now()
	r.mu.Lock()
	e, ok := r.cache[key]
	r.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.rrs, nil
	}
	rrs, ttl, err := r.exchange(ctx, key.name, qtype)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.cache[key] = cacheEntry{rrs: rrs, expires: now.Add(min(max(ttl, r.minTTL), r.maxTTL))}
	r.mu.Unlock()
	return rrs, nil
}

// exchange asks each server in turn until one answers, over TCP when the
// UDP answer was truncated. It returns the records of qtype and the
// smallest TTL among them (negativeTTL for an empty answer).
func (r *Resolver) exchange(ctx context.Context, fqdn string, qtype uint16) ([]dns.RR, time.Duration, error) {
	if len(r.servers) == 0 {
		return nil, 0, fmt.Errorf("query %s %s: no DNS servers", fqdn, dns.TypeToString[qtype])
	}
	m := new(dns.Msg)
	m.SetQuestion(fqdn, qtype)
	m.RecursionDesired = true
	var errs []error
	for _, srv := range r.servers {
		in, _, err := r.client.ExchangeContext(ctx, m, srv)
		if err == nil && in.Truncated {
			tcp := *r.client
			tcp.Net = "tcp"
			in, _, err = tcp.ExchangeContext(ctx, m, srv)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("query %s %s at %s: %w", fqdn, dns.TypeToString[qtype], srv, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError {
			errs = append(errs, fmt.Errorf("query %s %s at %s: %s", fqdn, dns.TypeToString[qtype], srv, dns.RcodeToString[in.Rcode]))
			continue
		}
		return answers(in, qtype)
	}
	return nil, 0, errors.Join(errs...)
}

// answers picks the records of qtype from a reply, following no CNAME
// chain beyond what the server put in the answer section.
func answers(in *dns.Msg, qtype uint16) ([]dns.RR, time.Duration, error) {
	var rrs []dns.RR
	ttl := time.Duration(-1)
	for _, rr := range in.Answer {
		if rr.Header().Rrtype != qtype {
			continue
		}
		rrs = append(rrs, rr)
		if t := time.Duration(rr.Header().Ttl) * time.Second; ttl < 0 || t < ttl {
			ttl = t
		}
	}
	if len(rrs) == 0 {
		ttl = negativeTTL
	}
	return rrs, ttl, nil
}
