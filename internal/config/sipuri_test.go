package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSIPURI(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    sipURI
		wantErr string
	}{
		{name: "IPv4 with port", in: "sip:198.51.100.10:5060",
			want: sipURI{Scheme: "sip", Host: "198.51.100.10", Port: 5060, Params: map[string]string{}}},
		{name: "name with transport", in: "sip:pbx.example.com;transport=TCP",
			want: sipURI{Scheme: "sip", Host: "pbx.example.com", Params: map[string]string{"transport": "tcp"}}},
		{name: "user and params", in: "SIP:+15551234567@carrier.example.net:5080;transport=udp;lr",
			want: sipURI{Scheme: "sip", User: "+15551234567", Host: "carrier.example.net", Port: 5080,
				Params: map[string]string{"transport": "udp", "lr": ""}}},
		{name: "user with escapes and semicolon", in: "sip:a%20b;npdi@192.0.2.1",
			want: sipURI{Scheme: "sip", User: "a%20b;npdi", Host: "192.0.2.1", Params: map[string]string{}}},
		{name: "IPv6", in: "sips:[2001:db8::10]:5061",
			want: sipURI{Scheme: "sips", Host: "2001:db8::10", Port: 5061, Params: map[string]string{}}},
		{name: "sips over tcp", in: "sips:pbx.example.com;transport=tcp",
			want: sipURI{Scheme: "sips", Host: "pbx.example.com", Params: map[string]string{"transport": "tcp"}}},
		{name: "trailing dot", in: "sip:pbx.example.com.",
			want: sipURI{Scheme: "sip", Host: "pbx.example.com.", Params: map[string]string{}}},
		{name: "empty", in: "", wantErr: "want a sip: or sips: URI"},
		{name: "other scheme", in: "tel:+15551234567", wantErr: "want a sip: or sips: URI"},
		{name: "no scheme", in: "pbx.example.com", wantErr: "want a sip: or sips: URI"},
		{name: "no host", in: "sip:", wantErr: "want a host"},
		{name: "empty user", in: "sip:@host", wantErr: "empty user"},
		{name: "password", in: "sip:user:pw@host", wantErr: "no password"},
		{name: "bad user char", in: "sip:us er@host", wantErr: "invalid character"},
		{name: "bad escape", in: "sip:a%zz@host", wantErr: "invalid character"},
		{name: "headers", in: "sip:host?subject=x", wantErr: "headers"},
		{name: "bad IPv4", in: "sip:192.0.2.999", wantErr: "want a host"},
		{name: "bad name", in: "sip:-pbx.example.com", wantErr: "want a host"},
		{name: "underscore name", in: "sip:pbx_1.example.com", wantErr: "want a host"},
		{name: "unbracketed IPv6", in: "sip:2001:db8::1", wantErr: "brackets"},
		{name: "unclosed bracket", in: "sip:[2001:db8::1", wantErr: "missing ]"},
		{name: "IPv4 in brackets", in: "sip:[192.0.2.1]", wantErr: "invalid IPv6"},
		{name: "junk after bracket", in: "sip:[::1]x", wantErr: "after ]"},
		{name: "port zero", in: "sip:host:0", wantErr: "port 1..65535"},
		{name: "port too big", in: "sip:host:65536", wantErr: "port 1..65535"},
		{name: "port signed", in: "sip:host:+5060", wantErr: "port 1..65535"},
		{name: "port empty", in: "sip:host:", wantErr: "empty port"},
		{name: "transport unknown", in: "sip:host;transport=sctp", wantErr: "transport=udp, tcp or tls"},
		{name: "transport ws", in: "sip:host;transport=ws", wantErr: "transport=udp, tcp or tls"},
		{name: "sips over udp", in: "sips:host;transport=udp", wantErr: "reliable transport"},
		{name: "empty param", in: "sip:host;;lr", wantErr: "invalid URI parameter"},
		{name: "param twice", in: "sip:host;lr;LR", wantErr: "given twice"},
		{name: "param value with space", in: "sip:host;x=a b", wantErr: "invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSIPURI(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseSIPURI(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSIPURI(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseSIPURI(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
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
	}
	for _, tt := range tests {
		if got := validHost(tt.in); got != tt.want {
			t.Errorf("validHost(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestIsToken(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"P-Asserted-Identity", true}, {"X-Foo_bar.1", true}, {"", false}, {"A B", false}, {"A:B", false}, {"é", false},
	}
	for _, tt := range tests {
		if got := isToken(tt.in); got != tt.want {
			t.Errorf("isToken(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzParseSIPURI checks that the parser never panics and that what it
// accepts has a host, a valid port and a transport.
func FuzzParseSIPURI(f *testing.F) {
	for _, s := range []string{
		"sip:198.51.100.10:5060", "sips:[2001:db8::10]:5061;transport=tls", "sip:u@h;lr;transport=tcp",
		"sip:a%20b@h", "sip:[::1", "sip:h:99999", "sip:;=;", "sips:@:",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseSIPURI(s)
		if err != nil {
			return
		}
		if u.Host == "" || u.Port < 0 || u.Port > 65535 {
			t.Fatalf("parseSIPURI(%q) accepted %+v", s, u)
		}
		if tr := (Trunk{URI: s}).Transport(); tr != "udp" && tr != "tcp" && tr != "tls" {
			t.Fatalf("Transport() of accepted %q = %q", s, tr)
		}
	})
}
