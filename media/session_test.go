package media

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// fired returns a callback that counts its calls and closes ch on the first.
func fired(n *atomic.Int32, ch chan struct{}) func() {
	return func() {
		if n.Add(1) == 1 {
			close(ch)
		}
	}
}

func TestTimeout(t *testing.T) {
	const timeout = 40 * time.Millisecond
	tests := []struct {
		name string
		// hold is what A's offer and B's answer carry, if anything.
		offerAttr, answerAttr string
		wantFire              bool
	}{
		{"fires without rtp", "", "", true},
		{"held by sendonly", "a=sendonly", "a=recvonly", false},
		{"held by inactive answer", "", "a=inactive", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestManager(t, 4, netip.Addr{}, func(c *Config) { c.Timeout = timeout })
			s := m.NewSession("call-timeout")
			defer s.Close()
			var n atomic.Int32
			ch := make(chan struct{})
			s.OnTimeout(fired(&n, ch))
			a, b := newPeer(t, false), newPeer(t, true)
			if _, err := s.Offer(SideA, a.sdp(nonEmpty(tc.offerAttr)...)); err != nil {
				t.Fatalf("Offer: %v", err)
			}
			if _, err := s.Answer(SideB, b.sdp(nonEmpty(tc.answerAttr)...)); err != nil {
				t.Fatalf("Answer: %v", err)
			}
			select {
			case <-ch:
				if !tc.wantFire {
					t.Fatal("timeout fired while on hold")
				}
			case <-time.After(25 * timeout):
				if tc.wantFire {
					t.Fatal("timeout did not fire")
				}
			}
			if !tc.wantFire {
				// Resuming restarts the clock, and then it fires.
				if _, err := s.Offer(SideA, a.sdp()); err != nil {
					t.Fatalf("resume offer: %v", err)
				}
				if _, err := s.Answer(SideB, b.sdp()); err != nil {
					t.Fatalf("resume answer: %v", err)
				}
				select {
				case <-ch:
				case <-time.After(5 * time.Second):
					t.Fatal("timeout did not fire after resume")
				}
			}
			time.Sleep(3 * timeout)
			if got := n.Load(); got != 1 {
				t.Fatalf("callback ran %d times, want 1", got)
			}
		})
	}
}

func nonEmpty(attr string) []string {
	if attr == "" {
		return nil
	}
	return []string{attr}
}

func TestTimeoutNotWhileRTPFlows(t *testing.T) {
	// Generous against a loaded machine: a packet every 5 ms must never
	// leave a 250 ms gap.
	const timeout = 250 * time.Millisecond
	m := newTestManager(t, 4, netip.Addr{}, func(c *Config) { c.Timeout = timeout })
	c := setupCall(t, m)
	var n atomic.Int32
	ch := make(chan struct{})
	c.s.OnTimeout(fired(&n, ch))
	// One side sending is enough to keep the call alive.
	stop := time.Now().Add(4 * timeout)
	for i := 0; time.Now().Before(stop); i++ {
		send(t, c.a.rtp, rtpPacket(uint16(i)), c.portA)
		time.Sleep(5 * time.Millisecond)
	}
	if n.Load() != 0 {
		t.Fatal("timeout fired while RTP flowed")
	}
	if c.s.Stats().AtoB.Packets == 0 {
		t.Fatal("no RTP relayed")
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("timeout did not fire after RTP stopped")
	}
}

func TestTimeoutCallbackMayClose(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, func(c *Config) { c.Timeout = 20 * time.Millisecond })
	c := setupCall(t, m)
	done := make(chan struct{})
	c.s.OnTimeout(func() { c.s.Close(); close(done) })
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("timeout did not fire")
	}
	if m.Active() != 0 {
		t.Fatalf("Active() = %d after the callback closed the session", m.Active())
	}
	// The poll loops belong to the manager (poll_linux.go).
	m.Close()
	checkNoGoroutines(t)
}

func TestTimeoutDisabled(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	c := setupCall(t, m)
	c.s.mu.Lock()
	armed := c.s.watch.armed
	c.s.mu.Unlock()
	if armed {
		t.Fatal("watchdog armed with Timeout 0")
	}
}

func TestCloseReleasesEverything(t *testing.T) {
	m := newTestManager(t, 16, netip.Addr{}, func(c *Config) { c.Timeout = time.Hour })
	var calls []*call
	for range 3 {
		calls = append(calls, setupCall(t, m))
	}
	if len(mediaGoroutines()) == 0 {
		t.Fatal("no relay goroutines while calls are up")
	}
	if m.Active() != 3 {
		t.Fatalf("Active() = %d, want 3", m.Active())
	}
	calls[0].s.Close()
	calls[0].s.Close() // idempotent
	if m.Active() != 2 {
		t.Fatalf("Active() = %d after one Close, want 2", m.Active())
	}
	if _, err := calls[0].s.Offer(SideA, calls[0].a.sdp()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Offer after Close: %v, want ErrClosed", err)
	}

	m.Close()
	if m.Active() != 0 {
		t.Fatalf("Active() = %d after Manager.Close", m.Active())
	}
	if n := m.pool.inUse(); n != 0 {
		t.Fatalf("%d port pairs in use after Manager.Close", n)
	}
	checkNoGoroutines(t)

	s := m.NewSession("late")
	if _, err := s.Offer(SideA, sipSDP("192.0.2.10", 49170)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Offer on a closed manager: %v, want ErrClosed", err)
	}
	s.Close()
	if m.Active() != 0 {
		t.Fatalf("Active() = %d after a session of a closed manager", m.Active())
	}
}
