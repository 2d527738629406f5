package b2bua

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// identityTable has a trusted PBX at 192.0.2.10 and three trunks: open
// (outside the trust domain), td (in it) and plain (assert none, From
// kept), all with from_domain sbc.example; route out trusts 198.51.100.0/24.
func identityTable(t *testing.T) *routing.Table {
	t.Helper()
	spec := routing.TableSpec{Trunks: []routing.TrunkSpec{
		{Name: "pbx", URI: "sip:192.0.2.10", Trusted: true},
		{Name: "open", URI: "sip:192.0.2.20", FromDomain: "sbc.example"},
		{Name: "td", URI: "sip:192.0.2.30", FromDomain: "sbc.example",
			Identity: routing.IdentitySpec{TrustDomain: true, Domain: "id.example"}},
		{Name: "plain", URI: "sip:192.0.2.40", FromDomain: "sbc.example",
			Identity: routing.IdentitySpec{Assert: routing.IdentityAssertNone, From: routing.IdentityFromKeep}},
	}}
	spec.Routes = []routing.RouteSpec{{Name: "out", Target: routing.TargetTrunks, Trunks: []string{"open"},
		TrustedSources: []string{"198.51.100.0/24"}}}
	table, err := routing.New(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// spoofed is what a caller forging its identity sends.
const spoofed = "INVITE sip:2125550100@sbc.test SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 203.0.113.7;branch=z9hG4bK1\r\n" +
	"From: \"Bank\" <sip:+18005551212@bank.example>;tag=1\r\n" +
	"To: <sip:2125550100@sbc.test>\r\n" +
	"Call-ID: id@test\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n" +
	"Contact: <sip:x@203.0.113.7>\r\n" +
	"P-Asserted-Identity: \"Bank\" <sip:+18005551212@bank.example>, <tel:+18005551212>\r\n" +
	"P-Preferred-Identity: <sip:+18005551212@bank.example>\r\n" +
	"%PRIVACY%Content-Length: 0\r\n\r\n"

func parseInvite(t *testing.T, privacy string) sip.Request {
	t.Helper()
	if privacy != "" {
		privacy = "Privacy: " + privacy + "\r\n"
	}
	m, err := sipmsg.NewParser(sipmsg.Limits{}).Parse([]byte(strings.Replace(spoofed, "%PRIVACY%", privacy, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return m.(sip.Request)
}

func TestIdentityFor(t *testing.T) {
	table := identityTable(t)
	s := &Server{cfg: Config{CallerIDs: map[string]string{"alice": "+12125550100"}}}
	s.routes.Store(table)
	route, _ := table.Route(routing.Request{})
	const (
		alicePAI  = "<sip:+12125550100@sbc.example;user=phone>"
		anonymous = `"Anonymous" <sip:anonymous@anonymous.invalid>`
		bankPAI   = `"Bank" <sip:+18005551212@bank.example>`
	)
	tests := []struct {
		name    string
		src     string // caller's address
		user    string // authenticated user
		privacy string
		trunk   string // "" for a registered user
		from    string
		headers []string
	}{
		{name: "authenticated caller: asserted, From rewritten", src: "203.0.113.7", user: "alice", trunk: "open",
			from: "<sip:+12125550100@sbc.example;user=phone>", headers: []string{"P-Asserted-Identity: " + alicePAI}},
		{name: "user without caller_id, identity domain", src: "203.0.113.7", user: "bob", trunk: "td",
			from: "<sip:bob@id.example>", headers: []string{"P-Asserted-Identity: <sip:bob@id.example>"}},
		{name: "privacy id toward the untrusted trunk: no identity at all", src: "203.0.113.7", user: "alice", privacy: "id",
			trunk: "open", from: anonymous, headers: []string{"Privacy: id"}},
		{name: "privacy id toward the trust domain: asserted, From anonymous", src: "203.0.113.7", user: "alice",
			privacy: "id;critical", trunk: "td", from: anonymous,
			headers: []string{"P-Asserted-Identity: <sip:+12125550100@id.example;user=phone>", "Privacy: id;critical"}},
		{name: "privacy user: From anonymous, identity asserted", src: "203.0.113.7", user: "alice", privacy: "User, bogus",
			trunk: "open", from: anonymous, headers: []string{"P-Asserted-Identity: " + alicePAI, "Privacy: user"}},
		{name: "privacy none", src: "203.0.113.7", user: "alice", privacy: "none", trunk: "open",
			from: "<sip:+12125550100@sbc.example;user=phone>", headers: []string{"P-Asserted-Identity: " + alicePAI}},
		{name: "trusted PBX: its assertion kept, PPI dropped", src: "192.0.2.10", trunk: "open",
			from:    `"Bank" <sip:+18005551212@sbc.example>`,
			headers: []string{"P-Asserted-Identity: " + bankPAI, "P-Asserted-Identity: <tel:+18005551212>"}},
		{name: "trusted route source toward a registered user", src: "198.51.100.9",
			from:    `"Bank" <sip:+18005551212@192.0.2.1>`,
			headers: []string{"P-Asserted-Identity: " + bankPAI, "P-Asserted-Identity: <tel:+18005551212>"}},
		{name: "trusted PBX with privacy id toward a registered user", src: "192.0.2.10", privacy: "id",
			from: anonymous, headers: []string{"Privacy: id"}},
		{name: "untrusted, unauthenticated caller: nothing asserted", src: "203.0.113.7", trunk: "open",
			from: `"Bank" <sip:+18005551212@sbc.example>`},
		{name: "assert none, From kept", src: "203.0.113.7", user: "alice", trunk: "plain",
			from: `"Bank" <sip:+18005551212@sbc.example>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := parseInvite(t, tc.privacy)
			f, _ := req.From()
			c := &Call{s: s, invReq: req, route: route, user: tc.user,
				a: &leg{dst: transport.Target{Addr: netip.AddrPortFrom(netip.MustParseAddr(tc.src), 5060)},
					remote: &sip.Address{DisplayName: f.DisplayName, Uri: f.Address}}}
			var d dest
			if tc.trunk != "" {
				d.trunk, _ = table.Trunk(tc.trunk)
			}
			from, hs := c.identityFor(d, "192.0.2.1")
			if from.String() != tc.from {
				t.Errorf("From %s, want %s", from, tc.from)
			}
			var got []string
			for _, h := range hs {
				got = append(got, h.Name()+": "+h.Value())
			}
			if strings.Join(got, "\n") != strings.Join(tc.headers, "\n") {
				t.Errorf("headers\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.headers, "\n"))
			}
		})
	}
}

func TestTrustedAssertions(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   []string
	}{
		{"sip and tel", []string{`"Alice Smith" <sip:1001@pbx.example>, <tel:+12125550100>`},
			[]string{`"Alice Smith" <sip:1001@pbx.example>`, "<tel:+12125550100>"}},
		{"addr-spec", []string{"sip:1001@pbx.example"}, []string{"<sip:1001@pbx.example>"}},
		{"second sip dropped", []string{"<sip:a@x.example>", "<sips:b@x.example>"}, []string{"<sip:a@x.example>"}},
		{"uri headers dropped", []string{"<sip:a@x.example?Subject=hi>"}, []string{"<sip:a@x.example>"}},
		{"comma in quotes", []string{`"Smith, Alice" <sip:a@x.example>`}, []string{`"Smith, Alice" <sip:a@x.example>`}},
		{"escaped quote", []string{`"A \"B\"" <sip:a@x.example>`}, []string{`"A \"B\"" <sip:a@x.example>`}},
		{"junk", []string{"<http://evil.example>", `"unterminated <sip:a@x.example>`, "<tel:abc>", "<sip:a@x.example"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := sip.NewRequest("", sip.INVITE, &sip.SipUri{FHost: "x"}, "SIP/2.0", nil, "", nil)
			for _, v := range tc.values {
				req.AppendHeader(sipmsg.Generic(hdrPAI, v))
			}
			got := trustedAssertions(req)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzIdentityHeaders: whatever a trusted source puts in
// P-Asserted-Identity and Privacy, what the SBC passes on is made only of
// entries that parse again to themselves, without control characters, and
// of known privacy values.
func FuzzIdentityHeaders(f *testing.F) {
	for _, seed := range []string{
		`"Alice" <sip:1001@pbx.example>, <tel:+12125550100>`,
		"sip:a@b;user=phone",
		`"a\"b" <sips:x@[::1]:5061;transport=tls>`,
		"<tel:+1-212-555-0100;phone-context=+1>",
		"id;header;user, none ;critical",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		req := sip.NewRequest("", sip.INVITE, &sip.SipUri{FHost: "x"}, "SIP/2.0", nil, "", nil)
		req.AppendHeader(sipmsg.Generic(hdrPAI, v))
		req.AppendHeader(sipmsg.Generic(hdrPrivacy, v))
		out := trustedAssertions(req)
		if len(out) > 2 {
			t.Fatalf("%d assertions passed, want at most 2", len(out))
		}
		for _, a := range out {
			if strings.ContainsFunc(a, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("control character passed: %q", a)
			}
			name, uri, ok := parseNameAddr(a)
			if !ok {
				t.Fatalf("passed %q, which does not parse", a)
			}
			if again := nameAddr(name, uri); again != a {
				t.Fatalf("passed %q, which parses to %q", a, again)
			}
		}
		for _, p := range parsePrivacy(req).values {
			if !strings.Contains("none header session user id critical", p) || p == "" {
				t.Fatalf("privacy value %q passed", p)
			}
		}
	})
}
