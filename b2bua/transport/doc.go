// Package transport is the SBC's SIP transport layer: it owns every SIP
// socket (UDP, TCP, TLS, WS and WSS), turns the bytes on them into whole SIP
// messages, and writes messages back out. It knows SIP only as far as framing
// needs (CRLF keepalives, the end of the header block and Content-Length);
// parsing happens above it, in package b2bua.
//
// # Why not gosip's transport
//
// gosip's transport is convenient but unsafe at an edge: its WebSocket
// listener runs the upgrade handshake inside Accept with no deadline, so one
// client that opens a TCP connection and sends nothing stalls every later
// handshake on that port; and when the upgrade fails it silently falls back to
// treating the connection as raw SIP over TCP. It also has no per-IP
// connection cap, no line or message size limit while reading a stream, and
// no handshake accounting. An SBC faces the Internet, so this package is built
// around the opposite rules:
//
//   - An accept loop only accepts. TLS handshakes run on the connection's own
//     goroutine, bounded by Limits.HandshakeTimeout; WebSocket upgrades run in
//     net/http's per-connection goroutines, bounded by the same timeout
//     (ReadHeaderTimeout, which also bounds the WSS TLS handshake).
//   - A WebSocket upgrade must offer the "sip" subprotocol (RFC 7118). Without
//     it the request gets an HTTP 400 and the connection never carries SIP.
//   - An idle WebSocket costs no goroutine and no read buffer: on Linux it
//     waits in an epoll set and is read on a fresh goroutine when it has
//     data (wswait_linux.go). The RFC 6455 server side is ours
//     (wsframe.go), so that what it holds between messages is known.
//   - Every read is bounded: a datagram or stream message larger than
//     Limits.MaxMessageSize, a header line longer than Limits.MaxLineLength,
//     or a bad Content-Length is dropped (UDP) or closes the connection
//     (streams), and is counted in Stats.
//   - Every write on a stream has a deadline, so a stuck peer cannot block the
//     caller of Send; a failed write closes the connection.
//   - Close stops every goroutine the layer started and waits for them.
//
// # Model
//
// A Layer is created with a Handler and Listen binds named listeners. Each
// received message is delivered as a Packet: the exact bytes of one SIP
// message, its source and local addresses, its transport and, for streams,
// the Conn it came on, so a response (or a request to a browser that can only
// be reached on its WebSocket) is written back on that same connection.
// Send with a Target picks the connection: the given Conn, an existing stream
// connection to the address (one we dialed or one the peer opened), a new
// outbound TCP or TLS connection, or the UDP listener socket. WebSocket is
// never dialed.
//
// Stream connections are kept in a table keyed by (transport, remote address)
// and removed when they close; OnConnClose observers run after the removal.
// A TLS connection we dialed is keyed by the server name and client
// configuration it was verified with as well (Target.Host, Target.TLS), so a
// target with a name is never sent on a connection verified for another name
// or opened by the peer.
package transport
