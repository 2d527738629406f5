// Package timeline tests GET /api/v1/calls/{id}/timeline end to end: a
// WebRTC call through the SBC to a trunk shows its SIP, ICE, DTLS, first
// RTP each way, an SSRC switch and a DTMF digit in order; ended calls
// stay while among the last timeline.keep and then go.
package timeline

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

const token = "timeline-token"

// view is the API's answer.
type view struct {
	ID      string  `json:"id"`
	CDRID   string  `json:"cdr_id"`
	Live    bool    `json:"live"`
	Started string  `json:"started"`
	Ended   string  `json:"ended"`
	ACallID string  `json:"a_call_id"`
	BCallID string  `json:"b_call_id"`
	Events  []event `json:"events"`
}

type event struct {
	At     string         `json:"at"`
	Ms     float64        `json:"ms"`
	Kind   string         `json:"kind"`
	Leg    string         `json:"leg"`
	Dir    string         `json:"dir"`
	What   string         `json:"what"`
	Detail map[string]any `json:"detail"`
}

// is reports whether ev is what want names: kind/what[/from]
// (media events from a side, e.g. "media/first-rtp/b") or
// sip/what/leg/dir.
func (ev event) is(want string) bool {
	p := strings.Split(want, "/")
	if ev.Kind != p[0] || ev.What != p[1] {
		return false
	}
	switch {
	case len(p) == 3:
		return ev.Detail["from"] == p[2]
	case len(p) == 4:
		return ev.Leg == p[2] && ev.Dir == p[3]
	}
	return true
}

func (ev event) String() string {
	return fmt.Sprintf("%8.1fms %s %s%s %s %v", ev.Ms, ev.Kind, ev.Leg, ev.Dir, ev.What, ev.Detail)
}

// inOrder fails unless the events hold each of want, in that order
// (others may come between).
func inOrder(t *testing.T, evs []event, want ...string) []event {
	t.Helper()
	var found []event
	i := 0
	for _, ev := range evs {
		if i < len(want) && ev.is(want[i]) {
			found = append(found, ev)
			i++
		}
	}
	if i < len(want) {
		var b strings.Builder
		for _, ev := range evs {
			b.WriteString(ev.String() + "\n")
		}
		t.Fatalf("timeline lacks %q after %q, in order; events:\n%s", want[i], want[:i], b.String())
	}
	return found
}

func timeline(t *testing.T, admin *e2e.AdminClient, id string) view {
	t.Helper()
	var v view
	admin.JSON(http.MethodGet, "/api/v1/calls/"+id+"/timeline", "", http.StatusOK, &v)
	for i := 1; i < len(v.Events); i++ {
		if v.Events[i].Ms < v.Events[i-1].Ms {
			t.Fatalf("events out of time order: %v before %v", v.Events[i-1], v.Events[i])
		}
	}
	return v
}

func withTimeline(keep int) func(*config.Config) {
	return func(c *config.Config) {
		e2e.WithAdmin(token)(c)
		c.Timeline.Keep = keep
		c.Timeline.SampleInterval = 200 * time.Millisecond
	}
}

// TestTimelineWebRTCCall: a browser (pion) calls a trunk (a Go PBX with
// RTP); the PBX switches its stream (new SSRC) and the browser sends a
// digit as RFC 4733. The timeline, live and once ended, holds the SIP of
// both legs, ICE nomination, DTLS connected, the first RTP each way, the
// SSRC switch and the digit, in that order; then hold, resume and a
// digit as SIP INFO from the PBX; then the end.
func TestTimelineWebRTCCall(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk(), Mutate: withTimeline(10)})
	admin := sbc.Admin(t, token)
	web := e2e.NewWebPhone(t, sbc)
	web.Call("1000")
	e2e.WaitCount(t, "browser gets the pbx stream", web.Rx, "PBX1", 25)
	peer, _ := pbx.Current()
	e2e.WaitCount(t, "pbx gets the browser", peer.Rx, "WEB1", 25)
	peer.Src.Jump("PBX2")
	e2e.WaitCount(t, "browser gets the switched stream", web.Rx, "PBX2", 10)
	web.SendDTMF("5")
	e2e.WaitFor(t, 10*time.Second, "pbx gets the digit", func() bool { return peer.Rx.Snapshot().Digits == "5" })

	var calls struct {
		Calls []struct {
			ID string `json:"id"`
		} `json:"calls"`
	}
	admin.JSON(http.MethodGet, "/api/v1/calls", "", http.StatusOK, &calls)
	if len(calls.Calls) != 1 {
		t.Fatalf("calls %+v", calls)
	}
	id := calls.Calls[0].ID
	milestones := []string{
		"sip/INVITE/a/in", "policy/admit", "route/attempt", "sip/INVITE/b/out", "sip/200 INVITE/b/in",
		"media/ice-check/a", "media/dtls-connected/a", "media/first-rtp/a",
		"media/ssrc-switch/b", "media/dtmf/a",
	}
	var live view
	e2e.WaitFor(t, 5*time.Second, "the live timeline shows the digit and a quality sample", func() bool {
		live = timeline(t, admin, id)
		var dtmf, sample bool
		for _, ev := range live.Events {
			dtmf = dtmf || ev.is("media/dtmf/a")
			sample = sample || (ev.is("quality/sample/b") && ev.Detail["packets"].(float64) > 0)
		}
		return dtmf && sample
	})
	if !live.Live || live.Ended != "" || live.ID != id || live.CDRID != id || live.BCallID == "" || live.ACallID == "" {
		t.Fatalf("live timeline header %+v", live)
	}
	found := inOrder(t, live.Events, milestones...)
	if d := found[6].Detail; d["role"] == "" || d["profile"] == "" || d["role"] == nil || d["profile"] == nil {
		t.Errorf("dtls-connected without role and profile: %v", found[6])
	}
	if d := found[9].Detail; d["digit"] != "5" {
		t.Errorf("dtmf detail %v, want digit 5", d)
	}
	if d := found[8].Detail; d["old_ssrc"] == d["ssrc"] {
		t.Errorf("ssrc-switch detail %v: the SSRC did not change", d)
	}
	inOrder(t, live.Events, "media/dtls-connected/a", "media/first-rtp/b")
	inOrder(t, live.Events, "media/ice-check/a", "media/ice-nominated/a") // the browser nominates

	// Hold and resume from the browser, a digit as SIP INFO from the PBX
	// (played to the browser as RFC 4733).
	if code := web.Reoffer("sendonly").StatusCode(); code != 200 {
		t.Fatalf("hold answered %d", code)
	}
	if code := web.Reoffer("sendrecv").StatusCode(); code != 200 {
		t.Fatalf("resume answered %d", code)
	}
	pbx.SendInfo('7')
	e2e.WaitFor(t, 5*time.Second, "the timeline shows the INFO digit", func() bool {
		for _, ev := range timeline(t, admin, id).Events {
			if ev.is("media/dtmf/b") && ev.Detail["digit"] == "7" && ev.Detail["form"] == "info" {
				return true
			}
		}
		return false
	})
	inOrder(t, timeline(t, admin, id).Events, "media/dtmf/a", "sip/INVITE/a/in", "media/hold/a", "sip/INVITE/a/in",
		"media/resume/a", "sip/INFO/b/in", "media/dtmf/b")

	web.Hangup()
	sbc.WaitCallsIdle(t)
	// By CDR id and by either leg's Call-ID.
	for _, key := range []string{id, live.ACallID, live.BCallID} {
		ended := timeline(t, admin, key)
		if ended.Live || ended.Ended == "" || ended.ID != id {
			t.Fatalf("ended timeline by %s: header %+v", key, ended)
		}
		inOrder(t, ended.Events, append(milestones, "sip/BYE/a/in", "sip/BYE/b/out", "end/end")...)
		if last := ended.Events[len(ended.Events)-1]; last.Kind != "end" && !strings.Contains(last.What, "BYE") {
			t.Errorf("last event %v", last)
		}
	}
}

// TestTimelineKeepBound: with timeline.keep 2, of three ended calls the
// first is gone (404 by CDR id and by Call-ID), the other two answer.
func TestTimelineKeepBound(t *testing.T) {
	const keep = 2
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: withTimeline(keep)})
	admin := sbc.Admin(t, token)
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	var ids, callIDs []string
	for range keep + 1 {
		call := ua.Invite("echo", "")
		call.Answered(ua.Expect(200))
		call.Ack()
		call.Bye()
		ua.Expect(200)
		sbc.WaitCallsIdle(t)
		v := timeline(t, admin, call.CallID)
		if v.Live || v.CDRID == "" {
			t.Fatalf("ended call %s: %+v", call.CallID, v)
		}
		inOrder(t, v.Events, "sip/INVITE/a/in", "sip/200 INVITE/a/out", "sip/ACK/a/in", "sip/BYE/a/in", "sip/200 BYE/a/out")
		ids, callIDs = append(ids, v.CDRID), append(callIDs, call.CallID)
	}
	for _, id := range []string{ids[0], callIDs[0]} {
		code, body := admin.Do(http.MethodGet, "/api/v1/calls/"+id+"/timeline", "")
		if code != http.StatusNotFound || !strings.Contains(string(body), `"error"`) {
			t.Errorf("first call by %s after %d more ended with keep %d: %d %s, want 404", id, keep, keep, code, body)
		}
	}
	for i := 1; i <= keep; i++ {
		for _, id := range []string{ids[i], callIDs[i]} {
			if v := timeline(t, admin, id); v.CDRID != ids[i] {
				t.Errorf("call %d by %s: cdr_id %s, want %s", i, id, v.CDRID, ids[i])
			}
		}
	}
}

// TestTimelineDTLSFailed: a browser whose ICE passes but that never
// answers DTLS: the timeline shows the ICE check, then dtls-failed with
// the reason, then the end with the same cause.
func TestTimelineDTLSFailed(t *testing.T) {
	const handshake = 2 * time.Second
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk(), Mutate: func(c *config.Config) {
		withTimeline(10)(c)
		c.Media.HandshakeTimeout = handshake
	}})
	admin := sbc.Admin(t, token)
	calls := e2e.WatchCalls(sbc)
	client := e2e.NewSIPClient(t, "WS", sbc.WS.String())
	agent := e2e.NewICEOnly(t)
	d := client.Invite("1000", silentOffer(agent))
	res := d.Await(1, handshake+10*time.Second, nil)
	if res.StatusCode() != 200 {
		t.Fatalf("INVITE answered %d", res.StatusCode())
	}
	d.Established(res)
	d.Ack()
	agent.Connect(t, res.Body())
	e2e.WaitFor(t, handshake+8*time.Second, "BYE to the silent browser", func() bool { return len(client.Requests(sip.BYE)) > 0 })
	rec := calls.WaitEnded(t)
	sbc.WaitCallsIdle(t)
	v := timeline(t, admin, rec.ID)
	found := inOrder(t, v.Events, "sip/INVITE/a/in", "media/ice-check/a", "media/dtls-failed/a", "sip/BYE/a/out", "end/end")
	if found[2].Detail["reason"] != "dtls_timeout" || found[4].Detail["cause"] != "dtls_timeout" {
		t.Errorf("dtls-failed %v, end %v: want reason and cause dtls_timeout", found[2], found[4])
	}
}

// silentOffer is a browser's offer with agent's ICE credentials and
// candidates and a fingerprint of nobody's certificate.
func silentOffer(agent *e2e.ICEOnly) string {
	fp := make([]string, 32)
	for i := range fp {
		fp[i] = fmt.Sprintf("%02X", i*7)
	}
	var cands strings.Builder
	for _, c := range agent.Cands {
		cands.WriteString("a=" + c + "\n")
	}
	return "v=0\no=- 4611731400430051336 2 IN IP4 127.0.0.1\ns=-\nt=0 0\na=group:BUNDLE 0\na=msid-semantic: WMS\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111 0 126\nc=IN IP4 0.0.0.0\na=rtcp:9 IN IP4 0.0.0.0\n" +
		cands.String() + "a=end-of-candidates\na=ice-ufrag:" + agent.Ufrag + "\na=ice-pwd:" + agent.Pwd + "\n" +
		"a=fingerprint:sha-256 " + strings.Join(fp, ":") + "\na=setup:actpass\na=mid:0\na=sendrecv\na=rtcp-mux\n" +
		"a=rtpmap:111 opus/48000/2\na=rtpmap:0 PCMU/8000\na=rtpmap:126 telephone-event/8000\n"
}
