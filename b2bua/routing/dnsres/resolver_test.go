package dnsres

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sbc-project/sbc/b2bua/routing/dnsres/dnstest"
)

// dnsIP is this package's DNS server address (the 127.0.5.0/24 range of
// the trunk registration and DNS tests).
const dnsIP = "127.0.5.53"

func newResolver(t *testing.T, srv *dnstest.Server) *Resolver {
	t.Helper()
	r, err := New(Config{Servers: []string{srv.Addr}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// zone is example.test with NAPTR, SRV for every transport and hosts.
var zone = []string{
	"naptr.test. 60 IN NAPTR 10 50 \"s\" \"SIP+D2T\" \"\" _sip._tcp.naptr.test.",
	"naptr.test. 60 IN NAPTR 20 50 \"s\" \"SIP+D2U\" \"\" _sip._udp.naptr.test.",
	"naptr.test. 60 IN NAPTR 5 50 \"s\" \"X-NOT-SIP\" \"\" _foo._tcp.naptr.test.",
	"_sip._tcp.naptr.test. 60 IN SRV 10 0 5070 b.test.",
	"_sip._udp.naptr.test. 60 IN SRV 10 0 5080 a.test.",
	"_sip._udp.srv.test. 60 IN SRV 20 0 5062 b.test.",
	"_sip._udp.srv.test. 60 IN SRV 10 0 5061 a.test.",
	"_sips._tcp.srv.test. 60 IN SRV 10 0 5090 c.test.",
	"_sip._tcp.srv.test. 60 IN SRV 10 0 5091 c.test.",
	"a.test. 60 IN A 127.0.5.1",
	"b.test. 60 IN A 127.0.5.2",
	"b.test. 60 IN AAAA ::1",
	"c.test. 60 IN A 127.0.5.3",
	"plain.test. 60 IN A 127.0.5.4",
}

func TestLookup(t *testing.T) {
	srv := dnstest.Start(t, dnsIP)
	srv.Set(t, zone...)
	tests := []struct {
		name string
		q    Query
		want string // targets as transport/addr, space-separated
	}{
		{"IP literal skips DNS", Query{Host: "127.0.5.9"}, "udp/127.0.5.9:5060"},
		{"IPv6 literal, tls", Query{Host: "::1", Transport: TLS}, "tls/[::1]:5061"},
		{"explicit port skips SRV", Query{Host: "srv.test", Port: 7000}, ""}, // srv.test has no A: error
		{"explicit port, A record", Query{Host: "plain.test", Port: 7000, Transport: TCP}, "tcp/127.0.5.4:7000"},
		{"transport picks its SRV, priority order", Query{Host: "srv.test", Transport: UDP}, "udp/127.0.5.1:5061 udp/127.0.5.2:5062 udp/[::1]:5062"},
		{"tcp SRV", Query{Host: "srv.test", Transport: TCP}, "tcp/127.0.5.3:5091"},
		{"sips: the sips SRV", Query{Host: "srv.test", Secure: true}, "tls/127.0.5.3:5090"},
		{"NAPTR picks the transports in order", Query{Host: "naptr.test"}, "tcp/127.0.5.2:5070 tcp/[::1]:5070 udp/127.0.5.1:5080"},
		{"no NAPTR: every SRV, TLS first", Query{Host: "srv.test"}, "tls/127.0.5.3:5090 tcp/127.0.5.3:5091 udp/127.0.5.1:5061 udp/127.0.5.2:5062 udp/[::1]:5062"},
		{"no NAPTR, no SRV: A at the default port", Query{Host: "plain.test"}, "udp/127.0.5.4:5060"},
		{"sips with no SRV: A at 5061", Query{Host: "plain.test.", Secure: true}, "tls/127.0.5.4:5061"},
		{"no records at all", Query{Host: "missing.test"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newResolver(t, srv).Lookup(t.Context(), tc.q)
			var parts []string
			for _, g := range got {
				parts = append(parts, g.Transport+"/"+g.Addr.String())
			}
			switch {
			case tc.want == "" && err == nil:
				t.Fatalf("Lookup = %v, want an error", parts)
			case tc.want != "" && err != nil:
				t.Fatalf("Lookup: %v", err)
			case strings.Join(parts, " ") != tc.want:
				t.Errorf("Lookup = %q, want %q", strings.Join(parts, " "), tc.want)
			}
		})
	}
	if n := srv.Queries("srv.test", dns.TypeSRV); n != 0 {
		t.Errorf("the SRV owner itself was queried %d times", n)
	}
	if n := srv.Queries("_sip._udp.plain.test", dns.TypeSRV); n == 0 {
		t.Error("no SRV query for a host without port or transport")
	}
}

func TestExplicitPortSkipsSRV(t *testing.T) {
	srv := dnstest.Start(t, dnsIP)
	srv.Set(t, zone...)
	r := newResolver(t, srv)
	if _, err := r.Lookup(t.Context(), Query{Host: "plain.test", Port: 5070}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"_sip._udp.plain.test", "_sip._tcp.plain.test", "_sips._tcp.plain.test"} {
		if n := srv.Queries(name, dns.TypeSRV); n != 0 {
			t.Errorf("%s SRV queried %d times despite the explicit port", name, n)
		}
	}
	if n := srv.Queries("plain.test", dns.TypeNAPTR); n != 0 {
		t.Errorf("NAPTR queried %d times despite the explicit port", n)
	}
}

func srvs(spec ...[3]int) []*dns.SRV {
	var out []*dns.SRV
	for i, s := range spec {
		out = append(out, &dns.SRV{Priority: uint16(s[0]), Weight: uint16(s[1]), Port: uint16(s[2]), Target: string(rune('a'+i)) + "."})
	}
	return out
}

func ports(l []*dns.SRV) []int {
	var out []int
	for _, s := range l {
		out = append(out, int(s.Port))
	}
	return out
}

func TestOrderSRVPriorities(t *testing.T) {
	in := srvs([3]int{20, 5, 2}, [3]int{10, 0, 1}, [3]int{30, 0, 3}, [3]int{10, 0, 4})
	got := ports(OrderSRV(in, func(int) int { return 0 }))
	want := []int{1, 4, 2, 3}
	if len(got) != len(want) {
		t.Fatalf("OrderSRV = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("OrderSRV = %v, want %v", got, want)
		}
	}
	if in[0].Port != 2 {
		t.Error("OrderSRV modified its input")
	}
}

// TestOrderSRVWeights draws the order of weights 1, 3 and 0 many times:
// RFC 2782 puts each first with probability weight/total (the zero weight
// almost never), with a seeded generator so the test cannot flake.
func TestOrderSRVWeights(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	in := srvs([3]int{10, 1, 1}, [3]int{10, 3, 3}, [3]int{10, 0, 9})
	first := map[int]int{}
	const draws = 8000
	for range draws {
		out := OrderSRV(in, rng.IntN)
		if len(out) != 3 {
			t.Fatalf("OrderSRV lost records: %v", ports(out))
		}
		first[int(out[0].Port)]++
	}
	share := func(p int) float64 { return float64(first[p]) / draws }
	if s := share(3); s < 0.70 || s > 0.80 {
		t.Errorf("weight 3 of 4 first in %.3f of draws, want about 0.75", s)
	}
	if s := share(1); s < 0.20 || s > 0.30 {
		t.Errorf("weight 1 of 4 first in %.3f of draws, want about 0.25", s)
	}
	if s := share(9); s > 0.01 {
		t.Errorf("weight 0 first in %.3f of draws, want almost never", s)
	}
}

func TestCacheTTL(t *testing.T) {
	srv := dnstest.Start(t, dnsIP)
	srv.Set(t,
		"short.test. 1 IN A 127.0.5.5",
		"mid.test. 30 IN A 127.0.5.6",
		"long.test. 86400 IN A 127.0.5.7",
	)
	r, err := New(Config{Servers: []string{srv.Addr}, MinTTL: 5 * time.Second, MaxTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	r.now = func() time.Time { return now }
	steps := []struct {
		name    string
		host    string
		advance time.Duration
		want    int // A queries for host so far
	}{
		{"first lookup asks", "mid.test", 0, 1},
		{"within the TTL cached", "mid.test", 29 * time.Second, 1},
		{"after the TTL asks again", "mid.test", 2 * time.Second, 2},
		{"a 1s TTL is kept min_ttl", "short.test", 0, 1},
		{"still cached at 4s", "short.test", 4 * time.Second, 1},
		{"asked again after min_ttl", "short.test", 2 * time.Second, 2},
		{"a day's TTL", "long.test", 0, 1},
		{"is kept at most max_ttl", "long.test", time.Hour + time.Second, 2},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		if _, err := r.Lookup(t.Context(), Query{Host: s.host, Port: 5060}); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if n := srv.Queries(s.host, dns.TypeA); n != s.want {
			t.Errorf("%s: %d A queries, want %d", s.name, n, s.want)
		}
	}
	// A changed record is seen once the old answer expires.
	srv.Set(t, "mid.test. 30 IN A 127.0.5.8")
	now = now.Add(31 * time.Second)
	got, err := r.Lookup(t.Context(), Query{Host: "mid.test", Port: 5060})
	if err != nil || got[0].Addr != netip.MustParseAddrPort("127.0.5.8:5060") {
		t.Errorf("after expiry Lookup = %v, %v; want the new address", got, err)
	}
}

func TestConfig(t *testing.T) {
	if _, err := New(Config{Servers: []string{"dns.example:53"}}); err == nil {
		t.Error("a server that is not ip:port was accepted")
	}
	if _, err := New(Config{Servers: []string{"127.0.0.1:53"}, MinTTL: time.Hour, MaxTTL: time.Minute}); err == nil {
		t.Error("max ttl below min ttl was accepted")
	}
}

func TestNoServerAnswers(t *testing.T) {
	r, err := New(Config{Servers: []string{"127.0.5.54:9"}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lookup(t.Context(), Query{Host: "x.test", Port: 5060}); err == nil {
		t.Error("Lookup with no DNS server answering succeeded")
	}
}
