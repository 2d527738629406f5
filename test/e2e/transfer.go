package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/sipptest"
)

// The call transfer tests' endpoints: a phone on IP(32) (SIP over UDP,
// plain RTP with its own marker), the scripted PBX (MediaPBX, streaming
// "PBX1") behind trunk pbx for 1000, and a SIPp UAS with -rtp_echo on
// IP(33) behind trunk target for 2000, the transfer target (127.0.3.2 and
// .3 before the split).
func xferPhoneIP() string  { return IP(32) }
func xferTargetIP() string { return IP(33) }

// xferPhone is a SIP phone with plain RTP that can transfer its calls.
type xferPhone struct {
	t   *testing.T
	SIP *SIPClient
	RTP *rtpPeer
	ver atomic.Int32
}

func NewXferPhone(t *testing.T, sbc *SBC, marker string) *xferPhone {
	t.Helper()
	p := &xferPhone{t: t, SIP: NewSIPClientFrom(t, "UDP", sbc.UDP.String(), xferPhoneIP()),
		RTP: NewRTPPeer(t, xferPhoneIP(), NewRTPSource(marker, PTPCMU, PBXDTMFPT), PBXDTMFPT)}
	p.SIP.Handle(p.onRequest)
	return p
}

func (p *xferPhone) sdp(dir string) string {
	return fmt.Sprintf("v=0\no=xfer 77 %d IN IP4 %s\ns=-\nc=IN IP4 %s\nt=0 0\n"+
		"m=audio %d RTP/AVP 0 %d\na=rtpmap:0 PCMU/8000\na=rtpmap:%d telephone-event/8000\na=fmtp:%d 0-16\n"+
		"a=ptime:20\na=%s\n", p.ver.Add(1), xferPhoneIP(), xferPhoneIP(), p.RTP.Port(), PBXDTMFPT, PBXDTMFPT, PBXDTMFPT, dir)
}

// call places a call and sends RTP to the answer's address.
func (p *xferPhone) Call(user string) *sipDialog {
	p.t.Helper()
	d := p.SIP.Invite(user, p.sdp("sendrecv"))
	res := d.Await(1, 20*time.Second, nil)
	if res.StatusCode() != 200 {
		p.t.Fatalf("phone: call to %s answered %d", user, res.StatusCode())
	}
	d.Established(res)
	p.apply(res.Body())
	d.Ack()
	return d
}

func (p *xferPhone) apply(sdp string) {
	info, err := ParseSDPInfo(sdp)
	if err != nil {
		p.t.Errorf("phone: %v", err)
		return
	}
	p.RTP.Start(info.Addr)
}

// onRequest answers a re-INVITE with its own port, following the offer.
func (p *xferPhone) onRequest(req sip.Request) (int, string, string) {
	if req.Method() != sip.INVITE || req.Body() == "" {
		return 200, "", ""
	}
	info, err := ParseSDPInfo(req.Body())
	if err != nil {
		return 488, "", ""
	}
	p.RTP.Start(info.Addr)
	return 200, "application/sdp", p.sdp(answerDir(info.Dir))
}

// refer sends REFER in dialog d and returns its final response.
func (p *xferPhone) Refer(d *sipDialog, referTo string) sip.Response {
	p.t.Helper()
	return ReferIn(d, referTo)
}

// ReferIn sends REFER in any SIPClient dialog (a phone's, a browser's).
func ReferIn(d *sipDialog, referTo string) sip.Response {
	d.c.t.Helper()
	d.Seq++
	u := d.c.ua
	to := "<" + d.ruri + ">;tag=" + d.toTag
	var b strings.Builder
	fmt.Fprintf(&b, "REFER %s SIP/2.0\r\n", d.target)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\r\n", u.Kind, u.Host, sipmsg.NewToken(6))
	fmt.Fprintf(&b, "Max-Forwards: 70\r\nFrom: <sip:web@media.example>;tag=%s\r\n", d.fromTag)
	fmt.Fprintf(&b, "To: %s\r\nCall-ID: %s\r\nCSeq: %d REFER\r\n", to, d.callID, d.Seq)
	fmt.Fprintf(&b, "Contact: <sip:web@%s>\r\nRefer-To: %s\r\n", u.Host, referTo)
	d.c.write(b.String() + bodyPart("", ""))
	return d.Await(d.Seq, 10*time.Second, nil)
}

// ReplacesOf is the Refer-To of an attended transfer to user at the SBC
// that replaces dialog d (RFC 3891, escaped as a URI header).
func ReplacesOf(user, sbc string, d *sipDialog) string {
	r := d.callID + ";to-tag=" + d.toTag + ";from-tag=" + d.fromTag
	return "<sip:" + user + "@" + sbc + "?Replaces=" + url.QueryEscape(r) + ">"
}

// notifies returns the sipfrag status lines of the NOTIFYs the phone got.
func (p *xferPhone) Notifies() []string { return NotifyLines(p.SIP) }

// NotifyLines returns the sipfrag status lines of the NOTIFYs c got.
func NotifyLines(c *SIPClient) []string {
	var out []string
	for _, n := range c.Requests(sip.NOTIFY) {
		line, _, _ := strings.Cut(n.Body(), "\r\n")
		out = append(out, line)
	}
	return out
}

// PBXRefer sends REFER in the MediaPBX's current dialog and returns its
// final response.
func PBXRefer(p *MediaPBX, referTo string) sip.Response {
	p.t.Helper()
	p.Mu.Lock()
	c := p.Call
	c.seq++
	seq := c.seq
	p.Mu.Unlock()
	msg := p.inDialog(c, "REFER", seq, "", "")
	msg = strings.Replace(msg, "Max-Forwards: 70\r\n", "Max-Forwards: 70\r\nRefer-To: "+referTo+"\r\n", 1)
	p.write(msg)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case res := <-p.res:
			if n, m := sipmsg.CSeq(res); int(n) == seq && m == sip.REFER && res.StatusCode() >= 200 {
				return res
			}
		case <-deadline:
			p.t.Fatal("pbx: no final response to its REFER")
			return nil
		}
	}
}

// xferSetup is an SBC with the PBX behind 1000 and the SIPp echo behind
// 2000 (expecting calls calls), and the records of its calls; more
// changes its configuration further.
type xferSetup struct {
	SBC   *SBC
	Pbx   *MediaPBX
	calls *callRecords
	Check func()
}

func StartTransferSetup(t *testing.T, calls int, more ...func(*config.Config)) *xferSetup {
	t.Helper()
	sipptest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	mp := EvenFreePort(t, xferTargetIP())
	uas := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
		LocalIP: xferTargetIP(), Calls: calls,
		Args: []string{"-rtp_echo", "-mi", xferTargetIP(), "-mp", Itoa(mp)}, Timeout: 40 * time.Second})
	pbx := NewMediaPBX(t, PBXOptions{Stream: true})
	target := TrunkSpec{Name: "target", Addr: xferTargetIP(), Port: int(uas.Addr().Port())}
	sbc := StartSBC(t, SBCOptions{Trunks: append(pbx.Trunk(), target), Mutate: func(c *config.Config) {
		trusted := []string{"127.0.0.0/8"}
		c.Routes = []config.Route{
			{Name: "to-target", Match: config.Match{RURIUser: "^2000$"}, Target: config.TargetTrunks,
				Trunks: []string{"target"}, TrustedSources: trusted},
			{Name: "to-pbx", Target: config.TargetTrunks, Trunks: []string{"pbx"}, TrustedSources: trusted},
		}
		for _, f := range more {
			f(c)
		}
	}})
	s := &xferSetup{SBC: sbc, Pbx: pbx, calls: WatchCalls(sbc)}
	s.Check = func() {
		t.Helper()
		if err := uas.Wait().Check(calls); err != nil {
			t.Error(err)
		}
	}
	return s
}

// records waits for n call records and returns them.
func (s *xferSetup) Records(t *testing.T, n int) []outcome.CallRecord {
	t.Helper()
	var out []outcome.CallRecord
	WaitFor(t, 15*time.Second, fmt.Sprintf("%d call records", n), func() bool {
		s.calls.mu.Lock()
		defer s.calls.mu.Unlock()
		out = append([]outcome.CallRecord(nil), s.calls.ended...)
		return len(out) >= n
	})
	return out
}

// ByID finds a record.
func ByID(recs []outcome.CallRecord, id string) (outcome.CallRecord, bool) {
	for _, r := range recs {
		if r.ID == id {
			return r, true
		}
	}
	return outcome.CallRecord{}, false
}
