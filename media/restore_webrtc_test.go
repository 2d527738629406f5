package media

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// browser is pion as a WebRTC endpoint: one PCMU track out at 50 packets
// a second, the decrypted RTP it receives recorded, and its ICE states.
type browser struct {
	pc     *webrtc.PeerConnection
	track  *webrtc.TrackLocalStaticRTP
	rx     arrivals
	mu     sync.Mutex
	states []webrtc.ICEConnectionState
	// jumps is how many of the next packets move the sequence number
	// 20000 ahead (4 wrap it, and pion's rollover counter with it).
	jumps atomic.Int32
}

// newBrowser returns a browser offering profiles (none: pion's default).
func newBrowser(t *testing.T, profiles ...dtls.SRTPProtectionProfile) *browser {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1},
		PayloadType:        0,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if len(profiles) > 0 {
		se.SetSRTPProtectionProfiles(profiles...)
	}
	// Consent checks every 200 ms: a restored side that did not answer
	// them would show within the test.
	se.SetICETimeouts(3*time.Second, 6*time.Second, 200*time.Millisecond)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{pc: pc}
	t.Cleanup(func() { _ = pc.Close() })
	b.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", "restore")
	if err != nil {
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

// offer returns the browser's offer with its candidates.
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

// send writes 20 ms packets on the track until stop.
func (b *browser) send(t *testing.T, stop <-chan struct{}, wg *sync.WaitGroup) {
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if b.jumps.Load() > 0 {
				seq += 20000
				b.jumps.Add(-1)
			}
			p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 160}, Payload: make([]byte, 160)}
			if err := b.track.WriteRTP(p); err != nil {
				t.Errorf("browser: write rtp: %v", err)
				return
			}
		}
	})
}

// checks returns the STUN requests the browser sent on its selected
// pair and the responses it got.
func (b *browser) checks() (sent, answered uint64) {
	for _, s := range b.pc.GetStats() {
		if p, ok := s.(webrtc.ICECandidatePairStats); ok && p.Nominated {
			sent += p.RequestsSent
			answered += p.ResponsesReceived
		}
	}
	return sent, answered
}

// TestRestoreWebRTC: a browser (pion) in a call through a node process
// to a plain RTP far end; the node is killed (SIGKILL, no DTLS
// close_notify) and a new Manager restores the session: the browser's
// consent checks keep being answered with the same ICE credentials (its
// ICE never leaves connected), and audio continues both ways with the
// same SRTP contexts (pion decrypts what the survivor sends; the
// survivor decrypts what pion sends) after a short gap.
func TestRestoreWebRTC(t *testing.T) {
	min, max := freeRange(t, 4)
	n := startNode(t, restoreSBC, min, max)
	br := newBrowser(t)
	far := newPeerAt(t, restoreB, true)
	toB := n.sdp("offer", SideA, br.offer(t))
	toA := n.sdp("answer", SideB, far.sdp())
	if err := br.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(toA)}); err != nil {
		t.Fatalf("browser: set answer: %v\n%s", err, toA)
	}
	sbcB := netip.AddrPortFrom(netip.MustParseAddr(restoreSBC), uint16(mPort(t, toB, 0)))

	var atB arrivals
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer far.rtp.Close()
	defer close(stop)
	receive(far.rtp, &atB, &wg)
	pacer(t, far.rtp, sbcB, 0xbbbb0002, stop, &wg)
	br.send(t, stop, &wg)
	waitFor(t, "media both ways through the node", func() bool { return br.rx.count() >= 20 && atB.count() >= 20 })

	st := n.state()
	if w := st.Sides[SideA].WebRTC; w == nil || w.Transport.Profile == "" || len(w.Transport.LocalKey) == 0 {
		t.Fatalf("state of the WebRTC side without keys: %+v", st.Sides[SideA].WebRTC)
	}
	time.Sleep(300 * time.Millisecond)
	n.kill()
	cut := time.Now()
	_, answeredBefore := br.checks()

	m2 := newTestManagerAt(t, restoreSBC)
	s, err := m2.Restore(st, nil)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	t.Cleanup(s.Close)
	waitFor(t, "media both ways after the restore", func() bool {
		return br.rx.count() >= st.packetsTo(SideA)+50 && atB.count() >= st.packetsTo(SideB)+50
	})
	waitFor(t, "the browser's consent checks answered by the survivor", func() bool {
		_, answered := br.checks()
		return answered >= answeredBefore+3
	})
	br.rx.check(t, "toward the browser", cut, 300*time.Millisecond)
	atB.check(t, "toward the far end", cut, 300*time.Millisecond)
	br.mu.Lock()
	states := slices.Clone(br.states)
	br.mu.Unlock()
	for _, s := range states {
		if s == webrtc.ICEConnectionStateDisconnected || s == webrtc.ICEConnectionStateFailed {
			t.Errorf("browser ICE went %s: %v", s, states)
		}
	}
	if got := s.Stats(); got.AtoB.Packets == 0 || got.BtoA.Packets == 0 {
		t.Errorf("restored session relayed %+v", got)
	}
}
