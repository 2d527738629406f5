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
