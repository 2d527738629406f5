//go:build !linux

package transport

import (
	"net"
	"time"
)

// rxInfoSize is 0: only Linux reports arrival times and socket drops here.
const rxInfoSize = 0

// enableRxInfo does nothing: without kernel timestamps a datagram's wait
// is measured from when the reader took it from the socket.
func enableRxInfo(*net.UDPConn) error { return nil }

// parseRxInfo finds nothing.
func parseRxInfo([]byte) (arrived time.Time, drops uint32, ok bool) { return time.Time{}, 0, false }
