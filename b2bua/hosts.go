package b2bua

import (
	"fmt"
	"net/netip"

	"github.com/sbc-project/sbc/b2bua/transport"
)

// hostFor returns the host:port the SBC advertises on a transport, seen
// from a message that arrived on local (or, for outbound, the listener of
// that kind that reaches dst: IPv6 toward an IPv6 peer, IPv4 toward an
// IPv4 one). An IPv6 host is in brackets.
func (s *Server) hostFor(kind transport.Kind, local netip.AddrPort, dst netip.Addr) (string, uint16, error) {
	if !local.IsValid() || local.Addr().IsUnspecified() {
		lp, ok := s.tp.LocalAddrFor(kind, dst)
		if !ok {
			return "", 0, fmt.Errorf("no %s listener", kind)
		}
		if local.IsValid() {
			lp = netip.AddrPortFrom(lp.Addr(), local.Port())
		}
		local = lp
	}
	host := publicHost(s.cfg.PublicHosts, dst, local.Addr())
	if host == "" {
		host = local.Addr().String()
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
		host = "[" + host + "]"
	}
	return host, local.Port(), nil
}

// publicHost picks the advertised host toward a peer at dst (else, dst
// unknown, reached from the listener at local): the IP address of the
// peer's family, else a host name, else the first; "" when there is none.
func publicHost(hosts []string, dst, local netip.Addr) string {
	if len(hosts) == 0 {
		return ""
	}
	peer := dst
	if !peer.IsValid() {
		peer = local
	}
	name := ""
	for _, h := range hosts {
		ip, err := netip.ParseAddr(h)
		switch {
		case err != nil && name == "":
			name = h
		case err == nil && peer.IsValid() && ip.Unmap().Is4() == peer.Unmap().Is4():
			return h
		}
	}
	if name != "" {
		return name
	}
	return hosts[0]
}
