//go:build !linux

package media

import (
	"net"
	"net/netip"
)

// listenUDPFree binds ip:port; only Linux binds an address that is not
// local yet.
func listenUDPFree(ip netip.Addr, port int) (*udpConn, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
	if err != nil {
		return nil, err
	}
	return &udpConn{c: c}, nil
}

// listenNetUDPFree binds addr.
func listenNetUDPFree(addr netip.AddrPort) (*net.UDPConn, error) {
	return net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
}
