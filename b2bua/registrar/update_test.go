package registrar

import (
	"math"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"weak"

	"github.com/ghettovoice/gosip/sip"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// register parses a REGISTER with the given extra header lines.
func register(t *testing.T, headers ...string) sip.Request {
	t.Helper()
	raw := "REGISTER sip:sbc.example SIP/2.0\r\n" +
		"Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks\r\n" +
		"From: <sip:alice@SBC.Example>;tag=65bnmj\r\n" +
		"To: <sip:alice@SBC.Example>\r\n" +
		"Call-ID: reg-1\r\n" +
		"CSeq: 7 REGISTER\r\n" +
		strings.Join(headers, "") +
		"Content-Length: 0\r\n\r\n"
	m, err := sipmsg.NewParser(sipmsg.Limits{}).Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return m.(sip.Request)
}

func TestParseUpdate(t *testing.T) {
	flow := Flow{Target: transport.Target{Kind: transport.WSS, Addr: netip.MustParseAddrPort("127.0.0.1:40000")}}
	tests := []struct {
		name    string
		headers []string
		want    Update
	}{
		{"browser", []string{
			"Contact: <sip:k2v9@df7jal23ls0d.invalid;transport=ws>;+sip.instance=\"<urn:uuid:0f1e>\";reg-id=1;expires=600\r\n",
			"Expires: 300\r\n", "User-Agent: JsSIP 3.10.0\r\n",
		}, Update{Contacts: []ContactParam{{URI: "sip:k2v9@df7jal23ls0d.invalid;transport=ws", Expires: 600, Instance: "<urn:uuid:0f1e>", RegID: 1}},
			Expires: 300, UserAgent: "JsSIP 3.10.0"}},
		{"query", nil, Update{Expires: -1}},
		{"two contacts", []string{"Contact: <sip:a@192.0.2.1:5060>, <sip:b@192.0.2.2>;EXPIRES=0\r\n"},
			Update{Contacts: []ContactParam{{URI: "sip:a@192.0.2.1:5060", Expires: -1}, {URI: "sip:b@192.0.2.2", Expires: 0}}, Expires: -1}},
		{"wildcard", []string{"Contact: *\r\n", "Expires: 0\r\n"}, Update{Wildcard: true, Expires: 0}},
		{"absurd expires", []string{"Contact: <sip:a@192.0.2.1>;expires=99999999999999999999\r\n"},
			Update{Contacts: []ContactParam{{URI: "sip:a@192.0.2.1", Expires: math.MaxInt32}}, Expires: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseUpdate(register(t, tt.headers...), "alice@sbc.example", flow)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.AOR, want.CallID, want.CSeq, want.Flow = "alice@sbc.example", "reg-1", 7, flow
			if !reflect.DeepEqual(u, want) {
				t.Fatalf("got  %+v\nwant %+v", u, want)
			}
		})
	}
}

func TestParseUpdateErrors(t *testing.T) {
	tests := []struct {
		name   string
		header string
	}{
		{"expires not a number", "Contact: <sip:a@192.0.2.1>;expires=soon\r\n"},
		{"expires empty", "Contact: <sip:a@192.0.2.1>;expires\r\n"},
		{"negative reg-id", "Contact: <sip:a@192.0.2.1>;reg-id=-1\r\n"},
		{"long uri", "Contact: <sip:" + strings.Repeat("a", maxContactURILen) + "@192.0.2.1>\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if u, err := ParseUpdate(register(t, tt.header), "alice@sbc.example", Flow{}); err == nil {
				t.Fatalf("no error: %+v", u)
			}
		})
	}
	if _, err := ParseUpdate(register(t), "", Flow{}); err == nil {
		t.Fatal("empty AOR accepted")
	}
}

func TestAOR(t *testing.T) {
	tests := []struct{ uri, want string }{
		{"sip:alice@SBC.Example:5061;transport=tls", "alice@sbc.example"},
		{"sips:Alice@sbc.example", "Alice@sbc.example"},
		{"sip:sbc.example", ""},
	}
	for _, tt := range tests {
		u, err := sipmsg.ParseURI(tt.uri)
		if err != nil {
			t.Fatal(err)
		}
		if got := AOR(u); got != tt.want {
			t.Errorf("AOR(%s) = %q, want %q", tt.uri, got, tt.want)
		}
	}
	if AOR(nil) != "" {
		t.Error("AOR(nil) not empty")
	}
	to, _ := register(t).To()
	if got := AOR(to.Address); got != "alice@sbc.example" {
		t.Errorf("AOR(To) = %q", got)
	}
}

// A binding does not hold the REGISTER's datagram: a parsed message's
// strings point into it (sipmsg.ParseOwned), and a binding lives for
// the registration.
func TestBindingLetsRegisterGo(t *testing.T) {
	s := newTestStore(newClock(), nil)
	data := []byte("REGISTER sip:sbc.example SIP/2.0\r\n" +
		"Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks\r\n" +
		"From: <sip:alice@sbc.example>;tag=65bnmj\r\nTo: <sip:alice@sbc.example>\r\n" +
		"Call-ID: reg-1\r\nCSeq: 7 REGISTER\r\nUser-Agent: JsSIP 3.10.0\r\n" +
		"Contact: <sip:k2v9@df7jal23ls0d.invalid;transport=ws>;+sip.instance=\"<urn:uuid:0f1e>\";reg-id=1\r\n" +
		"Expires: 300\r\nContent-Length: 0\r\n\r\n")
	held := weak.Make(&data[0])
	m, err := sipmsg.NewParser(sipmsg.Limits{}).ParseOwned(data)
	if err != nil {
		t.Fatal(err)
	}
	data = nil
	req := m.(sip.Request)
	flow := Flow{Target: transport.Target{Kind: transport.WSS, Addr: netip.MustParseAddrPort("127.0.0.1:40000")}}
	to, _ := req.To()
	u, err := ParseUpdate(req, AOR(to.Address), flow)
	if err != nil {
		t.Fatal(err)
	}
	m, req, to = nil, nil, nil
	if _, code, reason := s.Apply(u); code != 200 {
		t.Fatalf("register: %d %s", code, reason)
	}
	u = Update{}
	for range 3 {
		runtime.GC()
	}
	if held.Value() != nil {
		t.Fatal("the REGISTER's datagram is still reachable from the binding")
	}
	bs := s.Lookup("alice@sbc.example")
	if len(bs) != 1 || bs[0].CallID != "reg-1" || bs[0].UserAgent != "JsSIP 3.10.0" || bs[0].Instance != "<urn:uuid:0f1e>" {
		t.Fatalf("bindings %+v", bs)
	}
}
