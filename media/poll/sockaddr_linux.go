// Sockaddr conversions between netip.AddrPort and the raw sockaddr
// bytes the packet paths hand to sendto, recvmmsg and io_uring. Neither
// function allocates: both run once per packet.

package poll

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// SockaddrLen is room for a sockaddr_in6, the larger of the two families.
const SockaddrLen = unix.SizeofSockaddrInet6

// PutSockaddr writes to into sa in the family of a socket that is IPv6 (v6) or
// IPv4, and returns its length, or 0 when to cannot be reached from such
// a socket. An IPv4 address toward an IPv6 socket is written v4-mapped
// when mapped is set (a dual-stack socket), refused otherwise.
func PutSockaddr(sa *[SockaddrLen]byte, to netip.AddrPort, v6, mapped bool) uintptr {
	ip := to.Addr()
	binary.BigEndian.PutUint16(sa[2:], to.Port())
	if !v6 {
		if !ip.Is4() && !ip.Is4In6() {
			return 0
		}
		binary.NativeEndian.PutUint16(sa[0:], unix.AF_INET)
		a := ip.As4()
		copy(sa[4:8], a[:])
		return unix.SizeofSockaddrInet4
	}
	if !mapped && (!ip.Is6() || ip.Is4In6()) {
		return 0
	}
	binary.NativeEndian.PutUint16(sa[0:], unix.AF_INET6)
	a := ip.As16()
	copy(sa[8:24], a[:])
	return unix.SizeofSockaddrInet6
}

// AddrPortOf reads a sockaddr the kernel wrote (recvmmsg's msg_name).
func AddrPortOf(sa []byte) (netip.AddrPort, bool) {
	if len(sa) < 4 {
		return netip.AddrPort{}, false
	}
	port := binary.BigEndian.Uint16(sa[2:4])
	switch binary.NativeEndian.Uint16(sa[0:2]) {
	case unix.AF_INET:
		if len(sa) < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port), true
	case unix.AF_INET6:
		if len(sa) < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])), port), true
	}
	return netip.AddrPort{}, false
}
