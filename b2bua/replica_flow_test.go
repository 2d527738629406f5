package b2bua

import (
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// TestRestoredLegRegisteredBefore: alice's browser registers again, with
// her instance, at the survivor before the survivor restores her call
// (its node's death is noticed at the next heartbeat, her reconnect can
// be quicker) and sends nothing in the dialog: her restored leg moves to
// that registration at once, so the PBX's BYE reaches her there and the
// call ends as callee_bye. The nodes on 127.0.18.1, alice from
// 127.0.18.2, the PBX on 127.0.18.3.
func TestRestoredLegRegisteredBefore(t *testing.T) {
	restore := func(h *Hooks) {
		h.RestoreMedia = func(string, []byte) (MediaSession, error) { return fakeMedia{}, nil }
	}
	pbx := newRawPeerAt(t, "127.0.18.3")
	g1 := startGraceSBCAt(t, 30*time.Second, "127.0.18.1", pbx, restore)
	alice := g1.dial(t, transport.WS, "127.0.18.2", "alice")
	alice.register("1111-aaaa")
	c := g1.call(t, alice)
	state := stateOfCall(t, g1.s)
	g1.s.Abandon()

	g2 := startGraceSBCAt(t, 30*time.Second, "127.0.18.1", pbx, restore)
	back := g2.dial(t, transport.WS, "127.0.18.2", "alice")
	back.register("1111-aaaa")
	if err := g2.s.Restore(state, "node1"); err != nil {
		t.Fatal(err)
	}
	stateOfCall(t, g2.s) // after the restored call's first event (restored)
	if g2.inGrace() {
		t.Fatal("the restored call waits for alice, registered already on this node")
	}
	g2.pbxRequest(c, "BYE", 3)
	bye := back.recv("BYE on alice's new connection", isRequest(sip.BYE))
	back.answer(bye, "200 OK")
	g2.pbx.recv("200 to the PBX's BYE", isResponse(200, sip.BYE))
	if r := g2.rec.next(t); r.Cause != outcome.CauseCalleeBye || r.TakenOverFrom != "node1" {
		t.Errorf("record: cause %s, taken over from %q", r.Cause, r.TakenOverFrom)
	}
}
