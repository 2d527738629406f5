package sipmsg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTorture(t *testing.T) {
	files, err := filepath.Glob("testdata/torture/*.sip")
	if err != nil || len(files) == 0 {
		t.Fatalf("no torture messages: %v", err)
	}
	// Valid messages gosip's parser cannot read: they are refused with a
	// 400 the sender can act on rather than misread. (Policy issue: make
	// every valid RFC 4475 message parse.)
	knownLimits := map[string]string{
		"valid_wsinv": "gosip reads an escaped quote in a display name as the end of it",
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
			if why, ok := knownLimits[name]; ok {
				if err == nil {
					t.Fatalf("now parses (%s): move it out of knownLimits", why)
				}
				if BadRequest(data, CodeOf(err), ReasonOf(err), "sbc") == nil {
					t.Fatalf("refused without an answer: %v", err)
				}
				return
			}
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
		{"missing call-id", "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCSeq: 1 INVITE\r\n\r\n", false, nil},
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
