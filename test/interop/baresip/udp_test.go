package baresip

import (
	"fmt"
	"testing"
)

// lanes and callsPerLane make the 20 calls over TLS (tls_test.go): each
// lane is a caller and a callee baresip calling through the SBC in a row,
// the lanes side by side (a call lasts over three seconds, see runCalls).
// Over UDP the 20 calls are one after the other, between one pair.
const (
	lanes        = 4
	callsPerLane = 5
	udpCalls     = 20
)

// TestBaresipUDP: baresip → SBC → baresip over UDP, 20 calls in a row,
// none one-way: each side hears the other's tone (recordings) and the CDR
// counts packets both ways; RFC 4733 digits cross both ways; hold and
// resume bring the audio back.
func TestBaresipUDP(t *testing.T) {
	t.Parallel()
	needTools(t)
	ca := newCA(t)
	b := startPhone(t, phoneOptions{user: "bob", ip: "127.0.1.11", tone: toneB, rtpBase: 20100})
	sbc := startSBC(t, ca.leaf(t, sbcIP), "23000-23499",
		trunk{name: "bob", user: "bob", uri: fmt.Sprintf("sip:%s:%d", b.o.ip, b.sipPort)})
	a := startPhone(t, phoneOptions{user: "alice", ip: "127.0.1.10", tone: toneA, rtpBase: 20000})
	runCalls(t, []*pair{{sbc: sbc, a: a, b: b, target: target("bob", sbc.udp, "")}}, udpCalls)
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
