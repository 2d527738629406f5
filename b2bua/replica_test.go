package b2bua

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// A call survives its node (issue 19, replica.go): node 1 answers a call
// between a caller (127.0.15.2) and a PBX (127.0.15.3) on 127.0.15.1 and
// replicates it; node 1 dies (Abandon: no BYE, no record); node 2 binds
// the same address, restores the call from node 1's last state, and the
// dialogs go on: the caller's re-INVITE reaches the PBX, node 2 refreshes
// the PBX's session on time with a CSeq past node 1's, a BYE from either
// side ends both legs, and exactly one record is written, by node 2,
// noting node 1.

// memReplica is a Replicator in memory: the calls' last states by id.
type memReplica struct {
	mu     sync.Mutex
	states map[string][]byte
	saved  chan string
}

func newMemReplica() *memReplica {
	return &memReplica{states: make(map[string][]byte), saved: make(chan string, 16)}
}

func (m *memReplica) Save(id string, st []byte) {
	m.mu.Lock()
	m.states[id] = st
	m.mu.Unlock()
	select {
	case m.saved <- id:
	default:
	}
}

func (m *memReplica) Forget(id string) {
	m.mu.Lock()
	delete(m.states, id)
	m.mu.Unlock()
}

func (m *memReplica) get(id string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.states[id]
}

func (m *memReplica) waitSaved(t *testing.T) string {
	t.Helper()
	select {
	case id := <-m.saved:
		return id
	case <-time.After(wait):
		t.Fatal("no call state saved")
		return ""
	}
}

// replicaNode is one SBC node on addr (port 0: any), routing every call
// to the PBX.
func replicaNode(t *testing.T, addr, pbx string) (*Server, netip.AddrPort, *memReplica, *records) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	table, err := routing.New(routing.TableSpec{
		Trunks: []routing.TrunkSpec{{Name: "pbx", URI: "sip:" + pbx}},
		Routes: []routing.RouteSpec{{Name: "out", Target: routing.TargetTrunks, Trunks: []string{"pbx"}}},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	repl, rec := newMemReplica(), &records{ended: make(chan outcome.CallRecord, 4)}
	s := New(Config{RingTimeout: 5 * time.Second, InviteTimeout: 5 * time.Second, MinSE: 90 * time.Second,
		SessionExpires: 1800 * time.Second, Timers: txn.Timers{T1: 50 * time.Millisecond}},
		Hooks{Routes: table, Media: func(string) (MediaSession, error) { return fakeMedia{}, nil },
			Observer: rec, Replicate: repl,
			RestoreMedia: func(string, []byte) (MediaSession, error) { return fakeMedia{}, nil }}, log)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = s.Close(ctx)
	})
	bound, err := s.Listen("udp", transport.UDP, addr, transport.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s, bound, repl, rec
}

func TestCallSurvivesItsNode(t *testing.T) {
	for _, byeFrom := range []string{"caller", "pbx"} {
		t.Run("bye from "+byeFrom, func(t *testing.T) { testCallSurvivesItsNode(t, byeFrom) })
	}
}

func testCallSurvivesItsNode(t *testing.T, byeFrom string) {
	pbx := newRawPeerAt(t, "127.0.15.3")
	node1, sbc, repl1, rec1 := replicaNode(t, "127.0.15.1:0", pbx.addr())
	pbx.sbc = net.UDPAddrFromAddrPort(sbc)
	caller := newRawPeer(t, "127.0.15.2", sbc)
	callID := "survive-" + sipmsg.NewToken(6)
	dialog := func(method string, seq int, toTag string, extra ...string) []string {
		to := "<sip:1000@127.0.15.1>"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		return append([]string{
			fmt.Sprintf("%s sip:1000@%s SIP/2.0", method, sbc),
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s%d;rport", caller.addr(), strings.ToLower(method), seq),
			"Max-Forwards: 70", "From: \"Alice\" <sip:alice@127.0.15.2>;tag=a1", "To: " + to, "Call-ID: " + callID,
			fmt.Sprintf("CSeq: %d %s", seq, method), "Contact: <sip:alice@" + caller.addr() + ">",
		}, extra...)
	}
	// The PBX answers the SBC's session refreshes (UPDATE) as they come,
	// counts them, and checks that its dialog's CSeq only grows.
	var refreshes int
	var lastSeq uint32
	var lastBranch string
	pbxRecv := func(what string, match func(sip.Message) bool) sip.Message {
		t.Helper()
		return pbx.recv(what, func(m sip.Message) bool {
			if req, ok := m.(sip.Request); ok && req.Method() != sip.ACK {
				n, _ := sipmsg.CSeq(m)
				branch := sipmsg.Header(m, "Via")
				if branch == lastBranch {
					return false // a retransmission (answered late on a busy machine)
				}
				if n <= lastSeq {
					t.Errorf("%s from the SBC with CSeq %d after %d", req.Method(), n, lastSeq)
				}
				lastSeq, lastBranch = n, branch
				if req.Method() == sip.BYE && byeFrom == "pbx" {
					t.Errorf("the SBC sent BYE to the PBX")
				}
			}
			if isRequest(sip.UPDATE)(m) {
				pbx.answer(m, "200 OK", "Session-Expires: 3;refresher=uac", "Require: timer")
				refreshes++
				return match(m)
			}
			return match(m)
		})
	}

	caller.send(dialog("INVITE", 1, "", "Supported: timer", "Session-Expires: 90",
		"Content-Type: application/sdp", "", callerSDP)...)
	inv := pbxRecv("INVITE", isRequest(sip.INVITE))
	pbx.answer(inv, "200 OK", "Allow: INVITE, ACK, BYE, UPDATE", "Supported: timer",
		"Session-Expires: 3;refresher=uac", "Require: timer", "Content-Type: application/sdp", "", calleeSDP)
	pbxRecv("ACK", isRequest(sip.ACK))
	ok := caller.recv("200 to INVITE", isResponse(200, sip.INVITE))
	tag := sipmsg.ToTag(ok)
	caller.send(dialog("ACK", 1, tag)...)
	id := repl1.waitSaved(t)
	state := repl1.get(id)
	t.Logf("a call's state: %d bytes", len(state))
	var st CallState
	if err := json.Unmarshal(state, &st); err != nil {
		t.Fatalf("saved state: %v", err)
	}
	if st.A.CallID != callID || st.B.CallID != sipmsg.CallID(inv) || st.B.RemoteTag != "pbx1" || st.B.SessionExpires != 3 || !st.B.WeRefresh {
		t.Fatalf("saved state %s", state)
	}

	// Node 1 refreshes the PBX's session once after its last save: node
	// 2's requests must still come with a higher CSeq.
	pbxRecv("a refresh from node 1", func(sip.Message) bool { return refreshes > 0 })
	node1.Abandon()
	select {
	case r := <-rec1.ended:
		t.Fatalf("the dead node wrote a record: %+v", r)
	default:
	}
	node2, _, repl2, rec2 := replicaNode(t, sbc.String(), pbx.addr())
	if err := node2.Restore(state, "node1"); err != nil {
		t.Fatal(err)
	}
	if repl2.waitSaved(t) != id {
		t.Fatal("node 2 saved another call")
	}
	refreshes = 0

	// The caller's re-INVITE goes through node 2 to the PBX, in leg B's dialog.
	hold := strings.Replace(callerSDP, "o=a 1 1", "o=a 1 2", 1) + "a=sendonly\r\n"
	caller.send(dialog("INVITE", 2, tag, "Content-Type: application/sdp", "", hold)...)
	re := pbxRecv("re-INVITE", isRequest(sip.INVITE))
	if sipmsg.CallID(re) != sipmsg.CallID(inv) || sipmsg.ToTag(re) != "pbx1" || sipmsg.FromTag(re) != sipmsg.FromTag(inv) ||
		!strings.Contains(re.Body(), "a=sendonly") {
		t.Fatalf("re-INVITE outside leg B's dialog:\n%s", re)
	}
	pbx.answer(re, "200 OK", "Content-Type: application/sdp", "", calleeSDP)
	pbxRecv("ACK to the re-INVITE", isRequest(sip.ACK))
	caller.recv("200 to the re-INVITE", isResponse(200, sip.INVITE))
	caller.send(dialog("ACK", 2, tag)...)
	// Node 2 refreshes the PBX's session (3 s, every 1.5 s).
	pbxRecv("a refresh from node 2", func(sip.Message) bool { return refreshes > 0 })

	var bye sip.Message
	if byeFrom == "caller" {
		caller.send(dialog("BYE", 3, tag)...)
		bye = pbxRecv("BYE", isRequest(sip.BYE))
		pbx.answer(bye, "200 OK")
		caller.recv("200 to BYE", isResponse(200, sip.BYE))
	} else {
		pbx.send("BYE sip:sbc@"+sbc.String()+" SIP/2.0", "Via: SIP/2.0/UDP "+pbx.addr()+";branch=z9hG4bKpbxbye",
			"Max-Forwards: 70", "From: "+sipmsg.Header(inv, "To")+";tag=pbx1", "To: "+sipmsg.Header(inv, "From"),
			"Call-ID: "+sipmsg.CallID(inv), "CSeq: 7 BYE")
		bye = caller.recv("BYE", isRequest(sip.BYE))
		caller.answer(bye, "200 OK")
		pbx.recv("200 to BYE", isResponse(200, sip.BYE))
	}
	r := rec2.next(t)
	if r.ID != id || r.TakenOverFrom != "node1" || r.ACallID != callID || !r.Answer.Equal(st.Rec.Answer) || r.SIPCode != 200 {
		t.Errorf("record %+v, want id %s taken over from node1, answered at %v", r, id, st.Rec.Answer)
	}
	select {
	case r := <-rec2.ended:
		t.Errorf("a second record: %+v", r)
	case r := <-rec1.ended:
		t.Errorf("a record from the dead node: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	if repl2.get(id) != nil {
		t.Error("the ended call's state is still replicated")
	}
	waitNoCalls(t, node2)
}

func waitNoCalls(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for s.ActiveCalls() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls left", s.ActiveCalls())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
