package baresip

import (
	"fmt"
	"testing"
	"time"
)

// toneTarget is what the transfer target plays (16 whole cycles a block).
const toneTarget = 800.0

// TestBaresipBlindTransfer: alice calls 1000, a baresip on the PBX side,
// which transfers her with its transfer command (a REFER) to 2000,
// another baresip there. The SBC performs the transfer (mode local):
// 1000's call ends, alice and 2000 hear each other (the SBC's packet
// counts after the transfer and both recordings), and the two records of
// the call are linked.
func TestBaresipBlindTransfer(t *testing.T) {
	t.Parallel()
	needTools(t)
	ca := newCA(t)
	pbx := startPhone(t, phoneOptions{user: "1000", ip: "127.0.1.70", tone: toneB, rtpBase: 26000})
	dest := startPhone(t, phoneOptions{user: "2000", ip: "127.0.1.71", tone: toneTarget, rtpBase: 26100})
	sbc := startSBC(t, ca.leaf(t, sbcIP), "25500-25999",
		trunk{name: "pbx", user: "1000", uri: fmt.Sprintf("sip:%s:%d", pbx.o.ip, pbx.sipPort)},
		trunk{name: "target", user: "2000", uri: fmt.Sprintf("sip:%s:%d", dest.o.ip, dest.sipPort)})
	alice := startPhone(t, phoneOptions{user: "alice", ip: "127.0.1.72", tone: toneA, rtpBase: 26200})

	c := (&pair{sbc: sbc, a: alice, b: pbx, target: target("1000", sbc.udp, "")}).dial(t)
	c.flowing(t, [2]uint64{}, relayAudio)
	markDest, recAlice := dest.mark(), len(alice.recordings())
	pbx.do("transfer", target("2000", sbc.udp, ""))
	dest.waitEvent(markDest, "CALL_ESTABLISHED", 15*time.Second)
	pbx.waitEvent(c.markB, "CALL_CLOSED", 10*time.Second)
	// After the transfer: audio both ways between alice and 2000.
	base, _ := sbc.relayed(c.id)
	c.flowing(t, base, relayAudio)
	// The recordings lag the SBC's counts (each phone's decoder and
	// writer): hang up only once both hold enough of the other's tone.
	waitHeard(t, dest, 0, toneA)
	waitHeard(t, alice, recAlice-1, toneTarget)

	alice.do("hangup", "")
	alice.waitEvent(c.markA, "CALL_CLOSED", 5*time.Second)
	dest.waitEvent(markDest, "CALL_CLOSED", 5*time.Second)
	var recs []record
	deadline := time.Now().Add(10 * time.Second)
	for len(recs) < 2 && time.Now().Before(deadline) {
		recs = sbc.records(t)
		time.Sleep(50 * time.Millisecond)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records, want the call's two: %v", len(recs), recs)
	}
	old, next := recs[0], recs[1]
	if old.HangupCause != "transferred" || old.TransferredTo != next.ID || next.TransferredFrom != old.ID ||
		next.Trunk != "target" || next.ACallID != c.id {
		t.Fatalf("records not linked: %+v, %+v", old, next)
	}
	if next.AToBPackets < minAudio || next.BToAPackets < minAudio {
		t.Fatalf("record after the transfer %s, want at least %d packets each way", next, minAudio)
	}
	// The target heard alice and alice, after the PBX, heard the target.
	checkHeard(t, "2000", lastRecording(t, dest, 0), toneA, toneTarget, minAudio)
	checkHeard(t, "alice", lastRecording(t, alice, recAlice-1), toneTarget, toneA, minAudio)
	sbc.waitIdle(t)
}

// waitHeard waits until p's newest recording (it has more than before)
// holds minAudio blocks of tone.
func waitHeard(t *testing.T, p *phone, before int, tone float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; n < minAudio; n = p.heard(before, tone) {
		if time.Now().After(deadline) {
			t.Fatalf("%s heard %d blocks of %.0f Hz within 10 s, want %d", p.o.user, n, tone, minAudio)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastRecording is the newest recording of p, which must have more than
// before of them.
func lastRecording(t *testing.T, p *phone, before int) string {
	t.Helper()
	recs := p.recordings()
	if len(recs) <= before {
		t.Fatalf("%s recorded nothing", p.o.user)
	}
	return recs[len(recs)-1]
}
