package media

import (
	"sync"

	"github.com/sbc-project/sbc/media/poll"
)

// The poll engine (media/poll) reads every plain RTP and RTCP socket of
// a Manager on Linux: a few loops, one per CPU, each with an epoll set of
// many sockets in the runtime's netpoller; with io_uring one
// io_uring_enter reads a datagram from every ready socket and one more
// sends what their flows queued in the loop's batch, without it each
// socket is read with recvmmsg and each packet sent with sendto. Every
// datagram is handed to its socket's reader (relay.go) on the loop's
// goroutine. The measurements behind that shape are in the package's
// comments and BENCHMARKS.md.

// pollBatch is how many datagrams one recvmmsg takes from a socket. A
// socket of a call gets one every 20 ms, so more than one waits only when
// the loop fell behind; the batch then catches up without a system call
// per packet.
const pollBatch = 8

// pollBufSize is a loop's read buffer per datagram: the loops read the
// WebRTC sockets too (wrtc.MuxConfig.Poll), whose datagrams may be as large
// as pion's receive MTU. A plain socket's reader takes maxPacket of it,
// as the kernel would have truncated it.
const pollBufSize = 8192

// engine is a Manager's poll engine, made on first use.
type engine struct {
	n       int  // loops to start; 0: GOMAXPROCS (tests set it)
	noBatch bool // send each packet with sendto (tests set it)
	once    sync.Once
	e       *poll.Engine
}

func (eng *engine) get() *poll.Engine {
	eng.once.Do(func() {
		eng.e = poll.NewEngine(poll.Config{Loops: eng.n, NoRing: eng.noBatch, BufSize: pollBufSize, ReadBatch: pollBatch, Clock: monotonic})
	})
	return eng.e
}

// pick returns the loop for the socket on port, starting the loops on
// first use. The RTP and RTCP sockets of a pair share a loop. After stop,
// it returns a stopped loop, which refuses sockets.
func (eng *engine) pick(port int) *poll.Loop { return eng.get().Loop(port / 2) }

// poller returns the engine, for the WebRTC sockets to be read by its
// loops.
func (eng *engine) poller() *poll.Engine { return eng.get() }

// stop ends the loops and waits for them. Sockets still attached are let
// go (their WaitGroups are done), but not closed: their owners close them.
func (eng *engine) stop() { eng.get().Stop() }
