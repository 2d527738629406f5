//go:build !linux

package poll

import "net"

// SetReadBuffer asks bytes of receive buffer for conn, up to the system's
// limit. Best effort: the default buffer still works.
func SetReadBuffer(conn *net.UDPConn, bytes int) { _ = conn.SetReadBuffer(bytes) }
