// Package announce tests the SBC's own early media end to end: local
// ringback to a browser (pion) whose callee rings without SDP, and
// announcements before a refusal for a trusted SIP caller, never for a
// stranger.
package announce

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/media/announce"
	"github.com/sbc-project/sbc/media/codec"
	"github.com/sbc-project/sbc/test/e2e"
)

// decode turns PCMU or PCMA frames into 8 kHz samples.
func decode(t *testing.T, frames []e2e.ForeignFrame) []int16 {
	t.Helper()
	var pcm []int16
	for _, f := range frames {
		name := map[uint8]string{0: "PCMU", 8: "PCMA"}[f.PT]
		if name == "" {
			t.Fatalf("frame with payload type %d: want PCMU or PCMA", f.PT)
		}
		dec, _ := codec.NewDecoder(codec.Format{Name: name})
		pcm, _ = dec.Decode(pcm, f.Payload)
	}
	return pcm
}

// checkStream fails unless frames are one RTP stream: one SSRC, each
// sequence number one more than the last, timestamps 160 apart.
func checkStream(t *testing.T, frames []e2e.ForeignFrame) {
	t.Helper()
	for i := 1; i < len(frames); i++ {
		a, b := frames[i-1], frames[i]
		if b.SSRC != a.SSRC || b.Seq != a.Seq+1 || b.TS-a.TS != 160 {
			t.Fatalf("frame %d: ssrc %x seq %d ts %d after ssrc %x seq %d ts %d: not one 20 ms stream",
				i, b.SSRC, b.Seq, b.TS, a.SSRC, a.Seq, a.TS)
		}
	}
}

// tone fails unless pcm holds each of want and none of absent.
func tone(t *testing.T, what string, pcm []int16, want, absent []float64) {
	t.Helper()
	for _, f := range want {
		if p := announce.Goertzel(pcm, 8000, f); p < 0.002 {
			t.Errorf("%s: %g Hz power %.5f, want the tone", what, f, p)
		}
	}
	for _, f := range absent {
		if p := announce.Goertzel(pcm, 8000, f); p > 0.0005 {
			t.Errorf("%s: %g Hz power %.5f, want none", what, f, p)
		}
	}
}

// TestRingbackToBrowser: a browser calls a PBX that rings (180 without
// SDP) and answers when the test lets it. The browser gets 183 with the
// SBC's SDP (PCMU, sendrecv) and a US ringback tone (440 + 480 Hz) as
// one 20 ms RTP stream; then the 200, whose SDP names the same transport
// and codec; then the PBX's media, on the same SSRC, and no more tone.
func TestRingbackToBrowser(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Ringing: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk(), Mutate: func(c *config.Config) {
		e2e.WithAdmin(token)(c)
		c.Media.Ringback.Enabled = true
		c.Media.Ringback.Tone = "us"
	}})
	admin := sbc.Admin(t, token)
	web := e2e.NewWebPhone(t, sbc)
	web.Dial("1000")
	web.Progress("the SBC's 183 with SDP", 10*time.Second, func() bool { return web.Answer != "" })
	early := web.Answer
	if !strings.Contains(early, "a=rtpmap:0 PCMU/8000") || !strings.Contains(early, "a=sendrecv") {
		t.Fatalf("183's SDP is not PCMU sendrecv:\n%s", early)
	}
	// 1.5 s of tone: within the first 2 s burst of the US cadence.
	e2e.WaitFor(t, 15*time.Second, "75 ringback frames", func() bool { return len(web.Rx.Foreign()) >= 75 })
	frames := web.Rx.Foreign()[:75]
	checkStream(t, frames)
	tone(t, "ringback", decode(t, frames[5:70]), []float64{440, 480}, []float64{350, 620, 1000})
	if web.Rx.Marker("PBX1") != 0 {
		t.Fatal("the PBX's media reached the browser before its answer")
	}

	var calls struct {
		Calls []struct {
			ID string `json:"id"`
		} `json:"calls"`
	}
	admin.JSON(http.MethodGet, "/api/v1/calls", "", http.StatusOK, &calls)
	if len(calls.Calls) != 1 {
		t.Fatalf("calls %+v", calls)
	}

	pbx.ReleaseAnswer()
	res := web.AwaitAnswer()
	if res.StatusCode() != 200 {
		t.Fatalf("call answered %d %s", res.StatusCode(), res.Reason())
	}
	if web.AnswerChanged {
		t.Error("the 200's SDP names another ICE/DTLS transport than the 183's")
	}
	if res.Body() != early {
		t.Errorf("the 200's SDP differs from the 183's:\n%s\n183:\n%s", res.Body(), early)
	}
	e2e.WaitCount(t, "browser gets the pbx stream", web.Rx, "PBX1", 25)
	played := len(web.Rx.Foreign())
	e2e.WaitCount(t, "browser keeps getting the pbx stream", web.Rx, "PBX1", 75)
	if n := len(web.Rx.Foreign()); n > played+1 {
		t.Errorf("%d more ringback frames after the PBX's media arrived", n-played)
	}
	if ssrcs := web.Rx.Snapshot().SSRCs; len(ssrcs) != 1 {
		t.Errorf("browser got SSRCs %v: the ringback and the PBX's media must be one stream", ssrcs)
	}
	peer, _ := pbx.Current()
	e2e.WaitCount(t, "pbx gets the browser", peer.Rx, "WEB1", 25)
	web.Hangup()
	sbc.WaitCallsIdle(t)
	// The timeline shows the ringback between the callee's 180 and its 200.
	var tl struct {
		Events []struct {
			Kind, Leg, Dir, What string
		} `json:"events"`
	}
	admin.JSON(http.MethodGet, "/api/v1/calls/"+calls.Calls[0].ID+"/timeline", "", http.StatusOK, &tl)
	var seq []string
	for _, ev := range tl.Events {
		switch {
		case ev.Kind == "media" && ev.What == "ringback",
			ev.Kind == "sip" && ev.Leg == "b" && ev.Dir == "in" && (ev.What == "180 INVITE" || ev.What == "200 INVITE"):
			seq = append(seq, ev.What)
		}
	}
	// (A 180 may come again: the callee's answer to a retransmitted INVITE.)
	got := strings.Join(slices.Compact(seq), ", ")
	if !strings.HasPrefix(got, "180 INVITE, ringback, ") || !strings.HasSuffix(got, ", 200 INVITE") || strings.Count(got, "ringback") != 1 {
		t.Errorf("timeline: %q, want one ringback between the callee's 180 and its 200", got)
	}
}

const token = "announce-token"

// TestNoRingbackForSIPCaller: a plain SIP caller gets the 180 relayed and
// no media before the answer (its phone rings by itself).
func TestNoRingbackForSIPCaller(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Ringing: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk(), Mutate: func(c *config.Config) {
		c.Media.Ringback.Enabled = true
	}})
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	rtp := e2e.NewRTPPeer(t, e2e.CallerIP(), nil, 101)
	call := invite(ua, "1000", rtp.Port())
	res := expectProvisional(t, ua)
	if res.StatusCode() != 180 || res.Body() != "" {
		t.Fatalf("SIP caller got %d with body %q, want the 180 relayed without SDP", res.StatusCode(), res.Body())
	}
	time.Sleep(300 * time.Millisecond) // a window for a tone that must not come
	if n := rtp.Rx.Snapshot().Packets; n != 0 {
		t.Errorf("SIP caller got %d RTP packets before the answer", n)
	}
	pbx.ReleaseAnswer()
	final := ua.ExpectFinal()
	if final.StatusCode() != 200 {
		t.Fatalf("answered %d", final.StatusCode())
	}
	call.Answered(final)
	call.Ack()
	call.Bye()
	ua.ExpectFinal()
	sbc.WaitCallsIdle(t)
}

// mline is the audio m= line of an SDP.
func mline(sdp string) string {
	for _, l := range strings.Split(strings.ReplaceAll(sdp, "\r", ""), "\n") {
		if strings.HasPrefix(l, "m=audio") {
			return l
		}
	}
	return ""
}

// invite sends an INVITE for user whose offer (PCMU, telephone-event)
// names port on the UA's address.
func invite(u *e2e.UA, user string, port int) *e2e.UACall {
	c := &e2e.UACall{U: u, CallID: sipmsg.NewToken(8) + "@caller.example", FromTag: sipmsg.NewToken(4),
		Branch: "z9hG4bK" + sipmsg.NewToken(6), To: "sip:" + user + "@" + u.SBC, Seq: 1}
	sendInvite(c, port, "")
	return c
}

// sendInvite sends c's INVITE (its CSeq and branch) with extra headers.
func sendInvite(c *e2e.UACall, port int, extra string) {
	u := c.U
	ip, _, _ := strings.Cut(u.Host, ":")
	body := strings.Replace(e2e.CallerSDP(), "m=audio 49170 ", fmt.Sprintf("m=audio %d ", port), 1)
	body = strings.ReplaceAll(body, e2e.CallerIP(), ip)
	u.Send(fmt.Sprintf(`INVITE %s SIP/2.0
Via: SIP/2.0/%s %s;branch=%s;rport
Max-Forwards: 70
From: "Alice" <sip:alice@caller.example>;tag=%s
To: <%s>
Call-ID: %s
CSeq: %d INVITE
Contact: <sip:alice@%s;transport=%s>
%sContent-Type: application/sdp
Content-Length: %d

`, c.To, u.Kind, u.Host, c.Branch, c.FromTag, c.To, c.CallID, c.Seq, u.Host, strings.ToLower(u.Kind), extra,
		len(strings.ReplaceAll(body, "\n", "\r\n"))) + body)
}

var reDigestParam = regexp.MustCompile(`(\w+)="?([^",]*)"?`)

// authedInvite answers the 407 to c's INVITE with user's password (MD5,
// qop=auth) in the same call's next INVITE.
func authedInvite(t *testing.T, c *e2e.UACall, challenge sip.Response, port int, user, password string) {
	t.Helper()
	var chal string
	for _, h := range challenge.GetHeaders("Proxy-Authenticate") {
		if e2e.ReChallengeMD5.MatchString(h.Value()) {
			chal = h.Value()
		}
	}
	if chal == "" {
		t.Fatalf("no MD5 Proxy-Authenticate in %s", challenge)
	}
	p := map[string]string{}
	for _, m := range reDigestParam.FindAllStringSubmatch(chal, -1) {
		p[strings.ToLower(m[1])] = m[2]
	}
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	cnonce, nc := sipmsg.NewToken(8), "00000001"
	resp := h(h(user+":"+p["realm"]+":"+password) + ":" + p["nonce"] + ":" + nc + ":" + cnonce + ":auth:" + h("INVITE:"+c.To))
	auth := fmt.Sprintf(`Proxy-Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, cnonce="%s", qop=auth, nc=%s`,
		user, p["realm"], p["nonce"], c.To, resp, cnonce, nc)
	if p["opaque"] != "" {
		auth += fmt.Sprintf(`, opaque="%s"`, p["opaque"])
	}
	c.Branch, c.Seq = "z9hG4bK"+sipmsg.NewToken(6), c.Seq+1
	sendInvite(c, port, auth+"\n")
}

// expectProvisional reads until a provisional response other than 100.
func expectProvisional(t *testing.T, u *e2e.UA) sip.Response {
	t.Helper()
	for {
		res, ok := u.Recv(10 * time.Second).(sip.Response)
		if ok && res.StatusCode() > 100 {
			return res
		}
	}
}

// writePrompt writes a 16 kHz WAV of a 1 kHz tone lasting d.
func writePrompt(t *testing.T, d time.Duration) string {
	t.Helper()
	clip, err := announce.Tone{Freqs: []float64{1000}, Cadence: []time.Duration{d, 0}}.Clip(16000)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "not-allowed.wav")
	if err := os.WriteFile(path, announce.WAV(clip), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// announceSBC routes every call to pbx, trusting only CallerIP (other
// callers authenticate as alice), and plays prompt before refusals with
// the dial rules' cause premium or the code 407 (which only strangers
// get, so it must never play).
func announceSBC(t *testing.T, pbx *e2e.MediaPBX, prompt string, maxPlaying int) *e2e.SBC {
	t.Helper()
	return e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk(), Mutate: func(c *config.Config) {
		e2e.WithAdmin(token)(c)
		c.Users = []config.User{{Username: "alice", Password: "secret"}}
		c.Routes = []config.Route{{Name: "out", Target: config.TargetTrunks, Trunks: []string{"pbx"},
			TrustedSources: []string{e2e.CallerIP() + "/32"}}}
		c.Announcements.MaxPlaying = maxPlaying
		c.Announcements.Play = []config.Announcement{{Causes: []string{"premium"}, Codes: []int{407}, File: prompt}}
	}})
}

// responses reads the responses to an INVITE up to the final one and
// returns the provisional ones (other than 100), the final one, and the
// time between the first provisional and the final (0 without one).
func responses(t *testing.T, u *e2e.UA) (prov []sip.Response, final sip.Response, gap time.Duration) {
	t.Helper()
	var first time.Time
	for {
		res, ok := u.Recv(10 * time.Second).(sip.Response)
		switch {
		case !ok || res.StatusCode() == 100:
		case res.StatusCode() < 200:
			if prov = append(prov, res); len(prov) == 1 {
				first = time.Now()
			}
		default:
			if !first.IsZero() {
				gap = time.Since(first)
			}
			return prov, res, gap
		}
	}
}

// allFrames waits until n foreign frames have arrived: the announcement
// was played whole (the reader may lag the SIP on a loaded machine).
func allFrames(t *testing.T, what string, s *e2e.RTPStats, n int) []e2e.ForeignFrame {
	t.Helper()
	e2e.WaitFor(t, 5*time.Second, what, func() bool { return len(s.Foreign()) >= n })
	return s.Foreign()
}

// TestAnnouncementBeforeRefusal: a trusted SIP caller dials a premium
// number, which the dial rules refuse with 403. It gets 183 with the
// SBC's SDP, the 1 kHz prompt (a 16 kHz WAV file played as PCMU, one 20
// ms stream) for its whole second, then the 403 with the dial rules'
// reason; the trunk is never asked. A stranger refused (407) gets the
// plain refusal: no 183, no RTP, no media session.
func TestAnnouncementBeforeRefusal(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{})
	sbc := announceSBC(t, pbx, writePrompt(t, time.Second), 5)
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	rtp := e2e.NewRTPPeer(t, e2e.CallerIP(), nil, 101)
	call := invite(ua, "19005550100", rtp.Port())
	prov, final, gap := responses(t, ua)
	if len(prov) != 1 || prov[0].StatusCode() != 183 || !strings.Contains(prov[0].Body(), "m=audio ") {
		t.Fatalf("provisionals %v before the refusal, want one 183 with SDP", prov)
	}
	if !strings.Contains(prov[0].Body(), "a=rtpmap:0 PCMU/8000") || strings.Contains(prov[0].Body(), e2e.CallerIP()) {
		t.Errorf("183's SDP is not the SBC's PCMU answer:\n%s", prov[0].Body())
	}
	if final.StatusCode() != 403 || !strings.Contains(final.Reason(), "dial rules") {
		t.Errorf("final %d %q, want the dial rules' 403", final.StatusCode(), final.Reason())
	}
	if gap < 800*time.Millisecond {
		t.Errorf("the refusal came %v after the 183, before the 1 s prompt could play", gap)
	}
	frames := allFrames(t, "the prompt's 50 frames", rtp.Rx, 50)
	checkStream(t, frames)
	tone(t, "announcement", decode(t, frames[2:45]), []float64{1000}, []float64{440, 2000})
	call.AckFailure(sipmsg.ToTag(final))
	if n := pbx.Calls(); n != 0 {
		t.Errorf("the trunk got %d INVITEs", n)
	}
	if got := whats(t, sbc, call.CallID); !strings.Contains(got, "reject, 183, announcement, 403") {
		t.Errorf("timeline %q: want the refusal, the 183, the announcement, then the 403", got)
	}

	// alice, untrusted but authenticated by digest, hears it too.
	alice := e2e.DialUAFrom(t, "UDP", sbc.UDP.String(), e2e.IP(5))
	artp := e2e.NewRTPPeer(t, e2e.IP(5), nil, 101)
	acall := invite(alice, "19005550100", artp.Port())
	if prov, final, _ := responses(t, alice); final.StatusCode() != 407 || len(prov) != 0 {
		t.Fatalf("alice without credentials: %v then %d, want a plain 407", prov, final.StatusCode())
	} else {
		acall.AckFailure(sipmsg.ToTag(final))
		authedInvite(t, acall, final, artp.Port(), "alice", "secret")
	}
	prov, final, gap = responses(t, alice)
	if len(prov) != 1 || prov[0].StatusCode() != 183 || final.StatusCode() != 403 || gap < 800*time.Millisecond {
		t.Fatalf("authenticated alice: %v then %d %v later, want 183, the prompt, 403", prov, final.StatusCode(), gap)
	}
	tone(t, "alice's announcement", decode(t, allFrames(t, "alice's 50 frames", artp.Rx, 50)[2:45]), []float64{1000}, nil)
	acall.AckFailure(sipmsg.ToTag(final))

	// A stranger: challenged (407, a code the announcement names), with
	// nothing else.
	e2e.WaitFor(t, 5*time.Second, "the announcement's media session closed", func() bool { return sbc.App.Media().Active() == 0 })
	stranger := e2e.DialUAFrom(t, "UDP", sbc.UDP.String(), e2e.IP(66))
	srtp := e2e.NewRTPPeer(t, e2e.IP(66), nil, 101)
	scall := invite(stranger, "19005550100", srtp.Port())
	prov, final, _ = responses(t, stranger)
	if final.StatusCode() != 407 || len(prov) != 0 {
		t.Fatalf("stranger got %v then %d, want a plain 407", prov, final.StatusCode())
	}
	if n := sbc.App.Media().Active(); n != 0 {
		t.Errorf("%d media sessions open after the stranger's refusal", n)
	}
	scall.AckFailure(sipmsg.ToTag(final))
	time.Sleep(200 * time.Millisecond) // a window for RTP that must not come
	if n := srtp.Rx.Snapshot().Packets; n != 0 {
		t.Errorf("stranger got %d RTP packets", n)
	}
	sbc.WaitCallsIdle(t)
}

// TestAnnouncementsBounded: with announcements.max_playing 1, a second
// refusal while the first announcement plays is sent at once, without
// media; the first caller still hears its prompt to the end.
func TestAnnouncementsBounded(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{})
	sbc := announceSBC(t, pbx, writePrompt(t, 2*time.Second), 1)
	first, second := e2e.DialUA(t, "UDP", sbc.UDP.String()), e2e.DialUA(t, "UDP", sbc.UDP.String())
	rtp1, rtp2 := e2e.NewRTPPeer(t, e2e.CallerIP(), nil, 101), e2e.NewRTPPeer(t, e2e.CallerIP(), nil, 101)
	c1 := invite(first, "19005550100", rtp1.Port())
	if res := expectProvisional(t, first); res.StatusCode() != 183 {
		t.Fatalf("first caller got %d, want 183", res.StatusCode())
	}
	e2e.WaitFor(t, 5*time.Second, "the first announcement plays", func() bool { return len(rtp1.Rx.Foreign()) > 5 })
	c2 := invite(second, "19005550100", rtp2.Port())
	prov, final, _ := responses(t, second)
	if len(prov) != 0 || final.StatusCode() != 403 {
		t.Fatalf("second caller got %v then %d, want a plain 403", prov, final.StatusCode())
	}
	c2.AckFailure(sipmsg.ToTag(final))
	_, final, _ = responses(t, first)
	if final.StatusCode() != 403 {
		t.Fatalf("first caller: %d, want 403 after its prompt", final.StatusCode())
	}
	allFrames(t, "the first caller's whole 2 s prompt", rtp1.Rx, 100)
	c1.AckFailure(sipmsg.ToTag(final))
	if n := rtp2.Rx.Snapshot().Packets; n != 0 {
		t.Errorf("the second caller got %d RTP packets", n)
	}
	sbc.WaitCallsIdle(t)
}

// TestAnnouncementCancelled: a caller that cancels while its announcement
// plays gets 487 for its INVITE at once; the announcement stops and its
// slot is given back (the next refusal plays again with max_playing 1).
func TestAnnouncementCancelled(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{})
	sbc := announceSBC(t, pbx, writePrompt(t, 5*time.Second), 1)
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	rtp := e2e.NewRTPPeer(t, e2e.CallerIP(), nil, 101)
	call := invite(ua, "19005550100", rtp.Port())
	if res := expectProvisional(t, ua); res.StatusCode() != 183 {
		t.Fatalf("got %d, want 183", res.StatusCode())
	}
	e2e.WaitFor(t, 5*time.Second, "the announcement plays", func() bool { return len(rtp.Rx.Foreign()) > 5 })
	call.Cancel()
	var final sip.Response
	for final == nil {
		res, ok := ua.Recv(5 * time.Second).(sip.Response)
		if ok && res.StatusCode() >= 300 {
			final = res
		}
	}
	if final.StatusCode() != 487 {
		t.Fatalf("INVITE answered %d after CANCEL, want 487", final.StatusCode())
	}
	call.AckFailure(sipmsg.ToTag(final))
	e2e.WaitFor(t, 5*time.Second, "the media session closed", func() bool { return sbc.App.Media().Active() == 0 })
	played := rtp.Rx.Snapshot().Packets
	if played > 100 {
		t.Errorf("%d packets: the announcement went on after the CANCEL", played)
	}
	// The slot is free: the next refusal plays its announcement.
	rtp2 := e2e.NewRTPPeer(t, e2e.CallerIP(), nil, 101)
	invite(ua, "19005550100", rtp2.Port())
	if res := expectProvisional(t, ua); res.StatusCode() != 183 {
		t.Fatalf("the next refused caller got %d, want 183: the cancelled announcement kept its slot", res.StatusCode())
	}
}

// TestAnnouncementToBrowser: a trusted browser (pion) refused by the dial
// rules gets the 183 with the SBC's WebRTC answer, hears the prompt over
// DTLS-SRTP in PCMU, then the 403.
func TestAnnouncementToBrowser(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{})
	sbc := announceSBC(t, pbx, writePrompt(t, 2*time.Second), 5)
	web := e2e.NewWebPhone(t, sbc)
	web.Dial("19005550100")
	web.Progress("the announcement", 15*time.Second, func() bool { return len(web.Rx.Foreign()) >= 40 })
	if !strings.Contains(web.Answer, "UDP/TLS/RTP/SAVPF 0 ") {
		t.Errorf("183's SDP is not a WebRTC PCMU answer:\n%s", web.Answer)
	}
	frames := web.Rx.Foreign()[:40]
	checkStream(t, frames)
	tone(t, "announcement", decode(t, frames[2:40]), []float64{1000}, []float64{440, 2000})
	res := web.AwaitAnswer()
	if res.StatusCode() != 403 {
		t.Fatalf("browser's call ended %d %s, want the dial rules' 403", res.StatusCode(), res.Reason())
	}
	allFrames(t, "the prompt's 100 frames, none lost to the DTLS handshake", web.Rx, 100)
	sbc.WaitCallsIdle(t)
}

// TestRingbackToSIPCallerWhenAsked: with media.ringback.sip_callers, a
// plain SIP caller gets 183 with the SBC's address and the EU tone (425
// Hz) as RTP, then the 200 and the PBX's media.
func TestRingbackToSIPCallerWhenAsked(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Ringing: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk(), Mutate: func(c *config.Config) {
		c.Media.Ringback = config.Ringback{Enabled: true, Tone: "eu", SIPCallers: true}
	}})
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	rtp := e2e.NewRTPPeer(t, e2e.CallerIP(), nil, 101)
	call := invite(ua, "1000", rtp.Port())
	res := expectProvisional(t, ua)
	if res.StatusCode() != 183 || !strings.Contains(res.Body(), "c=IN IP4 127.0.0.1") {
		t.Fatalf("SIP caller got %d with SDP %q, want 183 with the SBC's", res.StatusCode(), res.Body())
	}
	e2e.WaitFor(t, 10*time.Second, "40 ringback frames", func() bool { return len(rtp.Rx.Foreign()) >= 40 })
	frames := rtp.Rx.Foreign()[:40]
	checkStream(t, frames)
	tone(t, "eu ringback", decode(t, frames[2:40]), []float64{425}, []float64{440, 480, 1000})
	pbx.ReleaseAnswer()
	final := ua.ExpectFinal()
	if final.StatusCode() != 200 {
		t.Fatalf("answered %d", final.StatusCode())
	}
	call.Answered(final)
	call.Ack()
	e2e.WaitCount(t, "caller gets the pbx stream", rtp.Rx, "PBX1", 25)
	call.Bye()
	ua.ExpectFinal()
	sbc.WaitCallsIdle(t)
}

// whats lists the policy and media events and leg A's responses out of
// a call's timeline, in order.
func whats(t *testing.T, sbc *e2e.SBC, callID string) string {
	t.Helper()
	var tl struct {
		Events []struct {
			Kind, Leg, Dir, What string
		} `json:"events"`
	}
	e2e.WaitFor(t, 5*time.Second, "the call's timeline", func() bool {
		code, _ := sbc.Admin(t, token).Do(http.MethodGet, "/api/v1/calls/"+callID+"/timeline", "")
		return code == http.StatusOK
	})
	sbc.Admin(t, token).JSON(http.MethodGet, "/api/v1/calls/"+callID+"/timeline", "", http.StatusOK, &tl)
	var out []string
	for _, ev := range tl.Events {
		if ev.Kind == "policy" || ev.Kind == "media" || ev.Kind == "sip" && ev.Leg == "a" && ev.Dir == "out" {
			out = append(out, strings.TrimSuffix(ev.What, " INVITE"))
		}
	}
	return strings.Join(out, ", ")
}
