// Package poll is the SBC's own UDP packet engine on Linux, shared by the
// plain RTP relay (media) and the WebRTC sockets (media/wrtc), and the
// socket options the packet paths set (also b2bua/transport's SIP socket).
//
// An Engine is a few loops, one per CPU, each owning an epoll set that
// holds many non-blocking sockets. The set is itself in the Go runtime's
// netpoller: an idle loop holds no thread, and a ready set wakes the
// loop's goroutine, which takes every ready socket without waiting, reads
// them, and hands each datagram to the socket's Handler on the loop's
// goroutine. With io_uring (ring_linux.go) one io_uring_enter reads from
// every ready socket and one more sends what the handlers queued in the
// loop's Batch; without, a socket is read with recvmmsg and the handlers
// send at once. Every read and send is non-blocking: a send that would
// block fails and is reported to its Failer.
//
// An FD is a descriptor with references: it is closed only once no loop
// reads it and no send is in flight, so a descriptor number the kernel
// hands out again never gets a stale packet.
//
// The package imports nothing of the SBC: it is a leaf under internal/
// that core packages may use (test/arch allows it by name).
//
// Off Linux only the socket options exist; media and media/wrtc read their
// sockets with a goroutine each there.
package poll
