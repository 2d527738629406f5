package wrtc

import (
	"errors"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// maxPacket is the largest datagram read from the ICE path (pion's receive
// MTU); the decrypt buffer has the same size, so decryption never allocates.
const maxPacket = 8192

// demux is the receive path of one transport: it classifies every packet
// that arrives over ICE (RFC 7983), hands DTLS to the DTLS connection, and
// authenticates and decrypts SRTP/SRTCP into the Sink of its Route.
//
// All methods run on the transport's single reader goroutine, which owns the
// scratch buffers and the decrypt context (srtp.Context is not safe for
// concurrent use); the atomics are how other goroutines publish to it.
type demux struct {
	c      *counters
	rx     atomic.Pointer[srtp.Context] // remote-key context; nil until DTLS is up
	routes atomic.Pointer[routeTable]   // never nil after newDemux
	dtls   func(pkt []byte)             // receives DTLS datagrams (copies them)

	out     []byte // decrypted packet, reused
	rtpHdr  rtp.Header
	rtcpHdr rtcp.Header
}

func newDemux(c *counters, dtls func([]byte)) *demux {
	d := &demux{c: c, dtls: dtls, out: make([]byte, maxPacket)}
	d.routes.Store(newRouteTable(nil))
	return d
}

// handle processes one packet read from the ICE path. pkt is only read
// during the call. Malformed input is counted, never fatal.
func (d *demux) handle(pkt []byte) {
	d.c.bytesIn.Add(uint64(len(pkt)))
	switch Classify(pkt) {
	case ClassDTLS:
		d.c.dtls.Add(1)
		d.dtls(pkt)
	case ClassRTP:
		d.rtp(pkt)
	case ClassRTCP:
		d.rtcp(pkt)
	default:
		// STUN never leaves the ICE agent; ZRTP and TURN have no place here.
		d.c.unknown.Add(1)
	}
}

func (d *demux) rtp(pkt []byte) {
	ctx := d.rx.Load()
	if ctx == nil {
		d.c.notReady.Add(1)
		return
	}
	out, err := ctx.DecryptRTP(d.out, pkt, &d.rtpHdr)
	if err != nil {
		d.decryptFailed(err)
		return
	}
	sink := d.routes.Load().rtpSink(d.rtpHdr.SSRC, d.rtpHdr.PayloadType)
	if sink == nil {
		d.c.unrouted.Add(1)
		return
	}
	d.c.rtpIn.Add(1)
	sink.RTP(out)
}

func (d *demux) rtcp(pkt []byte) {
	ctx := d.rx.Load()
	if ctx == nil {
		d.c.notReady.Add(1)
		return
	}
	out, err := ctx.DecryptRTCP(d.out, pkt, &d.rtcpHdr)
	if err != nil {
		d.decryptFailed(err)
		return
	}
	sink := d.routes.Load().rtcpSink(out)
	if sink == nil {
		d.c.unrouted.Add(1)
		return
	}
	d.c.rtcpIn.Add(1)
	sink.RTCP(out)
}

// decryptFailed counts a packet pion/srtp rejected.
func (d *demux) decryptFailed(err error) {
	switch {
	case errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
		d.c.authFail.Add(1)
	case isReplay(err):
		d.c.replay.Add(1)
	default:
		d.c.malformed.Add(1)
	}
}

// srtpReplayText is the text of pion/srtp's unexported replay sentinel
// ("duplicated packet"), which its replay error wraps. TestDecryptCounters
// replays a packet, so a change in pion shows up there.
const srtpReplayText = "duplicated packet"

// isReplay reports whether err is pion/srtp's replay rejection. It reads the
// wrapped sentinel's static text, so it does not allocate.
func isReplay(err error) bool {
	inner := errors.Unwrap(err)
	return inner != nil && inner.Error() == srtpReplayText
}
