package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/internal/config"
)

// waitDigits waits until the stats hold the digits, in order.
func waitDigits(t *testing.T, what string, s *rtpStats, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.snapshot().digits != want {
		if time.Now().After(deadline) {
			snap := s.snapshot()
			t.Fatalf("%s: got RFC 4733 digits %q, want %q (by PT %v, %d packets of overlapping events)",
				what, snap.digits, want, snap.byPT, snap.overlaps)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.snapshot().overlaps; n > 0 {
		t.Errorf("%s: %d packets of RFC 4733 events overlapping another event", what, n)
	}
}

// TestMediaHarnessDirect checks the RTP harness without an SBC: a stream,
// its SSRC/sequence/timestamp switch and RFC 4733 digits, peer to peer.
func TestMediaHarnessDirect(t *testing.T) {
	src := newRTPSource("PBX1", ptPCMU, pbxDTMFPT)
	pbx := newRTPPeer(t, "127.0.0.3", src, pbxDTMFPT)
	phone := newRTPPeer(t, "127.0.0.2", nil, pbxDTMFPT)
	pbx.start(phone.conn.LocalAddr().(*net.UDPAddr))
	waitCount(t, "stream", phone.rx, "PBX1", 10)
	src.queueDigits("15#")
	waitDigits(t, "digits", phone.rx, "15#")
	clean := phone.rx.snapshot()
	if len(clean.ssrcs) != 1 || clean.seqGaps != 0 || clean.tsBack != 0 || clean.maxTSJump > 8000 || clean.corrupt != 0 {
		t.Fatalf("one clean stream counted as: %+v", clean)
	}
	src.jump("PBX2")
	waitCount(t, "after the switch", phone.rx, "PBX2", 10)
	s := phone.rx.snapshot()
	if len(s.ssrcs) != 2 || s.maxSeqGap < 29000 || s.maxTSJump < 900_000 {
		t.Fatalf("the switch was not seen: ssrcs %v, max seq gap %d, max ts jump %d", s.ssrcs, s.maxSeqGap, s.maxTSJump)
	}
}

// TestMediaPeersPlainRTP drives the SIP-side peers through the plain
// RTP relay with a plain SIP phone, so the peers the WebRTC tests use are
// known good on their own.
func TestMediaPeersPlainRTP(t *testing.T) {
	t.Run("echo", func(t *testing.T) {
		pbx := newMediaPBX(t, pbxOptions{})
		sbc := startSBC(t, sbcOptions{trunks: pbx.trunk()})
		phone := newPlainPhone(t, sbc)
		phone.call("1000")
		waitCount(t, "phone gets its packets back from the pbx", phone.rtp.rx, "PLN1", 25)
		phone.dlg.bye()
		waitFor(t, 5*time.Second, "pbx gets BYE", func() bool { return pbx.state().byes == 1 })
		sbc.waitCallsIdle(t)
	})
	t.Run("early media on another port", func(t *testing.T) {
		pbx := newMediaPBX(t, pbxOptions{early: true})
		sbc := startSBC(t, sbcOptions{trunks: pbx.trunk()})
		phone := newPlainPhone(t, sbc)
		phone.dial("1000")
		waitCount(t, "early media", phone.rtp.rx, "PBXE", 10)
		pbx.releaseAnswer()
		phone.awaitAnswer()
		waitCount(t, "media after the answer", phone.rtp.rx, "PBXF", 25)
		final, _ := pbx.current()
		waitCount(t, "pbx final port gets the phone", final.rx, "PLN1", 25)
		phone.dlg.bye()
		sbc.waitCallsIdle(t)
	})
	t.Run("pbx moves media", func(t *testing.T) {
		pbx := newMediaPBX(t, pbxOptions{stream: true})
		sbc := startSBC(t, sbcOptions{trunks: pbx.trunk()})
		phone := newPlainPhone(t, sbc)
		phone.call("1000")
		waitCount(t, "pbx stream", phone.rtp.rx, "PBX1", 10)
		moved := pbx.moveMedia(false)
		waitCount(t, "stream from the new port", phone.rtp.rx, "PBXN", 25)
		waitCount(t, "phone reaches the new port", moved.rx, "PLN1", 25)
		pbx.hangup()
		waitFor(t, 5*time.Second, "phone gets BYE", func() bool { return len(phone.sip.requests(sip.BYE)) == 1 })
		sbc.waitCallsIdle(t)
	})
	t.Run("hold and resume", func(t *testing.T) {
		pbx := newMediaPBX(t, pbxOptions{stream: true})
		sbc := startSBC(t, sbcOptions{trunks: pbx.trunk()})
		phone := newPlainPhone(t, sbc)
		phone.call("1000")
		waitCount(t, "pbx stream", phone.rtp.rx, "PBX1", 10)
		if res := phone.dlg.request("INVITE", "application/sdp", phone.sdp("sendonly")); res.StatusCode() != 200 {
			t.Fatalf("hold answered %d", res.StatusCode())
		}
		if offers := pbx.state().offers; !strings.Contains(offers[len(offers)-1], "a=sendonly") {
			t.Fatalf("pbx did not see the hold:\n%s", offers[len(offers)-1])
		}
		if res := phone.dlg.request("INVITE", "application/sdp", phone.sdp("sendrecv")); res.StatusCode() != 200 {
			t.Fatalf("resume answered %d", res.StatusCode())
		}
		n := phone.rtp.rx.marker("PBX1")
		waitCount(t, "stream after resume", phone.rtp.rx, "PBX1", n+25)
		phone.dlg.bye()
		sbc.waitCallsIdle(t)
	})
	t.Run("dtmf rfc4733 trunk", func(t *testing.T) {
		pbx := newMediaPBX(t, pbxOptions{stream: true})
		sbc := startSBC(t, sbcOptions{trunks: pbx.trunk()})
		phone := newPlainPhone(t, sbc)
		phone.call("1000")
		peer, _ := pbx.current()
		waitCount(t, "pbx gets the phone", peer.rx, "PLN1", 5)
		phone.rtp.src.queueDigits("19#")
		waitDigits(t, "pbx gets RFC 4733", peer.rx, "19#")
		peer.src.queueDigits("*0")
		waitDigits(t, "phone gets RFC 4733", phone.rtp.rx, "*0")
		// An INFO toward a leg without INFO DTMF is played as RFC 4733.
		phone.dlg.request("INFO", "application/dtmf-relay", "Signal=5\nDuration=160\n")
		waitDigits(t, "pbx gets the phone's INFO as RFC 4733", peer.rx, "19#5")
		pbx.sendInfo('7')
		waitDigits(t, "phone gets the pbx's INFO as RFC 4733", phone.rtp.rx, "*07")
		if st := pbx.state(); len(st.infos) != 0 {
			t.Errorf("pbx with rfc4733 got INFO %v", st.infos)
		}
		phone.dlg.bye()
		sbc.waitCallsIdle(t)
	})
	t.Run("dtmf info trunk", func(t *testing.T) {
		pbx := newMediaPBX(t, pbxOptions{stream: true})
		sbc := startSBC(t, sbcOptions{trunks: pbx.trunk(), mutate: trunkDTMF(config.DTMFInfo)})
		phone := newPlainPhone(t, sbc)
		phone.call("1000")
		peer, _ := pbx.current()
		waitCount(t, "pbx gets the phone", peer.rx, "PLN1", 5)
		phone.rtp.src.queueDigits("19#")
		waitFor(t, 10*time.Second, "pbx gets INFO 1 9 #", func() bool { return fmt.Sprint(pbx.state().infos) == "[1 9 #]" })
		pbx.sendInfo('7')
		waitDigits(t, "phone gets the pbx's INFO as RFC 4733", phone.rtp.rx, "7")
		phone.dlg.bye()
		sbc.waitCallsIdle(t)
	})
}

// trunkDTMF sets the DTMF mode of every trunk.
func trunkDTMF(mode string) func(*config.Config) {
	return func(c *config.Config) {
		for i := range c.Trunks {
			c.Trunks[i].DTMF = mode
		}
	}
}

// TestMediaPeersSIPpEcho checks SIPp's RTP echo through the plain relay.
func TestMediaPeersSIPpEcho(t *testing.T) {
	sbc, check := startSIPpEcho(t)
	phone := newPlainPhone(t, sbc)
	phone.call("1000")
	waitCount(t, "sipp echoes the phone", phone.rtp.rx, "PLN1", 25)
	phone.dlg.bye()
	check()
	sbc.waitCallsIdle(t)
}
