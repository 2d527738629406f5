package calls

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

// TestRoutingLoopEnds routes every call to a trunk that is the SBC's own
// UDP listener, the classic misconfiguration: each B-leg INVITE comes back
// as a new call. The policy chain's sanity stage sees its own Via on the
// returning INVITE and refuses it with 482 (Loop Detected) after one hop;
// without it, Max-Forwards (decremented on every B-leg) would end the loop
// with 483 only after 70 calls. The caller must get 482 and no call,
// transaction or media session may be left behind.
func TestRoutingLoopEnds(t *testing.T) {
	sbc := e2e.StartSBC(t, e2e.SBCOptions{InviteTimeout: 5 * time.Second, Mutate: func(c *config.Config) {
		self := c.SIP.Listeners[0].Addr // the udp listener
		c.Trunks = []config.Trunk{{Name: "self", URI: "sip:" + self, FailureThreshold: 1}}
		c.Routes = append(c.Routes, config.Route{Name: "loop", Target: config.TargetTrunks, Trunks: []string{"self"},
			TrustedSources: []string{"127.0.0.0/8"}})
	}})

	// The highest number of calls the SBC held at once: one per hop.
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if n := int64(sbc.App.Server().ActiveCalls()); n > peak.Load() {
					peak.Store(n)
				}
			}
		}
	})

	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	start := time.Now()
	call := ua.Invite("1000", "")
	var final sip.Response
	for final == nil {
		res, ok := ua.Recv(10 * time.Second).(sip.Response)
		if ok && res.StatusCode() >= 200 {
			final = res
		}
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()
	code := int(final.StatusCode())
	t.Logf("loop ended with %d %s after %v; at most %d calls held at once", code, final.Reason(), took, peak.Load())
	if code != 482 {
		t.Fatalf("caller got %d %s, want 482", code, final.Reason())
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("%d calls at once: the loop went past its first hop", p)
	}
	call.AckFailure(sipmsg.ToTag(final))
	sbc.WaitIdle(t)
}
