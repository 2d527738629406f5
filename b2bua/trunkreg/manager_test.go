package trunkreg

import (
	"strings"
	"testing"
	"time"
)

func spec(user, pw, contact string) RegisterAt {
	return RegisterAt{Name: "t-" + user, Spec: regSpec(user, pw, contact)}
}

func TestRegisterSHA256(t *testing.T) {
	r := startRegistrar(t, map[string]string{"alice": "pw1"})
	m := newManager(t, Config{})
	m.Apply(trunks(t, r, spec("alice", "pw1", "alice-in")))
	r.waitSeen(t, "alice registered", func(s registerSeen) bool { return s.user == "alice" && s.expires == 60 })
	waitState(t, m, "t-alice", StateRegistered)
	if st, _ := m.Lookup("t-alice"); !strings.Contains(st.Contact, "sip:alice-in@"+sbcIP) || st.Expires.IsZero() {
		t.Errorf("status %+v", st)
	}
}

// TestProxyAndRegistrar: a proxy's 407 and then the registrar's 401 are
// both answered, the second REGISTER carrying both credentials.
func TestProxyAndRegistrar(t *testing.T) {
	r := startRegistrar(t, map[string]string{"alice": "pw1"})
	r.mu.Lock()
	r.proxy = true
	r.mu.Unlock()
	m := newManager(t, Config{})
	m.Apply(trunks(t, r, spec("alice", "pw1", "alice-in")))
	waitState(t, m, "t-alice", StateRegistered)
	r.waitSeen(t, "alice through the proxy", func(s registerSeen) bool { return s.user == "alice" && s.expires == 60 })
}

func TestWrongPasswordFails(t *testing.T) {
	r := startRegistrar(t, map[string]string{"alice": "pw1"})
	m := newManager(t, Config{RetryMin: time.Minute})
	m.Apply(trunks(t, r, spec("alice", "wrong", "alice-in")))
	st := waitState(t, m, "t-alice", StateFailed)
	if !strings.Contains(st.LastError, "credentials refused") || st.Failures != 1 {
		t.Errorf("status %+v, want the credentials refused once", st)
	}
}

func TestRealmRestriction(t *testing.T) {
	r := startRegistrar(t, map[string]string{"alice": "pw1"})
	m := newManager(t, Config{RetryMin: time.Minute})
	s := spec("alice", "pw1", "alice-in")
	s.Spec.Realm = "other.test"
	m.Apply(trunks(t, r, s))
	st := waitState(t, m, "t-alice", StateFailed)
	if !strings.Contains(st.LastError, `realm "carrier.test"`) {
		t.Errorf("status %+v, want the foreign realm refused", st)
	}
	if len(r.seen()) != 0 {
		t.Error("credentials were given to a foreign realm")
	}
}

// TestBackoffRecovers: a 503 with Retry-After: 1 is retried after at
// least a second, and the registration recovers.
func TestBackoffRecovers(t *testing.T) {
	r := startRegistrar(t, map[string]string{"alice": "pw1"})
	r.mu.Lock()
	r.failNext = 2
	r.mu.Unlock()
	m := newManager(t, Config{RetryMin: 100 * time.Millisecond, RetryMax: 5 * time.Second})
	start := time.Now()
	m.Apply(trunks(t, r, spec("alice", "pw1", "alice-in")))
	st := waitState(t, m, "t-alice", StateFailed)
	if st.NextTry.Sub(st.Since) < 900*time.Millisecond {
		t.Errorf("retry planned %s after the 503, want Retry-After's 1 s", st.NextTry.Sub(st.Since))
	}
	waitState(t, m, "t-alice", StateRegistered)
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("registered %s after two 503s with Retry-After: 1", d)
	}
}

// TestApplyReload: a reload adds, removes and changes registrations; a
// removed one unregisters, a changed one unregisters and registers anew.
func TestApplyReload(t *testing.T) {
	r := startRegistrar(t, map[string]string{"alice": "pw1", "bob": "pw2"})
	m := newManager(t, Config{})
	m.Apply(trunks(t, r, spec("alice", "pw1", "alice-in")))
	r.waitSeen(t, "alice", func(s registerSeen) bool {
		return s.contact != "" && strings.Contains(s.contact, "alice-in") && s.expires > 0
	})

	// bob added, alice's contact changed.
	m.Apply(trunks(t, r, spec("alice", "pw1", "alice-new"), spec("bob", "pw2", "bob-in")))
	r.waitSeen(t, "alice's old contact removed", func(s registerSeen) bool { return strings.Contains(s.contact, "alice-in") && s.expires == 0 })
	r.waitSeen(t, "alice's new contact", func(s registerSeen) bool { return strings.Contains(s.contact, "alice-new") && s.expires > 0 })
	r.waitSeen(t, "bob", func(s registerSeen) bool { return s.user == "bob" && s.expires > 0 })

	// alice removed: unregistered.
	m.Apply(trunks(t, r, spec("bob", "pw2", "bob-in")))
	r.waitSeen(t, "alice's new contact removed", func(s registerSeen) bool { return strings.Contains(s.contact, "alice-new") && s.expires == 0 })
	if _, ok := m.Lookup("t-alice"); ok {
		t.Error("a removed registration is still listed")
	}
	if got := m.Status(); len(got) != 1 || got[0].Trunk != "t-bob" {
		t.Errorf("Status = %+v, want bob's only", got)
	}
}

func TestBackoffBounds(t *testing.T) {
	m := New(Config{RetryMin: time.Second, RetryMax: 10 * time.Second}, Deps{})
	c := &client{m: m}
	for n := 1; n <= 10; n++ {
		want := min(time.Second<<(n-1), 10*time.Second)
		for range 50 {
			d := c.backoff(n, 0)
			if d > want || d < want*3/4 {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, d, want*3/4, want)
			}
		}
	}
	if d := c.backoff(1, 7*time.Second); d < 7*time.Second {
		t.Errorf("backoff with Retry-After 7s = %s", d)
	}
	if d := c.backoff(1, time.Hour); d != 10*time.Second {
		t.Errorf("backoff with Retry-After 1h = %s, want the 10s bound", d)
	}
}

func waitState(t *testing.T, m *Manager, trunk string, want State) Status {
	t.Helper()
	deadline := time.Now().Add(wait)
	var st Status
	for time.Now().Before(deadline) {
		st, _ = m.Lookup(trunk)
		if st.State == want {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s never %s: %+v", trunk, want, st)
	return st
}
