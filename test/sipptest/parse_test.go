package sipptest

import (
	"encoding/binary"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// crlf turns a readable multi-line literal into wire form.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

const sep = "----------------------------------------------- 2026-11-21 02:00:09.755917\n"

func TestParseMessages(t *testing.T) {
	invite := crlf("INVITE sip:alice@127.0.0.3:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bK-1\ni: 1-7752@127.0.0.2\nContent-Type: application/sdp\nContent-Length: 10\n\nv=0\nm=audio 6000 RTP/AVP 0\n")
	ringing := crlf("SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bK-1\nVia: SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bK-2\nCall-ID: 1-7752@127.0.0.2\nContent-Length: 0\n\n")
	log := sep + "UDP message sent (592 bytes):\n\n" + invite + "\n" +
		sep + "Ignoring provisional UDP message for transaction invite:\n\nSIP/2.0 100 Trying\n\n" +
		sep + "TCP message received [307] bytes :\n\n" + ringing + "\n"

	msgs := parseMessages(log)
	if len(msgs) != 2 {
		t.Fatalf("parsed %d messages, want 2: %#v", len(msgs), msgs)
	}
	tests := []struct {
		name      string
		msg       Message
		dir       Direction
		transport string
		method    string
		code      int
		callID    string
		vias      int
		body      string
	}{
		{"request with body", msgs[0], Sent, "UDP", "INVITE", 0, "1-7752@127.0.0.2", 1, "v=0\r\nm=audio 6000 RTP/AVP 0\r\n"},
		{"response without body", msgs[1], Received, "TCP", "", 180, "1-7752@127.0.0.2", 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.msg
			if m.Dir != tc.dir || m.Transport != tc.transport {
				t.Errorf("direction %v over %q, want %v over %q", m.Dir, m.Transport, tc.dir, tc.transport)
			}
			if m.Method() != tc.method || m.StatusCode() != tc.code {
				t.Errorf("method %q code %d, want %q %d", m.Method(), m.StatusCode(), tc.method, tc.code)
			}
			if got := m.Header("call-id"); got != tc.callID {
				t.Errorf("Call-ID %q, want %q", got, tc.callID)
			}
			if got := len(m.Headers("Via")); got != tc.vias {
				t.Errorf("%d Via values, want %d", got, tc.vias)
			}
			if got := m.Body(); got != tc.body {
				t.Errorf("body %q, want %q", got, tc.body)
			}
			if got := m.Header("X-Missing"); got != "" {
				t.Errorf("missing header = %q, want empty", got)
			}
		})
	}
}

func TestParseMessagesEmpty(t *testing.T) {
	tests := []struct {
		name string
		log  string
	}{
		{"empty", ""},
		{"no separator", "UDP message sent (1 bytes):\n\nOPTIONS sip:a SIP/2.0\r\n\r\n"},
		{"only notes", sep + "Discarded message for new calls while quitting\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseMessages(tc.log); len(got) != 0 {
				t.Fatalf("parsed %d messages, want none", len(got))
			}
		})
	}
}

func TestParseStats(t *testing.T) {
	header := "StartTime;TotalCallCreated;SuccessfulCall(P);SuccessfulCall(C);FailedCall(C);Retransmissions(C);OutOfCallMsgs(C);DeadCallMsgs(C);FailedRegexpDoesntMatch(C);\n"
	tests := []struct {
		name    string
		in      string
		want    Stats
		wantErr string
	}{
		{
			name: "last line wins",
			in: header +
				"2026-11-21\t02:00:09.651859\t1795226409.651859;0;0;0;0;0;0;0;0;\n" +
				"2026-11-21\t02:00:10.264216\t1795226410.264216;3;1;2;1;4;5;6;1;\n",
			want: Stats{Created: 3, Successful: 2, Failed: 1, Retransmissions: 4, OutOfCallMsgs: 5, DeadCallMsgs: 6},
		},
		{name: "header only", in: header, wantErr: "want a header and a row"},
		{name: "missing column", in: "TotalCallCreated;\n1;\n", wantErr: "no column SuccessfulCall(C)"},
		{name: "not a number", in: header + "x;1;1;zz;0;0;0;0;0;\n", wantErr: "column SuccessfulCall(C)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStats(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			raw := got.Raw
			got.Raw = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("stats %+v, want %+v", got, tc.want)
			}
			if raw["FailedRegexpDoesntMatch(C)"] != "1" {
				t.Errorf("raw FailedRegexpDoesntMatch(C) = %q, want 1", raw["FailedRegexpDoesntMatch(C)"])
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		res  Result
		want int
		ok   bool
	}{
		{"all succeeded", Result{Stats: Stats{Successful: 2}}, 2, true},
		{"too few", Result{Stats: Stats{Successful: 1}}, 2, false},
		{"one failed", Result{ExitCode: 1, Stats: Stats{Successful: 2, Failed: 1}}, 2, false},
		{"bad exit code", Result{ExitCode: 255, Stats: Stats{Successful: 2}}, 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.res.Check(tc.want); (err == nil) != tc.ok {
				t.Fatalf("Check(%d) = %v, want ok=%v", tc.want, err, tc.ok)
			}
		})
	}
}

func TestParseProcAddr(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("fixtures are little-endian /proc/net text")
	}
	tests := []struct {
		name    string
		in      string
		want    netip.AddrPort
		wantErr bool
	}{
		{"ipv4", "0300007F:3AFC", netip.MustParseAddrPort("127.0.0.3:15100"), false},
		{"ipv6 loopback", "00000000000000000000000001000000:13C4", netip.MustParseAddrPort("[::1]:5060"), false},
		{"no port", "0300007F", netip.AddrPort{}, true},
		{"bad ip", "03007F:13C4", netip.AddrPort{}, true},
		{"bad port", "0300007F:XYZ", netip.AddrPort{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcAddr(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBound(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	tcpAddr := l.Addr().(*net.TCPAddr).AddrPort()
	udpAddr := u.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := bound(true, tcpAddr); err != nil {
		t.Skipf("no /proc/net: %v", err)
	}
	tests := []struct {
		name string
		tcp  bool
		addr netip.AddrPort
		want bool
	}{
		{"tcp listener", true, tcpAddr, true},
		{"udp socket", false, udpAddr, true},
		{"tcp port of another ip", true, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.9"), tcpAddr.Port()), false},
		{"udp socket is no tcp listener", true, udpAddr, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bound(tc.tcp, tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("bound(%v, %v) = %v, want %v", tc.tcp, tc.addr, got, tc.want)
			}
		})
	}
}

// recordingTB records Fatal and Skip instead of ending the test.
type recordingTB struct {
	testing.TB
	fatal, skipped bool
}

func (r *recordingTB) Helper()               {}
func (r *recordingTB) Fatal(...any)          { r.fatal = true }
func (r *recordingTB) Skip(...any)           { r.skipped = true }
func (r *recordingTB) Fatalf(string, ...any) { r.fatal = true }

func TestRequireWithoutSipp(t *testing.T) {
	tests := []struct {
		name        string
		ci          string
		wantFatal   bool
		wantSkipped bool
	}{
		{"local run skips", "", false, true},
		{"ci=false skips", "false", false, true},
		{"ci fails", "true", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			t.Setenv("CI", tc.ci)
			if Available() {
				t.Fatal("Available() = true with an empty PATH")
			}
			r := &recordingTB{TB: t}
			Require(r)
			if r.fatal != tc.wantFatal || r.skipped != tc.wantSkipped {
				t.Fatalf("fatal=%v skipped=%v, want fatal=%v skipped=%v", r.fatal, r.skipped, tc.wantFatal, tc.wantSkipped)
			}
		})
	}
}
