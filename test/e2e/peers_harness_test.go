package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"
	"github.com/sbc-project/sbc/b2bua/outcome"
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

// waitCallsIdle waits until no call and no media session is left. Unlike
// waitIdle it does not wait for UDP server transactions, which linger for
// Timer J (64*T1, 6.4 s here) after a request from a UDP peer.
func (s *sbcUnderTest) waitCallsIdle(t *testing.T) {
	t.Helper()
	s.waitIdleProbing(t, true)
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

func (r *callRecords) CallStarted(outcome.CallRecord) {}

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
