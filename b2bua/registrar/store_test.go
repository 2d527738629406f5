package registrar

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/transport"
)

const aor = "alice@sbc.example"

func newTestStore(clk *clock, mod func(*Config)) *Store {
	cfg := Config{Now: clk.Now, Forbidden: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	if mod != nil {
		mod(&cfg)
	}
	return NewStore(cfg)
}

func udpFlow(addr string) Flow {
	return Flow{Target: transport.Target{Kind: transport.UDP, Addr: netip.MustParseAddrPort(addr)}}
}

// reg builds an Update for aor with the given Call-ID, CSeq, Expires header
// and contacts.
func reg(callID string, cseq uint32, expires int, contacts ...ContactParam) Update {
	return Update{AOR: aor, CallID: callID, CSeq: cseq, Expires: expires, Contacts: contacts, Flow: udpFlow("127.0.0.1:5070")}
}

func contact(uri string, expires int) ContactParam { return ContactParam{URI: uri, Expires: expires} }

func mustApply(t *testing.T, s *Store, u Update) []Binding {
	t.Helper()
	bs, code, reason := s.Apply(u)
	if code != 200 || reason != "OK" {
		t.Fatalf("Apply = %d %s", code, reason)
	}
	return bs
}

func TestApplyAddRefreshRemove(t *testing.T) {
	clk := newClock()
	s := newTestStore(clk, nil)
	bs := mustApply(t, s, reg("c1", 1, -1, contact("sip:a@192.0.2.1:5060", -1)))
	if len(bs) != 1 || bs[0].Remaining(clk.Now()) != 600 || bs[0].AOR != aor || bs[0].Contact != "sip:a@192.0.2.1:5060" {
		t.Fatalf("added %+v", bs)
	}
	token := bs[0].Token

	// A refresh on a new flow keeps the token and moves the flow.
	clk.Advance(10 * time.Second)
	u := reg("c1", 2, 300, contact("sip:a@192.0.2.1:5060", -1))
	u.Flow = udpFlow("127.0.0.1:5080")
	bs = mustApply(t, s, u)
	if len(bs) != 1 || bs[0].Token != token || bs[0].Flow != u.Flow || bs[0].Remaining(clk.Now()) != 300 || bs[0].CSeq != 2 {
		t.Fatalf("refreshed %+v", bs)
	}
	if got, ok := s.ByToken(token); !ok || got.Flow != u.Flow {
		t.Fatalf("ByToken = %+v, %v", got, ok)
	}

	// A second contact; newest first.
	clk.Advance(time.Second)
	bs = mustApply(t, s, reg("c2", 1, -1, contact("sip:b@192.0.2.2", 120)))
	if len(bs) != 2 || bs[0].Contact != "sip:b@192.0.2.2" || bs[1].Token != token {
		t.Fatalf("two bindings %+v", bs)
	}

	// A query changes nothing.
	if bs := mustApply(t, s, reg("c3", 1, -1)); len(bs) != 2 {
		t.Fatalf("query %+v", bs)
	}

	// expires=0 removes one; Expires: 0 removes the other.
	bs = mustApply(t, s, reg("c1", 3, 3600, contact("sip:a@192.0.2.1:5060", 0)))
	if len(bs) != 1 || bs[0].Contact != "sip:b@192.0.2.2" {
		t.Fatalf("after removal %+v", bs)
	}
	if bs = mustApply(t, s, reg("c2", 2, 0, contact("sip:b@192.0.2.2", -1))); len(bs) != 0 || s.Len() != 0 {
		t.Fatalf("after removals %+v, len %d", bs, s.Len())
	}
	if _, ok := s.ByToken(token); ok {
		t.Fatal("removed binding still found")
	}
	// Removing what is not there is fine.
	mustApply(t, s, reg("c9", 1, 0, contact("sip:z@192.0.2.9", -1)))
}

func TestApplyContactMatching(t *testing.T) {
	clk := newClock()
	s := newTestStore(clk, nil)
	// URI comparison: host case and irrelevant parameters do not matter.
	mustApply(t, s, reg("c1", 1, -1, contact("sip:a@Host.Example;transport=TCP", -1)))
	bs := mustApply(t, s, reg("c2", 1, -1, contact("sip:a@host.example;transport=tcp;ob", -1)))
	if len(bs) != 1 {
		t.Fatalf("same contact made %d bindings", len(bs))
	}
	// RFC 5626: instance and reg-id identify the binding, whatever the URI.
	ob := ContactParam{URI: "sip:x@one.invalid;transport=ws", Expires: -1, Instance: "<urn:uuid:1>", RegID: 1}
	clk.Advance(time.Second)
	bs = mustApply(t, s, reg("c3", 1, -1, ob))
	tok := bs[0].Token
	ob.URI = "sip:y@two.invalid;transport=ws"
	clk.Advance(time.Second)
	bs = mustApply(t, s, reg("c4", 1, -1, ob))
	if len(bs) != 2 || bs[0].Token != tok || bs[0].Contact != ob.URI || bs[0].Instance != "<urn:uuid:1>" || bs[0].RegID != 1 {
		t.Fatalf("outbound refresh %+v", bs)
	}
	// The same contact twice in one request: the last one counts.
	clk.Advance(time.Second)
	bs = mustApply(t, s, reg("c5", 1, -1, contact("sip:d@192.0.2.4", 100), contact("sip:d@192.0.2.4", 200)))
	if len(bs) != 3 || bs[0].Remaining(clk.Now()) != 200 {
		t.Fatalf("duplicate contact %+v", bs)
	}
}

func TestApplyRejects(t *testing.T) {
	clk := newClock()
	s := newTestStore(clk, func(c *Config) { c.MaxBindingsPerAOR = 2 })
	mustApply(t, s, reg("c1", 5, -1, contact("sip:a@192.0.2.1", -1)))
	tests := []struct {
		name string
		u    Update
		code int
	}{
		{"no aor", Update{AOR: "", Expires: -1}, 400},
		{"wildcard with contact", Update{AOR: aor, Wildcard: true, Expires: 0, Contacts: []ContactParam{contact("sip:b@192.0.2.2", -1)}}, 400},
		{"wildcard without expires 0", Update{AOR: aor, Wildcard: true, Expires: -1}, 400},
		{"wildcard older cseq", Update{AOR: aor, Wildcard: true, Expires: 0, CallID: "c1", CSeq: 5}, 500},
		{"bad uri", reg("c2", 1, -1, contact("not a uri", -1)), 400},
		{"too brief", reg("c2", 1, 59, contact("sip:b@192.0.2.2", -1)), 423},
		{"too brief param", reg("c2", 1, 3600, contact("sip:b@192.0.2.2", 1)), 423},
		{"same cseq", reg("c1", 5, -1, contact("sip:a@192.0.2.1", -1)), 500},
		{"older cseq", reg("c1", 4, -1, contact("sip:a@192.0.2.1", -1)), 500},
		{"older cseq removal", reg("c1", 4, 0, contact("sip:a@192.0.2.1", -1)), 500},
		{"unspecified", reg("c2", 1, -1, contact("sip:b@0.0.0.0", -1)), 403},
		{"unspecified v6", reg("c2", 1, -1, contact("sip:b@[::]:5060", -1)), 403},
		{"multicast", reg("c2", 1, -1, contact("sip:b@224.0.1.75", -1)), 403},
		{"broadcast", reg("c2", 1, -1, contact("sip:b@255.255.255.255", -1)), 403},
		{"configured", reg("c2", 1, -1, contact("sip:b@10.1.2.3:5060", -1)), 403},
		{"configured mapped", reg("c2", 1, -1, contact("sip:b@[::ffff:10.1.2.3]:5060", -1)), 403},
		{"configured maddr", reg("c2", 1, -1, contact("sip:b@192.0.2.2;maddr=10.0.0.1", -1)), 403},
		{"one bad among good", reg("c2", 1, -1, contact("sip:b@192.0.2.2", -1), contact("sip:c@10.0.0.1", -1)), 403},
		{"aor cap", reg("c2", 1, -1, contact("sip:b@192.0.2.2", -1), contact("sip:c@192.0.2.3", -1)), 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, code, reason := s.Apply(tt.u)
			if code != tt.code || bs != nil || reason == "" {
				t.Fatalf("Apply = %v, %d %q; want %d", bs, code, reason, tt.code)
			}
			// Nothing changed.
			if got := s.Lookup(aor); len(got) != 1 || got[0].CSeq != 5 {
				t.Fatalf("store changed: %+v", got)
			}
		})
	}
	if s.MinExpires() != 60 {
		t.Fatalf("MinExpires = %d", s.MinExpires())
	}
}

func TestApplyAccepts(t *testing.T) {
	clk := newClock()
	s := newTestStore(clk, func(c *Config) { c.MaxBindingsPerAOR = 2 })
	mustApply(t, s, reg("c1", 5, -1, contact("sip:a@192.0.2.1", -1)))
	tests := []struct {
		name      string
		u         Update
		remaining int // of the newest binding
	}{
		{"absurd expires clamped", reg("c1", 6, 1<<31-1, contact("sip:a@192.0.2.1", -1)), 3600},
		{"other call-id, lower cseq", reg("c0", 1, 120, contact("sip:a@192.0.2.1", -1)), 120},
		{"domain contact", reg("c2", 1, -1, contact("sip:k@abcdef.invalid;transport=ws", -1)), 600},
		{"refresh at cap", reg("c2", 2, 90, contact("sip:k@abcdef.invalid;transport=ws", -1)), 90},
		{"swap at cap", reg("c3", 1, -1, contact("sip:k@abcdef.invalid;transport=ws", 0), contact("sip:n@192.0.2.7", 61)), 61},
		{"remove forbidden", reg("c4", 1, 0, contact("sip:b@10.0.0.1", -1)), 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.Advance(time.Second)
			bs := mustApply(t, s, tt.u)
			if got := bs[0].Remaining(clk.Now()); got != tt.remaining {
				t.Fatalf("remaining %d, want %d (%+v)", got, tt.remaining, bs)
			}
		})
	}
}

func TestApplyWildcard(t *testing.T) {
	s := newTestStore(newClock(), nil)
	mustApply(t, s, reg("c1", 1, -1, contact("sip:a@192.0.2.1", -1), contact("sip:b@192.0.2.2", -1)))
	mustApply(t, s, Update{AOR: "bob@sbc.example", CallID: "x", CSeq: 1, Expires: -1, Contacts: []ContactParam{contact("sip:b@192.0.2.3", -1)}})
	bs := mustApply(t, s, Update{AOR: aor, Wildcard: true, Expires: 0, CallID: "c1", CSeq: 2})
	if len(bs) != 0 || len(s.Lookup(aor)) != 0 || s.Len() != 1 {
		t.Fatalf("after wildcard: %+v, len %d", bs, s.Len())
	}
}

func TestStoreCap(t *testing.T) {
	clk := newClock()
	s := newTestStore(clk, func(c *Config) { c.MaxBindings = 3 })
	for i := range 3 {
		u := reg("c", 1, 60+i, contact(fmt.Sprintf("sip:a@192.0.2.%d", i+1), -1))
		u.AOR = fmt.Sprintf("u%d@sbc.example", i)
		mustApply(t, s, u)
	}
	u := reg("c", 1, -1, contact("sip:a@192.0.2.9", -1))
	if _, code, _ := s.Apply(u); code != 503 {
		t.Fatalf("over store cap: %d", code)
	}
	// Once one binding has expired, the cap makes room without waiting for
	// the sweeper.
	var expired []string
	s.OnExpire(func(b Binding) { expired = append(expired, b.AOR) })
	clk.Advance(60 * time.Second)
	mustApply(t, s, u)
	if s.Len() != 3 || fmt.Sprint(expired) != "[u0@sbc.example]" {
		t.Fatalf("len %d, expired %v", s.Len(), expired)
	}
}

func TestExpiry(t *testing.T) {
	clk := newClock()
	s := newTestStore(clk, nil)
	var mu sync.Mutex
	var expired []string
	s.OnExpire(func(b Binding) {
		mu.Lock()
		expired = append(expired, b.Contact)
		mu.Unlock()
	})
	mustApply(t, s, reg("c1", 1, -1, contact("sip:a@192.0.2.1", 60), contact("sip:b@192.0.2.2", 120)))
	other := reg("c2", 1, 60, contact("sip:c@192.0.2.3", -1))
	other.AOR = "bob@sbc.example"
	mustApply(t, s, other)

	clk.Advance(60 * time.Second)
	if bs := s.Lookup(aor); len(bs) != 1 || bs[0].Contact != "sip:b@192.0.2.2" {
		t.Fatalf("lookup at expiry %+v", bs)
	}
	if len(s.List()) != 1 || s.Len() != 3 {
		t.Fatalf("List %d, Len %d", len(s.List()), s.Len())
	}
	// The next Apply to the AOR purges its expired bindings.
	mustApply(t, s, reg("c3", 1, -1))
	mu.Lock()
	got := fmt.Sprint(expired)
	mu.Unlock()
	if got != "[sip:a@192.0.2.1]" || s.Len() != 2 {
		t.Fatalf("expired %s, len %d", got, s.Len())
	}
	s.Sweep()
	clk.Advance(60 * time.Second)
	s.Sweep()
	mu.Lock()
	got = fmt.Sprint(expired)
	mu.Unlock()
	if got != "[sip:a@192.0.2.1 sip:c@192.0.2.3 sip:b@192.0.2.2]" || s.Len() != 0 {
		t.Fatalf("expired %s, len %d", got, s.Len())
	}
}

func TestRunSweeps(t *testing.T) {
	clk := newClock()
	s := newTestStore(clk, nil)
	gone := make(chan Binding, 1)
	s.OnExpire(func(b Binding) { gone <- b })
	mustApply(t, s, reg("c1", 1, 60, contact("sip:a@192.0.2.1", -1)))
	clk.Advance(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	select {
	case b := <-gone:
		if b.Contact != "sip:a@192.0.2.1" {
			t.Fatalf("expired %+v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sweeper did not run")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestRemoveFlow(t *testing.T) {
	s := newTestStore(newClock(), nil)
	ws1, ws2 := &transport.Conn{}, &transport.Conn{}
	add := func(user string, conn *transport.Conn, uri string) {
		u := reg("c-"+uri, 1, -1, contact(uri, -1))
		u.AOR = user + "@sbc.example"
		u.Flow = Flow{Target: transport.Target{Kind: transport.WSS, Conn: conn}}
		mustApply(t, s, u)
	}
	add("alice", ws1, "sip:a@a.invalid;transport=ws")
	add("alice", ws2, "sip:b@b.invalid;transport=ws")
	add("bob", ws1, "sip:c@c.invalid;transport=ws")
	gone := s.RemoveFlow(func(f Flow) bool { return f.Target.Conn == ws1 })
	if len(gone) != 2 || s.Len() != 1 {
		t.Fatalf("removed %d, left %d", len(gone), s.Len())
	}
	if bs := s.Lookup("alice@sbc.example"); len(bs) != 1 || bs[0].Flow.Target.Conn != ws2 {
		t.Fatalf("left %+v", bs)
	}
	if !s.Remove(s.List()[0].Token) || s.Remove("nope") || s.Len() != 0 {
		t.Fatal("Remove")
	}
}

func TestTokens(t *testing.T) {
	s := newTestStore(newClock(), func(c *Config) { c.MaxBindingsPerAOR = 1000 })
	var cs []ContactParam
	for i := range 500 {
		cs = append(cs, contact(fmt.Sprintf("sip:u%d@192.0.2.1", i), -1))
	}
	bs := mustApply(t, s, reg("c1", 1, -1, cs...))
	seen := map[string]bool{}
	for _, b := range bs {
		if len(b.Token) < 16 || seen[b.Token] {
			t.Fatalf("token %q short or repeated", b.Token)
		}
		for _, c := range b.Token {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				t.Fatalf("token %q has %q", b.Token, c)
			}
		}
		seen[b.Token] = true
		if got, ok := s.ByToken(b.Token); !ok || got.Contact != b.Contact {
			t.Fatalf("ByToken(%s) = %+v", b.Token, got)
		}
	}
}

func TestContactValue(t *testing.T) {
	now := time.Unix(1000, 0)
	b := Binding{Contact: "sip:x@y.invalid;transport=ws", Expires: now.Add(599500 * time.Millisecond), Instance: "<urn:uuid:1>", RegID: 1}
	want := `<sip:x@y.invalid;transport=ws>;expires=600;+sip.instance="<urn:uuid:1>";reg-id=1`
	if got := b.ContactValue(now); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	b = Binding{Contact: "sip:a@192.0.2.1", Expires: now.Add(-time.Second)}
	if got := b.ContactValue(now); got != "<sip:a@192.0.2.1>;expires=0" {
		t.Fatalf("got %s", got)
	}
}

func TestStoreDefaults(t *testing.T) {
	s := NewStore(Config{MinExpires: 2 * time.Hour})
	if s.cfg.MaxExpires != 2*time.Hour || s.cfg.DefaultExpires != 2*time.Hour || s.cfg.MaxBindings != DefaultMaxBindings {
		t.Fatalf("config %+v", s.cfg)
	}
}

func TestStoreConcurrent(t *testing.T) {
	clk := newClock()
	s := newTestStore(clk, nil)
	conns := []*transport.Conn{{}, {}, {}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				u := reg(fmt.Sprint("c", g), uint32(i+1), 60+i%5, contact(fmt.Sprintf("sip:%d@192.0.2.%d", i%7, g+1), -1))
				u.AOR = fmt.Sprintf("u%d@sbc.example", i%4)
				u.Flow = Flow{Target: transport.Target{Kind: transport.WS, Conn: conns[i%3]}}
				s.Apply(u)
				s.Lookup(u.AOR)
				s.List()
				switch i % 50 {
				case 0:
					s.RemoveFlow(func(f Flow) bool { return f.Target.Conn == conns[g%3] })
				case 25:
					clk.Advance(time.Second)
					s.Sweep()
				}
			}
		}()
	}
	wg.Wait()
	if n := len(s.List()); n > s.Len() {
		t.Fatalf("List %d > Len %d", n, s.Len())
	}
}

func TestFindFlow(t *testing.T) {
	clk := newClock()
	s := newTestStore(clk, nil)
	mustApply(t, s, reg("c1", 1, 60, contact("sip:a@192.0.2.1:5060", -1)))
	on := func(addr string) func(Flow) bool { return func(f Flow) bool { return f == udpFlow(addr) } }
	if b, ok := s.FindFlow(on("127.0.0.1:5070"), ""); !ok || b.AOR != aor {
		t.Fatalf("FindFlow = %+v, %v", b, ok)
	}
	if _, ok := s.FindFlow(on("127.0.0.1:5080"), ""); ok {
		t.Error("FindFlow found a binding on another flow")
	}
	clk.Advance(2 * time.Minute)
	if _, ok := s.FindFlow(on("127.0.0.1:5070"), ""); ok {
		t.Error("FindFlow returned an expired binding")
	}
}
