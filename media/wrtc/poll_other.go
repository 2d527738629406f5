//go:build !linux

package wrtc

import (
	"errors"
	"net"
	"net/netip"
)

// attachPoller is false off Linux: each socket is read by a goroutine.
func attachPoller(*muxSocket, *pollLoop, int) bool { return false }

// detachPoller is never called off Linux.
func detachPoller(*muxSocket) {}

// pollLoop does not exist off Linux.
type pollLoop struct{}

// listenSiblings is Linux's (SO_REUSEPORT spreading datagrams by flow).
func listenSiblings(*net.UDPConn, int) ([]*net.UDPConn, error) {
	return nil, errors.New("one socket per port off Linux")
}

// txSocket sends through the socket's own write off Linux.
type txSocket struct{ conn *net.UDPConn }

func (x *txSocket) init(conn *net.UDPConn) { x.conn = conn }

func (x *txSocket) send(pkt []byte, to netip.AddrPort) error {
	_, err := x.conn.WriteToUDPAddrPort(pkt, to)
	return err
}

func (x *txSocket) close() {}

// setSharedReadBuffer asks bytes of receive buffer (up to the system's
// limit).
func setSharedReadBuffer(conn *net.UDPConn, bytes int) { _ = conn.SetReadBuffer(bytes) }
