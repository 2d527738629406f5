package wrtc

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// waitLong bounds every wait for a network event in the tests.
const waitLong = 10 * time.Second

var testCert = sync.OnceValues(GenerateCertificate)

// testLog logs to stderr when WRTC_DEBUG is set, else discards.
func testLog() *slog.Logger {
	if os.Getenv("WRTC_DEBUG") == "" {
		return discardLog
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTestMux binds a Mux on 127.0.0.1:0, with a TCP listener on the same
// port when tcp is set.
func newTestMux(tb testing.TB, tcp bool) *Mux {
	tb.Helper()
	return newTestMuxAt(tb, "127.0.0.1", tcp)
}

// newTestMuxAt is newTestMux on another loopback address (IPv4 or IPv6).
func newTestMuxAt(tb testing.TB, ip string, tcp bool) *Mux {
	tb.Helper()
	var (
		udp *net.UDPConn
		ln  net.Listener
		err error
	)
	for range 10 { // the TCP port of a fresh UDP port may be taken
		udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			tb.Fatalf("listen udp: %v", err)
		}
		if !tcp {
			break
		}
		ln, err = net.Listen("tcp", udp.LocalAddr().String())
		if err == nil {
			break
		}
		udp.Close()
	}
	if err != nil {
		tb.Fatalf("listen tcp: %v", err)
	}
	m, err := NewMux(MuxConfig{UDP: udp, TCP: ln, Log: testLog()})
	if err != nil {
		tb.Fatalf("NewMux: %v", err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

// newTestTransport creates a transport on m with a 5 s handshake timeout.
func newTestTransport(tb testing.TB, m *Mux, mods ...func(*Config)) *Transport {
	tb.Helper()
	cert, err := testCert()
	if err != nil {
		tb.Fatalf("GenerateCertificate: %v", err)
	}
	cfg := Config{
		Mux:              m,
		PublicIP:         netip.MustParseAddr("127.0.0.1"),
		Certificate:      cert,
		HandshakeTimeout: 5 * time.Second,
		Log:              testLog(),
	}
	for _, mod := range mods {
		mod(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = tr.Close() })
	return tr
}

// stateLog records a transport's state changes.
type stateLog struct{ ch chan stateEvent }

func watchState(tr *Transport) *stateLog {
	s := &stateLog{ch: make(chan stateEvent, 8)}
	tr.OnState(func(st State, reason string) { s.ch <- stateEvent{state: st, reason: reason} })
	return s
}

// wait returns the next state event, failing the test after timeout.
func (s *stateLog) wait(tb testing.TB, timeout time.Duration) stateEvent {
	tb.Helper()
	select {
	case ev := <-s.ch:
		return ev
	case <-time.After(timeout):
		tb.Fatalf("no state change within %v", timeout)
		return stateEvent{}
	}
}

// connected waits for StateConnected.
func (s *stateLog) connected(tb testing.TB) {
	tb.Helper()
	if ev := s.wait(tb, waitLong); ev.state != StateConnected {
		tb.Fatalf("state %v (%s), want connected", ev.state, ev.reason)
	}
}

// chanSink copies every packet it gets into channels (dropping when full).
type chanSink struct {
	rtp, rtcp chan []byte
}

func newChanSink() *chanSink {
	return &chanSink{rtp: make(chan []byte, 256), rtcp: make(chan []byte, 64)}
}

func (s *chanSink) RTP(pkt []byte) {
	select {
	case s.rtp <- bytes.Clone(pkt):
	default:
	}
}

func (s *chanSink) RTCP(pkt []byte) {
	select {
	case s.rtcp <- bytes.Clone(pkt):
	default:
	}
}

// peerOpts configures the pion "browser".
type peerOpts struct {
	profiles     []dtls.SRTPProtectionProfile
	tcp          bool          // ICE over tcp4 only (pion acts as active ICE-TCP client)
	v6           bool          // udp6 on [::1] instead of IPv4
	serverHellos *atomic.Int32 // counts DTLS ServerHellos pion sends
	clientHellos *atomic.Int32 // counts DTLS ClientHellos pion sends
	answerRole   webrtc.DTLSRole
	wire         func(pkt []byte)                // sees every datagram pion sends (udp4 on 127.0.0.1 through a mux)
	wirePass     func(pkt []byte, out bool) bool // the same mux: false loses the datagram (out: pion's)
}

// newPeer creates a pion PeerConnection restricted to loopback.
func newPeer(tb testing.TB, o peerOpts) *webrtc.PeerConnection {
	tb.Helper()
	var se webrtc.SettingEngine
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	switch {
	case o.tcp:
		networks = []webrtc.NetworkType{webrtc.NetworkTypeTCP4}
	case o.v6:
		networks = []webrtc.NetworkType{webrtc.NetworkTypeUDP6}
		se.SetICEUDPMux(v6Mux(tb))
	case o.wire != nil || o.wirePass != nil:
		se.SetICEUDPMux(wireMux(tb, o.wire, o.wirePass))
	}
	se.SetNetworkTypes(networks)
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if len(o.profiles) > 0 {
		se.SetSRTPProtectionProfiles(o.profiles...)
	}
	if o.answerRole != 0 {
		if err := se.SetAnsweringDTLSRole(o.answerRole); err != nil {
			tb.Fatalf("SetAnsweringDTLSRole: %v", err)
		}
	}
	if o.serverHellos != nil {
		se.SetDTLSServerHelloMessageHook(func(m handshake.MessageServerHello) handshake.Message {
			o.serverHellos.Add(1)
			return &m
		})
	}
	if o.clientHellos != nil {
		se.SetDTLSClientHelloMessageHook(func(m handshake.MessageClientHello) handshake.Message {
			o.clientHellos.Add(1)
			return &m
		})
	}
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		tb.Fatalf("RegisterDefaultCodecs: %v", err)
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatalf("NewPeerConnection: %v", err)
	}
	tb.Cleanup(func() { _ = pc.Close() })
	return pc
}

// v6Mux is a pion UDP mux on [::1]: pion gathers no host candidate on ::1
// from the interface list (it takes it for an IPv4-compatible address), but
// takes a mux's bound address as it is.
func v6Mux(tb testing.TB) ice.UDPMux {
	tb.Helper()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		tb.Fatalf("listen [::1]: %v", err)
	}
	m := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: c})
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

// addTrack adds a local track of codec ("opus" or "vp8") to pc.
func addTrack(tb testing.TB, pc *webrtc.PeerConnection, codec string) *webrtc.TrackLocalStaticRTP {
	tb.Helper()
	codecCap := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	if codec == "vp8" {
		codecCap = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	}
	track, err := webrtc.NewTrackLocalStaticRTP(codecCap, codec, "peer-stream")
	if err != nil {
		tb.Fatalf("NewTrackLocalStaticRTP: %v", err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		tb.Fatalf("AddTrack: %v", err)
	}
	return track
}

// peerTracks collects the payloads of every track pion receives.
func peerTracks(pc *webrtc.PeerConnection) chan []byte {
	ch := make(chan []byte, 256)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		go func() {
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				select {
				case ch <- pkt.Payload:
				default:
				}
			}
		}()
	})
	return ch
}

// mediaLine is one m-line of an SDP the test writes for our side.
type mediaLine struct {
	kind  string // audio or video
	mid   string
	pt    uint8
	codec string // rtpmap name
	clock uint32
	chans uint16
	ssrc  uint32 // SSRC we send on this m-line
}

var (
	opusLine = mediaLine{kind: "audio", mid: "0", pt: 111, codec: "opus", clock: 48000, chans: 2, ssrc: 0x1111}
	vp8Line  = mediaLine{kind: "video", mid: "1", pt: 96, codec: "VP8", clock: 90000, ssrc: 0x2222}
)

// buildSDP renders our side's SDP (offer or answer) from p with pion/sdp.
func buildSDP(tb testing.TB, p Params, setup string, media []mediaLine) string {
	tb.Helper()
	sd, err := sdp.NewJSEPSessionDescription(false)
	if err != nil {
		tb.Fatalf("NewJSEPSessionDescription: %v", err)
	}
	algo, value, _ := strings.Cut(p.Fingerprint, " ")
	mids := make([]string, len(media))
	for i, m := range media {
		mids[i] = m.mid
	}
	sd.WithPropertyAttribute("ice-lite").
		WithValueAttribute("group", "BUNDLE "+strings.Join(mids, " ")).
		WithFingerprint(algo, value)
	for _, m := range media {
		md := sdp.NewJSEPMediaDescription(m.kind, nil).
			WithValueAttribute("mid", m.mid).
			WithICECredentials(p.Ufrag, p.Pwd).
			WithValueAttribute("setup", setup).
			WithPropertyAttribute("rtcp-mux").
			WithPropertyAttribute("sendrecv").
			WithCodec(m.pt, m.codec, m.clock, m.chans, "")
		for _, c := range p.Candidates {
			md.WithValueAttribute("candidate", c)
		}
		md.WithPropertyAttribute("end-of-candidates")
		if m.ssrc != 0 {
			md.WithValueAttribute("msid", "sbc-stream sbc-"+m.kind).
				WithMediaSource(m.ssrc, "sbc", "sbc-stream", "sbc-"+m.kind)
		}
		sd.WithMedia(md)
	}
	raw, err := sd.Marshal()
	if err != nil {
		tb.Fatalf("marshal sdp: %v", err)
	}
	return string(raw)
}

// remoteMedia is what the tests need from one of pion's m-lines.
type remoteMedia struct {
	kind, mid string
	ssrcs     []uint32
}

// parseRemote extracts the ICE/DTLS attributes and m-lines of pion's SDP.
func parseRemote(tb testing.TB, raw string) (Remote, []remoteMedia) {
	tb.Helper()
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(raw); err != nil {
		tb.Fatalf("parse sdp: %v", err)
	}
	var r Remote
	var media []remoteMedia
	take := func(a sdp.Attribute) {
		switch a.Key {
		case "ice-ufrag":
			r.Ufrag = a.Value
		case "ice-pwd":
			r.Pwd = a.Value
		case "setup":
			r.Setup = a.Value
		case "fingerprint":
			r.Fingerprints = append(r.Fingerprints, a.Value)
		}
	}
	for _, a := range sd.Attributes {
		take(a)
	}
	for _, md := range sd.MediaDescriptions {
		m := remoteMedia{kind: md.MediaName.Media}
		for _, a := range md.Attributes {
			take(a)
			switch a.Key {
			case "mid":
				m.mid = a.Value
			case "ssrc":
				f, _, _ := strings.Cut(a.Value, " ")
				if v, err := strconv.ParseUint(f, 10, 32); err == nil && !containsSSRC(m.ssrcs, uint32(v)) {
					m.ssrcs = append(m.ssrcs, uint32(v))
				}
			}
		}
		media = append(media, m)
	}
	return r, media
}

func containsSSRC(list []uint32, v uint32) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// offerFrom makes pc create an offer, waits for its candidates and returns it.
func offerFrom(tb testing.TB, pc *webrtc.PeerConnection, restart bool) string {
	tb.Helper()
	offer, err := pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err != nil {
		tb.Fatalf("CreateOffer: %v", err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		tb.Fatalf("SetLocalDescription: %v", err)
	}
	// The gathering state, not GatheringCompletePromise: an ICE restart
	// gathers from CreateOffer on, and pion can take the completion
	// handler before a promise made meanwhile sets it.
	for deadline := time.Now().Add(waitLong); pc.ICEGatheringState() != webrtc.ICEGatheringStateComplete; {
		if time.Now().After(deadline) {
			tb.Fatal("pion gathering did not complete")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return pc.LocalDescription().SDP
}

// answerPion answers pion's offer with our transport: SetRemote, then an
// answer built from Local() whose m-lines take mids from the offer in order.
func answerPion(tb testing.TB, tr *Transport, pc *webrtc.PeerConnection, offer string, media []mediaLine) []remoteMedia {
	tb.Helper()
	remote, rm := parseRemote(tb, offer)
	setup, err := tr.SetRemote(remote, false)
	if err != nil {
		tb.Fatalf("SetRemote: %v", err)
	}
	if len(rm) != len(media) {
		tb.Fatalf("offer has %d m-lines, test answers %d", len(rm), len(media))
	}
	for i := range media {
		media[i].mid = rm[i].mid
	}
	answer := buildSDP(tb, tr.Local(), setup, media)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		tb.Fatalf("pion SetRemoteDescription(answer): %v\n%s", err, answer)
	}
	return rm
}

// rtpPacket builds a plain RTP packet.
func rtpPacket(tb testing.TB, ssrc uint32, pt uint8, seq uint16, payload []byte) []byte {
	tb.Helper()
	p := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: ssrc},
		Payload: payload,
	}
	raw, err := p.Marshal()
	if err != nil {
		tb.Fatalf("marshal rtp: %v", err)
	}
	return raw
}

// payloadN is a recognizable 160-byte payload for packet n.
func payloadN(n int) []byte {
	b := bytes.Repeat([]byte{byte(n)}, 160)
	copy(b, fmt.Sprintf("pkt-%d", n))
	return b
}

// until calls try every 20 ms until it returns true or waitLong passes.
func until(tb testing.TB, what string, try func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitLong)
	for !try() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
