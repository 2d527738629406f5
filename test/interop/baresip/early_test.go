package baresip

import (
	"fmt"
	"testing"
)

// TestBaresipRegisteredEarlyMedia: the callees are registered over TCP,
// so their SIP and their RTP both come from 127.0.0.1, and each answers
// and sends RTP in the same millisecond: the SBC often latches that RTP
// before it has applied the 200's SDP, which names the phone's own
// address. The source must keep working: every call has audio both ways
// (before the fix, such calls had one packet from the callee).
func TestBaresipRegisteredEarlyMedia(t *testing.T) {
	t.Parallel()
	needTools(t)
	ca := newCA(t)
	sbc := startSBC(t, ca.leaf(t, sbcIP), "24000-24499")
	var pairs []*pair
	for i := range lanes {
		b := startPhone(t, phoneOptions{user: fmt.Sprint("reg", i), ip: fmt.Sprintf("127.0.1.%d", 51+2*i), tone: toneB,
			rtpBase: 21700 + 200*i, register: sbc.tcp.String()})
		sbc.waitRegistered(t, b.o.user)
		a := startPhone(t, phoneOptions{user: "alice", ip: fmt.Sprintf("127.0.1.%d", 50+2*i), tone: toneA,
			rtpBase: 21600 + 200*i})
		pairs = append(pairs, &pair{sbc: sbc, a: a, b: b, target: target(b.o.user, sbc.udp, "")})
	}
	runCalls(t, pairs, 2)
	if !t.Failed() {
		sbc.waitIdle(t)
	}
}
