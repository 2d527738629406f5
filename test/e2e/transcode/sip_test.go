package transcode

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

// TestSIPTranscodedAndCapped: a phone offering only PCMU calls through a
// trunk that takes only PCMA (trunks[].codecs: [pcma]). The trunk is
// offered PCMA, the phone answered PCMU, and a 1 kHz tone crosses each
// way with its frequency and energy. With media.transcoding.max_calls 1,
// a second PCMU-only call meanwhile gets 488 with the reason, and a
// PCMA call (nothing to transcode) is still admitted. Metrics and CDRs
// say which call was transcoded.
func TestSIPTranscodedAndCapped(t *testing.T) {
	uas := e2e.NewUAS(t)
	sinks := e2e.NewCDRSinks(t, "")
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(uas), Mutate: func(c *config.Config) {
		c.Trunks[0].Codecs = []string{"pcma"}
		c.Media.Transcoding.MaxCalls = 1
		sinks.Apply(c)
		e2e.WithAdmin("tok")(c)
	}})
	admin := sbc.Admin(t, "tok")
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	phone, far := udpOn(t, e2e.CallerIP()), udpOn(t, e2e.PBXIP())

	// The transcoded call.
	first := invite(ua, "1001", sdpFor(e2e.CallerIP(), portOf(phone), "0 PCMU/8000", "101 telephone-event/8000"))
	inv := uas.ExpectReq("INVITE")
	if got := rtpmaps(inv.Body()); !slices.Equal(got, []string{"8 PCMA/8000", "101 telephone-event/8000"}) {
		t.Fatalf("the trunk was offered %q, want PCMA and telephone-event only\n%s", got, inv.Body())
	}
	toFar := mediaPort(t, inv.Body())
	uas.Respond(inv, 200, "OK", "far1", sdpFor(e2e.PBXIP(), portOf(far), "8 PCMA/8000", "101 telephone-event/8000"))
	res := ua.Expect(200)
	first.Answered(res)
	first.Ack()
	uas.ExpectReq("ACK")
	if got := rtpmaps(res.Body()); !slices.Equal(got, []string{"0 PCMU/8000", "101 telephone-event/8000"}) {
		t.Fatalf("the phone was answered %q, want PCMU and telephone-event\n%s", got, res.Body())
	}
	toPhone := mediaPort(t, res.Body())

	stop := make(chan struct{})
	done := make(chan struct{}, 2)
	sbcRTP := func(port int) *net.UDPAddr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port} }
	go func() { streamTone(t, phone, sbcRTP(toPhone), "PCMU", 0, stop); done <- struct{}{} }()
	go func() { streamTone(t, far, sbcRTP(toFar), "PCMA", 8, stop); done <- struct{}{} }()
	checkTone(t, "phone → trunk, PCMU as PCMA", receiveTone(t, far, "PCMA", 8, 25), 8000)
	checkTone(t, "trunk → phone, PCMA as PCMU", receiveTone(t, phone, "PCMU", 0, 25), 8000)
	close(stop)
	<-done
	<-done
	m := admin.Metrics()
	if m["sbc_transcoded_calls"] != 1 || m["sbc_transcoded_calls_total"] != 1 {
		t.Errorf("sbc_transcoded_calls %v, _total %v; want 1 and 1", m["sbc_transcoded_calls"], m["sbc_transcoded_calls_total"])
	}

	// At the cap: a call that needs transcoding is refused with the reason.
	second := invite(ua, "1002", sdpFor(e2e.CallerIP(), portOf(udpOn(t, e2e.CallerIP())), "0 PCMU/8000"))
	refused := ua.Expect(488)
	second.AckFailure(sipmsg.ToTag(refused))
	if w := header(refused, "Warning"); !strings.Contains(w, `399 sbc "transcoding capacity reached"`) {
		t.Errorf("488 Warning %q, want 399 \"transcoding capacity reached\"", w)
	}

	// A call sharing a codec with the trunk still goes through.
	third := invite(ua, "1003", sdpFor(e2e.CallerIP(), portOf(udpOn(t, e2e.CallerIP())), "8 PCMA/8000", "0 PCMU/8000"))
	inv3 := uas.ExpectReq("INVITE")
	if got := rtpmaps(inv3.Body()); !slices.Equal(got, []string{"8 PCMA/8000"}) {
		t.Errorf("the trunk was offered %q for the relayed call, want PCMA only", got)
	}
	uas.Respond(inv3, 200, "OK", "far3", sdpFor(e2e.PBXIP(), portOf(udpOn(t, e2e.PBXIP())), "8 PCMA/8000"))
	third.Answered(ua.Expect(200))
	third.Ack()
	uas.ExpectReq("ACK")

	for _, c := range []*e2e.UACall{first, third} {
		c.Bye()
		bye := uas.ExpectReq("BYE")
		uas.Respond(bye, 200, "OK", "", "")
		ua.Expect(200)
	}
	e2e.WaitFor(t, 5*time.Second, "no call transcoded any more", func() bool {
		return admin.Metrics()["sbc_transcoded_calls"] == 0
	})
	sbc.WaitIdle(t)
	if err := sbc.App.Close(); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, sinks)
}

// checkRecords: the transcoded call's record says so with both codecs,
// the refused one names the cause, the relayed one is not transcoded.
func checkRecords(t *testing.T, sinks e2e.CDRSinks) {
	t.Helper()
	recs := sinks.Records(t)
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	slices.SortFunc(recs, func(a, b cdr.Record) int { return a.StartTime.Time().Compare(b.StartTime.Time()) })
	if r := recs[0]; !r.Transcoded || r.ACodec != "PCMU/8000" || r.BCodec != "PCMA/8000" {
		t.Errorf("transcoded call: transcoded %v, a_codec %q, b_codec %q", r.Transcoded, r.ACodec, r.BCodec)
	}
	if r := recs[1]; r.SIPCode != 488 || r.HangupCause != "transcoding_capacity" || r.Transcoded {
		t.Errorf("refused call: sip_code %d, hangup_cause %q, transcoded %v", r.SIPCode, r.HangupCause, r.Transcoded)
	}
	if r := recs[2]; r.Transcoded || r.ACodec != "PCMA/8000" || r.BCodec != "PCMA/8000" {
		t.Errorf("relayed call: transcoded %v, a_codec %q, b_codec %q", r.Transcoded, r.ACodec, r.BCodec)
	}
}

func header(m sip.Message, name string) string {
	var vs []string
	for _, h := range m.GetHeaders(name) {
		vs = append(vs, h.Value())
	}
	return strings.Join(vs, ", ")
}
