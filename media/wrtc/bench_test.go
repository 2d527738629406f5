package wrtc

import (
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
)

// benchProfiles are the SRTP profiles DTLS negotiates, in our preference order.
var benchProfiles = []srtp.ProtectionProfile{
	srtp.ProtectionProfileAeadAes256Gcm,
	srtp.ProtectionProfileAeadAes128Gcm,
	srtp.ProtectionProfileAes128CmHmacSha1_80,
}

// discardPath stands in for the ICE path.
type discardPath struct{}

func (discardPath) Write(p []byte) (int, error) { return len(p), nil }

// nopSink takes packets and does nothing.
type nopSink struct{}

func (nopSink) RTP([]byte)  {}
func (nopSink) RTCP([]byte) {}

// newSendOnly returns a transport whose send path is keyed for profile and
// writes to nowhere.
func newSendOnly(tb testing.TB, profile srtp.ProtectionProfile) *Transport {
	tb.Helper()
	k := newKeyedDemux(tb, profile)
	return &Transport{tx: k.send, path: discardPath{}, wbuf: make([]byte, maxPacket+srtpOverhead)}
}

// decryptFeed pre-encrypts packets with increasing sequence numbers in
// batches, so the replay window accepts each one once.
type decryptFeed struct {
	k     *keyedDemux
	plain []byte
	pkts  [][]byte
	next  int
	seq   uint16
}

func newDecryptFeed(tb testing.TB, profile srtp.ProtectionProfile, batch int) *decryptFeed {
	k := newKeyedDemux(tb, profile)
	k.d.routes.Store(newRouteTable([]Route{{SSRCs: []uint32{testSSRC}, Sink: nopSink{}}}))
	f := &decryptFeed{k: k, plain: rtpPacket(tb, testSSRC, testPT, 0, payloadN(0)), pkts: make([][]byte, batch)}
	f.refill(tb)
	return f
}

func (f *decryptFeed) refill(tb testing.TB) {
	for i := range f.pkts {
		f.seq++
		binary.BigEndian.PutUint16(f.plain[2:], f.seq)
		out, err := f.k.peer.EncryptRTP(f.pkts[i][:0], f.plain, nil)
		if err != nil {
			tb.Fatal(err)
		}
		f.pkts[i] = out
	}
	f.next = 0
}

// BenchmarkDecryptPath: SRTP in, classified, authenticated, decrypted and
// routed to a sink (160-byte payload).
func BenchmarkDecryptPath(b *testing.B) {
	for _, profile := range benchProfiles {
		b.Run(profileName(profile), func(b *testing.B) {
			f := newDecryptFeed(b, profile, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if f.next == len(f.pkts) {
					b.StopTimer()
					f.refill(b)
					b.StartTimer()
				}
				f.k.d.handle(f.pkts[f.next])
				f.next++
			}
			b.StopTimer()
			if c := f.k.c.snapshot(); c.RTPIn != uint64(b.N) {
				b.Fatalf("delivered %d of %d: %+v", c.RTPIn, b.N, c)
			}
		})
	}
}

// BenchmarkEncryptPath: plain RTP in, SRTP out through WriteRTP (160-byte
// payload), to a discarding path.
func BenchmarkEncryptPath(b *testing.B) {
	for _, profile := range benchProfiles {
		b.Run(profileName(profile), func(b *testing.B) {
			tr := newSendOnly(b, profile)
			pkt := rtpPacket(b, testSSRC, testPT, 0, payloadN(0))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				binary.BigEndian.PutUint16(pkt[2:], uint16(i))
				if err := tr.WriteRTP(pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestHotPathAllocs: the RTP decrypt and encrypt paths allocate nothing.
// RTCP (about one packet per second and stream) is measured too: with the
// GCM profile pion/srtp allocates its AAD once per SRTCP packet.
func TestHotPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, profile := range benchProfiles {
		t.Run(profileName(profile), func(t *testing.T) {
			rtcpBudget := 0.0
			if tagLen, _ := profile.AEADAuthTagLen(); tagLen > 0 { // AEAD (GCM)
				rtcpBudget = 1
			}
			f := newDecryptFeed(t, profile, 200)
			f.k.d.handle(f.pkts[0]) // the first packet of an SSRC creates its state
			f.next = 1
			if n := testing.AllocsPerRun(100, func() {
				f.k.d.handle(f.pkts[f.next])
				f.next++
			}); n != 0 {
				t.Errorf("RTP decrypt path: %v allocs per packet", n)
			}
			rtcpIn := make([][]byte, 102)
			for i := range rtcpIn {
				rtcpIn[i] = f.k.srtcpPacket(t, testSSRC)
			}
			f.k.d.handle(rtcpIn[0])
			i := 1
			if n := testing.AllocsPerRun(100, func() { f.k.d.handle(rtcpIn[i]); i++ }); n > rtcpBudget {
				t.Errorf("RTCP decrypt path: %v allocs per packet", n)
			}

			tr := newSendOnly(t, profile)
			pkt := rtpPacket(t, testSSRC, testPT, 0, payloadN(0))
			rtcpPkt := []byte{0x80, 201, 0, 1, 0, 0, 0, 1}
			_ = tr.WriteRTP(pkt)
			_ = tr.WriteRTCP(rtcpPkt)
			var seq uint16
			if n := testing.AllocsPerRun(100, func() {
				seq++
				binary.BigEndian.PutUint16(pkt[2:], seq)
				_ = tr.WriteRTP(pkt)
			}); n != 0 {
				t.Errorf("RTP encrypt path: %v allocs per packet", n)
			}
			if n := testing.AllocsPerRun(100, func() { _ = tr.WriteRTCP(rtcpPkt) }); n > rtcpBudget {
				t.Errorf("RTCP encrypt path: %v allocs per packet", n)
			}
			idle := &Transport{}
			if n := testing.AllocsPerRun(100, func() { _ = idle.WriteRTP(pkt); _ = idle.WriteRTCP(rtcpPkt) }); n != 0 {
				t.Errorf("ErrNotConnected path: %v allocs", n)
			}
		})
	}
}

// atomicSink counts RTP packets for a reader on another goroutine and
// hands a token back per packet: a sender that takes one before each
// packet keeps at most cap(tokens) in flight, blocking (not spinning)
// meanwhile, so the reader's wake-up is not delayed by a busy CPU.
type atomicSink struct {
	rtp    atomic.Uint64
	tokens chan struct{}
}

func newAtomicSink(window int) *atomicSink {
	s := &atomicSink{tokens: make(chan struct{}, window)}
	for range window {
		s.tokens <- struct{}{}
	}
	return s
}

func (s *atomicSink) RTP([]byte) {
	s.rtp.Add(1)
	select {
	case s.tokens <- struct{}{}:
	default:
	}
}
func (s *atomicSink) RTCP([]byte) {}

// drain waits until every token is back: nothing is in flight.
func (s *atomicSink) drain(tb testing.TB, window int) {
	for range window {
		select {
		case <-s.tokens:
		case <-time.After(waitLong):
			tb.Fatal("packets lost in flight")
		}
	}
}

// BenchmarkMuxReceive: SRTP datagrams over loopback into a Mux, read by its
// reader and, from a routed (validated) address, decrypted and handed to a
// Sink on that goroutine: the per-packet receive cost of a browser's media,
// both ends' system calls included. The sender keeps at most 32 packets in
// flight, so the socket never drops.
func BenchmarkMuxReceive(b *testing.B) {
	profile := srtp.ProtectionProfileAeadAes128Gcm
	m := newTestMux(b, false)
	f := newDecryptFeed(b, profile, 4096)
	const window = 32
	sink := newAtomicSink(window)
	f.k.d.routes.Store(newRouteTable([]Route{{SSRCs: []uint32{testSSRC}, Sink: sink}}))
	tr := &Transport{d: f.k.d, c: counters{}}
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	m.route(peer.LocalAddr().(*net.UDPAddr).AddrPort(), tr)
	defer m.unroute(tr)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		<-sink.tokens
		if f.next == len(f.pkts) {
			b.StopTimer()
			f.refill(b)
			b.StartTimer()
		}
		if _, err := peer.WriteToUDPAddrPort(f.pkts[f.next], m.Addr()); err != nil {
			b.Fatal(err)
		}
		f.next++
	}
	sink.drain(b, window)
	b.StopTimer()
	if c := f.k.c.snapshot(); c.RTPIn != uint64(b.N) {
		b.Fatalf("delivered %d of %d: %+v", c.RTPIn, b.N, c)
	}
}
