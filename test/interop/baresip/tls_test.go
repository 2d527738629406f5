package baresip

import (
	"fmt"
	"testing"
)

// TestBaresipTLS: the same calls over SIP over TLS with SDES-SRTP
// (mediaenc=srtp-mand) on both sides: the caller verifies the SBC's
// certificate, the SBC the callee's (trunk tls.ca_file); every call
// survives its ACK (the SBC's Contact is sip: for a sip: call over TLS).
func TestBaresipTLS(t *testing.T) {
	t.Parallel()
	needTools(t)
	ca := newCA(t)
	var callees []*phone
	var trunks []trunk
	for i := range lanes {
		ip := fmt.Sprintf("127.0.1.%d", 31+2*i)
		b := startPhone(t, phoneOptions{user: fmt.Sprint("bob", i), ip: ip, tone: toneB, rtpBase: 20900 + 200*i,
			srtp: true, cert: ca.leaf(t, ip).both, caFile: ca.file})
		callees = append(callees, b)
		trunks = append(trunks, trunk{name: b.o.user, user: b.o.user, srtp: true, caFile: ca.file,
			uri: fmt.Sprintf("sip:%s:%d;transport=tls", b.o.ip, b.sipPort+1)})
	}
	sbc := startSBC(t, ca.leaf(t, sbcIP), "23500-23999", trunks...)
	var pairs []*pair
	for i, b := range callees {
		a := startPhone(t, phoneOptions{user: "alice", ip: fmt.Sprintf("127.0.1.%d", 30+2*i), tone: toneA,
			rtpBase: 20800 + 200*i, srtp: true, caFile: ca.file})
		pairs = append(pairs, &pair{sbc: sbc, a: a, b: b, target: target(b.o.user, sbc.tls, ";transport=tls")})
	}
	runCalls(t, pairs, callsPerLane)
	if t.Failed() {
		return
	}
	for _, r := range sbc.records(t) {
		if r.ATransport != "tls" {
			t.Errorf("CDR %s: transport %s, want tls", r, r.ATransport)
		}
	}
	sbc.waitIdle(t)
}
