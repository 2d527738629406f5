package media

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/pion/dtls/v3"
	"github.com/pion/webrtc/v4"
)

const (
	rocSBC = "127.0.19.1"
	rocB   = "127.0.19.3"
)

// TestRestoreWebRTCWrappedROC: the browser's sequence number wraps (and
// its SRTP rollover counter moves to 1) after the state the survivor
// restores from was taken, before the node dies: the restored side still
// decrypts the browser's audio, for pion's SRTP (AES-CM) and ours
// (AEAD-AES-GCM). Before the restored receive counter could move, every
// packet failed authentication and no audio reached the far end.
func TestRestoreWebRTCWrappedROC(t *testing.T) {
	for name, p := range map[string]dtls.SRTPProtectionProfile{
		"aes-cm": dtls.SRTP_AES128_CM_HMAC_SHA1_80, "aes-gcm": dtls.SRTP_AEAD_AES_128_GCM,
	} {
		t.Run(name, func(t *testing.T) { testWrappedROC(t, p) })
	}
}

func testWrappedROC(t *testing.T, profile dtls.SRTPProtectionProfile) {
	min, max := freeRange(t, 4)
	n := startNode(t, rocSBC, min, max)
	br := newBrowser(t, profile)
	far := newPeerAt(t, rocB, true)
	toB := n.sdp("offer", SideA, br.offer(t))
	toA := n.sdp("answer", SideB, far.sdp())
	if err := br.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(toA)}); err != nil {
		t.Fatalf("browser: set answer: %v\n%s", err, toA)
	}
	sbcB := netip.AddrPortFrom(netip.MustParseAddr(rocSBC), uint16(mPort(t, toB, 0)))

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
	w := st.Sides[SideA].WebRTC
	if w == nil || len(w.Transport.RxROC) != 1 {
		t.Fatalf("state of the WebRTC side without the browser's rollover counter: %+v", w)
	}
	for ssrc, roc := range w.Transport.RxROC {
		if roc != 0 {
			t.Fatalf("browser SSRC %x at rollover counter %d in the state, want 0", ssrc, roc)
		}
	}
	br.jumps.Store(4)
	waitFor(t, "the browser's sequence number wrapped", func() bool { return br.jumps.Load() == 0 })
	got := atB.count()
	waitFor(t, "the node relaying past the wrap", func() bool { return atB.count() >= got+5 })
	n.kill()
	killed := atB.count()

	m2 := newTestManagerAt(t, rocSBC)
	s, err := m2.Restore(st, nil)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	t.Cleanup(s.Close)
	waitFor(t, "the browser's audio at the far end after the restore", func() bool { return atB.count() >= killed+50 })
	waitFor(t, "audio toward the browser after the restore", func() bool { return br.rx.count() >= st.packetsTo(SideA)+50 })
}
