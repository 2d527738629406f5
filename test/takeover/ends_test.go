package takeover

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// frame is the packet interval of every far end: 20 ms of PCMU.
const frame = 20 * time.Millisecond

// arrivals records the RTP a far end receives: when, and its sequence
// numbers and SSRC.
type arrivals struct {
	mu   sync.Mutex
	at   []time.Time
	seq  []uint16
	ssrc []uint32
}

func (a *arrivals) add(pkt []byte) {
	if len(pkt) > 1 && pkt[1] >= 192 && pkt[1] <= 223 { // RTCP (RFC 5761), which shares the socket
		return
	}
	var h rtp.Header
	if _, err := h.Unmarshal(pkt); err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.at = append(a.at, time.Now())
	a.seq = append(a.seq, h.SequenceNumber)
	a.ssrc = append(a.ssrc, h.SSRC)
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

// gap is the audio a far end lost across the takeover: the longest time
// without a packet, the 20 ms slots in it, and how many packets came
// before cut and after. It also reports a stream that changed SSRC or
// went back in sequence (the survivor must continue the dead node's
// stream, not start another).
type gap struct {
	longest       time.Duration
	slots         int
	before, after int
	problem       string
}

func (a *arrivals) gap(cut time.Time) gap {
	a.mu.Lock()
	defer a.mu.Unlock()
	var g gap
	for i, at := range a.at {
		if at.Before(cut) {
			g.before++
		} else {
			g.after++
		}
		if i == 0 {
			continue
		}
		if d := at.Sub(a.at[i-1]); d > g.longest {
			g.longest = d
		}
		if a.ssrc[i] != a.ssrc[0] && g.problem == "" {
			g.problem = fmt.Sprintf("packet %d has SSRC %#x, the stream had %#x", i, a.ssrc[i], a.ssrc[0])
		}
		if d := a.seq[i] - a.seq[i-1]; (d == 0 || d > 0x8000) && g.problem == "" {
			g.problem = fmt.Sprintf("packet %d has sequence number %d after %d", i, a.seq[i], a.seq[i-1])
		}
	}
	g.slots = int(g.longest/frame) - 1
	return g
}

// rtpEnd is a plain RTP far end (a SIP phone's media): one socket for
// RTP and RTCP, sending 20 ms packets with its own SSRC to dst once set.
type rtpEnd struct {
	conn *net.UDPConn
	ssrc uint32
	rx   arrivals
	dst  chan netip.AddrPort
}

// newRTPEnd opens the far end's socket on ip in the world namespace.
func newRTPEnd(t *testing.T, tp *topology, ip string, ssrc uint32) *rtpEnd {
	t.Helper()
	var conn *net.UDPConn
	var err error
	inNamespace(t, tp.world, func() { conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)}) })
	if err != nil {
		t.Fatalf("far end socket on %s: %v", ip, err)
	}
	return &rtpEnd{conn: conn, ssrc: ssrc, dst: make(chan netip.AddrPort, 1)}
}

// sdp is the far end's offer or answer: PCMU and telephone-event.
func (e *rtpEnd) sdp() []byte {
	a := e.conn.LocalAddr().(*net.UDPAddr)
	return []byte(strings.Join([]string{"v=0", fmt.Sprintf("o=far 1 1 IN IP4 %s", a.IP), "s=-",
		fmt.Sprintf("c=IN IP4 %s", a.IP), "t=0 0", fmt.Sprintf("m=audio %d RTP/AVP 0 101", a.Port),
		fmt.Sprintf("a=rtcp:%d", a.Port), "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000",
		"a=ptime:20", "a=sendrecv", ""}, "\r\n"))
}

// run sends and receives until stop; the socket is closed then.
func (e *rtpEnd) run(stop <-chan struct{}, wg *sync.WaitGroup) {
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, err := e.conn.Read(buf)
			if err != nil {
				return
			}
			e.rx.add(buf[:n])
		}
	})
	wg.Go(func() {
		defer e.conn.Close()
		dst := <-e.dst
		tick := time.NewTicker(frame)
		defer tick.Stop()
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: e.ssrc}, Payload: make([]byte, 160)}
		for seq := uint16(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			pkt.SequenceNumber, pkt.Timestamp = seq, uint32(seq)*160
			b, _ := pkt.Marshal()
			_, _ = e.conn.WriteToUDPAddrPort(b, dst) // a refused send is a lost packet, as on a network
		}
	})
}

// browser is pion as a WebRTC far end in the world namespace: its ICE
// socket is made there and handed to pion (UDPMux), so every packet of
// it goes through the namespaces.
type browser struct {
	pc     *webrtc.PeerConnection
	track  *webrtc.TrackLocalStaticRTP
	rx     arrivals
	mu     sync.Mutex
	states []webrtc.ICEConnectionState
}

func newBrowser(t *testing.T, tp *topology, ip string) *browser {
	t.Helper()
	var conn *net.UDPConn
	var err error
	inNamespace(t, tp.world, func() { conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)}) })
	if err != nil {
		t.Fatalf("browser socket on %s: %v", ip, err)
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn})
	t.Cleanup(func() { _ = mux.Close() })
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: 0,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// Consent checks every 500 ms, disconnected after 3 s without an
	// answer: a survivor that does not answer them shows in the test.
	se.SetICETimeouts(3*time.Second, 10*time.Second, 500*time.Millisecond)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{pc: pc}
	t.Cleanup(func() { _ = pc.Close() })
	if b.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", "tk"); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(b.track); err != nil {
		t.Fatal(err)
	}
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		b.mu.Lock()
		b.states = append(b.states, s)
		b.mu.Unlock()
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			b.rx.add(buf[:n])
		}
	})
	return b
}

// offer is the browser's offer with its candidate.
func (b *browser) offer(t *testing.T) []byte {
	t.Helper()
	o, err := b.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-done
	return []byte(b.pc.LocalDescription().SDP)
}

// run sends 20 ms packets until stop.
func (b *browser) run(stop <-chan struct{}, wg *sync.WaitGroup) {
	wg.Go(func() {
		tick := time.NewTicker(frame)
		defer tick.Stop()
		for seq := uint16(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = b.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 160},
				Payload: make([]byte, 160)})
		}
	})
}

// bad returns the ICE states the browser went through that a takeover
// must not cause.
func (b *browser) bad() []webrtc.ICEConnectionState {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []webrtc.ICEConnectionState
	for _, s := range b.states {
		if s == webrtc.ICEConnectionStateDisconnected || s == webrtc.ICEConnectionStateFailed {
			out = append(out, s)
		}
	}
	return out
}
