package ops

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/admin"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

// syncBuffer is a bytes.Buffer safe for the SBC's loggers and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log records written so far.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	text := s.b.String()
	s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, rec)
	}
	return out
}

// TestAdminAPI drives the admin API against a live call: the token is
// required, the call is listed with both legs, hanging it up through the
// API ends both legs with BYE, registrations, bans, trunks, config and
// readiness answer as documented, and a traced caller's call is logged at
// debug level (SIP messages included) while the level is info, with both
// legs' Call-IDs on every line.
func TestAdminAPI(t *testing.T) {
	const token = "t0ken"
	pbx := e2e.NewUAS(t)
	logs := &syncBuffer{}
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx), LogOut: logs, Mutate: func(c *config.Config) {
		e2e.WithAdmin(token)(c)
		c.Trunks[0].Username, c.Trunks[0].Password = "sbc", "trunk-secret"
	}})
	api := sbc.Admin(t, token)
	anon := sbc.Admin(t, "")
	wrong := sbc.Admin(t, "t0ke")

	t.Run("token", func(t *testing.T) {
		for _, c := range []struct {
			client *e2e.AdminClient
			path   string
			want   int
		}{
			{anon, "/api/v1/calls", 401}, {wrong, "/api/v1/calls", 401}, {anon, "/metrics", 401},
			{anon, "/healthz", 200}, {anon, "/readyz", 200}, {api, "/api/v1/calls", 200}, {api, "/metrics", 200},
		} {
			if code, body := c.client.Do("GET", c.path, ""); code != c.want {
				t.Errorf("GET %s with token %q: %d, want %d: %s", c.path, c.client.Token, code, c.want, body)
			}
		}
		if code, _ := anon.Do("DELETE", "/api/v1/calls/x", ""); code != 401 {
			t.Errorf("hang-up without token: %d", code)
		}
	})

	api.JSON("POST", "/api/v1/trace", `{"target":"alice"}`, 201, nil)

	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := ua.Invite("1000", "")
	inv := pbx.ExpectReq("INVITE")
	pbx.Respond(inv, 180, "Ringing", "pbx1", "")
	pbx.Respond(inv, 200, "OK", "pbx1", e2e.UASSDP())
	call.Answered(ua.Expect(200))
	call.Ack()
	pbx.ExpectReq("ACK")
	bCallID := sipmsg.CallID(inv)

	var list struct{ Calls []admin.Call }
	api.JSON("GET", "/api/v1/calls", "", 200, &list)
	if len(list.Calls) != 1 {
		t.Fatalf("calls %+v", list.Calls)
	}
	c := list.Calls[0]
	if c.State != "answered" || c.Trunk != "pbx" || c.Route != "all" || !c.Traced || c.Answer == nil || c.Ring == nil ||
		len(c.Legs) != 2 || c.Legs[0].CallID != call.CallID || c.Legs[1].CallID != bCallID ||
		!c.Legs[0].Confirmed || !c.Legs[1].Confirmed || c.Legs[0].Transport != "udp" ||
		!strings.HasPrefix(c.Legs[0].Codec, "PCMU") || !strings.HasPrefix(c.Legs[1].Peer, e2e.PBXIP()+":") ||
		!strings.HasPrefix(c.From, "sip:alice@") || c.DurationS <= 0 {
		t.Errorf("listed call %+v", c)
	}
	var byLeg admin.Call
	api.JSON("GET", "/api/v1/calls/"+bCallID, "", 200, &byLeg)
	if byLeg.ID != c.ID {
		t.Errorf("call by b-leg Call-ID: %+v", byLeg)
	}

	// Hang the live call up: BYE on both legs, each answered.
	api.JSON("DELETE", "/api/v1/calls/"+c.ID, "", 200, nil)
	bye := pbx.ExpectReq("BYE")
	pbx.Respond(bye, 200, "OK", "", "")
	byeA := ua.ExpectReq("BYE")
	ua.RespondTo(byeA, 200, "")
	e2e.WaitFor(t, 5*time.Second, "the call to end", func() bool { return sbc.App.Server().ActiveCalls() == 0 })
	if code, _ := api.Do("DELETE", "/api/v1/calls/"+c.ID, ""); code != 404 {
		t.Errorf("second hang-up: %d, want 404", code)
	}
	api.JSON("GET", "/api/v1/calls", "", 200, &list)
	if len(list.Calls) != 0 {
		t.Errorf("calls after hang-up: %+v", list.Calls)
	}
	m := api.Metrics()
	if v := m[`sbc_calls_ended_total{cause="admin_hangup",side="sbc",trunk="pbx"}`]; v != 1 {
		t.Errorf("admin_hangup calls counted %v", v)
	}

	t.Run("other endpoints", func(t *testing.T) {
		var regs struct{ Registrations []admin.Registration }
		api.JSON("GET", "/api/v1/registrations", "", 200, &regs)
		if regs.Registrations == nil {
			t.Error("registrations is not a list")
		}
		// Bans: added, listed, in force (a banned source gets no answer),
		// removed. The harness trusts 127.0.0.0/8 (route "all"), so the
		// ban must be forced.
		if code, body := api.Do("POST", "/api/v1/bans", `{"addr":"`+e2e.IP(9)+`","reason":"test","duration":"1h"}`); code != 409 ||
			!strings.Contains(string(body), "trusted_sources") {
			t.Errorf("ban of a trusted source, not forced: %d %s, want 409", code, body)
		}
		if code, body := api.Do("POST", "/api/v1/bans", `{"addr":"`+e2e.IP(9)+`","reason":"test","duration":"1h","force":true}`); code != 201 {
			t.Errorf("add ban: %d %s", code, body)
		}
		var bans struct{ Bans []admin.Ban }
		api.JSON("GET", "/api/v1/bans", "", 200, &bans)
		if len(bans.Bans) != 1 || bans.Bans[0].Addr != e2e.IP(9) || bans.Bans[0].Reason != "test" || bans.Bans[0].Until == nil {
			t.Errorf("bans %+v", bans.Bans)
		}
		if e2e.OptionsAnswered(t, e2e.IP(9), sbc.UDP) {
			t.Error("a banned source got an answer")
		}
		if code, body := api.Do("DELETE", "/api/v1/bans/"+e2e.IP(9), ""); code != 200 {
			t.Errorf("remove ban: %d %s", code, body)
		}
		if code, _ := api.Do("DELETE", "/api/v1/bans/"+e2e.IP(9), ""); code != 404 {
			t.Errorf("remove a ban twice: %d, want 404", code)
		}
		if !e2e.OptionsAnswered(t, e2e.IP(9), sbc.UDP) {
			t.Error("no answer once the ban was removed")
		}
		var trunks struct{ Trunks []admin.Trunk }
		api.JSON("GET", "/api/v1/trunks", "", 200, &trunks)
		if len(trunks.Trunks) != 1 || trunks.Trunks[0].Name != "pbx" || !trunks.Trunks[0].Up {
			t.Errorf("trunks %+v", trunks.Trunks)
		}
		_, cfg := api.Do("GET", "/api/v1/config", "")
		if strings.Contains(string(cfg), "trunk-secret") || strings.Contains(string(cfg), token) ||
			!strings.Contains(string(cfg), `"password": "(redacted)"`) {
			t.Errorf("config not redacted:\n%s", cfg)
		}
		var rd admin.Readiness
		api.JSON("GET", "/readyz", "", 200, &rd)
		if !rd.Ready || len(rd.Checks) != 4 {
			t.Errorf("readiness %+v", rd)
		}
	})

	t.Run("trace logs", func(t *testing.T) { checkCallLogs(t, logs.lines(t), call.CallID, bCallID) })

	t.Run("drain", func(t *testing.T) {
		var st admin.DrainStatus
		api.JSON("POST", "/api/v1/drain", "", 202, &st)
		if !st.Draining || st.Deadline.IsZero() {
			t.Errorf("drain status %+v", st)
		}
		var rd admin.Readiness
		api.JSON("GET", "/readyz", "", 503, &rd)
		ua.Invite("1000", "")
		res := ua.Expect(503)
		if sipmsg.Header(res, "Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
		select {
		case <-sbc.App.Drained():
		case <-time.After(5 * time.Second):
			t.Error("drain with no call up did not finish")
		}
		if m := api.Metrics(); m["sbc_draining"] != 1 {
			t.Errorf("sbc_draining %v", m["sbc_draining"])
		}
	})
}

// checkCallLogs checks the log of the traced call: debug lines (the level
// is info), the SIP messages of both legs, and every line about the call
// carrying call_id, cdr_id and, once the callee leg exists, b_call_id.
func checkCallLogs(t *testing.T, recs []map[string]any, aCallID, bCallID string) {
	t.Helper()
	var debug, sipA, sipB, calling, ended int
	for _, r := range recs {
		if r["call_id"] != aCallID {
			continue
		}
		if r["level"] == "DEBUG" {
			if r["trace"] != true {
				t.Errorf("debug line of an untraced logger: %v", r)
			}
			debug++
		}
		switch r["msg"] {
		case "sip in", "sip out":
			switch r["leg_call_id"] {
			case aCallID:
				sipA++
			case bCallID:
				sipB++
			}
			continue
		case "calling":
			calling++
		case "call ended":
			ended++
		}
		if r["cdr_id"] == nil {
			t.Errorf("call line without cdr_id: %v", r)
		}
		if r["msg"] != "call ended" && r["msg"] != "calling" && r["msg"] != "call answered" {
			continue
		}
		if r["b_call_id"] != bCallID {
			t.Errorf("line without the b-leg Call-ID: %v", r)
		}
	}
	if debug == 0 || sipA < 4 || sipB < 4 || calling != 1 || ended != 1 {
		t.Errorf("traced call logged %d debug lines, %d/%d SIP messages on a/b, %d calling, %d ended", debug, sipA, sipB, calling, ended)
	}
}
