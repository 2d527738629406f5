package wrtc

import (
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v4/packetio"
)

// dtlsQueueBytes bounds the DTLS datagrams queued for the DTLS connection;
// beyond it the reader drops them (a flood must not grow memory).
const dtlsQueueBytes = 256 * 1024

// dtlsPacketConn is the net.PacketConn pion/dtls runs on. Reads come from a
// queue the demux fills with the DTLS datagrams of the ICE path; writes go
// straight to the ICE path, which follows the selected pair (also across an
// ICE restart). The peer address is fixed, because the path may change under
// one DTLS association.
type dtlsPacketConn struct {
	in   *packetio.Buffer
	ice  *ice.Conn
	peer net.Addr
}

func newDTLSQueue() *packetio.Buffer {
	b := packetio.NewBuffer()
	b.SetLimitSize(dtlsQueueBytes)
	return b
}

// ReadFrom returns the next queued DTLS datagram.
func (c *dtlsPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, err := c.in.Read(p)
	return n, c.peer, err
}

// WriteTo sends p over the ICE path; the address is ignored.
func (c *dtlsPacketConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	return c.ice.Write(p)
}

// Close closes the read queue. The ICE path belongs to the transport.
func (c *dtlsPacketConn) Close() error { return c.in.Close() }

// LocalAddr returns the local address of the selected pair (nil without one).
func (c *dtlsPacketConn) LocalAddr() net.Addr { return c.ice.LocalAddr() }

// SetDeadline sets the read deadline; writes do not block.
func (c *dtlsPacketConn) SetDeadline(t time.Time) error { return c.in.SetReadDeadline(t) }

// SetReadDeadline sets the read deadline of the queue.
func (c *dtlsPacketConn) SetReadDeadline(t time.Time) error { return c.in.SetReadDeadline(t) }

// SetWriteDeadline is a no-op: writes to the ICE path do not block.
func (c *dtlsPacketConn) SetWriteDeadline(time.Time) error { return nil }
