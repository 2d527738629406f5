package media

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// freebind lets a socket bind an address that is not (yet) on any
// interface of the host (IP_FREEBIND, IPV6_FREEBIND): a survivor rebinds
// a dead node's media ports before the service address moves to it
// (issue 19), so the first packet after the move finds its socket.
func freebind(fd int, v6 bool) error {
	if v6 {
		return unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
	}
	return unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_FREEBIND, 1)
}

// listenUDPFree is listenUDP with freebind.
func listenUDPFree(ip netip.Addr, port int) (*udpConn, error) {
	return listenUDPWith(ip, port, func(fd int) error { return freebind(fd, ip.Is6()) })
}

// listenNetUDPFree opens a net UDP socket on addr with freebind (a
// restored WebRTC port).
func listenNetUDPFree(addr netip.AddrPort) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = freebind(int(fd), addr.Addr().Is6()) })
		if err != nil {
			return err
		}
		return serr
	}}
	network := "udp4"
	if addr.Addr().Is6() {
		network = "udp6"
	}
	pc, err := lc.ListenPacket(context.Background(), network, addr.String())
	if err != nil {
		return nil, fmt.Errorf("bind %s: %w", addr, err)
	}
	return pc.(*net.UDPConn), nil
}
