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
// SSRC switch and the digit, in that order, then the end.
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
		"media/ice-nominated/a", "media/dtls-connected/a", "media/first-rtp/a",
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
