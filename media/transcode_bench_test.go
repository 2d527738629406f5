package media

import (
	"encoding/binary"
	"math"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/sbc-project/sbc/media/codec"
)

// transcodeRig is a transcoded call whose reader facing side from is
// driven by hand, as forwardRig's: its source latched, the other side a
// loopback socket that drains. A offers offer, B allows and answers
// answer (one codec, "pt name/rate").
type transcodeRig struct {
	r   *reader
	src netip.AddrPort
	pkt []byte
	seq uint16
	ts  uint32
	dur uint32 // RTP clock units per packet
}

func newTranscodeRig(tb testing.TB, offer, answer string, from Side) *transcodeRig {
	tb.Helper()
	m := newTestManager(tb, 4, netip.Addr{}, nil)
	a, b := newPeer(tb, false), newPeer(tb, false)
	s := m.NewSession("call-transcode-bench")
	tb.Cleanup(s.Close)
	name := func(c string) string { n, _, _ := strings.Cut(strings.Fields(c)[1], "/"); return n }
	s.Configure(SideB, SideOptions{Codecs: []string{strings.ToLower(name(answer))}})
	if _, err := s.Offer(SideA, codecSDP(a, offer)); err != nil {
		tb.Fatalf("Offer: %v", err)
	}
	if _, err := s.Answer(SideB, codecSDP(b, answer)); err != nil {
		tb.Fatalf("Answer: %v", err)
	}
	if !s.Transcoded() {
		tb.Fatalf("%s ⇄ %s not transcoded", offer, answer)
	}
	peer, other, spec := a, b, offer
	if from == SideB {
		peer, other, spec = b, a, answer
	}
	go drain(other.rtp)
	st := s.streams[0]
	e := st.ends[from].(*rtpEndpoint)
	f := strings.Fields(spec)
	pt, _, _ := strings.Cut(f[0], " ")
	rig := &transcodeRig{r: &reader{in: e.rtp, e: e, f: st.flows[from]}, src: peer.rtp.LocalAddr().(*net.UDPAddr).AddrPort()}
	rig.pkt, rig.dur = tonePacket(tb, name(spec), pt)
	rig.next()
	rig.r.forward(rig.pkt, rig.src) // latch once, outside the measurement
	return rig
}

// next moves the packet on by one packet time, as a sender's next one.
func (r *transcodeRig) next() {
	r.seq++
	r.ts += r.dur
	binary.BigEndian.PutUint16(r.pkt[2:], r.seq)
	binary.BigEndian.PutUint32(r.pkt[4:], r.ts)
}

// tonePacket is an RTP packet of 20 ms of a 1 kHz tone in codec name, and
// its duration in RTP clock units.
func tonePacket(tb testing.TB, name, pt string) ([]byte, uint32) {
	tb.Helper()
	f := codec.Format{Name: name, ClockRate: 8000, Channels: 1}
	if strings.EqualFold(name, "opus") {
		f.ClockRate, f.Channels = 48000, 2
	}
	enc, err := codec.NewEncoder(f)
	if err != nil {
		tb.Fatal(err)
	}
	n := enc.SampleRate() / 50
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/float64(enc.SampleRate())))
	}
	pkt := make([]byte, 12, 12+1500)
	pkt[0] = 0x80
	p, _ := parsePTString(pt)
	pkt[1] = p
	binary.BigEndian.PutUint32(pkt[8:], 0x7a7a7a7a)
	pkt, err = enc.Encode(pkt, pcm)
	if err != nil {
		tb.Fatal(err)
	}
	return pkt, uint32(f.ClockRate / 50)
}

func parsePTString(s string) (uint8, bool) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return uint8(n), n < 128
}

// transcodeCases are the transcoded directions benchmarked: A's offer, B's
// answer, the side whose packets are measured. Opus only in a build with
// it.
func transcodeCases() map[string][3]string {
	cases := map[string][3]string{
		"pcmu-to-pcma": {"0 PCMU/8000", "8 PCMA/8000", "A"},
		"pcmu-to-g722": {"0 PCMU/8000", "9 G722/8000", "A"},
		"g722-to-pcmu": {"0 PCMU/8000", "9 G722/8000", "B"},
	}
	if codec.Supported("opus") {
		cases["opus-to-pcma"] = [3]string{"111 opus/48000/2", "8 PCMA/8000", "A"}
		cases["pcma-to-opus"] = [3]string{"111 opus/48000/2", "8 PCMA/8000", "B"}
		cases["opus-to-g722"] = [3]string{"111 opus/48000/2", "9 G722/8000", "A"}
		cases["g722-to-opus"] = [3]string{"111 opus/48000/2", "9 G722/8000", "B"}
	}
	return cases
}

func sideOf(s string) Side {
	if s == "B" {
		return SideB
	}
	return SideA
}

// TestTranscodedForwardDoesNotAllocate: the transcoded per-packet path
// (decode, resample, encode, normalize, send) allocates nothing either.
func TestTranscodedForwardDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for name, c := range transcodeCases() {
		rig := newTranscodeRig(t, c[0], c[1], sideOf(c[2]))
		before := rig.r.f.c.packets.Load()
		if n := testing.AllocsPerRun(500, func() { rig.next(); rig.r.forward(rig.pkt, rig.src) }); n != 0 {
			t.Errorf("%s: a transcoded packet allocates %.1f times, want 0", name, n)
		}
		if got := rig.r.f.c.packets.Load() - before; got < 500 {
			t.Errorf("%s: sent %d transcoded packets, want at least 500", name, got)
		}
	}
}

// BenchmarkTranscodedPacket measures one 20 ms packet of one direction of
// a transcoded call through the session's path, as BenchmarkRelayPacket's
// forward does for a relayed one (latch check, receive statistics, the
// transcoder, normalization, counters, write to the other side's
// socket), without the socket read. relay is the zero-copy path with the
// same moving sequence numbers, for comparison.
func BenchmarkTranscodedPacket(b *testing.B) {
	b.Run("relay", func(b *testing.B) {
		rig := newForwardRig(b)
		tr := &transcodeRig{r: rig.r, src: rig.src, pkt: rig.pkt, dur: 160}
		b.ReportAllocs()
		for b.Loop() {
			tr.next()
			tr.r.forward(tr.pkt, tr.src)
		}
	})
	for name, c := range transcodeCases() {
		b.Run(name, func(b *testing.B) {
			rig := newTranscodeRig(b, c[0], c[1], sideOf(c[2]))
			b.ReportAllocs()
			for b.Loop() {
				rig.next()
				rig.r.forward(rig.pkt, rig.src)
			}
		})
	}
}
