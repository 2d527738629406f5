package b2bua

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/policy"
)

// slowPolicy makes the SBC slow for one source: each of its messages
// costs cost, one at a time whatever the number of workers, so that
// offering more than 1/cost a second builds a queue.
type slowPolicy struct {
	slow netip.Addr
	cost time.Duration
	mu   sync.Mutex
}

func (p *slowPolicy) Banned(src netip.Addr, _ string) bool {
	if src == p.slow {
		p.mu.Lock()
		time.Sleep(p.cost) // the work the SBC cannot keep up with
		p.mu.Unlock()
	}
	return false
}
func (p *slowPolicy) Early(context.Context, *policy.Request) policy.Decision { return policy.Pass }
func (p *slowPolicy) Late(context.Context, *policy.Request) policy.Decision  { return policy.Pass }
func (p *slowPolicy) Report(netip.Addr, string, policy.Event)                {}
func (p *slowPolicy) MaxDuration() time.Duration                             { return 0 }

// sipClient is a UDP SIP client on its own loopback address that
// retransmits a request until a response with the given CSeq comes.
type sipClient struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

func newSIPClient(t *testing.T, ip string, to netip.AddrPort) *sipClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &sipClient{t: t, conn: conn, to: net.UDPAddrFromAddrPort(to)}
}

// request sends a request (Via, From, Call-ID, CSeq filled in) every
// 500 ms until a final response to it comes back, for at most 20 s.
func (c *sipClient) request(method, callID, toTag, branch string) string {
	c.t.Helper()
	to := "<sip:x@127.0.0.1>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	cseq := "1 " + method
	msg := fmt.Sprintf("%s sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"+
		"From: <sip:load@127.0.0.1>;tag=f1\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\nMax-Forwards: 70\r\n"+
		"Contact: <sip:load@%s>\r\nContent-Length: 0\r\n\r\n", method, c.conn.LocalAddr(), branch, to, callID, cseq, c.conn.LocalAddr())
	buf := make([]byte, 4096)
	for range 40 {
		if _, err := c.conn.WriteToUDP([]byte(msg), c.to); err != nil {
			c.t.Fatal(err)
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		for {
			n, err := c.conn.Read(buf)
			if err != nil {
				break // retransmit
			}
			res := string(buf[:n])
			if strings.Contains(res, "Call-ID: "+callID+"\r\n") && strings.Contains(res, "CSeq: "+cseq+"\r\n") &&
				!strings.HasPrefix(res, "SIP/2.0 1") {
				return res
			}
		}
	}
	c.t.Fatalf("no final answer to %s %s", method, callID)
	return ""
}

// TestOverloadUnderLoad: a SIP listener offered twice what it can handle
// (OPTIONS from one source, no call at all) turns the control on from the
// measured queueing delay; then a new INVITE is refused at once with 503
// and Retry-After, while an in-dialog request is still handled (481) and
// the retransmission of an INVITE taken before the overload gets its own
// answer again; once the load stops, the control turns off and new
// INVITEs are taken again. Each change is logged once.
func TestOverloadUnderLoad(t *testing.T) {
	const target = 20 * time.Millisecond
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	table, err := routing.New(routing.TableSpec{Listeners: []string{"udp"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	pol := &slowPolicy{slow: netip.MustParseAddr("127.0.0.2"), cost: time.Millisecond}
	s := New(Config{OverloadDelay: target, RingTimeout: 5 * time.Second, InviteTimeout: 5 * time.Second,
		MinSE: 90 * time.Second, SessionExpires: 1800 * time.Second},
		Hooks{Routes: table, Media: func(string) (MediaSession, error) { return nopMedia{}, nil }, Policy: pol}, log)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	addr, err := s.Listen("udp", transport.UDP, "127.0.0.1:0", transport.ListenOptions{Symmetric: true})
	if err != nil {
		t.Fatal(err)
	}
	client := newSIPClient(t, "127.0.0.3", addr)
	before := client.request("INVITE", "taken-before", "", "before")
	if strings.HasPrefix(before, "SIP/2.0 503") {
		t.Fatalf("refused without load:\n%s", before)
	}

	// Offer about 2,000 messages a second where 1,000 can be handled.
	load := newSIPClient(t, "127.0.0.2", addr)
	var stop atomic.Bool
	var offered atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; !stop.Load() && i < 60_000; i++ {
			<-tick.C
			for j := range 2 {
				opt := fmt.Sprintf("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:9;branch=z9hG4bKl%d-%d\r\n"+
					"From: <sip:l@x>;tag=l\r\nTo: <sip:x@x>\r\nCall-ID: load-%d-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", i, j, i, j)
				_, _ = load.conn.WriteToUDP([]byte(opt), load.to)
				offered.Add(1)
			}
		}
	}()
	defer func() {
		stop.Store(true)
		<-done
	}()
	waitFor(t, 20*time.Second, "the control to turn on", func() bool { return s.Overload().Overloaded })
	st := s.Overload()
	if st.StandingDelay <= target {
		t.Errorf("on with a standing delay of %v, threshold %v", st.StandingDelay, target)
	}
	if started := s.Stats().CallsStarted.Load(); started > 1 {
		t.Errorf("%d calls started: the load was OPTIONS", started)
	}

	first := refusedCallID(t, 1) // refused at any share
	refused := client.request("INVITE", string(first), "", "new")
	if !strings.HasPrefix(refused, "SIP/2.0 503 ") || !strings.Contains(refused, "\r\nRetry-After: 5\r\n") {
		t.Errorf("a new INVITE in overload got:\n%s", refused)
	}
	if bye := client.request("BYE", "some-dialog", "t1", "bye"); !strings.HasPrefix(bye, "SIP/2.0 481 ") {
		t.Errorf("an in-dialog BYE in overload got:\n%s", bye)
	}
	if again := client.request("INVITE", "taken-before", "", "before"); again != before {
		t.Errorf("the retransmission of an INVITE taken before the overload got:\n%s\nfirst:\n%s", again, before)
	}
	stop.Store(true)
	<-done

	waitFor(t, 30*time.Second, "the control to turn off", func() bool {
		id := fmt.Sprintf("probe-%d", time.Now().UnixNano())
		_ = client.request("OPTIONS", id, "", id)
		return !s.Overload().Overloaded
	})
	if after := client.request("INVITE", string(refusedCallID(t, 1, first)), "", "after"); strings.HasPrefix(after, "SIP/2.0 503") {
		t.Errorf("a new INVITE after the overload got:\n%s", after)
	}
	if on, off := strings.Count(logs.String(), "overload: refusing"), strings.Count(logs.String(), "overload over"); on != 1 || off != 1 {
		t.Errorf("%d overload lines and %d over lines, want 1 each:\n%s", on, off, logs.String())
	}
	t.Logf("offered %d OPTIONS; standing delay %v when on; %d refused", offered.Load(), st.StandingDelay, s.Overload().Refused)
}

// waitFor polls cond every 50 ms until it holds, for at most limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
