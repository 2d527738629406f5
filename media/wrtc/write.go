package wrtc

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/pion/ice/v4"

	"github.com/sbc-project/sbc/media/poll"
)

// WriteRTP encrypts one plain RTP packet (header and payload) and sends it
// over the selected ICE path. pkt is not modified or retained. It returns
// ErrNotConnected, without allocating, before DTLS is up, after a failure or
// Close, and while an ICE restart has no path yet. Safe for concurrent use:
// writers are serialized by the transport; the call does not allocate.
func (t *Transport) WriteRTP(pkt []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.writeRTP(pkt)
}

// writeRTP is WriteRTP's work; the caller holds t.wmu.
func (t *Transport) writeRTP(pkt []byte) error {
	if t.tx == nil {
		return ErrNotConnected
	}
	out, err := t.tx.encryptRTP(t.wbuf, pkt, &t.wRTPHdr)
	if err != nil {
		return fmt.Errorf("wrtc: encrypt rtp: %w", err)
	}
	if err := t.send(out); err != nil {
		return err
	}
	t.c.rtpOut.Add(1)
	return nil
}

// WriteRTPBatch is WriteRTP for a caller running on a poll loop with its
// send batch b: the packet is encrypted into b's scratch and its send
// queued in b (flushed by the loop), when the selected path runs over the
// Mux's UDP socket; f (with tag) hears of the send if the kernel refuses
// it. With b nil, or no room in b, it is WriteRTP. Errors, concurrency
// and allocation are as for WriteRTP.
func (t *Transport) WriteRTPBatch(pkt []byte, b *poll.Batch, f poll.Failer, tag int) error {
	if b == nil {
		return t.WriteRTP(pkt)
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.tx == nil {
		return ErrNotConnected
	}
	dst := t.dst.Load()
	buf := b.Scratch()
	if dst == nil || cap(buf) < len(pkt)+srtpOverhead {
		return t.writeRTP(pkt) // through the ice.Conn, or no room: sent at once
	}
	out, err := t.tx.encryptRTP(buf, pkt, &t.wRTPHdr)
	if err != nil {
		return fmt.Errorf("wrtc: encrypt rtp: %w", err)
	}
	if !t.cfg.Mux.tx.queue(b, out, *dst, f, tag) {
		if err := t.send(out); err != nil {
			return err
		}
	} else {
		t.c.bytesOut.Add(uint64(len(out)))
	}
	t.c.rtpOut.Add(1)
	return nil
}

// WriteRTCP encrypts one plain RTCP compound packet and sends it as SRTCP.
// Errors, concurrency and allocation are as for WriteRTP.
func (t *Transport) WriteRTCP(pkt []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.tx == nil {
		return ErrNotConnected
	}
	out, err := t.tx.pion.EncryptRTCP(t.wbuf, pkt, &t.wRTCPHdr)
	if err != nil {
		return fmt.Errorf("wrtc: encrypt rtcp: %w", err)
	}
	if err := t.send(out); err != nil {
		return err
	}
	t.c.rtcpOut.Add(1)
	return nil
}

// packetWriter is where protected packets go: the ice.Conn of the
// transport (a discarding fake in benchmarks).
type packetWriter interface {
	Write(pkt []byte) (int, error)
}

// send writes one protected packet to the ICE path: straight from the Mux's
// socket when the selected pair is UDP, else through the ice.Conn. The
// caller holds t.wmu.
func (t *Transport) send(out []byte) error {
	if dst := t.dst.Load(); dst != nil {
		if err := t.cfg.Mux.tx.send(out, *dst); err != nil {
			return fmt.Errorf("wrtc: send: %w", err)
		}
		t.c.bytesOut.Add(uint64(len(out)))
		return nil
	}
	if _, err := t.path.Write(out); err != nil {
		if errors.Is(err, ice.ErrNoCandidatePairs) {
			return ErrNotConnected // between an ICE restart and the new nomination
		}
		return fmt.Errorf("wrtc: send: %w", err)
	}
	t.c.bytesOut.Add(uint64(len(out)))
	return nil
}

// Remote returns the peer's address on the selected ICE path when it runs
// over the Mux's UDP socket; invalid before a path is selected and over
// ICE-TCP. Safe for concurrent use; it does not allocate.
func (t *Transport) Remote() netip.AddrPort {
	if dst := t.dst.Load(); dst != nil {
		return *dst
	}
	return netip.AddrPort{}
}
