package routing

import (
	"reflect"
	"strings"
	"testing"
)

// uriCase is one trunk URI and what ParseURI makes of it: want when it is
// accepted, else an error containing err.
type uriCase struct {
	name string
	in   string
	want URI
	err  string
}

// disagreements are the URIs on which the two trunk URI parsers the SBC had
// (config validation and routing) gave different verdicts, each followed by
// the verdict of the one parser that replaced them.
var disagreements = []uriCase{
	// Whitespace: routing trimmed it or let it through in the user part
	// and parameters; config refused it.
	{name: "leading space", in: " sip:pbx.example.com", err: "no whitespace"},
	{name: "trailing space", in: "sip:pbx.example.com ", err: "no whitespace"},
	{name: "trailing newline", in: "sip:pbx.example.com\n", err: "no whitespace"},
	{name: "leading tab", in: "\tsip:pbx", err: "no whitespace"},
	{name: "space in a parameter value", in: "sip:pbx;x=a b", err: "no whitespace"},
	{name: "space in a parameter name", in: "sip:pbx;tr ansport=tcp", err: "no whitespace"},
	// Non-ASCII: routing accepted it.
	{name: "non-ASCII user", in: "sip:\u00e9@pbx", err: "non-ASCII"},
	{name: "non-ASCII parameter", in: "sip:pbx;x=\u00e9", err: "non-ASCII"},
	// Underscores: routing accepted them in host names, config did not.
	{name: "underscore in a label", in: "sip:pbx_1.example.com", err: "'_' is not allowed"},
	{name: "SRV owner name", in: "sip:_sip._udp.example.com", err: "'_' is not allowed"},
	{name: "underscore in the last label", in: "sip:pbx.example_com", err: "'_' is not allowed"},
	// Numeric last labels: routing took them for DNS names; config and
	// RFC 3261 (toplabel starts with ALPHA) do not.
	{name: "IPv4 out of range", in: "sip:1.2.3.999", err: "not an IPv4 address"},
	{name: "IPv4 out of range with port", in: "sip:192.0.2.999:5060", err: "not an IPv4 address"},
	{name: "three numbers", in: "sip:1.2.3", err: "not an IPv4 address"},
	{name: "IPv4 with a trailing dot", in: "sip:1.2.3.4.", err: "not an IPv4 address"},
	{name: "IPv4 with a leading zero", in: "sip:01.2.3.4", err: "not an IPv4 address"},
	{name: "one number", in: "sip:123", err: "not an IPv4 address"},
	{name: "numeric top label", in: "sip:example.123", err: "starts with a letter"},
	{name: "top label starting with a digit", in: "sip:1x", err: "starts with a letter"},
	{name: "last label starting with a digit", in: "sip:a.1b", err: "starts with a letter"},
	// User characters: routing refused only whitespace and ':'.
	{name: "bad escape in user", in: "sip:a%zz@pbx", err: "invalid escape"},
	{name: "short escape in user", in: "sip:a%2@pbx", err: "invalid escape"},
	{name: "quote in user", in: `sip:al"ice@pbx`, err: `invalid character '"'`},
	{name: "angle bracket in user", in: "sip:al<ice@pbx", err: "invalid character '<'"},
	{name: "square bracket in user", in: "sip:a[b]@pbx", err: "invalid character '['"},
	{name: "hash in user", in: "sip:a#b@pbx", err: "invalid character '#'"},
	{name: "backslash in user", in: `sip:a\b@pbx`, err: `invalid character '\\'`},
	{name: "brace in user", in: "sip:a{b}@pbx", err: "invalid character '{'"},
	// Parameters: config checked names as tokens and refused repeats;
	// routing looked only at transport.
	{name: "empty parameter at the end", in: "sip:pbx;", err: "empty name"},
	{name: "empty parameter after a port", in: "sip:pbx:5060;", err: "empty name"},
	{name: "repeated flag", in: "sip:pbx;lr;lr", err: "lr given twice"},
	{name: "repeated flag in another case", in: "sip:pbx;LR;lr", err: "lr given twice"},
	{name: "repeated parameter", in: "sip:pbx;x=a;X=b", err: "x given twice"},
	{name: "brackets in a parameter name (RFC 3261 paramchar)", in: "sip:pbx;a[1]=b",
		want: URI{Scheme: "sip", Host: "pbx", Params: []Param{{"a[1]", "b"}}}},
	{name: "colon and slash in a parameter (paramchar)", in: "sip:pbx;a:b=c/d",
		want: URI{Scheme: "sip", Host: "pbx", Params: []Param{{"a:b", "c/d"}}}},
	// Empty port after an IPv6 address: config took it for no port.
	{name: "empty port after brackets", in: "sip:[::1]:", err: "empty port"},
}

// tightened are URIs both old parsers accepted that RFC 3261 (or the SBC,
// for zones) does not.
var tightened = []uriCase{
	{name: "IPv6 zone, escaped", in: "sip:[fe80::1%25eth0]", err: "without a zone"},
	{name: "IPv6 zone", in: "sip:[fe80::1%eth0]:5060", err: "without a zone"},
	{name: "empty parameter value", in: "sip:pbx;x=", err: "empty value"},
	{name: "quote in a parameter", in: `sip:pbx;x=a"b`, err: `invalid character '"'`},
	{name: "bad escape in a parameter", in: "sip:pbx;x=a%zz", err: "invalid escape"},
	{name: "lone percent parameter", in: "sip:pbx;%", err: "invalid escape"},
	{name: "comma in a parameter", in: "sip:pbx;x=a,b", err: "invalid character ','"},
	{name: "equals in a parameter value", in: "sip:pbx;x=a=b", err: "invalid character '='"},
	{name: "backslash in a parameter", in: `sip:pbx;x=a\b`, err: `invalid character '\\'`},
}

// agreed are URIs on which the old parsers agreed, kept to hold the line.
var agreed = []uriCase{
	{name: "host only", in: "sip:pbx.example.com", want: URI{Scheme: "sip", Host: "pbx.example.com"}},
	{name: "IPv4 with port", in: "sip:198.51.100.10:5060", want: URI{Scheme: "sip", Host: "198.51.100.10", Port: 5060}},
	{name: "name with transport", in: "sip:pbx.example.com;transport=TCP",
		want: URI{Scheme: "sip", Host: "pbx.example.com", Params: []Param{{"transport", "tcp"}}}},
	{name: "user and parameters", in: "SIP:+15551234567@carrier.example.net:5080;transport=udp;lr",
		want: URI{Scheme: "sip", User: "+15551234567", Host: "carrier.example.net", Port: 5080,
			Params: []Param{{"transport", "udp"}, {"lr", ""}}}},
	{name: "user with escapes and a semicolon", in: "sip:a%20b;npdi@192.0.2.1",
		want: URI{Scheme: "sip", User: "a b;npdi", Host: "192.0.2.1"}},
	{name: "user with user parameters", in: "sip:+1-555-1234;npdi;rn=+15550000@pbx",
		want: URI{Scheme: "sip", User: "+1-555-1234;npdi;rn=+15550000", Host: "pbx"}},
	{name: "user marks", in: "sip:*a,b'c@pbx", want: URI{Scheme: "sip", User: "*a,b'c", Host: "pbx"}},
	{name: "escaped letter", in: "sip:%41@pbx", want: URI{Scheme: "sip", User: "A", Host: "pbx"}},
	{name: "userinfo ends at @", in: "sip:pbx;x=a@b", want: URI{Scheme: "sip", User: "pbx;x=a", Host: "b"}},
	{name: "IPv6", in: "sips:[2001:db8::10]:5061", want: URI{Scheme: "sips", Host: "2001:db8::10", Port: 5061}},
	{name: "IPv4-mapped IPv6", in: "sip:[::ffff:10.0.0.1]", want: URI{Scheme: "sip", Host: "::ffff:10.0.0.1"}},
	{name: "user at IPv6 with transport", in: "sip:u@[2001:db8::1]:5070;transport=tls",
		want: URI{Scheme: "sip", User: "u", Host: "2001:db8::1", Port: 5070, Params: []Param{{"transport", "tls"}}}},
	{name: "sips over tcp", in: "sips:pbx.example.com;transport=tcp",
		want: URI{Scheme: "sips", Host: "pbx.example.com", Params: []Param{{"transport", "tcp"}}}},
	{name: "sips over tls", in: "sips:pbx;transport=tls", want: URI{Scheme: "sips", Host: "pbx", Params: []Param{{"transport", "tls"}}}},
	{name: "trailing dot", in: "sip:pbx.example.com.", want: URI{Scheme: "sip", Host: "pbx.example.com."}},
	{name: "case kept in the host", in: "SIP:PBX.Example.COM", want: URI{Scheme: "sip", Host: "PBX.Example.COM"}},
	{name: "punycode", in: "sip:xn--bcher-kva.example", want: URI{Scheme: "sip", Host: "xn--bcher-kva.example"}},
	{name: "digit then letter", in: "sip:x1", want: URI{Scheme: "sip", Host: "x1"}},
	{name: "leading zeros in the port", in: "sip:pbx:05060", want: URI{Scheme: "sip", Host: "pbx", Port: 5060}},
	{name: "highest port", in: "sip:pbx:65535", want: URI{Scheme: "sip", Host: "pbx", Port: 65535}},
	{name: "RFC 3261 parameters", in: "sip:pbx;user=phone;lr;ttl=1;method=INVITE;maddr=[::1]",
		want: URI{Scheme: "sip", Host: "pbx", Params: []Param{{"user", "phone"}, {"lr", ""}, {"ttl", "1"}, {"method", "INVITE"}, {"maddr", "[::1]"}}}},
	{name: "parameter marks", in: "sip:pbx;x=a(b)/c+d$e&f", want: URI{Scheme: "sip", Host: "pbx", Params: []Param{{"x", "a(b)/c+d$e&f"}}}},
	{name: "escaped parameter", in: "sip:pbx;x%41=%41", want: URI{Scheme: "sip", Host: "pbx", Params: []Param{{"xa", "A"}}}},
	{name: "empty", in: "", err: "want a sip: or sips: URI"},
	{name: "no scheme", in: "pbx.example.com", err: "want a sip: or sips: URI"},
	{name: "other scheme", in: "tel:+15551234567", err: "want a sip: or sips: URI"},
	{name: "http", in: "http://pbx", err: "want a sip: or sips: URI"},
	{name: "no host", in: "sip:", err: "missing host"},
	{name: "no host after user", in: "sip:alice@", err: "missing host"},
	{name: "empty user", in: "sip:@pbx", err: "empty user"},
	{name: "password", in: "sip:alice:secret@pbx", err: "no password"},
	{name: "empty password", in: "sip:alice:@pbx", err: "no password"},
	{name: "space in user", in: "sip:a b@pbx", err: "no whitespace"},
	{name: "two at signs", in: "sip:a@b@pbx", err: "invalid character '@'"},
	{name: "question mark in user", in: "sip:a?b@pbx", err: "headers"},
	{name: "headers", in: "sip:pbx?subject=x", err: "headers"},
	{name: "space in host", in: "sip:pbx .example.com", err: "no whitespace"},
	{name: "leading hyphen", in: "sip:-pbx.example.com", err: "starts or ends with '-'"},
	{name: "trailing hyphen", in: "sip:pbx-", err: "starts or ends with '-'"},
	{name: "empty label", in: "sip:pbx..example.com", err: "empty label"},
	{name: "label too long", in: "sip:" + strings.Repeat("a", 64) + ".com", err: "longer than 63"},
	{name: "unbracketed IPv6", in: "sip:2001:db8::1", err: "brackets"},
	{name: "unbracketed loopback", in: "sip:::1", err: "brackets"},
	{name: "two ports", in: "sip:pbx:5060:5060", err: "brackets"},
	{name: "unclosed bracket", in: "sip:[2001:db8::1", err: "missing ]"},
	{name: "IPv4 in brackets", in: "sip:[192.0.2.1]", err: "want an IPv6 address"},
	{name: "junk after bracket", in: "sip:[::1]x", err: "after ]"},
	{name: "port after port", in: "sip:[::1]:5060:1", err: "want 1..65535"},
	{name: "port zero", in: "sip:pbx:0", err: "want 1..65535"},
	{name: "port too big", in: "sip:pbx:65536", err: "want 1..65535"},
	{name: "port signed", in: "sip:pbx:+5060", err: "want 1..65535"},
	{name: "port negative", in: "sip:pbx:-1", err: "want 1..65535"},
	{name: "port not a number", in: "sip:pbx:5060x", err: "want 1..65535"},
	{name: "empty port", in: "sip:pbx:", err: "empty port"},
	{name: "empty parameter", in: "sip:pbx;;lr", err: "empty name"},
	{name: "empty parameter between", in: "sip:pbx;a=b;;c", err: "empty name"},
	{name: "parameter without name", in: "sip:pbx;=x", err: "empty name"},
	{name: "transport without value", in: "sip:pbx;transport", err: "want transport=udp, tcp or tls"},
	{name: "empty transport", in: "sip:pbx;transport=", err: "empty value"},
	{name: "transport sctp", in: "sip:pbx;transport=sctp", err: "want transport=udp, tcp or tls"},
	{name: "transport ws", in: "sip:pbx;transport=ws", err: "want transport=udp, tcp or tls"},
	{name: "transport twice", in: "sip:pbx;transport=tcp;transport=tcp", err: "transport given twice"},
	{name: "transport twice in two cases", in: "sip:pbx;transport=tcp;TRANSPORT=udp", err: "transport given twice"},
	{name: "sips over udp", in: "sips:pbx;transport=udp", err: "reliable transport"},
}

func TestParseURI(t *testing.T) {
	for _, group := range [][]uriCase{disagreements, tightened, agreed} {
		for _, tc := range group {
			t.Run(tc.name, func(t *testing.T) {
				got, err := ParseURI(tc.in)
				if tc.err != "" {
					if err == nil || !strings.Contains(err.Error(), tc.err) {
						t.Fatalf("ParseURI(%q) = %+v, %v; want an error containing %q", tc.in, got, err, tc.err)
					}
					return
				}
				if err != nil {
					t.Fatalf("ParseURI(%q): %v", tc.in, err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("ParseURI(%q) = %+v, want %+v", tc.in, got, tc.want)
				}
				checkRoundTrip(t, tc.in, got)
			})
		}
	}
}

// checkRoundTrip checks that u, parsed from in, is written as a URI that
// parses back to u and is written again the same.
func checkRoundTrip(t *testing.T, in string, u URI) {
	t.Helper()
	s := u.String()
	again, err := ParseURI(s)
	if err != nil {
		t.Fatalf("ParseURI(%q) = %+v, written %q, which does not parse: %v", in, u, s, err)
	}
	if !reflect.DeepEqual(again, u) || again.String() != s {
		t.Fatalf("ParseURI(%q) = %+v, written %q, parsed back %+v, written %q", in, u, s, again, again.String())
	}
}

func TestURITransport(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sip:pbx", "udp"},
		{"sip:pbx;transport=TCP", "tcp"},
		{"sip:pbx;transport=tls", "tls"},
		{"sips:pbx", "tls"},
		{"sips:pbx;transport=tcp", "tls"},
	}
	for _, tc := range tests {
		u, err := ParseURI(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Transport(); got != tc.want {
			t.Errorf("ParseURI(%q).Transport() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestURIString(t *testing.T) {
	tests := []struct {
		name string
		u    URI
		want string
	}{
		{"IPv6 in brackets", URI{Scheme: "sips", Host: "2001:db8::1", Port: 5061}, "sips:[2001:db8::1]:5061"},
		{"user escaped", URI{Scheme: "sip", User: "a b?c@d:e%", Host: "pbx"}, "sip:a%20b%3Fc%40d%3Ae%25@pbx"},
		{"user characters kept", URI{Scheme: "sip", User: "+1;npdi=x/y&z$,", Host: "pbx"}, "sip:+1;npdi=x/y&z$,@pbx"},
		{"parameters escaped", URI{Scheme: "sip", Host: "pbx", Params: []Param{{"lr", ""}, {"x", "a;b=c"}}}, "sip:pbx;lr;x=a%3Bb%3Dc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.u.String(); got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
			checkRoundTrip(t, tc.want, tc.u)
		})
	}
}

func TestValidHost(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"192.0.2.1", true}, {"2001:db8::1", true}, {"localhost", true}, {"a-b.example.com", true},
		{"example.com.", true}, {"x1", true}, {strings.Repeat("a", 63) + ".com", true},
		{"", false}, {".", false}, {"a..b", false}, {"-a.com", false}, {"a-.com", false},
		{"a_b.com", false}, {"a b", false}, {"1.2.3.999", false}, {"example.123", false},
		{strings.Repeat("a", 64) + ".com", false}, {"[::1]", false}, {"host:5060", false},
		{"fe80::1%eth0", false},
	}
	for _, tt := range tests {
		if got := ValidHost(tt.in); got != tt.want {
			t.Errorf("ValidHost(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzParseURI checks that what ParseURI accepts has a host and a dialable
// transport, and is written as a URI that parses back to the same value
// and is written again the same. Seeds: testdata/fuzz/FuzzParseURI, one
// per case of TestParseURI.
func FuzzParseURI(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		if tr := u.Transport(); u.Host == "" || (tr != TransportUDP && tr != TransportTCP && tr != TransportTLS) {
			t.Fatalf("ParseURI(%q) accepted %+v", s, u)
		}
		checkRoundTrip(t, s, u)
	})
}
