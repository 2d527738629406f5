package wrtc

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// feedQueue is how many datagrams wait for pion's UDP mux; beyond it the
// reader drops them, as the network could have. Only STUN and the first
// packets of a path that no check has validated yet take this way, and
// pion's mux reads them at once; the queue is allocated per Mux (56 bytes
// a slot), which with a port per call is per call.
const feedQueue = 64

// feedPacket is one datagram queued for pion.
type feedPacket struct {
	b    []byte
	from netip.AddrPort
}

// pionFeed is the net.PacketConn pion's ice.UDPMuxDefault runs on. The Mux's
// reader pushes it what pion must see (STUN, and packets from addresses no
// check validated yet); writes leave from the shared socket the way the
// Mux's own do (tx). It implements ice.AddrPortReaderWriter, so pion's mux
// does not allocate addresses.
type pionFeed struct {
	tx    *txSocket
	local net.Addr // the shared socket's address, read once
	in    chan feedPacket
	done  chan struct{} // closed by Close

	closeOnce sync.Once
}

func newPionFeed(udp *net.UDPConn, tx *txSocket) *pionFeed {
	return &pionFeed{tx: tx, local: udp.LocalAddr(), in: make(chan feedPacket, feedQueue), done: make(chan struct{})}
}

// push queues a copy of pkt; it never blocks. It reports false when the
// queue is full or closed.
func (f *pionFeed) push(pkt []byte, from netip.AddrPort) bool {
	select {
	case <-f.done:
		return false
	default:
	}
	select {
	case f.in <- feedPacket{b: bytes.Clone(pkt), from: from}:
		return true
	default:
		return false
	}
}

// ReadFromAddrPort returns the next queued datagram (truncated to p).
func (f *pionFeed) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	select {
	case pkt := <-f.in:
		return copy(p, pkt.b), pkt.from, nil
	case <-f.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

// ReadFrom is ReadFromAddrPort with a *net.UDPAddr.
func (f *pionFeed) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := f.ReadFromAddrPort(p)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteToAddrPort sends p from the shared socket.
func (f *pionFeed) WriteToAddrPort(p []byte, to netip.AddrPort) (int, error) {
	if err := f.tx.send(p, to); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteTo sends p from the shared socket to a *net.UDPAddr.
func (f *pionFeed) WriteTo(p []byte, to net.Addr) (int, error) {
	ua, ok := to.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("wrtc: write to %T, want *net.UDPAddr", to)
	}
	ap := ua.AddrPort()
	return f.WriteToAddrPort(p, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// Close stops the reads; the socket belongs to the Mux. Idempotent.
func (f *pionFeed) Close() error {
	f.closeOnce.Do(func() { close(f.done) })
	return nil
}

// LocalAddr is the shared socket's address (a *net.UDPAddr, as pion needs).
func (f *pionFeed) LocalAddr() net.Addr { return f.local }

// SetDeadline is a no-op, see SetReadDeadline and SetWriteDeadline.
func (f *pionFeed) SetDeadline(time.Time) error { return nil }

// SetReadDeadline is a no-op: pion's mux reads until Close.
func (f *pionFeed) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline is a no-op: pion would use it to abort a blocked write,
// but the socket also carries every transport's media, which a deadline
// must not cut; a UDP send does not block for long.
func (f *pionFeed) SetWriteDeadline(time.Time) error { return nil }
