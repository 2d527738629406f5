package media

import (
	"slices"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/test/e2e"
)

// Call transfer (REFER) performed by the SBC (transfer mode local), on
// real sockets with real RTP: the transferee's audio is checked on the
// final leg (echoed by the SIPp target), and the call records are linked.

// checkLinked fails unless the records hold the transferred call and the
// call that went on from it, naming each other.
func checkLinked(t *testing.T, recs []outcome.CallRecord, side outcome.Side) (old, next outcome.CallRecord) {
	t.Helper()
	for _, r := range recs {
		if n, ok := e2e.ByID(recs, r.TransferredTo); ok && n.TransferredFrom == r.ID && r.Side == side &&
			r.Cause == outcome.CauseTransferred {
			old = r
		}
	}
	if old.ID == "" {
		t.Fatalf("no record with cause transferred by side %s among %+v", side, recs)
	}
	next, ok := e2e.ByID(recs, old.TransferredTo)
	if !ok || next.TransferredFrom != old.ID {
		t.Fatalf("transferred_to %s names no record that goes on from %s: %+v", old.TransferredTo, old.ID, recs)
	}
	return old, next
}

// TestTransferBlindFromTrunk: the PBX transfers the phone's call to 2000
// (REFER from the trunk side); the phone is re-INVITEd and its audio comes
// back echoed by the target; the PBX gets NOTIFY and BYE.
func TestTransferBlindFromTrunk(t *testing.T) {
	s := e2e.StartTransferSetup(t, 1)
	phone := e2e.NewXferPhone(t, s.SBC, "XFR1")
	d := phone.Call("1000")
	e2e.WaitCount(t, "phone hears the pbx", phone.RTP.Rx, "PBX1", 25)
	if res := e2e.PBXRefer(s.Pbx, "<sip:2000@"+s.SBC.UDP.String()+">"); res.StatusCode() != 202 {
		t.Fatalf("pbx REFER answered %d", res.StatusCode())
	}
	e2e.WaitCount(t, "phone's audio echoed by the transfer target", phone.RTP.Rx, "XFR1", 50)
	e2e.WaitFor(t, 10*time.Second, "pbx gets BYE", func() bool { return s.Pbx.State().Byes == 1 })
	if n := len(phone.SIP.Requests(sip.INVITE)); n != 1 {
		t.Errorf("phone got %d re-INVITEs, want 1", n)
	}
	d.Bye()
	s.Check()
	old, next := checkLinked(t, s.Records(t, 2), outcome.SideB)
	if next.Trunk != "target" || next.Media.AtoB.Packets < 25 || next.Media.BtoA.Packets < 25 {
		t.Errorf("record after the transfer: trunk %q media %+v", next.Trunk, next.Media)
	}
	if old.Trunk != "pbx" || next.Cause != outcome.CauseCallerBye {
		t.Errorf("records: first trunk %q, second cause %q", old.Trunk, next.Cause)
	}
	s.SBC.WaitCallsIdle(t)
}

// TestTransferBlindFromPhone: the phone (the caller's side) transfers the
// PBX to 2000; the PBX is re-INVITEd and hears its own stream echoed by
// the target; the phone gets NOTIFY 100 and 200, then BYE.
func TestTransferBlindFromPhone(t *testing.T) {
	s := e2e.StartTransferSetup(t, 1)
	phone := e2e.NewXferPhone(t, s.SBC, "XFR1")
	d := phone.Call("1000")
	e2e.WaitCount(t, "phone hears the pbx", phone.RTP.Rx, "PBX1", 25)
	if res := phone.Refer(d, "<sip:2000@"+s.SBC.UDP.String()+">"); res.StatusCode() != 202 {
		t.Fatalf("phone REFER answered %d", res.StatusCode())
	}
	e2e.WaitFor(t, 10*time.Second, "phone gets BYE", func() bool { return len(phone.SIP.Requests(sip.BYE)) == 1 })
	if got := phone.Notifies(); !slices.Equal(got, []string{"SIP/2.0 100 Trying", "SIP/2.0 200 OK"}) {
		t.Errorf("phone's NOTIFYs %q", got)
	}
	peer, _ := s.Pbx.Current()
	e2e.WaitCount(t, "pbx's stream echoed by the transfer target", peer.Rx, "PBX1", 50)
	if n := len(s.Pbx.State().Offers); n != 2 {
		t.Errorf("pbx got %d offers, want the INVITE and one re-INVITE", n)
	}
	s.Pbx.Hangup()
	s.Check()
	checkLinked(t, s.Records(t, 2), outcome.SideA)
	s.SBC.WaitCallsIdle(t)
}

// TestTransferAttended: the phone has the PBX on hold on one call and the
// target (2000) on another, and REFERs the PBX to the target with Replaces
// naming the second call: the SBC INVITEs the target with Replaces of its
// own dialog, joins the PBX to it and ends the consultation call.
func TestTransferAttended(t *testing.T) {
	s := e2e.StartTransferSetup(t, 2)
	phone := e2e.NewXferPhone(t, s.SBC, "XFR1")
	x := phone.Call("1000")
	e2e.WaitCount(t, "phone hears the pbx", phone.RTP.Rx, "PBX1", 25)
	y := phone.Call("2000")
	e2e.WaitCount(t, "phone's audio echoed by the target", phone.RTP.Rx, "XFR1", 25)
	if res := phone.Refer(x, e2e.ReplacesOf("2000", s.SBC.UDP.String(), y)); res.StatusCode() != 202 {
		t.Fatalf("phone REFER answered %d", res.StatusCode())
	}
	e2e.WaitFor(t, 10*time.Second, "phone's two calls end", func() bool { return len(phone.SIP.Requests(sip.BYE)) == 2 })
	if got := phone.Notifies(); !slices.Equal(got, []string{"SIP/2.0 100 Trying", "SIP/2.0 200 OK"}) {
		t.Errorf("phone's NOTIFYs %q", got)
	}
	peer, _ := s.Pbx.Current()
	e2e.WaitCount(t, "pbx's stream echoed by the target", peer.Rx, "PBX1", 50)
	s.Pbx.Hangup()
	s.Check()
	recs := s.Records(t, 3)
	_, next := checkLinked(t, recs, outcome.SideA)
	var consult outcome.CallRecord
	for _, r := range recs {
		if r.ID != next.ID && r.TransferredFrom == "" && r.TransferredTo == next.ID && r.Trunk == "target" {
			consult = r
		}
	}
	if consult.ID == "" || consult.Cause != outcome.CauseTransferred {
		t.Errorf("the consultation call's record does not name the call that replaced it: %+v", recs)
	}
	s.SBC.WaitCallsIdle(t)
}

// TestTransferPremiumRefused: a transfer to a premium number is judged by
// the dial rules like a call: the phone gets 202, then NOTIFY 403, nothing
// is dialed and the call goes on.
func TestTransferPremiumRefused(t *testing.T) {
	s := e2e.StartTransferSetup(t, 0)
	phone := e2e.NewXferPhone(t, s.SBC, "XFR1")
	d := phone.Call("1000")
	if res := phone.Refer(d, "<sip:+19005551234@"+s.SBC.UDP.String()+">"); res.StatusCode() != 202 {
		t.Fatalf("phone REFER answered %d", res.StatusCode())
	}
	want := []string{"SIP/2.0 100 Trying", "SIP/2.0 403 Forbidden (dial rules)"}
	e2e.WaitFor(t, 10*time.Second, "NOTIFY 403", func() bool { return len(phone.Notifies()) == 2 })
	if got := phone.Notifies(); !slices.Equal(got, want) {
		t.Errorf("phone's NOTIFYs %q, want %q", got, want)
	}
	if st := s.Pbx.State(); st.Calls != 1 || st.Byes != 0 {
		t.Errorf("pbx: %d calls, %d BYEs; want the one call, still up", st.Calls, st.Byes)
	}
	e2e.WaitCount(t, "phone still hears the pbx", phone.RTP.Rx, "PBX1", 50)
	d.Bye()
	if recs := s.Records(t, 1); recs[0].TransferredTo != "" || recs[0].Cause != outcome.CauseCallerBye {
		t.Errorf("record: %+v", recs[0])
	}
	s.SBC.WaitCallsIdle(t)
}

// TestTransferBrowserTransferee: the PBX transfers a browser's call to
// 2000: the browser (WebRTC) is re-INVITEd with the target's media on the
// same ICE/DTLS transport and hears its own audio echoed by the target.
func TestTransferBrowserTransferee(t *testing.T) {
	s := e2e.StartTransferSetup(t, 1)
	web := e2e.NewWebPhone(t, s.SBC)
	web.Call("1000")
	e2e.WaitCount(t, "browser hears the pbx", web.Rx, "PBX1", 25)
	if res := e2e.PBXRefer(s.Pbx, "<sip:2000@"+s.SBC.UDP.String()+">"); res.StatusCode() != 202 {
		t.Fatalf("pbx REFER answered %d", res.StatusCode())
	}
	e2e.WaitCount(t, "browser's audio echoed by the transfer target", web.Rx, "WEB1", 50)
	e2e.WaitFor(t, 10*time.Second, "pbx gets BYE", func() bool { return s.Pbx.State().Byes == 1 })
	checkOneHandshake(t, web)
	web.Hangup()
	s.Check()
	web.Close()
	_, next := checkLinked(t, s.Records(t, 2), outcome.SideB)
	if next.ATransport != "ws" || next.Media.AtoB.Packets < 25 {
		t.Errorf("record after the transfer: %+v", next)
	}
	s.SBC.WaitCallsIdle(t)
}

// TestTransferFromBrowser: a browser (WebRTC) transfers the PBX to 2000,
// a plain RTP target: the target gets a media session of its own with the
// PBX, whose re-INVITE moves its media there; the PBX hears its stream
// echoed by the target, and the browser gets NOTIFY 200 and BYE.
func TestTransferFromBrowser(t *testing.T) {
	s := e2e.StartTransferSetup(t, 1)
	web := e2e.NewWebPhone(t, s.SBC)
	web.Call("1000")
	e2e.WaitCount(t, "browser hears the pbx", web.Rx, "PBX1", 25)
	if res := e2e.ReferIn(web.Dlg, "<sip:2000@"+s.SBC.UDP.String()+">"); res.StatusCode() != 202 {
		t.Fatalf("browser REFER answered %d", res.StatusCode())
	}
	e2e.WaitFor(t, 10*time.Second, "browser gets BYE", func() bool { return len(web.SIP.Requests(sip.BYE)) == 1 })
	peer, _ := s.Pbx.Current()
	e2e.WaitCount(t, "pbx's stream echoed by the transfer target", peer.Rx, "PBX1", 50)
	if n := len(s.Pbx.State().Offers); n != 2 {
		t.Errorf("pbx got %d offers, want the INVITE and one re-INVITE", n)
	}
	s.Pbx.Hangup()
	s.Check()
	web.Close()
	checkLinked(t, s.Records(t, 2), outcome.SideA)
	s.SBC.WaitCallsIdle(t)
}
