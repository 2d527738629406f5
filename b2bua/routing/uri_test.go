package routing

import (
	"strings"
	"testing"
)

func TestParseTrunkURI(t *testing.T) {
	tests := []struct {
		name string
		uri  string
		want trunkURI
	}{
		{"host only", "sip:pbx.example.com",
			trunkURI{scheme: "sip", host: "pbx.example.com", port: 5060, transport: "udp"}},
		{"user port transport", "sip:trunk1@10.0.0.5:5080;transport=tcp",
			trunkURI{scheme: "sip", user: "trunk1", host: "10.0.0.5", port: 5080, transport: "tcp"}},
		{"sips defaults to tls and 5061", "sips:carrier.example.net",
			trunkURI{scheme: "sips", host: "carrier.example.net", port: 5061, transport: "tls"}},
		{"sips transport tcp means tls", "sips:carrier.example.net;transport=tcp",
			trunkURI{scheme: "sips", host: "carrier.example.net", port: 5061, transport: "tls"}},
		{"sip transport tls defaults to 5061", "sip:10.1.1.1;transport=TLS",
			trunkURI{scheme: "sip", host: "10.1.1.1", port: 5061, transport: "tls"}},
		{"bracketed IPv6 with port", "sip:[::1]:5070",
			trunkURI{scheme: "sip", host: "::1", port: 5070, transport: "udp"}},
		{"bracketed IPv6 no port", "sip:[2001:db8::1];transport=tcp",
			trunkURI{scheme: "sip", host: "2001:db8::1", port: 5060, transport: "tcp"}},
		{"scheme case and other params ignored", "SIP:pbx;lr;user=phone",
			trunkURI{scheme: "sip", host: "pbx", port: 5060, transport: "udp"}},
		{"user with user parameter", "sip:+15551234;npdi@gw.example.com:5062",
			trunkURI{scheme: "sip", user: "+15551234;npdi", host: "gw.example.com", port: 5062, transport: "udp"}},
		{"trailing dot", "sip:pbx.example.com.",
			trunkURI{scheme: "sip", host: "pbx.example.com.", port: 5060, transport: "udp"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTrunkURI(tc.uri)
			if err != nil {
				t.Fatalf("parseTrunkURI(%q): %v", tc.uri, err)
			}
			if got != tc.want {
				t.Errorf("parseTrunkURI(%q) = %+v, want %+v", tc.uri, got, tc.want)
			}
		})
	}
}

func TestParseTrunkURIErrors(t *testing.T) {
	tests := []struct {
		name    string
		uri     string
		wantErr string
	}{
		{"empty", "", "missing scheme"},
		{"no scheme", "pbx.example.com", "missing scheme"},
		{"wrong scheme", "tel:+15551234", "not sip or sips"},
		{"http scheme", "http://pbx", "not sip or sips"},
		{"missing host", "sip:", "missing host"},
		{"missing host with user", "sip:alice@", "missing host"},
		{"empty user", "sip:@pbx", "empty user"},
		{"password", "sip:alice:secret@pbx", "password"},
		{"port zero", "sip:pbx:0", "not in 1-65535"},
		{"port too big", "sip:pbx:65536", "not in 1-65535"},
		{"port not a number", "sip:pbx:abc", "not in 1-65535"},
		{"empty port", "sip:pbx:", "empty port"},
		{"unbracketed IPv6", "sip:::1", "brackets"},
		{"unbracketed IPv6 full", "sip:2001:db8::1", "brackets"},
		{"unclosed bracket", "sip:[::1:5070", "missing ']'"},
		{"IPv4 in brackets", "sip:[10.0.0.1]", "not an IPv6 address"},
		{"junk after bracket", "sip:[::1]x", "after IPv6 host"},
		{"bad host chars", "sip:pb x", "not a valid DNS name"},
		{"empty label", "sip:pbx..example.com", "not a valid DNS name"},
		{"headers", "sip:pbx?Subject=hi", "headers"},
		{"ws transport", "sip:pbx;transport=ws", "not udp, tcp or tls"},
		{"empty transport", "sip:pbx;transport=", "empty transport"},
		{"transport twice", "sip:pbx;transport=tcp;transport=udp", "twice"},
		{"sips over udp", "sips:pbx;transport=udp", "cannot carry sips"},
		{"empty parameter", "sip:pbx;;lr", "empty uri parameter"},
		{"two at signs", "sip:a@b@pbx", "not a valid DNS name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTrunkURI(tc.uri)
			if err == nil {
				t.Fatalf("parseTrunkURI(%q) = %+v, want error containing %q", tc.uri, got, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseTrunkURI(%q) error %q, want it to contain %q", tc.uri, err, tc.wantErr)
			}
		})
	}
}

func TestNewTrunkURIErrorNamesTrunk(t *testing.T) {
	spec := TableSpec{Trunks: []TrunkSpec{
		{Name: "good", URI: "sip:10.0.0.1"},
		{Name: "broken-pbx", URI: "sip:pbx:99999"},
		{Name: "broken-carrier", URI: "mailto:x@y"},
	}}
	_, err := New(spec, nil)
	if err == nil {
		t.Fatal("New accepted bad trunk URIs")
	}
	for _, want := range []string{`"broken-pbx"`, `"sip:pbx:99999"`, `"broken-carrier"`, `"mailto:x@y"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New error %q does not mention %s", err, want)
		}
	}
	if strings.Contains(err.Error(), `"good"`) {
		t.Errorf("New error %q blames the good trunk", err)
	}
}

func TestTrunkURIString(t *testing.T) {
	tests := []struct {
		name string
		uri  string
		want string
	}{
		{"udp default omitted", "sip:pbx", "sip:pbx:5060"},
		{"tcp with user", "sip:u@10.0.0.1:5080;transport=tcp", "sip:u@10.0.0.1:5080;transport=tcp"},
		{"IPv6 bracketed", "sip:[::1]:5070", "sip:[::1]:5070"},
		{"sips", "sips:carrier;transport=tcp", "sips:carrier:5061"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := newTrunk(TrunkSpec{Name: "t", URI: tc.uri, Password: "hunter2"})
			if err != nil {
				t.Fatalf("newTrunk: %v", err)
			}
			if got := tr.URI(); got != tc.want {
				t.Errorf("URI() = %q, want %q", got, tc.want)
			}
			if s := tr.String() + tr.LogValue().String(); strings.Contains(s, "hunter2") {
				t.Errorf("String/LogValue leak the password: %s", s)
			}
		})
	}
}
