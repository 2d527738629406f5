//go:build !linux

package media

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/sbc-project/sbc/media/poll"
)

// udpConn is one plain RTP or RTCP socket of the relay where there is no
// poll engine (poll_linux.go): a net socket read by a goroutine of its
// own, blocked in a read.
type udpConn struct {
	c *net.UDPConn
}

// engine has nothing to run without the poll engine.
type engine struct{}

func (*engine) stop() {}

// poller is nil: there is no poll engine.
func (*engine) poller() *poll.Engine { return nil }

// openPair takes a port pair from pool and binds its RTP and RTCP sockets
// on ip.
func openPair(pool *portPool, ip netip.Addr) (*pair, *udpConn, *udpConn, error) {
	pr, err := pool.alloc(ip)
	if err != nil {
		return nil, nil, nil, err
	}
	return pr, &udpConn{c: pr.rtp}, &udpConn{c: pr.rtcp}, nil
}

func (c *udpConn) writeTo(pkt []byte, to netip.AddrPort) error {
	_, err := c.c.WriteToUDPAddrPort(pkt, to)
	return err
}

// attach starts r's goroutine, counted by wg until the socket is closed.
func (c *udpConn) attach(_ *engine, r *reader, wg *sync.WaitGroup) {
	wg.Go(func() { r.run() })
}

// close stops reading and sending; the reader returns. Idempotent.
func (c *udpConn) close() { c.c.Close() }

// run reads until the socket is closed, with one buffer for its lifetime.
func (r *reader) run() {
	buf := make([]byte, maxPacket)
	if r.e.sdes != nil {
		r.dec = newDecryption()
	}
	for {
		n, src, err := r.in.conn.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Anything else (an ICMP error surfacing, a truncated read)
			// concerns one datagram; the socket stays usable.
			continue
		}
		r.forward(buf[:n], src)
	}
}

// queue sends pkt at once: there is no batch.
func (c *udpConn) queue(_ *sendBatch, pkt []byte, to netip.AddrPort, _ out) bool {
	return c.writeTo(pkt, to) == nil
}

// reuse serves the port pool's kept sockets, which only the poll
// engine's sockets become (udpconn_linux.go).
func (c *udpConn) reuse() bool { return false }

func (e *rtpEndpoint) close() {
	e.rtp.conn.close()
	e.rtcp.conn.close()
}

func (e *rtpEndpoint) release() { e.pair.release() }

// touch: nothing to read ahead off Linux, where no poll loop reads.
func (c *udpConn) touch() uintptr { return 0 }
