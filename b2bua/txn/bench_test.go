package txn

import (
	"strconv"
	"testing"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// tuAnswer is a TU that answers every INVITE 180 then 200 at once.
type tuAnswer struct{}

func (tuAnswer) OnRequest(req sip.Request, tx *ServerTx) {
	if tx == nil {
		return // the ACK of the 2xx
	}
	res := NewResponse(req, 180, "Ringing")
	sipmsg.SetTag(mustTo(res), "b2b")
	_ = tx.Respond(res)
	res = NewResponse(req, 200, "OK")
	sipmsg.SetTag(mustTo(res), "b2b")
	_ = tx.Respond(res)
}

func mustTo(res sip.Response) *sip.ToHeader { to, _ := res.To(); return to }

// noHandler drops a client transaction's events.
type noHandler struct{}

func (noHandler) Response(*ClientTx, sip.Response) {}
func (noHandler) Ended(*ClientTx)                  {}

// BenchmarkInviteTransactions runs what a call's INVITE costs the
// transaction layer on both legs over UDP, with the parsing of the
// messages received: an INVITE received (server transaction, answered 180
// and 200 by the TU, its ACK), and an INVITE sent (client transaction,
// its 180 and 200 received). The sender drops what is sent; the
// transactions linger as over UDP, on the real clock.
//
//	go test -run '^$' -bench InviteTransactions -benchmem ./b2bua/txn/
func BenchmarkInviteTransactions(b *testing.B) {
	l := New(func(sip.Message, transport.Target) error { return nil }, tuAnswer{}, Timers{}, nil)
	defer l.Close()
	p := sipmsg.NewParser(sipmsg.Limits{})
	parse := func(s string) sip.Message {
		m, err := p.ParseOwned([]byte(s))
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		n := strconv.Itoa(i)
		head := "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-a" + n + "\r\nFrom: <sip:a@127.0.0.1>;tag=a" + n +
			"\r\nTo: <sip:b@127.0.0.2>\r\nCall-ID: a" + n + "@127.0.0.1\r\n"
		l.Receive(parse("INVITE sip:b@127.0.0.2 SIP/2.0\r\n"+head+"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"), udpPeer)
		l.Receive(parse("ACK sip:b@127.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-k"+n+
			"\r\nFrom: <sip:a@127.0.0.1>;tag=a"+n+"\r\nTo: <sip:b@127.0.0.2>;tag=b2b\r\nCall-ID: a"+n+
			"@127.0.0.1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"), udpPeer)

		branch := NewBranch()
		inv := parse("INVITE sip:c@127.0.0.3 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=" + branch +
			"\r\nFrom: <sip:a@127.0.0.2>;tag=s" + n + "\r\nTo: <sip:c@127.0.0.3>\r\nCall-ID: s" + n +
			"@127.0.0.2\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").(sip.Request)
		if _, err := l.RequestWith(inv, udpPeer, noHandler{}); err != nil {
			b.Fatal(err)
		}
		for _, code := range []string{"180 Ringing", "200 OK"} {
			l.Receive(parse("SIP/2.0 "+code+"\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch="+branch+
				"\r\nFrom: <sip:a@127.0.0.2>;tag=s"+n+"\r\nTo: <sip:c@127.0.0.3>;tag=c"+n+"\r\nCall-ID: s"+n+
				"@127.0.0.2\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"), udpPeer)
		}
	}
}
