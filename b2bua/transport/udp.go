package transport

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// listenUDP binds one UDP socket and starts its reader; symmetric is
// reported on every packet (ListenOptions.Symmetric).
func (l *Layer) listenUDP(name, addr string, symmetric bool) (netip.AddrPort, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen UDP on %s: %w", addr, err)
	}
	sock, err := net.ListenUDP("udp", ua)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen UDP on %s: %w", addr, err)
	}
	li := &listener{name: name, kind: UDP, addr: boundAddr(addr, sock.LocalAddr()), udp: sock, symmetric: symmetric}
	if !l.addListener(li, func() { l.readUDP(li) }) {
		_ = sock.Close()
		return netip.AddrPort{}, fmt.Errorf("listen UDP on %s: %w", addr, ErrClosed)
	}
	return li.addr, nil
}

// readUDP delivers every datagram that holds something other than CRLFs.
// The buffer is one byte larger than MaxMessageSize so that a datagram that
// fills it is known to be oversize (the kernel truncates silently).
func (l *Layer) readUDP(li *listener) {
	buf := make([]byte, l.lim.MaxMessageSize+1)
	for {
		n, src, err := li.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.ctx.Err() != nil {
				return
			}
			// Some systems report ICMP errors on reads; do not spin on them.
			l.log.Debug("sip udp read", "listener", li.name, "err", err)
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(time.Millisecond):
			}
			continue
		}
		if n > l.lim.MaxMessageSize {
			l.stats.oversize.Add(1)
			continue
		}
		if isKeepalive(buf[:n]) {
			l.stats.keepalives.Add(1)
			continue
		}
		l.deliver(Packet{
			Data:      bytes.Clone(buf[:n]),
			Src:       netip.AddrPortFrom(src.Addr().Unmap(), src.Port()),
			Local:     li.addr,
			Kind:      UDP,
			Listener:  li.name,
			Symmetric: li.symmetric,
		})
	}
}
