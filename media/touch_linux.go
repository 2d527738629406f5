package media

import "net/netip"

// Touch reads ahead what Datagram will read for a datagram from the
// socket (poll.Toucher).
func (c *udpConn) Touch(_ []byte, _ netip.AddrPort) uintptr {
	if r := c.cur.Load(); r != nil {
		return r.touch()
	}
	return 0
}

// touch loads what forwardAt reads first: the reader, the socket's peer
// and the flow's state.
func (r *reader) touch() uintptr {
	p := r.in.dst.Load()
	return uintptr(p.addr.Port()) + r.f.Touch()
}

// touch loads the line of the socket's descriptor, which a send reads.
func (c *udpConn) touch() uintptr {
	if c.s.FD.Closed() {
		return 1
	}
	return 0
}
