//go:build opus

package codec

import (
	"encoding/binary"
	"math"
	"testing"

	pionopus "github.com/pion/opus"
	"gopkg.in/hraban/opus.v2"
)

// opusPackets encodes seconds of a 1 kHz tone with libopus as a browser
// would (48 kHz, 20 ms, channels 1 or 2 with the tone in both, in-band
// FEC on, which makes libopus code speech-like audio in SILK or hybrid
// mode); with celt, FEC off (libopus then codes the tone in CELT).
func opusPackets(t testing.TB, channels int, seconds int, celt bool) [][]byte {
	enc, err := opus.NewEncoder(48000, channels, opus.AppVoIP)
	if err != nil {
		t.Fatal(err)
	}
	_ = enc.SetBitrate(32000 * channels)
	if !celt {
		_ = enc.SetInBandFEC(true)
		_ = enc.SetPacketLossPerc(10)
	}
	var ps [][]byte
	for i := range 50 * seconds {
		mono := sine(48000, 1000, 8000, i*960, 960)
		pcm := mono
		if channels == 2 {
			pcm = make([]int16, 0, 1920)
			for _, s := range mono {
				pcm = append(pcm, s, s/2) // louder on the left
			}
		}
		buf := make([]byte, 1500)
		n, err := enc.Encode(pcm, buf)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, buf[:n])
	}
	return ps
}

// TestOpusStereoDownmix: a stereo stream (a browser may send one)
// decodes to one mono channel carrying the tone.
func TestOpusStereoDownmix(t *testing.T) {
	dec, err := NewDecoder(fmtOpus)
	if err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	for _, p := range opusPackets(t, 2, 1, false) {
		pcm, err = dec.Decode(pcm, p)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(pcm) != 48000 {
		t.Fatalf("1 s decoded to %d samples, want 48000 (mono)", len(pcm))
	}
	// The mix of 8000 and 4000 in phase: 6000.
	checkTone(t, "downmixed", pcm[9600:], 48000, 1000, 6000, 12)
	checkTone(t, "downmixed, 0-4 kHz", band8k(pcm)[1600:], 8000, 1000, 6000, 25)
}

// TestOpusDTX: in discontinuous transmission a sender emits a one- to
// three-byte packet now and then during silence; those decode to
// near-silence of their duration, never noise.
func TestOpusDTX(t *testing.T) {
	enc, _ := opus.NewEncoder(48000, 1, opus.AppVoIP)
	_ = enc.SetDTX(true)
	dec, _ := NewDecoder(fmtOpus)
	small := 0
	buf := make([]byte, 1500)
	var pcm []int16
	for i := range 100 {
		in := make([]int16, 960)
		if i < 10 {
			in = sine(48000, 1000, 8000, i*960, 960)
		}
		n, err := enc.Encode(in, buf)
		if err != nil {
			t.Fatal(err)
		}
		if n <= 3 {
			small++
		}
		start := len(pcm)
		pcm, err = dec.Decode(pcm, buf[:n])
		if err != nil || len(pcm)-start != 960 {
			t.Fatalf("packet %d (%d bytes): %d samples, %v", i, n, len(pcm)-start, err)
		}
	}
	if small < 50 {
		t.Errorf("only %d DTX packets in 1.8 s of silence", small)
	}
	if r := rms(pcm[960*30:]); r > 50 {
		t.Errorf("silence decoded with RMS %.1f", r)
	}
	// An empty payload is concealed like a lost packet.
	n := len(pcm)
	pcm, _ = dec.Decode(pcm, nil)
	if len(pcm)-n != 960 {
		t.Errorf("empty payload gave %d samples", len(pcm)-n)
	}
}

// TestOpusDecoders compares libopus's decoder with pion's pure-Go one on
// the same libopus-encoded tone, in SILK/hybrid and in CELT mode (the
// evaluation in BENCHMARKS.md): both must decode it to the tone, and
// pion's output is compared with the reference decoder's.
func TestOpusDecoders(t *testing.T) {
	for _, c := range []struct {
		name   string
		celt   bool
		minSNR float64 // in the telephone band; CELT codes a lone tone coarsely
	}{{"silk", false, 30}, {"celt", true, 12}} {
		t.Run(c.name, func(t *testing.T) {
			ps := opusPackets(t, 1, 1, c.celt)
			lib, _ := NewDecoder(fmtOpus)
			var a []int16
			for _, p := range ps {
				a, _ = lib.Decode(a, p)
			}
			checkTone(t, "libopus, 0-4 kHz", band8k(a)[1600:], 8000, 1000, 8000, c.minSNR)
			pd := newPionDecoder(t)
			var b []int16
			for _, p := range ps {
				b = pd.decode(b, p)
			}
			if len(b) != len(a) {
				t.Fatalf("pion decoded %d samples, libopus %d", len(b), len(a))
			}
			checkTone(t, "pion/opus, 0-4 kHz", band8k(b)[1600:], 8000, 1000, 8000, c.minSNR)
			var sig, diff float64
			for i := range a {
				sig += float64(a[i]) * float64(a[i])
				diff += float64(a[i]-b[i]) * float64(a[i]-b[i])
			}
			t.Logf("pion/opus differs from libopus by %.1f dB below the signal", 10*math.Log10(sig/max(diff, 1)))
		})
	}
}

// band8k returns 48 kHz audio resampled to 8 kHz: what a telephone side
// hears of it.
func band8k(pcm []int16) []int16 {
	r, _ := NewResampler(48000, 8000)
	return r.Resample(nil, pcm)
}

type pionDecoder struct {
	t   testing.TB
	dec pionopus.Decoder
	out []int16
}

func newPionDecoder(t testing.TB) *pionDecoder {
	d, err := pionopus.NewDecoderWithOutput(48000, 1)
	if err != nil {
		t.Fatal(err)
	}
	return &pionDecoder{t: t, dec: d, out: make([]int16, 5760)}
}

func (p *pionDecoder) decode(pcm []int16, payload []byte) []int16 {
	n, err := p.dec.DecodeToInt16(payload, p.out)
	if err != nil {
		p.t.Fatal(err)
	}
	return append(pcm, p.out[:n]...)
}

// TestTranscodeOpusDTX: a browser in DTX sends, after speech, a one- or
// two-byte packet every 400 ms and nothing between (timestamps jump,
// sequence numbers do not). Toward PCMU that is a jump in time with the
// marker per packet sent, silence in the packets, and the To timeline
// keeping the From one's length.
func TestTranscodeOpusDTX(t *testing.T) {
	enc, _ := opus.NewEncoder(48000, 1, opus.AppVoIP)
	_ = enc.SetDTX(true)
	tr, err := NewTranscoder(Direction{From: fmtOpus, To: fmtPCMU, FromDTMF: -1, ToDTMF: -1, SSRC: 2})
	if err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, fmtPCMU, 2)
	var firstTS, lastTS uint32
	emit := func(p []byte) {
		ts := binary.BigEndian.Uint32(p[4:])
		if r.packets == 0 {
			firstTS = ts
		}
		lastTS = ts
		r.emit(p)
	}
	buf := make([]byte, 1500)
	seq, sentDTX, quiet, lastIn := uint16(1), 0, 0, 0
	for i := range 150 { // 3 s: 0.4 s of tone, then silence
		in := make([]int16, 960)
		if i < 20 {
			in = sine(48000, 1000, 8000, i*960, 960)
		}
		n, _ := enc.Encode(in, buf)
		if n <= 2 {
			if quiet++; quiet%20 != 1 {
				continue // not sent, as WebRTC does in DTX
			}
			sentDTX++
		}
		_ = tr.Packet(rtpPacket(111, i == 0, seq, uint32(i*960), 0x77, buf[:n]), emit)
		seq++
		lastIn = i
	}
	if sentDTX < 4 || r.jumps < sentDTX-1 {
		t.Errorf("%d DTX packets sent, %d jumps in the PCMU stream", sentDTX, r.jumps)
	}
	if span, want := lastTS-firstTS, uint32(lastIn*160); span != want {
		t.Errorf("PCMU timeline spans %d ticks, the Opus one %d", span, want)
	}
	if q := rms(r.pcm[len(r.pcm)-800:]); q > 100 {
		t.Errorf("DTX silence decoded with RMS %.0f", q)
	}
}
