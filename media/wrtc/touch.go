package wrtc

import "encoding/binary"

// Toucher is a Sink that can read ahead the state its next RTP packet
// will need (see poll.Toucher): a poll loop's wake-up touches every
// datagram's state before handing any, so their cache misses overlap.
// Touch only loads (atomics, fields fixed before the Sink was routed) and
// returns a value derived from them, so that the loads are kept.
type Toucher interface {
	Touch() uintptr
}

// touch reads ahead what handleVia will read for pkt, on a poll loop's
// goroutine and without rmu: the counters, the decrypt context's first
// line (its fields are fixed once published; the per-SSRC state the
// reader moves is not read, as readLoop may decrypt under rmu meanwhile)
// and the Sink of pkt's route when it is a Toucher. It changes nothing.
func (d *demux) touch(pkt []byte) uintptr {
	v := uintptr(d.c.rtpIn.Load())
	if k := d.rx.Load(); k != nil && k.gcm != nil {
		v += uintptr(k.gcm.salt[0])
	}
	if len(pkt) < minRTPHeader || Classify(pkt) != ClassRTP {
		return v
	}
	rt := d.routes.Load()
	if i := rt.rtpRoute(binary.BigEndian.Uint32(pkt[8:]), pkt[1]&0x7f); i >= 0 {
		if t, ok := rt.sinks[i].sink.(Toucher); ok {
			v += t.Touch()
		}
	}
	return v
}

// TouchSend reads ahead what WriteRTPBatch will read besides the SRTP
// state (under the send lock, which a read-ahead must not take): the
// counters, the path's destination and the Mux's sending descriptor. It
// only loads, and is safe for concurrent use.
func (t *Transport) TouchSend() uintptr {
	v := uintptr(t.c.rtpOut.Load())
	if d := t.dst.Load(); d != nil {
		v += uintptr(d.Port())
	}
	return v + t.cfg.Mux.tx.touch()
}
