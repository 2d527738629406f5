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

// WaitCount waits until the stats counted at least n packets with the
// payload marker, failing with the counts seen.
func WaitCount(t *testing.T, what string, s *RTPStats, marker string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Marker(marker) < n {
		if time.Now().After(deadline) {
			snap := s.Snapshot()
			t.Fatalf("%s: %d packets with marker %q after 10s, want %d (received %d, by marker %v, by PT %v)",
				what, s.Marker(marker), marker, n, snap.Packets, snap.byMarker, snap.ByPT)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCallsIdle waits until no call and no media session is left. Unlike
// waitIdle it does not wait for UDP server transactions, which linger for
// Timer J (64*T1, 6.4 s here) after a request from a UDP peer.
func (s *SBC) WaitCallsIdle(t *testing.T) {
	t.Helper()
	s.WaitIdleProbing(t, true)
}

// StartSIPpEcho runs a SIPp UAS answering one call with -rtp_echo on
// PBXIP behind a fresh SBC; the returned func checks SIPp's result.
func StartSIPpEcho(t *testing.T) (*SBC, func()) {
	t.Helper()
	sipptest.Require(t)
	// The far end waits for a browser, which on a loaded 2-core machine
	// may take half a minute to start and place its call (a CI run saw
	// 29 s): SIPp's bound leaves room for that and for the call itself.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	t.Cleanup(cancel)
	mp := EvenFreePort(t, PBXIP())
	uas := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
		LocalIP: PBXIP(), Args: []string{"-rtp_echo", "-mi", PBXIP(), "-mp", Itoa(mp)}, Timeout: 120 * time.Second})
	sbc := StartSBC(t, SBCOptions{Trunks: []TrunkSpec{{Name: "pbx", Addr: PBXIP(), Port: int(uas.Addr().Port())}}})
	return sbc, func() {
		t.Helper()
		if err := uas.Wait().Check(1); err != nil {
			t.Error(err)
		}
	}
}

// plainPhone is a SIP phone with plain RTP: SIP over UDP from CallerIP and
// an rtpPeer sending "PLN1" frames. It checks the SIP-side peers against
// the plain relay, without WebRTC.
type plainPhone struct {
	t   *testing.T
	SIP *SIPClient
	RTP *rtpPeer
	Dlg *sipDialog
	ver atomic.Int32 // SDP version: the reader goroutine answers re-INVITEs
}

func NewPlainPhone(t *testing.T, sbc *SBC) *plainPhone {
	t.Helper()
	p := &plainPhone{t: t, SIP: NewSIPClient(t, "UDP", sbc.UDP.String()),
		RTP: NewRTPPeer(t, CallerIP(), NewRTPSource("PLN1", PTPCMU, PBXDTMFPT), PBXDTMFPT)}
	p.SIP.Handle(p.onRequest)
	return p
}

func (p *plainPhone) SDP(dir string) string {
	return fmt.Sprintf("v=0\no=plain 77 %d IN IP4 %s\ns=-\nc=IN IP4 %[2]s\nt=0 0\n"+
		"m=audio %d RTP/AVP 0 %d\na=rtpmap:0 PCMU/8000\na=rtpmap:%[4]d telephone-event/8000\na=fmtp:%[4]d 0-16\n"+
		"a=ptime:20\na=%s\n", p.ver.Add(1), CallerIP(), p.RTP.Port(), PBXDTMFPT, dir)
}

// call places a call with a plain offer and sends RTP to the latest SDP
// answer (early media included).
func (p *plainPhone) Call(user string) {
	p.t.Helper()
	p.Dial(user)
	p.AwaitAnswer()
}

func (p *plainPhone) Dial(user string) {
	p.Dlg = p.SIP.Invite(user, p.SDP("sendrecv"))
}

func (p *plainPhone) AwaitAnswer() {
	p.t.Helper()
	res := p.Dlg.Await(1, 20*time.Second, func(r sip.Response) { p.apply(r.Body()) })
	if res.StatusCode() != 200 {
		p.t.Fatalf("plain phone: call answered %d", res.StatusCode())
	}
	p.Dlg.Established(res)
	p.apply(res.Body())
	p.Dlg.Ack()
}

func (p *plainPhone) apply(sdp string) {
	if sdp == "" {
		return
	}
	info, err := ParseSDPInfo(sdp)
	if err != nil {
		p.t.Errorf("plain phone: %v", err)
		return
	}
	p.RTP.Start(info.Addr)
}

// onRequest answers a re-INVITE with the same port and the direction that
// matches, and follows the offered address.
func (p *plainPhone) onRequest(req sip.Request) (int, string, string) {
	if req.Method() != sip.INVITE || req.Body() == "" {
		return 200, "", ""
	}
	info, err := ParseSDPInfo(req.Body())
	if err != nil {
		return 488, "", ""
	}
	p.RTP.Start(info.Addr)
	return 200, "application/sdp", p.SDP(answerDir(info.Dir))
}

// callRecords collects the B2BUA's call records (what CDRs are made of).
type callRecords struct {
	mu    sync.Mutex
	ended []outcome.CallRecord
}

// WatchCalls observes the calls of sbc; call it before the first call.
func WatchCalls(sbc *SBC) *callRecords {
	r := &callRecords{}
	sbc.App.Observe(r)
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
func (r *callRecords) WaitEnded(t *testing.T) outcome.CallRecord {
	t.Helper()
	var rec outcome.CallRecord
	WaitFor(t, 10*time.Second, "call record", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.ended) > 0 {
			rec = r.ended[0]
		}
		return len(r.ended) > 0
	})
	return rec
}
