package b2bua

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// BenchmarkEstablishedCallHeap establishes calls over real UDP sockets
// (127.0.43.x) and the real transaction layer, with the fake media of the
// call tests, and reports what the B2BUA's core holds per established
// call once the setup's transactions ended (64*T1, T1 50 ms): Go heap in
// use and goroutine stacks, after a GC. test/membench measures the whole
// sbc process (media, CDR); this isolates b2bua and b2bua/txn:
//
//	go test -run '^$' -bench EstablishedCallHeap -benchtime=1x ./b2bua/
func BenchmarkEstablishedCallHeap(b *testing.B) {
	const n = 300
	callee := newRawPeerAt(b, "127.0.43.13")
	s := startTappedUDPServer(b, callee.addr(), nil)
	sbc, err := s.Listen("udp", transport.UDP, "127.0.43.11:0", transport.ListenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	callee.sbc = net.UDPAddrFromAddrPort(sbc)
	caller := newRawPeer(b, "127.0.43.12", sbc)
	go autoAnswer(callee)
	for b.Loop() {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		g0 := runtime.NumGoroutine()
		for i := range n {
			establish(caller, sbc.String(), fmt.Sprintf("heap-%d-%d", b.N, i))
		}
		for deadline := time.Now().Add(wait); s.tx.Count() > 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("%d transactions still live", s.tx.Count())
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/1024/n, "heap-kB/call")
		b.ReportMetric(float64(int64(m1.StackInuse)-int64(m0.StackInuse))/1024/n, "stack-kB/call")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/call")
		b.ReportMetric(0, "ns/op")
	}
}

// autoAnswer answers every INVITE the peer receives 200 with SDP, until
// its socket closes.
func autoAnswer(p *rawPeer) {
	buf := make([]byte, 65535)
	for {
		k, err := p.conn.Read(buf)
		if err != nil {
			return
		}
		m, err := sipmsg.NewParser(sipmsg.Limits{}).Parse(buf[:k])
		if err == nil && isRequest(sip.INVITE)(m) {
			p.answer(m, "200 OK", "Content-Type: application/sdp", "", calleeSDP)
		}
	}
}

// establish places one call from p through the SBC at sbc and ACKs its 2xx.
func establish(p *rawPeer, sbc, callID string) {
	hdr := func(method, toTag string) []string {
		to := "<sip:1000@" + sbc + ">"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		return []string{fmt.Sprintf("%s sip:1000@%s SIP/2.0", method, sbc),
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s-%s;rport", p.addr(), strings.ToLower(method), callID),
			"Max-Forwards: 70", "From: <sip:alice@" + p.addr() + ">;tag=a1", "To: " + to, "Call-ID: " + callID,
			"CSeq: 1 " + method, "Contact: <sip:alice@" + p.addr() + ">"}
	}
	p.send(append(hdr("INVITE", ""), "Content-Type: application/sdp", "", callerSDP)...)
	res := p.recv("200", isResponse(200, sip.INVITE))
	p.send(hdr("ACK", sipmsg.ToTag(res))...)
}
