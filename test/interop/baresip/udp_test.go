package baresip

import (
	"fmt"
	"testing"
)

// lanes and callsPerLane make the 20 calls: each lane is a caller and a
// callee baresip calling through the SBC in a row, the lanes side by
// side (a call lasts over three seconds, see runCalls).
const (
	lanes        = 4
	callsPerLane = 5
)

// TestBaresipUDP: baresip → SBC → baresip over UDP, 20 calls, none
// one-way: each side hears the other's tone (recordings) and the CDR
// counts packets both ways; RFC 4733 digits cross both ways; hold and
// resume bring the audio back.
func TestBaresipUDP(t *testing.T) {
	t.Parallel()
	needTools(t)
	ca := newCA(t)
	var callees []*phone
	var trunks []trunk
	for i := range lanes {
		b := startPhone(t, phoneOptions{user: fmt.Sprint("bob", i), ip: fmt.Sprintf("127.0.1.%d", 11+2*i), tone: toneB,
			rtpBase: 20100 + 200*i})
		callees = append(callees, b)
		trunks = append(trunks, trunk{name: b.o.user, user: b.o.user,
			uri: fmt.Sprintf("sip:%s:%d", b.o.ip, b.sipPort)})
	}
	sbc := startSBC(t, ca.leaf(t, sbcIP), "23000-23499", trunks...)
	var pairs []*pair
	for i, b := range callees {
		a := startPhone(t, phoneOptions{user: "alice", ip: fmt.Sprintf("127.0.1.%d", 10+2*i), tone: toneA,
			rtpBase: 20000 + 200*i})
		pairs = append(pairs, &pair{sbc: sbc, a: a, b: b, target: target(b.o.user, sbc.udp, "")})
	}
	runCalls(t, pairs, callsPerLane)
	if t.Failed() {
		return
	}
	for _, r := range sbc.records(t) {
		if r.ATransport != "udp" {
			t.Errorf("CDR %s: transport %s, want udp", r, r.ATransport)
		}
	}
	sbc.waitIdle(t)
}
