package media

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

// waitDigits waits until the stats hold the digits, in order.
func waitDigits(t *testing.T, what string, s *e2e.RTPStats, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Snapshot().Digits != want {
		if time.Now().After(deadline) {
			snap := s.Snapshot()
			t.Fatalf("%s: got RFC 4733 digits %q, want %q (by PT %v, %d packets of overlapping events)",
				what, snap.Digits, want, snap.ByPT, snap.Overlaps)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.Snapshot().Overlaps; n > 0 {
		t.Errorf("%s: %d packets of RFC 4733 events overlapping another event", what, n)
	}
}

// TestMediaHarnessDirect checks the RTP harness without an SBC: a stream,
// its SSRC/sequence/timestamp switch and RFC 4733 digits, peer to peer.
func TestMediaHarnessDirect(t *testing.T) {
	src := e2e.NewRTPSource("PBX1", e2e.PTPCMU, e2e.PBXDTMFPT)
	pbx := e2e.NewRTPPeer(t, e2e.PBXIP(), src, e2e.PBXDTMFPT)
	phone := e2e.NewRTPPeer(t, e2e.CallerIP(), nil, e2e.PBXDTMFPT)
	pbx.Start(phone.Conn.LocalAddr().(*net.UDPAddr))
	e2e.WaitCount(t, "stream", phone.Rx, "PBX1", 10)
	src.QueueDigits("15#")
	waitDigits(t, "digits", phone.Rx, "15#")
	clean := phone.Rx.Snapshot()
	if len(clean.SSRCs) != 1 || clean.SeqGaps != 0 || clean.TSBack != 0 || clean.MaxTSJump > 8000 || clean.Corrupt != 0 {
		t.Fatalf("one clean stream counted as: %+v", clean)
	}
	src.Jump("PBX2")
	e2e.WaitCount(t, "after the switch", phone.Rx, "PBX2", 10)
	s := phone.Rx.Snapshot()
	if len(s.SSRCs) != 2 || s.MaxSeqGap < 29000 || s.MaxTSJump < 900_000 {
		t.Fatalf("the switch was not seen: ssrcs %v, max seq gap %d, max ts jump %d", s.SSRCs, s.MaxSeqGap, s.MaxTSJump)
	}
}

// TestMediaPeersPlainRTP drives the SIP-side peers through the plain
// RTP relay with a plain SIP phone, so the peers the WebRTC tests use are
// known good on their own.
func TestMediaPeersPlainRTP(t *testing.T) {
	t.Run("echo", func(t *testing.T) {
		pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{})
		sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
		phone := e2e.NewPlainPhone(t, sbc)
		phone.Call("1000")
		e2e.WaitCount(t, "phone gets its packets back from the pbx", phone.RTP.Rx, "PLN1", 25)
		phone.Dlg.Bye()
		e2e.WaitFor(t, 5*time.Second, "pbx gets BYE", func() bool { return pbx.State().Byes == 1 })
		sbc.WaitCallsIdle(t)
	})
	t.Run("early media on another port", func(t *testing.T) {
		pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Early: true})
		sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
		phone := e2e.NewPlainPhone(t, sbc)
		phone.Dial("1000")
		e2e.WaitCount(t, "early media", phone.RTP.Rx, "PBXE", 10)
		pbx.ReleaseAnswer()
		phone.AwaitAnswer()
		e2e.WaitCount(t, "media after the answer", phone.RTP.Rx, "PBXF", 25)
		final, _ := pbx.Current()
		e2e.WaitCount(t, "pbx final port gets the phone", final.Rx, "PLN1", 25)
		phone.Dlg.Bye()
		sbc.WaitCallsIdle(t)
	})
	t.Run("pbx moves media", func(t *testing.T) {
		pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
		sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
		phone := e2e.NewPlainPhone(t, sbc)
		phone.Call("1000")
		e2e.WaitCount(t, "pbx stream", phone.RTP.Rx, "PBX1", 10)
		moved := pbx.MoveMedia(false)
		e2e.WaitCount(t, "stream from the new port", phone.RTP.Rx, "PBXN", 25)
		e2e.WaitCount(t, "phone reaches the new port", moved.Rx, "PLN1", 25)
		pbx.Hangup()
		e2e.WaitFor(t, 5*time.Second, "phone gets BYE", func() bool { return len(phone.SIP.Requests(sip.BYE)) == 1 })
		sbc.WaitCallsIdle(t)
	})
	t.Run("hold and resume", func(t *testing.T) {
		pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
		sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
		phone := e2e.NewPlainPhone(t, sbc)
		phone.Call("1000")
		e2e.WaitCount(t, "pbx stream", phone.RTP.Rx, "PBX1", 10)
		if res := phone.Dlg.Request("INVITE", "application/sdp", phone.SDP("sendonly")); res.StatusCode() != 200 {
			t.Fatalf("hold answered %d", res.StatusCode())
		}
		if offers := pbx.State().Offers; !strings.Contains(offers[len(offers)-1], "a=sendonly") {
			t.Fatalf("pbx did not see the hold:\n%s", offers[len(offers)-1])
		}
		if res := phone.Dlg.Request("INVITE", "application/sdp", phone.SDP("sendrecv")); res.StatusCode() != 200 {
			t.Fatalf("resume answered %d", res.StatusCode())
		}
		n := phone.RTP.Rx.Marker("PBX1")
		e2e.WaitCount(t, "stream after resume", phone.RTP.Rx, "PBX1", n+25)
		phone.Dlg.Bye()
		sbc.WaitCallsIdle(t)
	})
	t.Run("dtmf rfc4733 trunk", func(t *testing.T) {
		pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
		sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
		phone := e2e.NewPlainPhone(t, sbc)
		phone.Call("1000")
		peer, _ := pbx.Current()
		e2e.WaitCount(t, "pbx gets the phone", peer.Rx, "PLN1", 5)
		phone.RTP.Src.QueueDigits("19#")
		waitDigits(t, "pbx gets RFC 4733", peer.Rx, "19#")
		peer.Src.QueueDigits("*0")
		waitDigits(t, "phone gets RFC 4733", phone.RTP.Rx, "*0")
		// An INFO toward a leg without INFO DTMF is played as RFC 4733.
		phone.Dlg.Request("INFO", "application/dtmf-relay", "Signal=5\nDuration=160\n")
		waitDigits(t, "pbx gets the phone's INFO as RFC 4733", peer.Rx, "19#5")
		pbx.SendInfo('7')
		waitDigits(t, "phone gets the pbx's INFO as RFC 4733", phone.RTP.Rx, "*07")
		if st := pbx.State(); len(st.Infos) != 0 {
			t.Errorf("pbx with rfc4733 got INFO %v", st.Infos)
		}
		phone.Dlg.Bye()
		sbc.WaitCallsIdle(t)
	})
	t.Run("dtmf info trunk", func(t *testing.T) {
		pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
		sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk(), Mutate: trunkDTMF(config.DTMFInfo)})
		phone := e2e.NewPlainPhone(t, sbc)
		phone.Call("1000")
		peer, _ := pbx.Current()
		e2e.WaitCount(t, "pbx gets the phone", peer.Rx, "PLN1", 5)
		phone.RTP.Src.QueueDigits("19#")
		e2e.WaitFor(t, 10*time.Second, "pbx gets INFO 1 9 #", func() bool { return fmt.Sprint(pbx.State().Infos) == "[1 9 #]" })
		pbx.SendInfo('7')
		waitDigits(t, "phone gets the pbx's INFO as RFC 4733", phone.RTP.Rx, "7")
		phone.Dlg.Bye()
		sbc.WaitCallsIdle(t)
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
	sbc, check := e2e.StartSIPpEcho(t)
	phone := e2e.NewPlainPhone(t, sbc)
	phone.Call("1000")
	e2e.WaitCount(t, "sipp echoes the phone", phone.RTP.Rx, "PLN1", 25)
	phone.Dlg.Bye()
	check()
	sbc.WaitCallsIdle(t)
}
