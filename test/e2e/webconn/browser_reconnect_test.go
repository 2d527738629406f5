package webconn

import (
	"io"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/browser"
	"github.com/sbc-project/sbc/test/e2e"
)

// cutGap is how long the network between the browser and the SBC is
// down: every connection through the proxy closed, new ones refused.
const cutGap = 5 * time.Second

// TestBrowserWebSocketReconnect (issue 19, first point): the web phone,
// registered as alice (JsSIP sends an RFC 5626 instance), is in a call
// with the echo through a TCP proxy that carries its page and its
// WebSocket. The test cuts the proxy: its connections close at once and
// new ones are refused for cutGap. The call stays up: audio keeps coming
// back from the echo while the browser has no WebSocket (two audio steps
// inside the gap, 2 s of packets each within 4 s); JsSIP connects again
// and registers; the page hangs up, its BYE goes over the new connection,
// the echo gets its BYE, and the CDR shows one answered call ended by the
// caller's BYE. On code without sip.flow_grace the call ends at the cut
// (connection_lost) and the audio steps in the gap fail.
func TestBrowserWebSocketReconnect(t *testing.T) {
	sinks := e2e.NewCDRSinks(t, "")
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
		sinks.Apply(c)
		c.Users = []config.User{{Username: "alice", Password: "secret"}}
		c.Routes = []config.Route{
			{Name: "echo", Match: config.Match{RURIUser: "^echo$"}, Target: config.TargetEcho},
			{Name: "web-register", Target: config.TargetRegistered},
		}
	}})
	proxy := startCutProxy(t, e2e.IP(19), sbc.WSS.String())
	gates := t.TempDir()
	cut, gapDone := filepath.Join(gates, "cut"), filepath.Join(gates, "reopened")
	q := url.Values{"user": {"alice"}, "password": {"secret"}, "register": {"1"}, "autoconnect": {"1"}}
	steps := []browser.Step{
		browser.Do("wait", "status", "registered"),
		browser.Do("call", "target", "echo"),
		browser.Do("wait", "call", "in-call"),
		browser.Do("audio", "packets", 50, "label", "before"),
		browser.Do("mark", "name", "up"),
		browser.Do("waitFile", "path", cut),
		browser.Do("wait", "status", "connecting"),
		browser.Do("audio", "packets", 100, "more", true, "label", "gap1", "timeoutMs", 4000),
		browser.Do("audio", "packets", 100, "more", true, "label", "gap2", "timeoutMs", 4000),
		browser.Do("mark", "name", "gap-audio"),
		browser.Do("waitFile", "path", gapDone),
		browser.Do("wait", "status", "registered", "timeoutMs", 30000),
		browser.Do("audio", "packets", 50, "more", true, "label", "after"),
		browser.Do("wait", "call", "in-call"),
		browser.Do("mark", "name", "back"),
	}
	sc := e2e.NewScenario(t, browser.Phone{Name: "alice", URL: e2e.PhoneURL(proxy.addr(), true, q),
		Steps: append(steps, e2e.HangupSteps()...)})
	run := browser.Start(t, sc)
	run.WaitEvent("alice", "mark", "up", 45*time.Second)
	if calls, echo := sbc.App.Server().ActiveCalls(), sbc.App.Echo().Calls(); calls != 1 || echo != 1 {
		t.Fatalf("before the cut: %d calls, %d echo calls; want 1 and 1", calls, echo)
	}

	cutAt := proxy.cut()
	e2e.Touch(t, cut)
	run.WaitEvent("alice", "mark", "gap-audio", 20*time.Second)
	if gap := time.Since(cutAt); gap < cutGap {
		// Not a wait for a condition: the outage the scenario plays lasts
		// cutGap, however soon the browser measured its audio.
		time.Sleep(cutGap - gap)
	}
	if calls, echo := sbc.App.Server().ActiveCalls(), sbc.App.Echo().Calls(); calls != 1 || echo != 1 {
		t.Fatalf("%v into the cut: %d calls, %d echo calls; want the call kept", time.Since(cutAt).Round(time.Millisecond), calls, echo)
	}
	proxy.reopen()
	e2e.Touch(t, gapDone)
	run.WaitEvent("alice", "mark", "back", 45*time.Second)
	if n := proxy.accepted.Load(); n < 2 {
		t.Errorf("%d connections carried by the proxy, want the page's and a new WebSocket's", n)
	}

	res := run.MustPass()["alice"]
	before, gap1, gap2, after := res.Stats(t, "before"), res.Stats(t, "gap1"), res.Stats(t, "gap2"), res.Stats(t, "after")
	e2e.CheckAudio(t, "after the reconnection", after)
	if !(before.PacketsReceived < gap1.PacketsReceived && gap1.PacketsReceived < gap2.PacketsReceived &&
		gap2.PacketsReceived < after.PacketsReceived) {
		t.Errorf("audio did not keep coming: packets received %v before, %v and %v in the gap, %v after",
			before.PacketsReceived, gap1.PacketsReceived, gap2.PacketsReceived, after.PacketsReceived)
	}
	e2e.WaitFor(t, 10*time.Second, "the echo's BYE", func() bool { return sbc.App.Echo().Calls() == 0 })
	sbc.WaitCallsIdle(t)
	r := e2e.OnlyRecord(t, sbc, sinks)
	if r.HangupCause != string(outcome.CauseCallerBye) || r.HangupSide != "a" || r.Disposition != outcome.Answered {
		t.Errorf("cdr: cause %q side %q disposition %q; want caller_bye, a, answered", r.HangupCause, r.HangupSide, r.Disposition)
	}
}

// cutProxy carries TCP connections from the browser to the SBC; cut
// closes every one and refuses new ones until reopen, as a network that
// went away would (the browser sees its WebSocket drop, not close).
type cutProxy struct {
	ln       net.Listener
	target   string
	accepted atomic.Int64 // connections carried to the SBC

	mu      sync.Mutex
	blocked bool
	conns   map[net.Conn]struct{}
}

func startCutProxy(t *testing.T, ip, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.serve(&wg)
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() netip.AddrPort { return p.ln.Addr().(*net.TCPAddr).AddrPort() }

func (p *cutProxy) serve(wg *sync.WaitGroup) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		blocked := p.blocked
		p.mu.Unlock()
		if blocked {
			_ = c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c, up) {
			continue
		}
		p.accepted.Add(1)
		wg.Add(2)
		go p.pipe(wg, c, up)
		go p.pipe(wg, up, c)
	}
}

// track records a pair of connections, unless a cut came meanwhile.
func (p *cutProxy) track(a, b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked {
		_ = a.Close()
		_ = b.Close()
		return false
	}
	p.conns[a], p.conns[b] = struct{}{}, struct{}{}
	return true
}

func (p *cutProxy) pipe(wg *sync.WaitGroup, dst, src net.Conn) {
	defer wg.Done()
	_, _ = io.Copy(dst, src) // until either side closes, or a cut
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// cut closes every connection and refuses new ones; it returns when.
func (p *cutProxy) cut() time.Time {
	p.mu.Lock()
	p.blocked = true
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, as a dead network path ends in
		}
		_ = c.Close()
	}
	p.mu.Unlock()
	return time.Now()
}

func (p *cutProxy) reopen() {
	p.mu.Lock()
	p.blocked = false
	p.mu.Unlock()
}
