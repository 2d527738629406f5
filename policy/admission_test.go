package policy

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the call-rate buckets.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestAdmission(cfg AdmissionSpec) (*Admission, *fakeClock) {
	a := NewAdmission(cfg)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	a.now = clk.now
	return a, clk
}

// call is a routed INVITE toward trunk (or to a registered user when trunk
// is empty) by user from ip.
func call(trunk, user, ip string) *Request {
	r := &Request{Target: TargetRegistered, User: user, Src: netip.AddrPortFrom(netip.MustParseAddr(ip), 5060)}
	if trunk != "" {
		r.Target, r.Trunk = TargetTrunks, trunk
	}
	return r
}

// echoCall is an unauthenticated call to the echo destination from ip.
func echoCall(ip string) *Request {
	return &Request{Target: TargetEcho, Src: netip.AddrPortFrom(netip.MustParseAddr(ip), 5060)}
}

// assertEmpty fails unless a counts no call at all.
func assertEmpty(t *testing.T, a *Admission) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.total != 0 || len(a.trunks) != 0 || len(a.users) != 0 || len(a.ips) != 0 || a.echo != 0 || len(a.echoIPs) != 0 {
		t.Fatalf("counters left: total %d, trunks %v, users %v, ips %v, echo %d %v", a.total, a.trunks, a.users, a.ips, a.echo, a.echoIPs)
	}
}

func TestAdmissionLimits(t *testing.T) {
	cfg := AdmissionSpec{MaxCalls: 4, MaxCallsPerTrunk: 2, MaxCallsPerUser: 2, MaxCallsPerIP: 3,
		Echo: EchoSpec{MaxCalls: 3, MaxCallsPerIP: 2}}
	tests := []struct {
		name  string
		held  []*Request // admitted first
		next  *Request
		cause string // "" admitted
	}{
		{"first call", nil, call("pbx", "alice", "192.0.2.1"), ""},
		{"total", []*Request{call("a", "u1", "192.0.2.1"), call("b", "u2", "192.0.2.2"), call("c", "u3", "192.0.2.3"), call("d", "u4", "192.0.2.4")},
			call("e", "u5", "192.0.2.5"), "max_calls"},
		{"trunk", []*Request{call("pbx", "u1", "192.0.2.1"), call("pbx", "u2", "192.0.2.2")}, call("pbx", "u3", "192.0.2.3"), "max_calls_trunk"},
		{"other trunk", []*Request{call("pbx", "u1", "192.0.2.1"), call("pbx", "u2", "192.0.2.2")}, call("carrier", "u3", "192.0.2.3"), ""},
		{"trunk not counted for registered", []*Request{call("", "u1", "192.0.2.1"), call("", "u2", "192.0.2.2")}, call("pbx", "u3", "192.0.2.3"), ""},
		{"user", []*Request{call("a", "alice", "192.0.2.1"), call("b", "alice", "192.0.2.2")}, call("c", "alice", "192.0.2.3"), "max_calls_user"},
		{"user to registered", []*Request{call("", "alice", "192.0.2.1"), call("", "alice", "192.0.2.2")}, call("", "alice", "192.0.2.3"), "max_calls_user"},
		{"unauthenticated not per user", []*Request{call("a", "", "192.0.2.1"), call("b", "", "192.0.2.2")}, call("c", "", "192.0.2.3"), ""},
		{"ip", []*Request{call("a", "u1", "192.0.2.9"), call("b", "u2", "192.0.2.9"), call("c", "u3", "192.0.2.9")}, call("d", "u4", "192.0.2.9"), "max_calls_ip"},
		{"ip mapped", []*Request{call("a", "u1", "192.0.2.9"), call("b", "u2", "::ffff:192.0.2.9"), call("c", "u3", "192.0.2.9")}, call("d", "u4", "::ffff:192.0.2.9"), "max_calls_ip"},
		{"ipv6 per /64", []*Request{call("a", "u1", "2001:db8::1"), call("b", "u2", "2001:db8::2"), call("c", "u3", "2001:db8::ffff:1")}, call("d", "u4", "2001:db8::3"), "max_calls_ip"},
		{"ipv6 other /64", []*Request{call("a", "u1", "2001:db8::1"), call("b", "u2", "2001:db8::2"), call("c", "u3", "2001:db8::3")}, call("d", "u4", "2001:db8:0:1::1"), ""},
		{"echo first", nil, echoCall("192.0.2.1"), ""},
		{"echo per ip", []*Request{echoCall("192.0.2.1"), echoCall("192.0.2.1")}, echoCall("192.0.2.1"), "echo_calls_ip"},
		{"echo per ipv6 /64", []*Request{echoCall("2001:db8::1"), echoCall("2001:db8::2")}, echoCall("2001:db8::3"), "echo_calls_ip"},
		{"echo other ip", []*Request{echoCall("192.0.2.1"), echoCall("192.0.2.1")}, echoCall("192.0.2.2"), ""},
		{"echo total", []*Request{echoCall("192.0.2.1"), echoCall("192.0.2.2"), echoCall("192.0.2.3")}, echoCall("192.0.2.4"), "echo_calls"},
		{"echo limits not for trunks", []*Request{echoCall("192.0.2.1"), echoCall("192.0.2.1")}, call("pbx", "alice", "192.0.2.1"), ""},
		{"echo counts in total", []*Request{echoCall("192.0.2.1"), echoCall("192.0.2.2"), echoCall("192.0.2.3"), call("a", "u1", "192.0.2.4")},
			call("b", "u2", "192.0.2.5"), "max_calls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := newTestAdmission(cfg)
			for i, r := range tt.held {
				if d := a.Check(context.Background(), r); d.Action != Continue || r.Admitted == nil {
					t.Fatalf("held call %d refused: %+v", i, d)
				}
			}
			d := a.Check(context.Background(), tt.next)
			if tt.cause == "" {
				if d.Action != Continue || tt.next.Admitted == nil {
					t.Fatalf("Check = %+v, want admitted", d)
				}
				tt.next.Admitted()
			} else {
				want := Decision{Action: Answer, Code: 503, Reason: "Service Unavailable", RetryAfter: admissionRetryAfter, Stage: StageAdmission, Cause: tt.cause}
				if d.Action != want.Action || d.Code != want.Code || d.Reason != want.Reason || d.RetryAfter != want.RetryAfter || d.Stage != want.Stage || d.Cause != want.Cause {
					t.Fatalf("Check = %+v, want %+v", d, want)
				}
				if tt.next.Admitted != nil {
					t.Fatal("refused call has a release function")
				}
			}
			for _, r := range tt.held {
				r.Admitted()
				r.Admitted() // idempotent
			}
			assertEmpty(t, a)
		})
	}
}

func TestAdmissionUnlimited(t *testing.T) {
	a, _ := newTestAdmission(AdmissionSpec{})
	var rs []*Request
	for i := range 50 {
		r := call("pbx", "alice", "192.0.2.1")
		if d := a.Check(context.Background(), r); d.Action != Continue {
			t.Fatalf("call %d refused: %+v", i, d)
		}
		rs = append(rs, r)
	}
	if total, trunks := a.Counts(); total != 50 || trunks["pbx"] != 50 || len(trunks) != 1 {
		t.Fatalf("Counts = %d, %v", total, trunks)
	}
	for _, r := range rs {
		r.Admitted()
	}
	assertEmpty(t, a)
}

func TestAdmissionCPS(t *testing.T) {
	tests := []struct {
		name  string
		cfg   AdmissionSpec
		other *Request // a call that must not share the bucket
		cause string
	}{
		{"user", AdmissionSpec{UserCPS: Bucket{Rate: 1, Burst: 2}}, call("pbx", "bob", "192.0.2.1"), "cps_user"},
		{"trunk", AdmissionSpec{TrunkCPS: Bucket{Rate: 1, Burst: 2}}, call("carrier", "alice", "192.0.2.1"), "cps_trunk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, clk := newTestAdmission(tt.cfg)
			try := func() Decision { return a.Check(context.Background(), call("pbx", "alice", "192.0.2.1")) }
			for i := range 2 {
				if d := try(); d.Action != Continue {
					t.Fatalf("call %d within burst refused: %+v", i, d)
				}
			}
			d := try()
			if d.Code != 503 || d.Cause != tt.cause || d.RetryAfter != cpsRetryAfter {
				t.Fatalf("call over rate = %+v, want 503 %s", d, tt.cause)
			}
			if d := a.Check(context.Background(), tt.other); d.Action != Continue {
				t.Fatalf("other caller refused: %+v", d)
			}
			clk.advance(999 * time.Millisecond)
			if d := try(); d.Action == Continue {
				t.Fatal("admitted before a token refilled")
			}
			clk.advance(time.Millisecond)
			if d := try(); d.Action != Continue {
				t.Fatalf("refused after a token refilled: %+v", d)
			}
		})
	}
}

// TestAdmissionCPSNotSpentOnRefusal: a call refused by a concurrency limit
// spends no call-rate token.
func TestAdmissionCPSNotSpentOnRefusal(t *testing.T) {
	a, _ := newTestAdmission(AdmissionSpec{MaxCalls: 1, UserCPS: Bucket{Rate: 0.001, Burst: 2}})
	first := call("pbx", "alice", "192.0.2.1")
	if d := a.Check(context.Background(), first); d.Action != Continue {
		t.Fatalf("first call refused: %+v", d)
	}
	for range 3 {
		if d := a.Check(context.Background(), call("pbx", "alice", "192.0.2.1")); d.Cause != "max_calls" {
			t.Fatalf("second call = %+v, want max_calls", d)
		}
	}
	first.Admitted()
	second := call("pbx", "alice", "192.0.2.1")
	if d := a.Check(context.Background(), second); d.Action != Continue {
		t.Fatalf("call after release refused: %+v", d)
	}
	second.Admitted()
	if d := a.Check(context.Background(), call("pbx", "alice", "192.0.2.1")); d.Cause != "cps_user" {
		t.Fatalf("third call = %+v, want cps_user", d)
	}
}

// TestCPSBucketsBounded: past max keys, idle (full) buckets make room and
// busy ones do not; a new key without room is refused.
func TestCPSBucketsBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := newCPSBuckets(Bucket{Rate: 1, Burst: 1}, 2)
	for _, k := range []string{"a", "b"} {
		if !c.has(k, now) {
			t.Fatalf("%s: no token", k)
		}
		c.take(k)
	}
	if c.has("c", now) {
		t.Fatal("third key admitted while both buckets are busy")
	}
	if len(c.m) != 2 {
		t.Fatalf("%d buckets, want 2", len(c.m))
	}
	now = now.Add(time.Second) // a and b full again: idle
	if !c.has("c", now) {
		t.Fatal("third key refused though idle buckets could go")
	}
	if len(c.m) > 2 {
		t.Fatalf("%d buckets, want at most 2", len(c.m))
	}
}

// TestAdmissionConcurrent: 1000 concurrent admit/release pairs, some
// refused by the limits, some released twice, leave every counter at 0.
func TestAdmissionConcurrent(t *testing.T) {
	a := NewAdmission(AdmissionSpec{MaxCalls: 200, MaxCallsPerTrunk: 60, MaxCallsPerUser: 5, MaxCallsPerIP: 30,
		UserCPS: Bucket{Rate: 1e6, Burst: 1000}, TrunkCPS: Bucket{Rate: 1e6, Burst: 1000},
		Echo: EchoSpec{MaxCalls: 20, MaxCallsPerIP: 4}})
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := call(fmt.Sprintf("t%d", i%5), fmt.Sprintf("u%d", i%40), fmt.Sprintf("192.0.2.%d", i%20))
			switch {
			case i%7 == 0:
				r = call("", "", "192.0.2.200") // to a registered user, unauthenticated
			case i%11 == 0:
				r = echoCall(fmt.Sprintf("192.0.2.%d", i%3))
			}
			if d := a.Check(context.Background(), r); d.Action != Continue {
				return
			}
			mu.Lock()
			admitted++
			mu.Unlock()
			if total, _ := a.Counts(); total < 1 {
				t.Errorf("total %d while a call is held", total)
			}
			var rel sync.WaitGroup
			for range 2 {
				rel.Add(1)
				go func() { defer rel.Done(); r.Admitted() }()
			}
			rel.Wait()
		}()
	}
	wg.Wait()
	if admitted == 0 {
		t.Fatal("no call admitted")
	}
	assertEmpty(t, a)
	if total, trunks := a.Counts(); total != 0 || len(trunks) != 0 {
		t.Fatalf("Counts = %d, %v", total, trunks)
	}
}

// TestAdmissionUpdate: new limits apply to new calls, and calls admitted
// before still release what they took.
func TestAdmissionUpdate(t *testing.T) {
	a, _ := newTestAdmission(AdmissionSpec{MaxCalls: 1, MaxDuration: time.Hour})
	old := call("pbx", "alice", "192.0.2.1")
	if d := a.Check(context.Background(), old); d.Action != Continue {
		t.Fatalf("refused: %+v", d)
	}
	a.Update(AdmissionSpec{MaxCalls: 2, MaxDuration: time.Minute})
	if a.MaxDuration() != time.Minute {
		t.Fatalf("MaxDuration = %v", a.MaxDuration())
	}
	next := call("pbx", "bob", "192.0.2.2")
	if d := a.Check(context.Background(), next); d.Action != Continue {
		t.Fatalf("refused under the new limit: %+v", d)
	}
	if d := a.Check(context.Background(), call("pbx", "carol", "192.0.2.3")); d.Cause != "max_calls" {
		t.Fatalf("third call = %+v, want max_calls", d)
	}
	old.Admitted()
	next.Admitted()
	assertEmpty(t, a)
}

// Calls counted on other nodes count against every limit but the echo
// destination's; forgetting them (Redis down) leaves the local limits.
func TestAdmissionCountsOtherNodes(t *testing.T) {
	a := NewAdmission(AdmissionSpec{MaxCalls: 10, MaxCallsPerUser: 2, MaxCallsPerTrunk: 3, MaxCallsPerIP: 4})
	src := netip.MustParseAddrPort("192.0.2.10:5060")
	call := func(user, trunk string) Decision {
		return a.Check(context.Background(), &Request{User: user, Trunk: trunk, Target: TargetTrunks, Src: src})
	}
	if d := call("alice", "pbx"); d.Action != Continue {
		t.Fatalf("first call: %+v", d)
	}
	local, v1 := a.Local()
	if local.Total != 1 || local.Users["alice"] != 1 || local.Trunks["pbx"] != 1 || local.IPs[src.Addr()] != 1 {
		t.Fatalf("local counts %+v", local)
	}
	a.SetOthers(&Counts{Total: 1, Users: map[string]int{"alice": 1}, Trunks: map[string]int{}, IPs: map[netip.Addr]int{}})
	if d := call("alice", "other"); d.Cause != "max_calls_user" {
		t.Fatalf("alice's third call across nodes: %+v, want max_calls_user", d)
	}
	if d := call("bob", "pbx"); d.Action != Continue {
		t.Fatalf("bob: %+v", d)
	}
	if _, v2 := a.Local(); v2 == v1 {
		t.Fatal("the version did not move with a new call")
	}
	a.SetOthers(&Counts{Total: 8, Users: map[string]int{}, Trunks: map[string]int{"pbx": 1}, IPs: map[netip.Addr]int{src.Addr(): 1}})
	if d := call("carol", "pbx"); d.Cause != "max_calls" {
		t.Fatalf("a call over the cluster's total: %+v, want max_calls", d)
	}
	a.SetOthers(&Counts{Total: 0, Users: map[string]int{}, Trunks: map[string]int{"pbx": 1}, IPs: map[netip.Addr]int{}})
	if d := call("carol", "pbx"); d.Cause != "max_calls_trunk" {
		t.Fatalf("a call over the trunk's limit across nodes: %+v", d)
	}
	a.SetOthers(&Counts{Total: 0, Users: map[string]int{}, Trunks: map[string]int{}, IPs: map[netip.Addr]int{src.Addr(): 2}})
	if d := call("carol", "x"); d.Cause != "max_calls_ip" {
		t.Fatalf("a call over the source's limit across nodes: %+v", d)
	}
	a.SetOthers(nil)
	if d := call("alice", "x"); d.Action != Continue {
		t.Fatalf("alice's second call with the other nodes forgotten: %+v", d)
	}
}
