package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// WebDTMFPT is the telephone-event payload type the browser offers (what
// Chrome uses for telephone-event/8000); the PBX uses PBXDTMFPT.
const WebDTMFPT = 126

// WebPhone is a browser: SIP over a WebSocket and a pion PeerConnection
// with one audio transceiver (ICE over UDP4 on loopback, DTLS-SRTP,
// rtcp-mux, BUNDLE). It sends 50 packets per second with the payload
// marker "WEB1" once the answer is in, and counts the decrypted RTP it
// receives. RFC 4733 digits go out on the same SSRC with the negotiated
// payload type, as browsers send them.
type WebPhone struct {
	T   *testing.T
	SIP *SIPClient
	PC  *webrtc.PeerConnection
	Out *rawTrack
	Src *RTPSource
	Rx  *RTPStats
	Dlg *sipDialog

	Answer        string // the remote description applied
	AnswerChanged bool   // a later answer named another ICE/DTLS transport

	DTLSConnected atomic.Int32 // times the DTLS transport went connected
	Tracks        atomic.Int32 // OnTrack calls (again for one SSRC after a hold answer without a=ssrc)
	iceMu         sync.Mutex
	iceStates     []webrtc.ICEConnectionState

	mu     sync.Mutex // guards closed against wg.Add in OnTrack
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// NewWebPhone connects a browser to the SBC's WebSocket listener. It is
// closed when the test ends.
func NewWebPhone(t *testing.T, sbc *SBC) *WebPhone {
	t.Helper()
	return NewWebPhoneOn(t, WebAPI(t), func() *SIPClient { return NewSIPClient(t, "WS", sbc.WS.String()) })
}

// NewWebPhoneOn is NewWebPhone with the browser's pion API and its SIP
// connection made by dial.
func NewWebPhoneOn(t *testing.T, api *webrtc.API, dial func() *SIPClient) *WebPhone {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatalf("browser: peer connection: %v", err)
	}
	p := &WebPhone{T: t, PC: pc, Out: &rawTrack{}, Src: NewRTPSource("WEB1", PTPCMU, WebDTMFPT),
		Rx: newRTPStats(WebDTMFPT), done: make(chan struct{})}
	tr, err := pc.AddTransceiverFromTrack(p.Out, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	if err != nil {
		t.Fatalf("browser: transceiver: %v", err)
	}
	p.Out.src = p.Src
	tr.Sender().Transport().OnStateChange(func(s webrtc.DTLSTransportState) {
		if s == webrtc.DTLSTransportStateConnected {
			p.DTLSConnected.Add(1)
		}
	})
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		p.iceMu.Lock()
		p.iceStates = append(p.iceStates, s)
		p.iceMu.Unlock()
	})
	pc.OnTrack(p.onTrack)
	p.wg.Go(func() { p.drainRTCP(tr.Sender()) })
	p.wg.Go(p.sendLoop)
	p.SIP = dial()
	p.SIP.Handle(p.OnRequest)
	t.Cleanup(p.Close)
	return p
}

// WebAPI is a pion API set up like a browser on a test host: PCMU, opus
// and telephone-event; host candidates over UDP4 on loopback only, no
// mDNS; and unsignaled SSRCs accepted on the single m-line, as Chrome does.
func WebAPI(t *testing.T) *webrtc.API {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return BrowserAPI(t, se)
}

// BrowserAPI is WebAPI with se's network settings.
func BrowserAPI(t *testing.T, se webrtc.SettingEngine) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: PTPCMU},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 8000,
			SDPFmtpLine: "0-16"}, PayloadType: WebDTMFPT},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatalf("browser: register codec: %v", err)
		}
	}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetHandleUndeclaredSSRCWithoutAnswer(true)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
}

func (p *WebPhone) onTrack(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	p.Tracks.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := track.Read(buf)
			if n > 0 {
				p.Rx.add(buf[:n], time.Now())
			}
			if err != nil && (n == 0 || errors.Is(err, io.EOF)) {
				return
			}
		}
	})
}

func (p *WebPhone) drainRTCP(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

func (p *WebPhone) sendLoop() {
	tick := time.NewTicker(FrameInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
			p.Out.send()
		}
	}
}

// close hangs nothing up: it stops the media, the PeerConnection and the
// WebSocket. Idempotent.
func (p *WebPhone) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	p.mu.Unlock()
	if err := p.PC.Close(); err != nil {
		p.T.Logf("browser: close: %v", err)
	}
	p.wg.Wait()
	p.SIP.close()
}

// offer creates an offer, applies it locally and returns it with every
// candidate (no trickle ICE over SIP).
func (p *WebPhone) offer() string {
	p.T.Helper()
	o, err := p.PC.CreateOffer(nil)
	if err != nil {
		p.T.Fatalf("browser: create offer: %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(p.PC)
	if err := p.PC.SetLocalDescription(o); err != nil {
		p.T.Fatalf("browser: set local offer: %v", err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		p.T.Fatal("browser: ICE gathering did not complete")
	}
	return p.PC.LocalDescription().SDP
}

// dial sends the INVITE with the browser's offer; awaitAnswer completes it.
func (p *WebPhone) Dial(user string) {
	p.Dlg = p.SIP.Invite(user, p.offer())
}

// awaitAnswer waits for the final response to the INVITE, applying the
// first SDP answer (from a 18x or the 2xx) as the remote description, and
// ACKs a 2xx. A later SDP is only compared: it must name the same ICE/DTLS
// transport. (JsSIP sets a 183's SDP as "pranswer" and the 200's as
// "answer"; pion v4 starts its ICE and DTLS transports on both, so here
// the first SDP is the answer.)
func (p *WebPhone) AwaitAnswer() sip.Response {
	p.T.Helper()
	res := p.Dlg.Await(1, 20*time.Second, p.early)
	if res.StatusCode() >= 300 {
		return res
	}
	p.Dlg.Established(res)
	if res.Body() != "" {
		p.applyAnswer(res.Body())
	}
	p.Dlg.Ack()
	return res
}

// early applies the SDP of a provisional response.
func (p *WebPhone) early(r sip.Response) {
	if r.Body() != "" {
		p.applyAnswer(r.Body())
	}
}

// progress handles the INVITE's provisional responses until cond holds;
// the final response, if it comes meanwhile, is kept for awaitAnswer.
func (p *WebPhone) Progress(what string, timeout time.Duration, cond func() bool) {
	p.T.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p.Dlg.pump(1, p.early)
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			p.T.Fatalf("browser: timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call places a call and fails the test unless it is answered.
func (p *WebPhone) Call(user string) {
	p.T.Helper()
	p.Dial(user)
	if res := p.AwaitAnswer(); res.StatusCode() != 200 {
		p.T.Fatalf("browser: call to %s answered %d %s", user, res.StatusCode(), res.Reason())
	}
}

func (p *WebPhone) applyAnswer(sdp string) {
	p.T.Helper()
	if p.Answer != "" {
		if transportOf(sdp) != transportOf(p.Answer) {
			p.AnswerChanged = true
			p.T.Logf("browser: a later answer changes the transport:\n%s\nfirst:\n%s", sdp, p.Answer)
		}
		return
	}
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		p.T.Fatalf("browser: set remote answer: %v\n%s", err, sdp)
	}
	p.Answer = sdp
	p.setPT(sdp)
}

// setPT takes the payload types to send from the answer.
func (p *WebPhone) setPT(sdp string) {
	info, err := ParseSDPInfo(sdp)
	if err != nil || info.Audio < 0 {
		p.T.Fatalf("browser: answer without audio: %v", err)
	}
	dtmf := uint8(WebDTMFPT)
	if info.DTMFPT >= 0 {
		dtmf = uint8(info.DTMFPT)
	}
	p.Src.SetPT(uint8(info.Audio), dtmf)
}

var reTransport = regexp.MustCompile(`(?m)^a=(ice-ufrag|ice-pwd|fingerprint|candidate):.*$`)

// transportOf is the ICE/DTLS identity of an SDP: credentials, fingerprint
// and candidates.
func transportOf(sdp string) string {
	return strings.Join(reTransport.FindAllString(strings.ReplaceAll(sdp, "\r", ""), -1), "\n")
}

// reoffer sends a re-INVITE with a new offer whose direction is dir (the
// way JsSIP holds: the local description stays sendrecv, the SDP sent is
// rewritten) and applies the answer.
func (p *WebPhone) Reoffer(dir string) sip.Response {
	p.T.Helper()
	sdp := p.offer()
	if dir != "sendrecv" {
		sdp = strings.ReplaceAll(sdp, "a=sendrecv", "a="+dir)
	}
	res := p.Dlg.Request("INVITE", "application/sdp", sdp)
	if res.StatusCode() != 200 {
		_ = p.PC.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback})
		return res
	}
	if transportOf(res.Body()) != transportOf(p.Answer) {
		p.AnswerChanged = true
	}
	answer := res.Body()
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		p.T.Fatalf("browser: set remote answer to re-INVITE: %v\n%s", err, answer)
	}
	return res
}

// onRequest answers the SBC's requests: a re-INVITE through the
// PeerConnection (which the tests mostly expect not to happen), anything
// else with 200.
func (p *WebPhone) OnRequest(req sip.Request) (int, string, string) {
	if req.Method() != sip.INVITE || req.Body() == "" {
		return 200, "", ""
	}
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: req.Body()}); err != nil {
		p.T.Logf("browser: re-INVITE offer refused: %v", err)
		return 488, "", ""
	}
	a, err := p.PC.CreateAnswer(nil)
	if err == nil {
		err = p.PC.SetLocalDescription(a)
	}
	if err != nil {
		p.T.Logf("browser: re-INVITE answer: %v", err)
		return 488, "", ""
	}
	return 200, "application/sdp", p.PC.LocalDescription().SDP
}

// sendDTMF sends digits as RFC 4733 events and waits until they are out.
func (p *WebPhone) SendDTMF(digits string) {
	p.T.Helper()
	p.Src.QueueDigits(digits)
	WaitFor(p.T, time.Duration(len(digits)+2)*time.Second, "browser digits sent", func() bool { return !p.Src.digitsPending() })
}

// iceStateLog returns the ICE connection states seen, in order.
func (p *WebPhone) ICEStateLog() []webrtc.ICEConnectionState {
	p.iceMu.Lock()
	defer p.iceMu.Unlock()
	return append([]webrtc.ICEConnectionState(nil), p.iceStates...)
}

// hangup sends BYE.
func (p *WebPhone) Hangup() { p.Dlg.Bye() }

// rawTrack is a TrackLocal that writes the packets of an RTPSource as they
// are, payload type included, with the SSRC pion negotiated: unlike
// TrackLocalStaticRTP it does not force one payload type, so RFC 4733
// events share the stream.
type rawTrack struct {
	src *RTPSource

	Mu   sync.Mutex
	w    webrtc.TrackLocalWriter
	SSRC uint32
	Sent atomic.Int64
}

// Bind takes the first negotiated audio codec that is not an event.
func (r *rawTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if !strings.EqualFold(c.MimeType, "audio/telephone-event") {
			r.Mu.Lock()
			r.w, r.SSRC = ctx.WriteStream(), uint32(ctx.SSRC())
			r.Mu.Unlock()
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, fmt.Errorf("no audio codec among %v", ctx.CodecParameters())
}

// Unbind stops sending.
func (r *rawTrack) Unbind(webrtc.TrackLocalContext) error {
	r.Mu.Lock()
	r.w = nil
	r.Mu.Unlock()
	return nil
}

func (r *rawTrack) ID() string                { return "audio" }
func (r *rawTrack) RID() string               { return "" }
func (r *rawTrack) StreamID() string          { return "webphone" }
func (r *rawTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// send writes the source's next packet once the track is bound.
func (r *rawTrack) send() {
	r.Mu.Lock()
	w, ssrc := r.w, r.SSRC
	r.Mu.Unlock()
	if w == nil {
		return
	}
	h, payload, ok := r.src.Next()
	if !ok {
		return
	}
	h.SSRC = ssrc
	if n, err := w.WriteRTP(&h, payload); err == nil && n > 0 {
		r.Sent.Add(1)
	}
}

var _ webrtc.TrackLocal = (*rawTrack)(nil)
