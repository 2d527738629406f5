//go:build !linux

package wrtc

import (
	"errors"
	"net"
	"net/netip"

	"github.com/sbc-project/sbc/media/poll"
)

// attachPoller is false off Linux: each socket is read by a goroutine.
func attachPoller(*muxSocket, int, int) bool { return false }

// detachPoller is never called off Linux.
func detachPoller(*muxSocket) {}

// pollSocket does not exist off Linux.
type pollSocket struct{}

// listenSiblings is Linux's (SO_REUSEPORT spreading datagrams by flow).
func listenSiblings(func(func(uintptr)) error, string, int) ([]*net.UDPConn, error) {
	return nil, errors.New("one socket per port off Linux")
}

// leaveNetpoller is Linux's: off Linux the Go socket is the one read.
func (m *Mux) leaveNetpoller(*muxSocket, bool) {}

// control runs f on the descriptor of the Mux's first socket.
func (m *Mux) control(f func(fd uintptr)) error {
	rc, err := m.conn.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(f)
}

// setReadBufferFD is never called off Linux, where no port widens.
func setReadBufferFD(uintptr, int) {}

// txSocket sends through the socket's own write off Linux.
type txSocket struct{ conn *net.UDPConn }

func (x *txSocket) init(conn *net.UDPConn) { x.conn = conn }

func (x *txSocket) send(pkt []byte, to netip.AddrPort) error {
	_, err := x.conn.WriteToUDPAddrPort(pkt, to)
	return err
}

func (x *txSocket) close() {}

// queue is false: there is no batch off Linux.
func (x *txSocket) queue(*poll.Batch, []byte, netip.AddrPort, poll.Failer, int) bool { return false }

// setSharedReadBuffer asks bytes of receive buffer (up to the system's
// limit).
func setSharedReadBuffer(conn *net.UDPConn, bytes int) { _ = conn.SetReadBuffer(bytes) }

// touch: no descriptor of its own to read ahead off Linux.
func (x *txSocket) touch() uintptr { return 0 }
