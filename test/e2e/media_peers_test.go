package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/sipptest"
)

// waitCount waits until the stats counted at least n packets with the
// payload marker, failing with the counts seen.
func waitCount(t *testing.T, what string, s *rtpStats, marker string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.marker(marker) < n {
		if time.Now().After(deadline) {
			snap := s.snapshot()
			t.Fatalf("%s: %d packets with marker %q after 10s, want %d (received %d, by marker %v, by PT %v)",
				what, s.marker(marker), marker, n, snap.packets, snap.byMarker, snap.byPT)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

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

// waitCallsIdle waits until no call and no media session is left. Unlike
// waitIdle it does not wait for UDP server transactions, which linger for
// Timer J (64*T1, 6.4 s here) after a request from a UDP peer.
func (s *sbcUnderTest) waitCallsIdle(t *testing.T) {
	t.Helper()
	s.waitIdleProbing(t, true)
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

// startSIPpEcho runs a SIPp UAS answering one call with -rtp_echo on
// 127.0.0.3 behind a fresh SBC; the returned func checks SIPp's result.
func startSIPpEcho(t *testing.T) (*sbcUnderTest, func()) {
	t.Helper()
	sipptest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	mp := evenFreePort(t, "127.0.0.3")
	uas := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
		Args: []string{"-rtp_echo", "-mi", "127.0.0.3", "-mp", itoa(mp)}, Timeout: 30 * time.Second})
	sbc := startSBC(t, sbcOptions{trunks: []trunkSpec{{name: "pbx", addr: "127.0.0.3", port: int(uas.Addr().Port())}}})
	return sbc, func() {
		t.Helper()
		if err := uas.Wait().Check(1); err != nil {
			t.Error(err)
		}
	}
}

// evenFreePort is a free even UDP port on ip whose odd neighbour is free
// too (SIPp echoes RTP on it and RTCP on the next).
func evenFreePort(t *testing.T, ip string) int {
	t.Helper()
	for range 50 {
		c, err := listenEvenUDP(ip)
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c2, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip), Port: port + 1})
		c.Close()
		if err == nil {
			c2.Close()
			return port
		}
	}
	t.Fatal("no free even port pair")
	return 0
}

// plainPhone is a SIP phone with plain RTP: SIP over UDP from 127.0.0.2 and
// an rtpPeer sending "PLN1" frames. It checks the SIP-side peers against
// the plain relay, without WebRTC.
type plainPhone struct {
	t   *testing.T
	sip *sipClient
	rtp *rtpPeer
	dlg *sipDialog
	ver atomic.Int32 // SDP version: the reader goroutine answers re-INVITEs
}

func newPlainPhone(t *testing.T, sbc *sbcUnderTest) *plainPhone {
	t.Helper()
	p := &plainPhone{t: t, sip: newSIPClient(t, "UDP", sbc.udp.String()),
		rtp: newRTPPeer(t, "127.0.0.2", newRTPSource("PLN1", ptPCMU, pbxDTMFPT), pbxDTMFPT)}
	p.sip.handle(p.onRequest)
	return p
}

func (p *plainPhone) sdp(dir string) string {
	return fmt.Sprintf("v=0\no=plain 77 %d IN IP4 127.0.0.2\ns=-\nc=IN IP4 127.0.0.2\nt=0 0\n"+
		"m=audio %d RTP/AVP 0 %d\na=rtpmap:0 PCMU/8000\na=rtpmap:%d telephone-event/8000\na=fmtp:%d 0-16\n"+
		"a=ptime:20\na=%s\n", p.ver.Add(1), p.rtp.port(), pbxDTMFPT, pbxDTMFPT, pbxDTMFPT, dir)
}

// call places a call with a plain offer and sends RTP to the latest SDP
// answer (early media included).
func (p *plainPhone) call(user string) {
	p.t.Helper()
	p.dial(user)
	p.awaitAnswer()
}

func (p *plainPhone) dial(user string) {
	p.dlg = p.sip.invite(user, p.sdp("sendrecv"))
}

func (p *plainPhone) awaitAnswer() {
	p.t.Helper()
	res := p.dlg.await(1, 20*time.Second, func(r sip.Response) { p.apply(r.Body()) })
	if res.StatusCode() != 200 {
		p.t.Fatalf("plain phone: call answered %d", res.StatusCode())
	}
	p.dlg.established(res)
	p.apply(res.Body())
	p.dlg.ack()
}

func (p *plainPhone) apply(sdp string) {
	if sdp == "" {
		return
	}
	info, err := parseSDPInfo(sdp)
	if err != nil {
		p.t.Errorf("plain phone: %v", err)
		return
	}
	p.rtp.start(info.addr)
}

// onRequest answers a re-INVITE with the same port and the direction that
// matches, and follows the offered address.
func (p *plainPhone) onRequest(req sip.Request) (int, string, string) {
	if req.Method() != sip.INVITE || req.Body() == "" {
		return 200, "", ""
	}
	info, err := parseSDPInfo(req.Body())
	if err != nil {
		return 488, "", ""
	}
	p.rtp.start(info.addr)
	return 200, "application/sdp", p.sdp(answerDir(info.dir))
}

// callRecords collects the B2BUA's call records (what CDRs are made of).
type callRecords struct {
	mu    sync.Mutex
	ended []outcome.CallRecord
}

// watchCalls observes the calls of sbc; call it before the first call.
func watchCalls(sbc *sbcUnderTest) *callRecords {
	r := &callRecords{}
	sbc.app.Observe(r)
	return r
}

func (r *callRecords) CallStarted(outcome.CallRecord)  {}
func (r *callRecords) CallAnswered(outcome.CallRecord) {}

func (r *callRecords) CallEnded(c outcome.CallRecord) {
	r.mu.Lock()
	r.ended = append(r.ended, c)
	r.mu.Unlock()
}

// waitEnded waits for the record of the first call that ended.
func (r *callRecords) waitEnded(t *testing.T) outcome.CallRecord {
	t.Helper()
	var rec outcome.CallRecord
	waitFor(t, 10*time.Second, "call record", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.ended) > 0 {
			rec = r.ended[0]
		}
		return len(r.ended) > 0
	})
	return rec
}
