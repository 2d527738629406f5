package wrtc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/sbc-project/sbc/media/poll"
)

// maxPacket is the largest datagram read from the ICE path (pion's receive
// MTU); the decrypt buffer has the same size, so decryption never allocates.
const maxPacket = 8192

// maxEarly is how many SRTP/SRTCP packets that arrive before the keys exist
// are held for decryption once they do. A browser sends media the instant
// its DTLS client has our Finished, which is before our server has derived
// the keys (a busy scheduler widens that window to a few hundred ms:
// 7-10 audio packets were lost per call under load); 64 packets are more
// than a second of audio and a few video frames.
const maxEarly = 64

// demux is the receive path of one transport: it classifies every packet
// that arrives over ICE (RFC 7983), hands DTLS to the DTLS connection, and
// authenticates and decrypts SRTP/SRTCP into the Sink of its Route.
//
// All methods but install run on the transport's single reader goroutine,
// which owns the scratch buffers and, once it is published, the decrypt
// context (srtp.Context is not safe for concurrent use); the atomics are how
// other goroutines publish to it. Until the context is published, SRTP waits
// in early; install decrypts and delivers it before publishing the context,
// under earlyMu, so Sinks are still called one packet at a time.
type demux struct {
	// What every SRTP packet reads comes first: one cache line.
	c      *counters
	rx     atomic.Pointer[srtpKeys]   // remote-key contexts; nil until DTLS is up
	routes atomic.Pointer[routeTable] // never nil after newDemux
	out    []byte                     // decrypted packet, reused
	dtls   func(pkt []byte)           // receives DTLS datagrams (copies them)

	earlyMu sync.Mutex
	early   [][]byte // copies of SRTP/SRTCP received before rx, oldest first

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
func (d *demux) handle(pkt []byte) { d.handleVia(pkt, nil) }

// handleVia is handle for a packet a poll loop read, whose send batch
// (nil: none) a decrypted RTP packet may be queued in (BatchSink).
func (d *demux) handleVia(pkt []byte, b *poll.Batch) {
	d.c.bytesIn.Add(uint64(len(pkt)))
	switch Classify(pkt) {
	case ClassDTLS:
		d.c.dtls.Add(1)
		d.dtls(pkt)
	case ClassRTP:
		d.rtp(pkt, b)
	case ClassRTCP:
		d.rtcp(pkt)
	default:
		// STUN never leaves the ICE agent; ZRTP and TURN have no place here.
		d.c.unknown.Add(1)
	}
}

// install publishes the decrypt context. The packets held before it are
// decrypted and delivered first, in arrival order, so none of a browser's
// first packets is lost to the handshake's last flight. It runs on the
// handshake's goroutine; the reader waits on earlyMu meanwhile, so a Sink
// still sees one packet at a time.
func (d *demux) install(rx *srtpKeys) {
	d.earlyMu.Lock()
	defer d.earlyMu.Unlock()
	if len(d.early) > 0 {
		out := make([]byte, maxPacket)
		var rtpHdr rtp.Header
		var rtcpHdr rtcp.Header
		for _, pkt := range d.early {
			if Classify(pkt) == ClassRTP {
				d.deliverRTP(rx, out, pkt, &rtpHdr, nil)
			} else {
				d.deliverRTCP(rx, out, pkt, &rtcpHdr)
			}
		}
		d.early = nil
	}
	d.rx.Store(rx)
}

// hold keeps a copy of an SRTP/SRTCP packet that arrived before the keys,
// or counts it as NotReady when maxEarly are held already. It returns the
// decrypt context when install published it meanwhile: then the caller
// decrypts pkt itself.
func (d *demux) hold(pkt []byte) *srtpKeys {
	d.earlyMu.Lock()
	defer d.earlyMu.Unlock()
	if ctx := d.rx.Load(); ctx != nil {
		return ctx
	}
	if len(d.early) >= maxEarly {
		d.c.notReady.Add(1)
		return nil
	}
	d.early = append(d.early, bytes.Clone(pkt))
	d.c.early.Add(1)
	return nil
}

// dropEarly counts the packets still held as NotReady and releases them;
// Close calls it, as keys that never came will not come now.
func (d *demux) dropEarly() {
	d.earlyMu.Lock()
	defer d.earlyMu.Unlock()
	d.c.notReady.Add(uint64(len(d.early)))
	d.early = nil
}

func (d *demux) rtp(pkt []byte, b *poll.Batch) {
	ctx := d.rx.Load()
	if ctx == nil {
		if ctx = d.hold(pkt); ctx == nil {
			return
		}
	}
	out := d.out
	if b != nil {
		// Decrypted into the batch's scratch, the packet outlives this
		// call until the loop's flush: its send can wait in the batch.
		if s := b.Scratch(); s != nil && cap(s) >= len(pkt) {
			out = s
		} else {
			b = nil
		}
	}
	d.deliverRTP(ctx, out, pkt, &d.rtpHdr, b)
}

// deliverRTP decrypts pkt with ctx into out and hands it to its Sink,
// through RTPBatch when b is set and the Sink is a BatchSink.
func (d *demux) deliverRTP(ctx *srtpKeys, out, pkt []byte, hdr *rtp.Header, b *poll.Batch) {
	out, err := ctx.decryptRTP(out, pkt, hdr)
	if err != nil {
		d.decryptFailed(err)
		return
	}
	// The decrypted header is the packet's: a plain RTP header of at
	// least 12 bytes, which both decrypters checked.
	rt := d.routes.Load()
	i := rt.rtpRoute(binary.BigEndian.Uint32(out[8:]), out[1]&0x7f)
	if i < 0 || rt.sinks[i].sink == nil {
		d.c.unrouted.Add(1)
		return
	}
	d.c.rtpIn.Add(1)
	if s := rt.sinks[i]; b != nil && s.batch != nil {
		s.batch.RTPBatch(out, b)
		return
	}
	rt.sinks[i].sink.RTP(out)
}

func (d *demux) rtcp(pkt []byte) {
	ctx := d.rx.Load()
	if ctx == nil {
		if ctx = d.hold(pkt); ctx == nil {
			return
		}
	}
	d.deliverRTCP(ctx, d.out, pkt, &d.rtcpHdr)
}

// deliverRTCP decrypts pkt with ctx into out and hands it to its Sink.
func (d *demux) deliverRTCP(ctx *srtpKeys, out, pkt []byte, hdr *rtcp.Header) {
	out, err := ctx.pion.DecryptRTCP(out, pkt, hdr)
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

// srtpKeys are one direction's SRTP contexts: pion's for SRTCP, and for
// SRTP too unless the profile is an AEAD-AES-GCM one, which ours serves
// (srtpgcm.go). Used by one goroutine at a time, as srtp.Context.
type srtpKeys struct {
	pion *srtp.Context
	gcm  *gcmRTP // nil: pion protects SRTP too
	// pending are, by SSRC the peer sends, the rollover counters a
	// restored context took from the replicated state that no packet has
	// authenticated yet (nil or empty: none). See restoreROC.
	pending map[uint32]uint32
}

// decryptRTP decrypts an SRTP packet into dst; hdr is pion's scratch.
func (k *srtpKeys) decryptRTP(dst, pkt []byte, hdr *rtp.Header) ([]byte, error) {
	out, err := k.decryptOnce(dst, pkt, hdr)
	if len(k.pending) == 0 || len(pkt) < 12 {
		return out, err
	}
	return k.confirmROC(dst, pkt, hdr, out, err)
}

func (k *srtpKeys) decryptOnce(dst, pkt []byte, hdr *rtp.Header) ([]byte, error) {
	if k.gcm != nil {
		return k.gcm.decrypt(dst, pkt)
	}
	return k.pion.DecryptRTP(dst, pkt, hdr)
}

// restoreROC sets the rollover counter of ssrc, which the peer sends, to
// roc from a replicated state, as a guess: the peer's sequence number may
// have wrapped between the state and the restore (at 50 packets/s every
// 22 minutes, the state being up to a minute old), and then it uses
// roc+1. Until a packet of ssrc authenticates, confirmROC tries roc+1
// for a packet that fails with roc.
func (k *srtpKeys) restoreROC(ssrc, roc uint32) {
	k.SetROC(ssrc, roc)
	if roc == maxROC {
		return
	}
	if k.pending == nil {
		k.pending = make(map[uint32]uint32)
	}
	k.pending[ssrc] = roc
}

// confirmROC follows decryptOnce's result (out, err) for a packet of a
// restored context: the first packet of an SSRC that authenticates
// confirms its rollover counter, with the restored one or, when that
// failed authentication, with the one after it. Only an authenticated
// packet moves the counter, and only by one: packets of a stranger
// without the key leave it where it was restored (each costs a second
// decryption until the peer's first packet arrives).
func (k *srtpKeys) confirmROC(dst, pkt []byte, hdr *rtp.Header, out []byte, err error) ([]byte, error) {
	ssrc := binary.BigEndian.Uint32(pkt[8:])
	roc, ok := k.pending[ssrc]
	switch {
	case !ok:
		return out, err
	case err == nil:
		delete(k.pending, ssrc)
		return out, nil
	case !errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
		return out, err
	}
	k.SetROC(ssrc, roc+1)
	if out2, err2 := k.decryptOnce(dst, pkt, hdr); err2 == nil {
		delete(k.pending, ssrc)
		return out2, nil
	}
	k.SetROC(ssrc, roc)
	return out, err
}

// encryptRTP protects a plain RTP packet into dst; hdr is pion's scratch.
func (k *srtpKeys) encryptRTP(dst, pkt []byte, hdr *rtp.Header) ([]byte, error) {
	if k.gcm != nil {
		return k.gcm.encrypt(dst, pkt)
	}
	return k.pion.EncryptRTP(dst, pkt, hdr)
}

// ROC, SetROC, Index and SetIndex are srtp.Context's, served by whichever
// context holds the state: the SRTP rollover counters by ours when it
// protects SRTP, the SRTCP indices by pion's.
func (k *srtpKeys) ROC(ssrc uint32) (uint32, bool) {
	if k.gcm != nil {
		return k.gcm.ROC(ssrc)
	}
	return k.pion.ROC(ssrc)
}

func (k *srtpKeys) SetROC(ssrc, roc uint32) {
	if k.gcm != nil {
		k.gcm.SetROC(ssrc, roc)
		return
	}
	k.pion.SetROC(ssrc, roc)
}

func (k *srtpKeys) Index(ssrc uint32) (uint32, bool) { return k.pion.Index(ssrc) }

func (k *srtpKeys) SetIndex(ssrc, index uint32) { k.pion.SetIndex(ssrc, index) }

// decryptFailed counts a packet pion/srtp rejected.
func (d *demux) decryptFailed(err error) {
	switch {
	case errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
		d.c.authFail.Add(1)
	case errors.Is(err, errGCMReplay), isReplay(err):
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
