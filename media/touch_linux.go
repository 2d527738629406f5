package media

import "net/netip"

// Touch reads ahead what Datagram will read for a datagram from the
// socket (poll.Toucher).
func (c *udpConn) Touch(_ []byte, _ netip.AddrPort) uintptr {
	r := c.cur.Load()
	if r == nil {
		return 0
	}
	p := r.in.dst.Load()
	return uintptr(p.addr.Port()) + r.f.touch()
}

// touch loads the line of the socket's descriptor, which a send reads.
func (c *udpConn) touch() uintptr {
	if c.s.FD.Closed() {
		return 1
	}
	return 0
}
