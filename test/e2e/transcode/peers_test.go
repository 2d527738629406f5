package transcode

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sbc-project/sbc/media/codec"
)

// needOpus fails the test in a build without Opus: CI runs this package
// with -tags opus (scripts/test.sh), and a build that lost it must not
// pass by skipping.
func needOpus(t *testing.T) {
	t.Helper()
	if !codec.Supported("opus") {
		t.Fatal("this build has no Opus: run with -tags opus (Debian libopus-dev)")
	}
}

// Payload types of the Opus-only browser.
const (
	ptOpus    = 111
	ptEvent48 = 110 // telephone-event/48000
)

// opusAPI is a pion API that offers only Opus and telephone-event at
// 48 kHz, as many mobile and web SDKs do; host candidates on loopback.
func opusAPI(t *testing.T) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: ptOpus},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 48000,
			SDPFmtpLine: "0-16"}, PayloadType: ptEvent48},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
}

// rawTrack writes packets as they are (payload type included) with the
// SSRC pion bound: RFC 4733 events share the audio's stream.
type rawTrack struct {
	mu       sync.Mutex
	w        webrtc.TrackLocalWriter
	ssrc     uint32
	pt, evPT uint8 // the negotiated Opus and telephone-event/48000 payload types
}

func (r *rawTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evPT = ptEvent48
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, "audio/telephone-event") && c.ClockRate == 48000 {
			r.evPT = uint8(c.PayloadType)
		}
	}
	for _, c := range ctx.CodecParameters() {
		if !strings.EqualFold(c.MimeType, "audio/telephone-event") {
			r.w, r.ssrc, r.pt = ctx.WriteStream(), uint32(ctx.SSRC()), uint8(c.PayloadType)
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, fmt.Errorf("no audio codec among %v", ctx.CodecParameters())
}

func (r *rawTrack) Unbind(webrtc.TrackLocalContext) error {
	r.mu.Lock()
	r.w = nil
	r.mu.Unlock()
	return nil
}

func (r *rawTrack) ID() string                { return "audio" }
func (r *rawTrack) RID() string               { return "" }
func (r *rawTrack) StreamID() string          { return "opus-app" }
func (r *rawTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// write sends one packet; event says it is telephone-event, else Opus
// (the negotiated payload types).
func (r *rawTrack) write(h rtp.Header, payload []byte, event bool) bool {
	r.mu.Lock()
	w, ssrc, pt, evPT := r.w, r.ssrc, r.pt, r.evPT
	r.mu.Unlock()
	if w == nil {
		return false
	}
	h.SSRC, h.PayloadType = ssrc, pt
	if event {
		h.PayloadType = evPT
	}
	n, err := w.WriteRTP(&h, payload)
	return err == nil && n > 0
}

// opusPeer is a pion peer that speaks only Opus: it sends a 1 kHz tone,
// a digit when asked, and collects the audio it receives.
type opusPeer struct {
	t     *testing.T
	pc    *webrtc.PeerConnection
	out   *rawTrack
	digit chan byte

	mu  sync.Mutex
	got []int16 // decoded audio received, 48 kHz
	dec codec.Decoder
}

func newOpusPeer(t *testing.T) *opusPeer {
	t.Helper()
	pc, err := opusAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := codec.NewDecoder(codec.Format{Name: "opus", ClockRate: 48000, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	b := &opusPeer{t: t, pc: pc, out: &rawTrack{}, digit: make(chan byte, 1), dec: dec}
	if _, err := pc.AddTransceiverFromTrack(b.out, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			// Opus with the payload type negotiated (the SBC's, when it
			// made the offer), not telephone-event.
			if !strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeOpus) || p.PayloadType != uint8(tr.PayloadType()) {
				continue
			}
			b.mu.Lock()
			b.got, _ = b.dec.Decode(b.got, p.Payload)
			b.mu.Unlock()
		}
	})
	t.Cleanup(func() { pc.Close() })
	return b
}

// offer is the browser's offer with its candidates; restart: an ICE
// restart (new credentials).
func (b *opusPeer) offer(restart bool) string {
	b.t.Helper()
	o, err := b.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err != nil {
		b.t.Fatal(err)
	}
	if err := b.pc.SetLocalDescription(o); err != nil {
		b.t.Fatal(err)
	}
	if !gatheringCompletes(b.pc) {
		b.t.Fatal("ICE gathering did not complete")
	}
	return b.pc.LocalDescription().SDP
}

// answerOffer takes the SBC's offer and returns the browser's answer
// with its candidates.
func (b *opusPeer) answerOffer(offer string) (string, error) {
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", err
	}
	a, err := b.pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	if err := b.pc.SetLocalDescription(a); err != nil {
		return "", err
	}
	if !gatheringCompletes(b.pc) {
		return "", errors.New("ICE gathering did not complete")
	}
	return b.pc.LocalDescription().SDP, nil
}

func (b *opusPeer) answer(sdp string) {
	b.t.Helper()
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		b.t.Fatalf("set answer: %v\n%s", err, sdp)
	}
}

// received returns the audio received so far.
func (b *opusPeer) received() []int16 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int16(nil), b.got...)
}

// send streams a 1 kHz tone in 20 ms Opus packets until stop, replacing
// it by an RFC 4733 event train (100 ms, at 48 kHz) when a digit is
// queued, as browsers do.
func (b *opusPeer) send(stop <-chan struct{}) {
	enc, err := codec.NewEncoder(codec.Format{Name: "opus", ClockRate: 48000, Channels: 2})
	if err != nil {
		b.t.Error(err)
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	var buf []byte
	for frame := 0; ; frame++ {
		select {
		case <-stop:
			return
		case d := <-b.digit:
			for i, p := range eventTrain(d, 4800, 960) {
				h := rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: i == 0}
				b.out.write(h, p, true)
				seq++
				if i < 4 {
					<-tick.C
				}
			}
			ts += 4800
		case <-tick.C:
			buf, _ = enc.Encode(buf[:0], sine(1000, 48000, frame*960, 960))
			if b.out.write(rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts}, buf, false) {
				seq++
			}
			ts += 960
		}
	}
}

// eventTrain is the payloads of one RFC 4733 event of digit lasting
// total clock units, an update every step units, then three end packets.
func eventTrain(digit byte, total, step int) [][]byte {
	code := digit - '0'
	var out [][]byte
	for d := step; d <= total; d += step {
		out = append(out, []byte{code, 10, byte(d >> 8), byte(d)})
	}
	for range 3 {
		out = append(out, []byte{code, 0x80 | 10, byte(total >> 8), byte(total)})
	}
	return out
}

// farEnd is a SIP side's RTP socket that records the audio (decoded as
// name) and the RFC 4733 events (payload type evPT) it receives, and
// with echo sends every packet back where it came from.
type farEnd struct {
	c      *net.UDPConn
	name   string
	pt     uint8
	evPT   uint8
	mu     sync.Mutex
	pcm    []int16
	events [][]byte // RTP payloads of the events
}

func newFarEnd(t *testing.T, c *net.UDPConn, name string, pt, evPT uint8, echo bool) *farEnd {
	f := &farEnd{c: c, name: name, pt: pt, evPT: evPT}
	dec, err := codec.NewDecoder(codec.Format{Name: name, ClockRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil || n < 12 {
				continue
			}
			if echo {
				c.WriteToUDP(buf[:n], from)
			}
			f.mu.Lock()
			switch buf[1] & 0x7f {
			case pt:
				f.pcm, _ = dec.Decode(f.pcm, buf[12:n])
			case evPT:
				f.events = append(f.events, append([]byte(nil), buf[12:n]...))
			}
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return f
}

func (f *farEnd) audio() []int16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int16(nil), f.pcm...)
}

// endedEvent returns the first event with its E bit, if one came.
func (f *farEnd) endedEvent() ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.events {
		if len(e) >= 4 && e[1]&0x80 != 0 {
			return e, true
		}
	}
	return nil, false
}

// gatheringCompletes waits, at most 10 s, until pc's ICE gathering is
// complete. It reads the state rather than using
// webrtc.GatheringCompletePromise: an ICE restart starts gathering in
// CreateOffer, and pion (4.2.20) takes the completion handler when its
// last candidate comes, so a promise made meanwhile can miss it while
// the state it checks still says gathering (a CI run timed out so).
func gatheringCompletes(pc *webrtc.PeerConnection) bool {
	deadline := time.Now().Add(10 * time.Second)
	for pc.ICEGatheringState() != webrtc.ICEGatheringStateComplete {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
