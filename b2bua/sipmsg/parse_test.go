package sipmsg

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ghettovoice/gosip/sip"
)

// parseVerdicts is what RFC 4475 and RFC 5118 say of each of their
// messages, at the parser: parsed (0), refused with a code, or either
// (liberal: the RFC lets an element accept what it may refuse). What the
// SBC then answers to a parsed one is test/e2e's TestRFC4475Torture.
const liberal = -1

var parseVerdicts = map[string]int{
	// RFC 4475 3.1.1, valid messages.
	"wsinv": 0, "intmeth": 0, "esc01": 0, "escnull": 0, "esc02": 0, "lwsdisp": 0, "longreq": 0, "dblreq": 0,
	"semiuri": 0, "transports": 0, "mpart01": 0, "unreason": 0, "noreason": 0,
	// 3.1.2, invalid messages.
	"badinv01": 400, "clerr": 400, "ncl": 400, "scalar02": 400, "scalarlg": 400, "quotbal": 400,
	"ltgtruri": 400, "lwsruri": 400, "lwsstart": liberal, "trws": liberal, "escruri": liberal, "baddate": 0,
	"regbadct": liberal, "badaspec": liberal, "baddn": liberal, "badvers": 505, "mismatch01": 400,
	"mismatch02": 501, "bigcode": 400,
	// 3.2 and 3.3: parsed, then answered by what they mean (416 for an
	// unknown Request-URI scheme), except these.
	"badbranch": 0, "insuf": 400, "unkscm": 0, "novelsc": 0, "unksm2": 0, "bext01": 0, "invut": 0,
	"regaut01": 0, "multi01": 400, "mcl01": 400, "bcast": 0, "zeromf": 0, "cparam01": 0, "cparam02": 0,
	"regescrt": 0, "sdp01": 0, "inv2543": 0,
	// RFC 5118 section 4.
	"ipv6-good": 0, "ipv6-bad": 400, "port-ambiguous": 0, "port-unambiguous": 0,
	"via-received-param-with-delim": 0, "via-received-param-no-delim": 0, "ipv6-in-sdp": 0,
	"mult-ip-in-header": 0, "mult-ip-in-sdp": 0, "ipv4-mapped-ipv6": 0, "ipv6-bug-abnf-3-colons": liberal,
	"ipv6-correct-abnf-2-colons": 0,
}

func TestTorture(t *testing.T) {
	var files []string
	for _, dir := range []string{"../testdata/torture", "../testdata/torture5118"} {
		f, err := filepath.Glob(filepath.Join(dir, "*.dat"))
		if err != nil || len(f) == 0 {
			t.Fatalf("no torture messages in %s: %v", dir, err)
		}
		files = append(files, f...)
	}
	if len(files) != len(parseVerdicts) || len(files) != 49+12 {
		t.Fatalf("%d messages, %d verdicts, RFC 4475 and 5118 have 61", len(files), len(parseVerdicts))
	}
	p := NewParser(Limits{})
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".dat")
		want, ok := parseVerdicts[name]
		if !ok {
			t.Errorf("%s has no verdict", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := p.Parse(data)
			switch {
			case want == liberal:
			case want == 0 && err != nil:
				t.Fatalf("valid message refused: %v", err)
			case want != 0 && err == nil:
				t.Fatalf("invalid message accepted:\n%s", msg)
			case want != 0 && CodeOf(err) != want:
				t.Fatalf("refused with %d (%v), RFC: %d", CodeOf(err), err, want)
			}
			if err == nil {
				roundTrip(t, p, msg)
			}
		})
	}
}

// roundTrip checks that a parsed message renders into one that parses to
// the same rendering: what the SBC relays of it is still SIP.
func roundTrip(t *testing.T, p *Parser, msg sip.Message) {
	t.Helper()
	text := msg.String()
	again, err := p.Parse([]byte(text))
	if err != nil {
		t.Fatalf("rendered message does not parse (%v):\n%s", err, text)
	}
	if again.String() != text {
		t.Fatalf("rendering changed on a second pass:\n%s\n---\n%s", text, again.String())
	}
}

// TestTortureSamples: the hand-made samples of testdata/torture (valid_
// parse, invalid_ do not).
func TestTortureSamples(t *testing.T) {
	files, err := filepath.Glob("testdata/torture/*.sip")
	if err != nil || len(files) == 0 {
		t.Fatalf("no torture messages: %v", err)
	}
	p := NewParser(Limits{})
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".sip")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := p.Parse(data)
			valid := strings.HasPrefix(name, "valid_")
			if valid && err != nil {
				t.Fatalf("valid message refused: %v", err)
			}
			if !valid && err == nil {
				t.Fatalf("invalid message accepted:\n%s", msg)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	base := "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n"
	tests := []struct {
		name   string
		msg    string
		lim    Limits
		reason string
	}{
		{"ok", base + "Content-Length: 0\r\n\r\n", Limits{}, ""},
		{"too large", base + "\r\n" + strings.Repeat("x", 700), Limits{MaxMessageSize: 600}, "Message Too Large"},
		{"too many headers", base + strings.Repeat("X-A: 1\r\n", 20) + "\r\n", Limits{MaxHeaders: 16}, "Too many headers"},
		{"long line", base + "X-A: " + strings.Repeat("a", 300) + "\r\n\r\n", Limits{MaxLineLength: 256}, "Header line too long"},
		{"no end of headers", base, Limits{}, "Missing end of headers"},
		{"bad length", base + "Content-Length: abc\r\n\r\n", Limits{}, "Bad Content-Length"},
		{"conflicting length", base + "Content-Length: 1\r\nl: 2\r\n\r\nab", Limits{}, "Conflicting Content-Length"},
		{"body shorter than length", base + "Content-Length: 10\r\n\r\nab", Limits{}, "Content-Length larger than body"},
		{"missing via", strings.Replace(base, "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n", "", 1) + "\r\n", Limits{}, "Missing or bad Via"},
		{"missing from", strings.Replace(base, "From: <sip:a@b>;tag=1\r\n", "", 1) + "\r\n", Limits{}, "Missing or bad From"},
		{"cseq method mismatch", strings.Replace(base, "1 OPTIONS", "1 INVITE", 1) + "\r\n", Limits{}, "CSeq method does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewParser(tt.lim).Parse([]byte(tt.msg))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || ReasonOf(err) != tt.reason {
				t.Fatalf("got %v, want reason %q", err, tt.reason)
			}
		})
	}
}

func TestParseCutsBodyToContentLength(t *testing.T) {
	msg := "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 2\r\n\r\nabcdef"
	m, err := NewParser(Limits{}).Parse([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if m.Body() != "ab" {
		t.Fatalf("body %q", m.Body())
	}
}

func TestBadRequest(t *testing.T) {
	tests := []struct {
		name    string
		msg     string
		answer  bool
		contain []string
	}{
		{"answerable", "INVITE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h:5060;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK0\r\nf: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: -1\r\n\r\n",
			true, []string{"SIP/2.0 400 Bad Content-Length\r\n", "v: SIP/2.0/UDP h:5060;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK0\r\n", "Call-ID: x\r\n", "Content-Length: 0\r\n\r\n"}},
		{"ack never answered", "ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 ACK\r\n\r\n", false, nil},
		{"response never answered", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n", false, nil},
		{"missing call-id, from and to (RFC 4475 3.3.1): answered", "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\n\r\n",
			true, []string{"SIP/2.0 400 Bad Content-Length\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\n"}},
		{"missing cseq", "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\n\r\n", false, nil},
		{"garbage", "\x00\x01hello\r\n\r\n", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := BadRequest([]byte(tt.msg), 400, "Bad Content-Length", "sbc")
			if (out != nil) != tt.answer {
				t.Fatalf("answer=%v, got %q", tt.answer, out)
			}
			for _, c := range tt.contain {
				if !strings.Contains(string(out), c) {
					t.Errorf("missing %q in\n%s", c, out)
				}
			}
		})
	}
}

// TestParseAddresses: the address forms phones send, and what they read as.
func TestParseAddresses(t *testing.T) {
	cases := []struct {
		header, want string // want: the From's rendering; "" when refused
	}{
		{`From: "Alice \"A\" Smith" <sip:alice@example.com>;tag=1`, `From: "Alice \"A\" Smith" <sip:alice@example.com>;tag=1`},
		{`From: Jürgen Müller <sip:j@example.com>;tag=1`, `From: "Jürgen Müller" <sip:j@example.com>;tag=1`},
		{`From: sip:bob@[2001:db8::1]:5070;tag=1`, `From: <sip:bob@[2001:db8::1]:5070>;tag=1`},
		{`From: <tel:+12125551234;phone-context=+1>;tag=1`, `From: <tel:+12125551234;phone-context=+1>;tag=1`},
		{`From: <im:alice@example.com> ; tag = 1`, `From: <im:alice@example.com>;tag=1`},
		{`From: Bell, Alexander <sip:a@example.com>;tag=1`, ""},
		{`From: <sip:a@exa mple.com>;tag=1`, ""},
		{`From: <sip:a@[2001:db8::1>;tag=1`, ""},
		{`From: "unterminated <sip:a@example.com>;tag=1`, ""},
	}
	for _, c := range cases {
		raw := "OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n" + c.header +
			"\r\nTo: <sip:b@example.com>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n"
		msg, err := NewParser(Limits{}).Parse([]byte(raw))
		if c.want == "" {
			if err == nil {
				t.Errorf("%s: accepted", c.header)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.header, err)
			continue
		}
		if from, _ := msg.From(); from.String() != c.want {
			t.Errorf("%s: reads as %s, want %s", c.header, from.String(), c.want)
		}
	}
}

// TestParseOwnedIsParse: parsing a buffer in place gives what Parse gives
// (the same message rendered, the same error) for every message of the
// torture corpora.
func TestParseOwnedIsParse(t *testing.T) {
	var files []string
	for _, pattern := range []string{"../testdata/torture/*.dat", "../testdata/torture5118/*.dat", "testdata/torture/*.sip"} {
		f, _ := filepath.Glob(pattern)
		files = append(files, f...)
	}
	if len(files) < 40 {
		t.Fatalf("only %d messages in the corpora", len(files))
	}
	p := NewParser(Limits{})
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := p.Parse(data)
		got, gotErr := p.ParseOwned(bytes.Clone(data))
		if (wantErr == nil) != (gotErr == nil) || wantErr != nil && wantErr.Error() != gotErr.Error() {
			t.Errorf("%s: Parse: %v, ParseOwned: %v", filepath.Base(f), wantErr, gotErr)
			continue
		}
		if wantErr != nil {
			continue
		}
		if g, w := string(Render(got)), string(Render(want)); g != w {
			t.Errorf("%s: ParseOwned renders\n%q\nParse renders\n%q", filepath.Base(f), g, w)
		}
	}
}
