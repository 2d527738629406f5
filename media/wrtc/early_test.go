package wrtc

import (
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
)

// wireConn shows f every datagram written through it; pass (if set)
// decides which datagrams cross (out: written by the conn's owner), the
// others are lost as the network could lose them.
type wireConn struct {
	net.PacketConn
	f    func(pkt []byte)
	pass func(pkt []byte, out bool) bool
}

func (c wireConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.f != nil {
		c.f(p)
	}
	if c.pass != nil && !c.pass(p, true) {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c wireConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.pass == nil || c.pass(p[:n], false) {
			return n, addr, err
		}
	}
}

// wireMux is a pion UDP mux on 127.0.0.1 whose writes f sees and whose
// datagrams both ways pass filters (each may be nil).
func wireMux(tb testing.TB, f func(pkt []byte), pass func(pkt []byte, out bool) bool) ice.UDPMux {
	tb.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatalf("listen 127.0.0.1: %v", err)
	}
	m := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: wireConn{PacketConn: c, f: f, pass: pass}})
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

// TestFirstPacketsBeforeKeys: a browser sends SRTP the instant its DTLS
// client has our Finished, which can be before our server has installed the
// keys (under load, for a few hundred ms). Here our side waits, after its
// handshake, until pion's first packets have arrived; the sink must still
// get pion's very first packet, and nothing is counted as NotReady.
func TestFirstPacketsBeforeKeys(t *testing.T) {
	var first atomic.Int32 // sequence number of pion's first SRTP packet + 1
	pc := newPeer(t, peerOpts{wire: func(pkt []byte) {
		if Classify(pkt) == ClassRTP && len(pkt) >= 4 && first.Load() == 0 {
			first.Store(int32(binary.BigEndian.Uint16(pkt[2:])) + 1) // the SRTP header is in the clear
		}
	}})
	track := addTrack(t, pc, "opus")

	m := newTestMux(t, false)
	tr := newTestTransport(t, m)
	states := watchState(tr)
	tr.beforeKeys = func() { // pion's first SRTP is here before our keys
		deadline := time.Now().Add(waitLong)
		for tr.c.early.Load()+tr.c.notReady.Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}

	// pion writes from the start: packets before its SRTP session exists
	// go nowhere; the rest go out from the instant its DTLS is connected.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(1); seq < 10000; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = track.WriteRTP(&rtp.Packet{
				Header:  rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960},
				Payload: payloadN(int(seq)),
			})
		}
	}()
	t.Cleanup(func() { close(stop); <-done })

	rm := answerPion(t, tr, pc, offerFrom(t, pc, false), []mediaLine{opusLine})
	sink := newChanSink()
	tr.SetRoutes([]Route{{PTs: []uint8{opusLine.pt}, SSRCs: rm[0].ssrcs, Sink: sink}})
	states.connected(t)

	var raw []byte
	select {
	case raw = <-sink.rtp:
	case <-time.After(waitLong):
		t.Fatalf("no RTP from pion reached the sink; counters %+v", tr.Counters())
	}
	var p rtp.Packet
	if err := p.Unmarshal(raw); err != nil {
		t.Fatalf("sink got unparsable RTP: %v", err)
	}
	if want := first.Load() - 1; int32(p.SequenceNumber) != want {
		t.Fatalf("sink's first packet is seq %d, pion's first SRTP on the wire was %d; counters %+v",
			p.SequenceNumber, want, tr.Counters())
	}
	c := tr.Counters()
	if c.Early < 3 || c.NotReady != 0 {
		t.Fatalf("counters %+v: want Early >= 3 and NotReady 0", c)
	}
}
