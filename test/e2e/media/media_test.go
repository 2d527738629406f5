package media

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"
	"github.com/pion/webrtc/v4"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

// The WebRTC media tests: a pion browser (WebPhone) calls over WS through
// the SBC, which terminates ICE-lite, DTLS-SRTP, rtcp-mux and BUNDLE toward
// it and speaks plain RTP to the far end: the built-in echo, SIPp, or a
// scripted Go PBX (MediaPBX). Every wait is bounded; counts are compared
// with what 50 packets per second give in a few hundred milliseconds.

// checkOneStream fails unless the browser saw one continuous stream: one
// SSRC, no sequence jump beyond a little loss, no timestamp going back or
// jumping past the clock. (pion fires OnTrack again for the same SSRC when
// a hold answer without a=ssrc is followed by a resume: tracks are no
// measure.)
func checkOneStream(t *testing.T, web *e2e.WebPhone) {
	t.Helper()
	s := web.Rx.Snapshot()
	if len(s.SSRCs) != 1 {
		t.Errorf("browser saw SSRCs %v (on %d pion tracks), want one", s.SSRCs, web.Tracks.Load())
	}
	if s.MaxSeqGap > 5 {
		t.Errorf("browser saw a sequence jump of %d (%d gaps in %d packets)", s.MaxSeqGap, s.SeqGaps, s.Packets)
	}
	if s.TSBack > 0 || s.MaxTSJump > 8000 {
		t.Errorf("browser saw timestamps go back %d times and jump %d samples past the clock", s.TSBack, s.MaxTSJump)
	}
	if s.Corrupt > 0 {
		t.Errorf("browser got %d frames whose payload changed on the way", s.Corrupt)
	}
}

// checkOneHandshake fails unless ICE connected once and DTLS once: no ICE
// restart, no second handshake.
func checkOneHandshake(t *testing.T, web *e2e.WebPhone) {
	t.Helper()
	states := web.ICEStateLog()
	connected := 0
	for _, s := range states {
		if s == webrtc.ICEConnectionStateConnected {
			connected++
		}
	}
	if n := web.DTLSConnected.Load(); n != 1 || connected != 1 {
		t.Errorf("DTLS connected %d times, ICE states %v; want one handshake", n, states)
	}
	if web.AnswerChanged {
		t.Error("the SBC gave the browser a second answer with another ICE/DTLS transport")
	}
}

// TestWebRTCEcho: the browser calls sip:echo on the default routes and gets
// its own packets back through DTLS-SRTP, plain RTP to the echo and back.
func TestWebRTCEcho(t *testing.T) {
	sbc := e2e.StartSBC(t, e2e.SBCOptions{})
	calls := e2e.WatchCalls(sbc)
	web := e2e.NewWebPhone(t, sbc)
	web.Call("echo")
	e2e.WaitCount(t, "browser gets its packets echoed", web.Rx, "WEB1", 50)
	// The echo of a packet can arrive before its sender has counted it.
	e2e.WaitFor(t, 5*time.Second, "the browser to count 50 packets sent", func() bool { return web.Out.Sent.Load() >= 50 })
	checkOneStream(t, web)
	checkOneHandshake(t, web)
	web.Hangup()
	web.Close()
	rec := calls.WaitEnded(t)
	if rec.Cause != "caller_bye" || rec.Side != "a" || rec.ATransport != "ws" || rec.ACodec != "PCMU/8000" {
		t.Errorf("call record: cause %q side %q, A transport %q, A codec %q", rec.Cause, rec.Side, rec.ATransport, rec.ACodec)
	}
	if m := rec.Media; m.AtoB.Packets < 50 || m.BtoA.Packets < 50 || m.AtoB.SRTPFailed+m.BtoA.SRTPFailed > 0 {
		t.Errorf("call record media: %+v", m)
	}
	sbc.WaitIdle(t)
}

// TestWebRTCToSIPpEcho: browser -> SBC -> SIPp UAS with -rtp_echo over a
// UDP trunk.
func TestWebRTCToSIPpEcho(t *testing.T) {
	sbc, check := e2e.StartSIPpEcho(t)
	web := e2e.NewWebPhone(t, sbc)
	web.Call("1000")
	e2e.WaitCount(t, "SIPp echoes the browser", web.Rx, "WEB1", 50)
	checkOneStream(t, web)
	web.Hangup()
	check()
	web.Close()
	sbc.WaitCallsIdle(t)
}

// TestWebRTCNormalization: the PBX switches streams mid-call (new SSRC,
// sequence +30000, timestamp base moved), as at the end of ringback; the
// browser still sees one continuous stream.
func TestWebRTCNormalization(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
	web := e2e.NewWebPhone(t, sbc)
	web.Call("1000")
	e2e.WaitCount(t, "browser gets the pbx stream", web.Rx, "PBX1", 25)
	peer, _ := pbx.Current()
	e2e.WaitCount(t, "pbx gets the browser", peer.Rx, "WEB1", 25)
	peer.Src.Jump("PBX2")
	e2e.WaitCount(t, "browser gets the switched stream", web.Rx, "PBX2", 25)
	checkOneStream(t, web)
	web.Hangup()
	sbc.WaitCallsIdle(t)
}

// TestWebRTCEarlyMedia: 183 with SDP and RTP from one port, then 200 with
// SDP on another port: the browser gets the early media before the 200,
// the media after it from the new port, and one ICE/DTLS handshake only.
func TestWebRTCEarlyMedia(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Early: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
	web := e2e.NewWebPhone(t, sbc)
	web.Dial("1000")
	web.Progress("early media at the browser", 15*time.Second, func() bool { return web.Rx.Marker("PBXE") >= 25 })
	if web.Dlg.Final != nil {
		t.Fatalf("the call was answered (%d) before the pbx sent its 200", web.Dlg.Final.StatusCode())
	}
	pbx.ReleaseAnswer()
	if res := web.AwaitAnswer(); res.StatusCode() != 200 {
		t.Fatalf("call answered %d", res.StatusCode())
	}
	e2e.WaitCount(t, "browser gets media from the new port", web.Rx, "PBXF", 25)
	final, _ := pbx.Current()
	e2e.WaitCount(t, "browser media reaches the new port", final.Rx, "WEB1", 25)
	checkOneHandshake(t, web)
	checkOneStream(t, web)
	web.Hangup()
	sbc.WaitCallsIdle(t)
}

// TestWebRTCHoldResume: the browser holds (re-INVITE sendonly) and
// resumes; then the PBX moves its RTP to a new port with a re-INVITE,
// which the SBC absorbs: the browser gets no re-INVITE and the media
// carries on from the new port.
func TestWebRTCHoldResume(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
	web := e2e.NewWebPhone(t, sbc)
	web.Call("1000")
	e2e.WaitCount(t, "browser gets the pbx stream", web.Rx, "PBX1", 25)

	res := web.Reoffer("sendonly")
	if res.StatusCode() != 200 {
		t.Fatalf("hold answered %d", res.StatusCode())
	}
	if a, _ := e2e.ParseSDPInfo(res.Body()); a.Dir != "recvonly" && a.Dir != "inactive" {
		t.Errorf("hold answered with direction %s", a.Dir)
	}
	st := pbx.State()
	if len(st.Offers) < 2 {
		t.Fatalf("pbx got %d offers, want the INVITE's and the hold's", len(st.Offers))
	}
	if o, _ := e2e.ParseSDPInfo(st.Offers[len(st.Offers)-1]); o.Dir != "sendonly" && o.Dir != "inactive" {
		t.Fatalf("pbx got direction %s for the hold", o.Dir)
	}
	if web.Reoffer("sendrecv").StatusCode() != 200 {
		t.Fatal("resume refused")
	}
	st = pbx.State()
	if o, _ := e2e.ParseSDPInfo(st.Offers[len(st.Offers)-1]); o.Dir != "sendrecv" {
		t.Fatalf("pbx got direction %s on resume", o.Dir)
	}
	n := web.Rx.Marker("PBX1")
	e2e.WaitCount(t, "media flows again after resume", web.Rx, "PBX1", n+25)
	peer, _ := pbx.Current()
	n = peer.Rx.Marker("WEB1")
	e2e.WaitCount(t, "pbx gets the browser after resume", peer.Rx, "WEB1", n+25)

	invites := len(web.SIP.Requests(sip.INVITE))
	moved := pbx.MoveMedia(false)
	e2e.WaitCount(t, "browser gets media from the pbx's new port", web.Rx, "PBXN", 25)
	e2e.WaitCount(t, "browser media reaches the pbx's new port", moved.Rx, "WEB1", 25)
	if got := len(web.SIP.Requests(sip.INVITE)); got != invites {
		t.Errorf("browser got %d re-INVITEs for the pbx's port change, want none", got-invites)
	}
	checkOneHandshake(t, web)
	checkOneStream(t, web)
	web.Hangup()
	sbc.WaitCallsIdle(t)
}

// TestWebRTCPBXMovesMediaWithOverlap: the PBX moves its RTP to a new port
// the way a PBX switching bridges does: the new port sends from the
// re-INVITE on, the old one for a few packets after the 200. The SBC must
// follow the new port that the SDP names, not latch again to the old one.
func TestWebRTCPBXMovesMediaWithOverlap(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
	web := e2e.NewWebPhone(t, sbc)
	web.Call("1000")
	e2e.WaitCount(t, "browser gets the pbx stream", web.Rx, "PBX1", 25)
	invites := len(web.SIP.Requests(sip.INVITE))
	moved := pbx.MoveMedia(true)
	e2e.WaitCount(t, "browser gets media from the pbx's new port", web.Rx, "PBXN", 25)
	e2e.WaitCount(t, "browser media reaches the pbx's new port", moved.Rx, "WEB1", 25)
	if got := len(web.SIP.Requests(sip.INVITE)); got != invites {
		t.Errorf("browser got %d re-INVITEs for the pbx's port change, want none", got-invites)
	}
	checkOneStream(t, web)
	web.Hangup()
	sbc.WaitCallsIdle(t)
}

// TestWebRTCDTMF: digits both ways, as SIP INFO toward a trunk with
// dtmf: info, and as RFC 4733 with each leg's own payload type toward a
// trunk with the default dtmf: rfc4733.
func TestWebRTCDTMF(t *testing.T) {
	t.Run("info", func(t *testing.T) {
		pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
		sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk(), Mutate: trunkDTMF(config.DTMFInfo)})
		web := e2e.NewWebPhone(t, sbc)
		web.Call("1000")
		e2e.WaitCount(t, "browser gets the pbx stream", web.Rx, "PBX1", 10)
		web.SendDTMF("15#")
		e2e.WaitFor(t, 10*time.Second, "pbx gets INFO 1 5 #", func() bool { return fmt.Sprint(pbx.State().Infos) == "[1 5 #]" })
		pbx.SendInfo('7')
		pbx.SendInfo('*')
		waitDigits(t, "browser gets the INFO digits as RFC 4733", web.Rx, "7*")
		checkPTs(t, "browser", web.Rx, e2e.PTPCMU, e2e.WebDTMFPT)
		web.Hangup()
		sbc.WaitCallsIdle(t)
	})
	t.Run("rfc4733", func(t *testing.T) {
		pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
		sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
		web := e2e.NewWebPhone(t, sbc)
		web.Call("1000")
		peer, _ := pbx.Current()
		e2e.WaitCount(t, "pbx gets the browser", peer.Rx, "WEB1", 10)
		web.SendDTMF("15#")
		waitDigits(t, "pbx gets RFC 4733", peer.Rx, "15#")
		peer.Src.QueueDigits("7*")
		waitDigits(t, "browser gets RFC 4733", web.Rx, "7*")
		checkPTs(t, "pbx", peer.Rx, e2e.PTPCMU, e2e.PBXDTMFPT)
		checkPTs(t, "browser", web.Rx, e2e.PTPCMU, e2e.WebDTMFPT)
		if st := pbx.State(); len(st.Infos) != 0 {
			t.Errorf("pbx with dtmf: rfc4733 got INFO %v", st.Infos)
		}
		web.Hangup()
		sbc.WaitCallsIdle(t)
	})
}

// checkPTs fails if an endpoint received payload types other than its
// audio and telephone-event ones.
func checkPTs(t *testing.T, who string, s *e2e.RTPStats, audio, event uint8) {
	t.Helper()
	for pt := range s.Snapshot().ByPT {
		if pt != audio && pt != event {
			t.Errorf("%s got payload type %d; it negotiated %d and %d", who, pt, audio, event)
		}
	}
}

// TestWebRTCMediaTimeout: with media.timeout 2s, a call whose media stops
// both ways is ended with BYE on both legs.
func TestWebRTCMediaTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{}) // echo: it stops when the browser does
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk(), Mutate: func(c *config.Config) { c.Media.Timeout = timeout }})
	calls := e2e.WatchCalls(sbc)
	web := e2e.NewWebPhone(t, sbc)
	web.Call("1000")
	e2e.WaitCount(t, "echo through the pbx", web.Rx, "WEB1", 10)
	web.Src.Pause(true)
	start := time.Now()
	e2e.WaitFor(t, timeout+8*time.Second, "BYE to the browser", func() bool { return len(web.SIP.Requests(sip.BYE)) > 0 })
	e2e.WaitFor(t, 5*time.Second, "BYE to the pbx", func() bool { return pbx.State().Byes > 0 })
	if d := time.Since(start); d < timeout-500*time.Millisecond {
		t.Errorf("call ended %v after media stopped, before the %v timeout", d, timeout)
	}
	if rec := calls.WaitEnded(t); rec.Cause != "media_timeout" || rec.Side != "sbc" {
		t.Errorf("call record: cause %q side %q, want media_timeout by sbc", rec.Cause, rec.Side)
	}
	sbc.WaitCallsIdle(t)
}

// TestWebRTCDTLSTimeout: a WebSocket client offers WebRTC (valid ICE and
// DTLS attributes) but never completes the handshake, either doing no ICE
// at all or passing ICE and then never answering DTLS: the call ends within
// the handshake timeout, with BYE on both legs if it was answered.
func TestWebRTCDTLSTimeout(t *testing.T) {
	const handshake = 2 * time.Second
	for _, tc := range []struct {
		name  string
		ice   bool
		cause outcome.Cause
	}{{"no ICE", false, "ice_timeout"}, {"ICE but no DTLS", true, "dtls_timeout"}} {
		t.Run(tc.name, func(t *testing.T) {
			pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{})
			sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk(), Mutate: func(c *config.Config) { c.Media.HandshakeTimeout = handshake }})
			calls := e2e.WatchCalls(sbc)
			client := e2e.NewSIPClient(t, "WS", sbc.WS.String())
			var agent *e2e.ICEOnly
			ufrag, pwd, cands := "Fk3x", "q0mZb6zXU7jRtS1FvLhG2wPc", []string{deadCandidate(t)}
			if tc.ice {
				agent = e2e.NewICEOnly(t)
				ufrag, pwd, cands = agent.Ufrag, agent.Pwd, agent.Cands
			}
			start := time.Now()
			d := client.Invite("1000", fakeWebRTCOffer(ufrag, pwd, cands))
			res := d.Await(1, handshake+10*time.Second, nil)
			if res.StatusCode() == 200 {
				d.Established(res)
				d.Ack()
				if agent != nil {
					agent.Connect(t, res.Body())
				}
				e2e.WaitFor(t, handshake+8*time.Second, "BYE to the silent browser", func() bool { return len(client.Requests(sip.BYE)) > 0 })
			} else {
				t.Logf("the INVITE failed with %d %s after %v", res.StatusCode(), res.Reason(), time.Since(start))
			}
			if st := pbx.State(); st.Calls > 0 {
				e2e.WaitFor(t, 5*time.Second, "BYE or CANCEL to the pbx", func() bool { return pbx.State().Byes > 0 || pbxCancelled(pbx) })
			}
			if el := time.Since(start); el > handshake+8*time.Second {
				t.Errorf("call ended %v after the INVITE; handshake timeout %v", el, handshake)
			}
			if rec := calls.WaitEnded(t); rec.Cause != tc.cause {
				t.Errorf("call record: cause %q side %q, want %s", rec.Cause, rec.Side, tc.cause)
			}
			sbc.WaitCallsIdle(t)
		})
	}
}

func pbxCancelled(p *e2e.MediaPBX) bool {
	for _, l := range p.State().Trace {
		if strings.HasPrefix(l, "CANCEL ") {
			return true
		}
	}
	return false
}

// fakeWebRTCOffer is a browser offer with the ICE credentials and
// candidates given and a random DTLS fingerprint.
func fakeWebRTCOffer(ufrag, pwd string, candidates []string) string {
	fp := make([]byte, 32)
	_, _ = rand.Read(fp)
	hexFP := strings.ToUpper(hex.EncodeToString(fp))
	var pairs []string
	for i := 0; i < len(hexFP); i += 2 {
		pairs = append(pairs, hexFP[i:i+2])
	}
	var cands strings.Builder
	for _, c := range candidates {
		cands.WriteString("a=" + c + "\n")
	}
	return "v=0\no=- 4611731400430051336 2 IN IP4 127.0.0.1\ns=-\nt=0 0\na=group:BUNDLE 0\na=msid-semantic: WMS\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111 0 126\nc=IN IP4 0.0.0.0\na=rtcp:9 IN IP4 0.0.0.0\n" +
		cands.String() + "a=end-of-candidates\n" +
		"a=ice-ufrag:" + ufrag + "\na=ice-pwd:" + pwd + "\n" +
		"a=fingerprint:sha-256 " + strings.Join(pairs, ":") + "\na=setup:actpass\na=mid:0\na=sendrecv\na=rtcp-mux\n" +
		"a=rtpmap:111 opus/48000/2\na=fmtp:111 minptime=10;useinbandfec=1\na=rtpmap:0 PCMU/8000\n" +
		"a=rtpmap:126 telephone-event/8000\na=ssrc:1234567 cname:fake\n"
}

// deadCandidate is a host candidate on a port nobody listens on.
func deadCandidate(t *testing.T) string {
	return fmt.Sprintf("candidate:1 1 udp 2130706431 127.0.0.1 %d typ host", e2e.FreeUDPPort(t, "127.0.0.1"))
}

// TestWebRTCGoroutinesReleased: after calls end, the SBC holds no media
// session and no goroutine more than before them.
func TestWebRTCGoroutinesReleased(t *testing.T) {
	sbc := e2e.StartSBC(t, e2e.SBCOptions{})
	oneCall := func() {
		web := e2e.NewWebPhone(t, sbc)
		web.Call("echo")
		e2e.WaitCount(t, "echo", web.Rx, "WEB1", 10)
		web.Hangup()
		web.Close()
	}
	oneCall() // warm up: anything started once per process is not a leak
	sbc.WaitCallsIdle(t)
	base := runtime.NumGoroutine()
	for range 5 {
		oneCall()
	}
	sbc.WaitCallsIdle(t)
	if n := sbc.App.Media().Active(); n != 0 {
		t.Fatalf("%d media sessions left", n)
	}
	e2e.WaitGoroutines(t, base)
}
