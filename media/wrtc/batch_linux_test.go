package wrtc

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sbc-project/sbc/media/poll"
)

// batchSink keeps every packet it is handed, without copying it: a
// packet handed through RTPBatch must stay intact until the batch's
// flush, while the reader goes on with the next ones.
type batchSink struct {
	direct  int
	batched [][]byte
}

func (s *batchSink) RTP([]byte)                         { s.direct++ }
func (s *batchSink) RTCP([]byte)                        {}
func (s *batchSink) RTPBatch(pkt []byte, _ *poll.Batch) { s.batched = append(s.batched, pkt) }

// newTestBatch returns a poll loop's send batch, or skips without
// io_uring.
func newTestBatch(t *testing.T) *poll.Batch {
	t.Helper()
	b, err := poll.NewBatch()
	if err != nil {
		t.Skipf("no io_uring on this kernel: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// TestDecryptIntoBatch: a packet a poll loop read is decrypted into its
// batch's scratch and handed to a BatchSink, so that each of a wake-up's
// packets is still intact at the flush (decrypted into the demux's one
// buffer, each would overwrite the last); the plain packets are those
// the peer encrypted, as on the direct path. Without a batch, RTP is
// called as before.
func TestDecryptIntoBatch(t *testing.T) {
	for _, profile := range benchProfiles {
		t.Run(profileName(profile), func(t *testing.T) {
			k := newKeyedDemux(t, profile)
			sink := &batchSink{}
			k.d.routes.Store(newRouteTable([]Route{{SSRCs: []uint32{testSSRC}, Sink: sink}}))
			b := newTestBatch(t)
			const n = 20
			var plain [][]byte
			for seq := range n {
				p := rtpPacket(t, testSSRC, testPT, uint16(seq), payloadN(seq))
				plain = append(plain, p)
				k.d.handleVia(k.srtpPacket(t, testSSRC, testPT, uint16(seq), payloadN(seq)), b)
			}
			if len(sink.batched) != n || sink.direct != 0 {
				t.Fatalf("%d packets through RTPBatch and %d through RTP, want %d and 0", len(sink.batched), sink.direct, n)
			}
			for i, got := range sink.batched {
				if !bytes.Equal(got, plain[i]) {
					t.Fatalf("packet %d before the flush:\n got %x\nwant %x", i, got, plain[i])
				}
			}
			b.Flush()
			k.d.handleVia(k.srtpPacket(t, testSSRC, testPT, n, payloadN(n)), nil)
			if sink.direct != 1 {
				t.Fatalf("without a batch: %d packets through RTP, want 1", sink.direct)
			}
		})
	}
}

// muxPeer returns a Mux on a loopback socket of this package's range and
// a peer socket to send to.
func muxPeer(t *testing.T) (*Mux, *net.UDPConn) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 44, 61)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	m, err := NewMux(MuxConfig{UDP: conn})
	if err != nil {
		t.Fatalf("NewMux: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 44, 62)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { peer.Close() })
	return m, peer
}

// TestWriteRTPBatchLikeWriteRTP: packets written with WriteRTPBatch leave
// from the Mux's socket at the flush, in order, and decrypt to what was
// written, as WriteRTP's do; the transport's counters count them alike.
func TestWriteRTPBatchLikeWriteRTP(t *testing.T) {
	for _, profile := range benchProfiles {
		t.Run(profileName(profile), func(t *testing.T) {
			m, peer := muxPeer(t)
			k := newKeyedDemux(t, profile)
			tr := &Transport{tx: k.send, path: discardPath{}, wbuf: make([]byte, maxPacket+srtpOverhead), cfg: Config{Mux: m}}
			to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
			tr.dst.Store(&to)
			b := newTestBatch(t)
			const n = 10
			var plain [][]byte
			for seq := range 2 * n {
				p := rtpPacket(t, testSSRC, testPT, uint16(seq), payloadN(seq))
				plain = append(plain, bytes.Clone(p))
				var err error
				if seq < n {
					err = tr.WriteRTP(p)
				} else {
					err = tr.WriteRTPBatch(p, b, nil, 0)
				}
				if err != nil {
					t.Fatalf("write %d: %v", seq, err)
				}
			}
			b.Flush()
			peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, maxPacket)
			for i := range 2 * n {
				nr, from, err := peer.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				if from != m.Addr() {
					t.Fatalf("packet %d from %s, want the Mux's %s", i, from, m.Addr())
				}
				k.d.handle(buf[:nr])
				if !bytes.Equal(k.sink.last, plain[i]) {
					t.Fatalf("packet %d decrypts to\n%x\nwant\n%x", i, k.sink.last, plain[i])
				}
			}
			if c := tr.c.snapshot(); c.RTPOut != 2*n {
				t.Fatalf("RTPOut = %d, want %d", c.RTPOut, 2*n)
			}
		})
	}
}

// failCount is a poll.Failer that counts.
type failCount struct{ n int }

func (f *failCount) SendFailed(int, int) { f.n++ }

// TestWriteRTPBatchFailure: a queued send the kernel refuses (toward port
// 0: EINVAL) reaches its Failer at the flush, as WriteRTP's error would
// have said at once.
func TestWriteRTPBatchFailure(t *testing.T) {
	m, _ := muxPeer(t)
	k := newKeyedDemux(t, benchProfiles[0])
	tr := &Transport{tx: k.send, path: discardPath{}, wbuf: make([]byte, maxPacket+srtpOverhead), cfg: Config{Mux: m}}
	to := netip.MustParseAddrPort("127.0.44.62:0")
	tr.dst.Store(&to)
	pkt := rtpPacket(t, testSSRC, testPT, 1, payloadN(1))
	if err := tr.WriteRTP(pkt); err == nil {
		t.Fatal("WriteRTP to port 0: no error")
	}
	b := newTestBatch(t)
	f := &failCount{}
	binary.BigEndian.PutUint16(pkt[2:], 2)
	if err := tr.WriteRTPBatch(pkt, b, f, 0); err != nil {
		t.Fatalf("WriteRTPBatch: %v", err)
	}
	b.Flush()
	if f.n != 1 {
		t.Fatalf("%d failures reported, want 1", f.n)
	}
}

// TestBatchPathsDoNotAllocate: decrypting into a batch and encrypting
// into one, flush included, allocate nothing.
func TestBatchPathsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	m, peer := muxPeer(t)
	go func() {
		buf := make([]byte, maxPacket)
		for {
			if _, err := peer.Read(buf); err != nil {
				return
			}
		}
	}()
	f := newDecryptFeed(t, benchProfiles[0], 200)
	f.k.d.routes.Store(newRouteTable([]Route{{SSRCs: []uint32{testSSRC}, Sink: &nopBatchSink{}}}))
	b := newTestBatch(t)
	f.k.d.handleVia(f.pkts[0], b)
	f.next = 1
	if n := testing.AllocsPerRun(100, func() { f.k.d.handleVia(f.pkts[f.next], b); f.next++; b.Flush() }); n != 0 {
		t.Errorf("decrypt into a batch: %v allocs per packet", n)
	}
	tr := &Transport{tx: f.k.send, path: discardPath{}, wbuf: make([]byte, maxPacket+srtpOverhead), cfg: Config{Mux: m}}
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	tr.dst.Store(&to)
	pkt := rtpPacket(t, testSSRC, testPT, 0, payloadN(0))
	fc := &failCount{}
	var seq uint16
	if n := testing.AllocsPerRun(100, func() {
		seq++
		binary.BigEndian.PutUint16(pkt[2:], seq)
		_ = tr.WriteRTPBatch(pkt, b, fc, 0)
		b.Flush()
	}); n != 0 {
		t.Errorf("encrypt into a batch: %v allocs per packet", n)
	}
}

// nopBatchSink takes packets and does nothing.
type nopBatchSink struct{ nopSink }

func (*nopBatchSink) RTPBatch([]byte, *poll.Batch) {}

// TestMuxOnGivenEngine: a Mux given a poll engine is read by that
// engine's loops (not the process's poller), hands its datagrams on, and
// lets go of its socket at Close; a Mux closed after its engine stopped
// closes too.
func TestMuxOnGivenEngine(t *testing.T) {
	eng := poll.NewEngine(poll.Config{Loops: 1, BufSize: maxPacket})
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 44, 63)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	m, err := NewMux(MuxConfig{UDP: conn, Poll: eng})
	if err != nil {
		t.Fatalf("NewMux: %v", err)
	}
	if n := eng.Loop(0).Sockets(); n != 1 {
		t.Fatalf("%d sockets on the given engine's loop, want 1", n)
	}
	poller.mu.Lock()
	shared := poller.eng
	poller.mu.Unlock()
	if shared != nil {
		t.Fatal("the process's poller runs for a Mux given an engine")
	}
	peer, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 44, 64)}, net.UDPAddrFromAddrPort(m.Addr()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer peer.Close()
	if _, err := peer.Write([]byte{0x80, 0, 0, 1}); err != nil {
		t.Fatalf("write: %v", err)
	}
	waitUntil(t, "the datagram read", func() bool { return m.socks[0].got.Load() == 1 })
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := eng.Loop(0).Sockets(); n != 0 {
		t.Fatalf("%d sockets on the loop after Close, want 0", n)
	}

	conn2, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 44, 63)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	m2, err := NewMux(MuxConfig{UDP: conn2, Poll: eng})
	if err != nil {
		t.Fatalf("NewMux: %v", err)
	}
	eng.Stop()
	done := make(chan error, 1)
	go func() { done <- m2.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close after the engine stopped: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close after the engine stopped hangs")
	}
}

// waitUntil polls cond every millisecond for up to 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 5000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
