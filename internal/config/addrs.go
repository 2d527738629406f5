package config

// The SBC's own addresses per IP family: media.bind_ip and media.public_ip
// paired by family, and sip.public_addr.

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sbc-project/sbc/b2bua/routing"
)

// MediaAddr is the media address of one IP family, paired from
// media.bind_ip and media.public_ip.
type MediaAddr struct {
	// Bind is the local IP media sockets of the family bind to.
	Bind netip.Addr
	// Public is the IP of the family written into SDP and ICE candidates;
	// invalid: Bind.
	Public netip.Addr
}

// Addrs pairs bind_ip and public_ip by IP family: each names one address,
// or an IPv4 and an IPv6 address separated by a comma (a dual-stack SBC).
// It returns one MediaAddr per address of bind_ip, in its order; the
// error names the key, as Validate reports it.
func (m Media) Addrs() ([]MediaAddr, error) {
	addrs, p := m.addrs()
	if p != nil {
		return nil, fmt.Errorf("%s %q: %s", p.Key, p.Value, p.Reason)
	}
	return addrs, nil
}

// addrs is Addrs with its problem for Validate.
func (m Media) addrs() ([]MediaAddr, *Problem) {
	bad := func(key, value, reason string) ([]MediaAddr, *Problem) {
		return nil, &Problem{Key: key, Value: value, Reason: reason}
	}
	binds, err := parseIPList(m.BindIP)
	if err != nil {
		return bad("media.bind_ip", m.BindIP, err.Error())
	}
	if len(binds) == 0 {
		return bad("media.bind_ip", m.BindIP, "want an IP address")
	}
	pubs, err := parseIPList(m.PublicIP)
	if err != nil {
		return bad("media.public_ip", m.PublicIP, err.Error())
	}
	out := make([]MediaAddr, len(binds))
	for i, b := range binds {
		out[i].Bind = b
	}
	for _, p := range pubs {
		if p.IsUnspecified() || p.IsMulticast() {
			return bad("media.public_ip", m.PublicIP, p.String()+": want an IP address that peers can reach")
		}
		i := familyIndex(binds, p)
		if i < 0 {
			return bad("media.public_ip", m.PublicIP, p.String()+": bind_ip "+m.BindIP+" has no address of its family")
		}
		out[i].Public = p
	}
	for _, a := range out {
		if a.Bind.IsUnspecified() && !a.Public.IsValid() {
			return bad("media.public_ip", m.PublicIP,
				"required when bind_ip is "+a.Bind.String()+": SDP needs a reachable address of its family")
		}
	}
	return out, nil
}

// parseIPList reads "" or "ip" or "ip4, ip6": at most one address per
// family, without zones.
func parseIPList(s string) ([]netip.Addr, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		ip, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil || ip.Zone() != "" {
			return nil, errors.New("want an IP address, or an IPv4 and an IPv6 address separated by a comma")
		}
		ip = ip.Unmap()
		if familyIndex(out, ip) >= 0 {
			return nil, fmt.Errorf("%s: want at most one address of each IP family", ip)
		}
		out = append(out, ip)
	}
	return out, nil
}

// familyIndex is the index of the address of ip's family in list, or -1.
func familyIndex(list []netip.Addr, ip netip.Addr) int {
	for i, a := range list {
		if a.Is4() == ip.Is4() {
			return i
		}
	}
	return -1
}

// PublicHosts splits sip.public_addr: none, one host (an IP or a DNS name,
// advertised to every peer), or an IPv4 and an IPv6 address (each
// advertised to peers of its family). Validate checks it.
func (s SIP) PublicHosts() []string {
	var out []string
	for _, f := range strings.Split(s.PublicAddr, ",") {
		if h := strings.TrimSpace(f); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// validatePublicAddr checks sip.public_addr (see PublicHosts).
func (s SIP) validatePublicAddr(ps *Problems) {
	hosts := s.PublicHosts()
	for _, h := range hosts {
		if !routing.ValidHost(h) {
			ps.add("sip.public_addr", s.PublicAddr, "want an IP address or DNS name, without port, or an IPv4 and an IPv6 address separated by a comma")
			return
		}
	}
	if len(hosts) < 2 {
		return
	}
	ips, err := parseIPList(s.PublicAddr)
	if len(hosts) > 2 || err != nil || len(ips) != 2 {
		ps.add("sip.public_addr", s.PublicAddr, "want one host, or an IPv4 and an IPv6 address separated by a comma")
	}
}
