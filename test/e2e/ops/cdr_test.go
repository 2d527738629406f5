package ops

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	callout "github.com/sbc-project/sbc/b2bua/outcome" // outcome names a type in TestCDRDispositions
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/cdr/pgtest"
	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// sippCallIDs returns the Call-IDs of the INVITEs a SIPp UAC sent, of
// those that got a 200, and of those whose BYE got a 200.
func sippCallIDs(res sipptest.Result) (invited, answered, completed map[string]bool) {
	invited, answered, completed = map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, m := range res.Messages {
		id := m.Header("Call-ID")
		switch {
		case m.Dir == sipptest.Sent && m.Method() == "INVITE":
			invited[id] = true
		case m.Dir == sipptest.Received && m.StatusCode() == 200 && strings.HasSuffix(m.Header("CSeq"), "INVITE"):
			answered[id] = true
		case m.Dir == sipptest.Received && m.StatusCode() == 200 && strings.HasSuffix(m.Header("CSeq"), "BYE"):
			completed[id] = true
		}
	}
	return invited, answered, completed
}

// TestCDRSIPpCalls: N SIPp calls through the SBC give N records in every
// writer, with the right fields, while PostgreSQL is stopped and started
// again mid-run and the files rotate every few records.
func TestCDRSIPpCalls(t *testing.T) {
	sipptest.Require(t)
	pg := pgtest.Start(t)
	sinks := e2e.NewCDRSinks(t, pg.CreateDB(t, "sipp"))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const n = 60
	uas := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
		LocalIP: e2e.PBXIP(), Calls: n, Timeout: 90 * time.Second})
	// RFC 3261 timers: with the harness's T1 of 100 ms, an SBC starved of
	// CPU (the race detector, PostgreSQL restarting, other packages'
	// tests) retransmits INVITEs whose 180 it has not read yet, and the
	// SIPp UAS, having sent its 200, aborts its call on the retransmission
	// ("unexpected message while expecting ACK") although it is the same
	// message byte for byte.
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: sinks.Apply, RFCTimers: true,
		Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: uas.Addr().Addr().String(), Port: int(uas.Addr().Port())}}})
	uac := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
		LocalIP: e2e.CallerIP(), Remote: sbc.UDP.String(), Calls: n, Rate: 20, MessageLog: true, Timeout: 90 * time.Second,
		Args: []string{"-s", "1000", "-d", "300"}})

	time.Sleep(1 * time.Second)
	pg.Stop(t)
	e2e.WaitFor(t, 10*time.Second, "the postgres writer's alarm", func() bool {
		s := sbc.App.CDR().Stats()
		return s.Writers[2].Failing
	})
	time.Sleep(1 * time.Second)
	pg.Start(t)

	res := uac.Wait()
	if err := res.Check(n); err != nil {
		t.Fatal(err)
	}
	if err := uas.Wait().Check(n); err != nil {
		t.Error(err)
	}
	sbc.WaitIdle(t)
	e2e.WaitFor(t, 30*time.Second, "every record delivered", func() bool {
		for _, w := range sbc.App.CDR().Stats().Writers {
			if w.Pending > 0 {
				return false
			}
		}
		return true
	})
	if s := sbc.App.CDR().Stats(); s.Alarm() || s.Recorded != n {
		t.Errorf("cdr stats %+v, want %d recorded and no alarm", s, n)
	}
	if err := sbc.App.Close(); err != nil {
		t.Fatal(err)
	}

	recs := sinks.Records(t)
	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
	invited, _, _ := sippCallIDs(res)
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, r := range recs {
		checks := []struct {
			field string
			ok    bool
		}{
			{"id", hex32.MatchString(r.ID)},
			{"node_id", r.NodeID == config.DefaultNodeID},
			{"a_call_id", invited[r.ACallID]},
			{"b_call_id", r.BCallID != "" && r.BCallID != r.ACallID},
			{"from_uri", strings.HasPrefix(r.FromURI, "sip:sipp@"+e2e.CallerIP())},
			{"to_uri", r.ToURI == "sip:1000@"+sbc.UDP.String()},
			{"src_addr", strings.HasPrefix(r.SrcAddr, e2e.CallerIP()+":")},
			{"a_transport", r.ATransport == "udp"},
			{"trunk", r.Trunk == "pbx"},
			{"times", !r.StartTime.IsZero() && !r.AnswerTime.IsZero() && !r.EndTime.IsZero() &&
				!r.AnswerTime.Time().Before(r.StartTime.Time()) && !r.EndTime.Time().Before(r.AnswerTime.Time())},
			{"billsec_s", r.BillsecS >= 0.25 && r.BillsecS < 5},
			{"duration_s", r.DurationS >= r.BillsecS},
			{"disposition", r.Disposition == callout.Answered},
			{"sip_code", r.SIPCode == 200},
			{"hangup", r.HangupCause == "caller_bye" && r.HangupSide == "a"},
			{"codecs", strings.HasPrefix(r.ACodec, "PCMU") && strings.HasPrefix(r.BCodec, "PCMU")},
		}
		for _, c := range checks {
			if !c.ok {
				t.Errorf("record %s: bad %s: %+v", r.ID, c.field, r)
			}
		}
		delete(invited, r.ACallID)
	}
	if len(invited) != 0 {
		t.Errorf("calls without a record: %v", invited)
	}
	if files := e2e.FinishedCDRFiles(t, sinks.JSONL, "jsonl"); len(files) < 3 {
		t.Errorf("%d jsonl files: want rotation", len(files))
	}
}

// TestCDRDispositions places one call of each disposition and checks its
// record field by field.
func TestCDRDispositions(t *testing.T) {
	sinks := e2e.NewCDRSinks(t, "")
	pbx := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx), RingTimeout: time.Second, Mutate: sinks.Apply})
	type outcome struct {
		disposition, cause, side string
		code                     int
		rang, answered           bool
	}
	type placed struct {
		name    string
		aCallID string
		bCallID string
		src     string
		want    outcome
	}
	var calls []placed
	place := func(name string, want outcome, flow func(ua *e2e.UA, call *e2e.UACall, inv sip.Request)) {
		t.Run(name, func(t *testing.T) {
			ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
			call := ua.Invite("1000", "")
			inv := pbx.ExpectReq("INVITE")
			flow(ua, call, inv)
			calls = append(calls, placed{name, call.CallID, sipmsg.CallID(inv), ua.Host, want})
		})
	}
	reject := func(code int, reason string) func(*e2e.UA, *e2e.UACall, sip.Request) {
		return func(ua *e2e.UA, call *e2e.UACall, inv sip.Request) {
			pbx.Respond(inv, code, reason, "pbx", "")
			pbx.ExpectReq("ACK")
			res := ua.Expect(code)
			call.AckFailure(sipmsg.ToTag(res))
		}
	}
	place("answered", outcome{callout.Answered, "caller_bye", "a", 200, true, true}, func(ua *e2e.UA, call *e2e.UACall, inv sip.Request) {
		pbx.Respond(inv, 180, "Ringing", "pbx", "")
		time.Sleep(100 * time.Millisecond)
		pbx.Respond(inv, 200, "OK", "pbx", e2e.UASSDP())
		res := ua.Expect(200)
		call.Answered(res)
		call.Ack()
		pbx.ExpectReq("ACK")
		time.Sleep(300 * time.Millisecond)
		call.Bye()
		bye := pbx.ExpectReq("BYE")
		pbx.Respond(bye, 200, "OK", "", "")
		ua.Expect(200)
	})
	place("busy", outcome{callout.Busy, "rejected", "b", 486, false, false}, reject(486, "Busy Here"))
	place("rejected", outcome{callout.Rejected, "rejected", "b", 603, false, false}, reject(603, "Decline"))
	place("no answer", outcome{callout.NoAnswer, "no_answer", "sbc", 408, true, false}, func(ua *e2e.UA, call *e2e.UACall, inv sip.Request) {
		pbx.Respond(inv, 180, "Ringing", "pbx", "")
		cancel := pbx.ExpectReq("CANCEL") // the ring timeout
		pbx.Respond(cancel, 200, "OK", "pbx", "")
		pbx.Respond(inv, 487, "Request Terminated", "pbx", "")
		pbx.ExpectReq("ACK")
		res := ua.Expect(408)
		call.AckFailure(sipmsg.ToTag(res))
	})
	place("cancelled", outcome{callout.Cancelled, "caller_cancel", "a", 487, true, false}, func(ua *e2e.UA, call *e2e.UACall, inv sip.Request) {
		pbx.Respond(inv, 180, "Ringing", "pbx", "")
		ua.Expect(180)
		call.Cancel()
		cancel := pbx.ExpectReq("CANCEL")
		pbx.Respond(cancel, 200, "OK", "pbx", "")
		pbx.Respond(inv, 487, "Request Terminated", "pbx", "")
		pbx.ExpectReq("ACK")
		for { // the CANCEL's 200 and the INVITE's 487, in either order
			res, ok := ua.Recv(5 * time.Second).(sip.Response)
			if _, method := sipmsg.CSeq(res); ok && method == "INVITE" && res.StatusCode() >= 200 {
				if res.StatusCode() != 487 {
					t.Fatalf("want 487, got %d", res.StatusCode())
				}
				call.AckFailure(sipmsg.ToTag(res))
				break
			}
		}
	})
	// Last: a trunk answering 503 may be taken out of rotation.
	place("failed", outcome{callout.Failed, "upstream_unavailable", "b", 503, false, false}, reject(503, "Service Unavailable"))
	if err := sbc.App.Close(); err != nil {
		t.Fatal(err)
	}
	recs := sinks.Records(t)
	byCallID := map[string]cdr.Record{}
	for _, r := range recs {
		byCallID[r.ACallID] = r
	}
	for _, c := range calls {
		r, ok := byCallID[c.aCallID]
		if !ok {
			t.Errorf("%s: no record", c.name)
			continue
		}
		w := c.want
		fields := map[string][2]any{
			"node_id":     {r.NodeID, config.DefaultNodeID},
			"b_call_id":   {r.BCallID, c.bCallID},
			"from_uri":    {r.FromURI, "sip:alice@caller.example"},
			"to_uri":      {r.ToURI, "sip:1000@" + sbc.UDP.String()},
			"src_addr":    {r.SrcAddr, c.src},
			"a_transport": {r.ATransport, "udp"},
			"trunk":       {r.Trunk, "pbx"},
			"disposition": {r.Disposition, w.disposition},
			"sip_code":    {r.SIPCode, w.code},
			"ring_time":   {!r.RingTime.IsZero(), w.rang},
			"answer_time": {!r.AnswerTime.IsZero(), w.answered},
			"end_time":    {!r.EndTime.IsZero() && !r.EndTime.Time().Before(r.StartTime.Time()), true},
			"setup_ms":    {r.SetupMs >= 0 && r.SetupMs < 5000, true},
			"billsec_s":   {w.answered == (r.BillsecS >= 0.3) && r.BillsecS < 2, true},
			"duration_s":  {r.DurationS >= r.BillsecS && r.DurationS < 10, true},
		}
		fields["hangup_cause"] = [2]any{r.HangupCause, w.cause}
		fields["hangup_side"] = [2]any{r.HangupSide, w.side}
		if w.answered {
			fields["a_codec"] = [2]any{r.ACodec, "PCMU/8000"}
			fields["b_codec"] = [2]any{r.BCodec, "PCMU/8000"}
		}
		for name, v := range fields {
			if v[0] != v[1] {
				t.Errorf("%s: %s = %v, want %v\n%+v", c.name, name, v[0], v[1], r)
			}
		}
	}
	if len(recs) != len(calls) {
		t.Errorf("%d records for %d calls", len(recs), len(calls))
	}
}
