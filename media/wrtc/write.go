package wrtc

import (
	"errors"
	"fmt"

	"github.com/pion/ice/v4"
)

// WriteRTP encrypts one plain RTP packet (header and payload) and sends it
// over the selected ICE path. pkt is not modified or retained. It returns
// ErrNotConnected, without allocating, before DTLS is up, after a failure or
// Close, and while an ICE restart has no path yet. Safe for concurrent use:
// writers are serialized by the transport; the call does not allocate.
func (t *Transport) WriteRTP(pkt []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.tx == nil {
		return ErrNotConnected
	}
	out, err := t.tx.EncryptRTP(t.wbuf, pkt, &t.wRTPHdr)
	if err != nil {
		return fmt.Errorf("wrtc: encrypt rtp: %w", err)
	}
	if err := t.send(out); err != nil {
		return err
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
	out, err := t.tx.EncryptRTCP(t.wbuf, pkt, &t.wRTCPHdr)
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
