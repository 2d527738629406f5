package txn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	gosiplog "github.com/ghettovoice/gosip/log"
	"github.com/ghettovoice/gosip/sip"
	"github.com/ghettovoice/gosip/sip/parser"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// udpNode is a Layer on a real UDP socket on loopback: the smallest
// transport there is, one reader goroutine and WriteToUDPAddrPort.
type udpNode struct {
	conn *net.UDPConn
	addr netip.AddrPort
	l    *Layer
	wg   sync.WaitGroup
}

func newUDPNode(t *testing.T, h Handler) *udpNode {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	n := &udpNode{conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort()}
	n.l = New(n.send, h, testTimers, nil)
	logger := gosiplog.NewDefaultLogrusLogger()
	n.wg.Go(func() {
		buf := make([]byte, 65535)
		for {
			size, src, err := conn.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			msg, err := parser.ParseMessage(append([]byte(nil), buf[:size]...), logger)
			if err != nil {
				continue
			}
			n.l.Receive(msg, transport.Target{Kind: transport.UDP, Addr: src})
		}
	})
	return n
}

func (n *udpNode) send(msg sip.Message, dst transport.Target) error {
	_, err := n.conn.WriteToUDPAddrPort([]byte(msg.String()), dst.Addr)
	return err
}

func (n *udpNode) close() {
	n.l.Close()
	n.conn.Close()
	n.wg.Wait()
}

// uas answers INVITE 180 then 200 and BYE 200, and reports the ACK.
type uas struct {
	acks chan sip.Request
	byes chan struct{}
}

func (u *uas) OnRequest(req sip.Request, tx *ServerTx) {
	switch {
	case tx == nil && req.IsAck():
		u.acks <- req
	case req.IsInvite():
		_ = tx.Respond(withToTag(NewResponse(req, 180, "Ringing"), "uas-tag"))
		_ = tx.Respond(withToTag(NewResponse(req, 200, "OK"), "uas-tag"))
	case req.Method() == sip.BYE:
		_ = tx.Respond(withToTag(NewResponse(req, 200, "OK"), "uas-tag"))
		u.byes <- struct{}{}
	default:
		_ = tx.Respond(withToTag(NewResponse(req, 405, "Method Not Allowed"), "uas-tag"))
	}
}

type nobody struct{}

func (nobody) OnRequest(sip.Request, *ServerTx) {}

// TestUDPCall runs INVITE / 180 / 200 / ACK / BYE / 200 between two layers
// over real sockets.
func TestUDPCall(t *testing.T) {
	before := runtime.NumGoroutine()
	callee := &uas{acks: make(chan sip.Request, 4), byes: make(chan struct{}, 4)}
	b := newUDPNode(t, callee)
	a := newUDPNode(t, nobody{})

	request := func(m sip.RequestMethod, cseq int, toTag string) sip.Request {
		return parse(t, rq{
			method: m, branch: NewBranch(), callID: "udp-call", cseq: cseq, toTag: toTag,
			via: fmt.Sprintf("UDP %s;rport", a.addr),
		}.raw()).(sip.Request)
	}
	dst := transport.Target{Kind: transport.UDP, Addr: b.addr}

	inv, err := a.l.Request(request(sip.INVITE, 1, ""), dst)
	if err != nil {
		t.Fatal(err)
	}
	var final sip.Response
	for final == nil {
		res := next(t, inv)
		if res.StatusCode() >= 200 {
			final = res
		}
	}
	if final.StatusCode() != 200 || sipmsg.ToTag(final) != "uas-tag" {
		t.Fatalf("final %d with tag %q", final.StatusCode(), sipmsg.ToTag(final))
	}
	ack := request(sip.ACK, 1, "uas-tag")
	if err := a.send(ack, dst); err != nil { // the ACK of a 2xx is no transaction
		t.Fatal(err)
	}
	select {
	case got := <-callee.acks:
		if branchOfMsg(got) != branchOfMsg(ack) {
			t.Fatal("callee got another ACK")
		}
	case <-time.After(wait):
		t.Fatal("ACK not delivered to the callee's TU")
	}

	bye, err := a.l.Request(request(sip.BYE, 2, "uas-tag"), dst)
	if err != nil {
		t.Fatal(err)
	}
	if res := next(t, bye); res.StatusCode() != 200 {
		t.Fatalf("BYE answered %d", res.StatusCode())
	}

	eventually(t, "transactions ended on both sides", func() bool { return a.l.Count()+b.l.Count() == 0 })
	a.close()
	b.close()
	eventually(t, "goroutines gone", func() bool { return runtime.NumGoroutine() <= before })
	if s := b.l.Stats(); s.Requests < 3 || s.Timeouts != 0 {
		t.Fatalf("callee stats %+v", s)
	}
}

// TestUDPTimersOnRuntimeClock: an OPTIONS toward a peer that never
// answers, over a real socket on the runtime's timers (T1 10 ms, T2
// 40 ms): retransmitted (Timer E), never more often than RFC 3261 allows
// (sent at 0, 10, 30, 70 ms, then every 40 ms: 18 times by 640 ms), and
// a 408 (Timer F) no sooner than 64*T1.
func TestUDPTimersOnRuntimeClock(t *testing.T) {
	peer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	got := make(chan struct{}, 64)
	go func() {
		buf := make([]byte, 65535)
		for {
			if _, _, err := peer.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
			got <- struct{}{}
		}
	}()
	a := newUDPNode(t, nobody{})
	defer a.close()
	start := time.Now()
	tx, err := a.l.Request(parse(t, rq{method: sip.OPTIONS, branch: NewBranch(), callID: "silent",
		via: fmt.Sprintf("UDP %s;rport", a.addr)}.raw()).(sip.Request),
		transport.Target{Kind: transport.UDP, Addr: peer.LocalAddr().(*net.UDPAddr).AddrPort()})
	if err != nil {
		t.Fatal(err)
	}
	res := next(t, tx)
	took := time.Since(start)
	if res.StatusCode() != 408 || took < 64*testTimers.T1 {
		t.Fatalf("%d after %v, want 408 after %v", res.StatusCode(), took, 64*testTimers.T1)
	}
	eventually(t, "the transaction ended", func() bool { return a.l.Count() == 0 })
	if n := len(got); n < 2 || n > 18 {
		t.Fatalf("the request arrived %d times by Timer F, want 2 to 18", n)
	}
}
