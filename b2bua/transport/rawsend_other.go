//go:build !linux

package transport

import (
	"net"
	"net/netip"
)

// rawSender is Linux only; elsewhere every datagram goes through the
// listener's net.UDPConn.
type rawSender struct{}

func newRawSender(*net.UDPConn) *rawSender { return nil }

func (r *rawSender) send([]byte, netip.AddrPort) (bool, error) { return false, nil }

func (r *rawSender) close() {}
