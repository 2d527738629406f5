package sipmsg

import (
	"os"
	"strings"
	"testing"
)

// invite is an INVITE with the given From, To and Call-ID values and extra
// header lines.
func invite(from, to, callID, extra string) string {
	return "INVITE sip:bob@example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n" +
		"From: " + from + "\r\nTo: " + to + "\r\nCall-ID: " + callID + "\r\n" +
		"CSeq: 1 INVITE\r\nContact: <sip:alice@192.0.2.1>\r\nMax-Forwards: 70\r\n" + extra +
		"Content-Length: 0\r\n\r\n"
}

const (
	okFrom = "<sip:alice@example.com>;tag=1"
	okTo   = "<sip:bob@example.com>"
)

// TestControlCharacters: RFC 3261 section 25 allows no control character
// in a start line or header but HTAB, except as a quoted-pair inside a
// quoted-string or comment; text beyond ASCII is UTF-8.
func TestControlCharacters(t *testing.T) {
	tests := []struct {
		name   string
		msg    string
		reason string // "" when the message is accepted
	}{
		{"clean", invite(okFrom, okTo, "abc@host", ""), ""},
		{"NUL in Call-ID", invite(okFrom, okTo, "abc\x00def", ""), "Control character in Call-ID"},
		{"NUL in compact Call-ID", strings.Replace(invite(okFrom, okTo, "abc\x00", ""), "Call-ID:", "i:", 1), "Control character in Call-ID"},
		{"escaped NUL in Call-ID", invite(okFrom, okTo, `"a\`+"\x00"+`"`, ""), "Control character in Call-ID"},
		{"BEL in Call-ID", invite(okFrom, okTo, "abc\x07", ""), "Control character in Call-ID"},
		{"DEL in Call-ID", invite(okFrom, okTo, "abc\x7f", ""), "Control character in Call-ID"},
		{"ESC in Call-ID", invite(okFrom, okTo, "abc\x1b[2J", ""), "Control character in Call-ID"},
		{"bare LF in Call-ID", invite(okFrom, okTo, "abc\ndef", ""), "Control character in Call-ID"},
		{"bare CR in Call-ID", invite(okFrom, okTo, "abc\rdef", ""), "Control character in Call-ID"},
		{"invalid UTF-8 in Call-ID", invite(okFrom, okTo, "abc\xff", ""), "Invalid UTF-8 in Call-ID"},
		{"NUL in From URI user", invite("<sip:al\x00ice@example.com>;tag=1", okTo, "a", ""), "Control character in From"},
		{"NUL in To URI host", invite(okFrom, "<sip:bob@exam\x00ple.com>", "a", ""), "Control character in To"},
		{"raw BEL in display name", invite("\"Al\x07ice\" "+okFrom, okTo, "a", ""), "Control character in From"},
		{"escaped BEL in display name", invite("\"Al\\\x07ice\" "+okFrom, okTo, "a", ""), ""},
		{"escaped NUL in display name", invite("\"Al\\\x00ice\" "+okFrom, okTo, "a", ""), ""},
		{"escaped CR in display name", invite("\"Al\\\rice\" "+okFrom, okTo, "a", ""), "Control character in From"},
		{"escape inside <> is no escape", invite("<sip:al\"\\\x00\"ice@example.com>;tag=1", okTo, "a", ""), "Control character in From"},
		{"escape in an addr-spec quoted param", invite("sip:alice@example.com;p=\"x\\\x00\";tag=1", okTo, "a", ""), ""},
		{"UTF-8 display name", invite("\"Zoë Ünal\" "+okFrom, okTo, "a", ""), ""},
		{"invalid UTF-8 in display name", invite("\"Zo\xeb\" "+okFrom, okTo, "a", ""), "Invalid UTF-8 in From"},
		{"HTAB in a header", invite(okFrom, okTo, "a", "Subject:\tHello\tworld\r\n"), ""},
		{"NUL in Via", strings.Replace(invite(okFrom, okTo, "a", ""), "192.0.2.1;", "192.0.2.1\x00;", 1), "Control character in Via"},
		{"NUL in an extension header", invite(okFrom, okTo, "a", "X-Info: a\x00b\r\n"), "Control character in X-Info"},
		{"NUL in a header name", invite(okFrom, okTo, "a", "X-In\x00fo: ab\r\n"), "Control character in header name"},
		{"not UTF-8 in a header name", invite(okFrom, okTo, "a", "X-In\xfffo: ab\r\n"), "Invalid UTF-8 in header"},
		{"continuation before any header", strings.Replace(invite(okFrom, okTo, "a", ""), "\r\nVia:", "\r\n \x01\r\nVia:", 1), "Control character in header"},
		{"compact From", strings.Replace(invite("<sip:a\x00@example.com>;tag=1", okTo, "a", ""), "From:", "f:", 1), "Control character in From"},
		{"NUL in User-Agent comment, escaped", invite(okFrom, okTo, "a", "User-Agent: phone (build \\\x00)\r\n"), ""},
		{"NUL in User-Agent, raw", invite(okFrom, okTo, "a", "User-Agent: phone \x00\r\n"), "Control character in User-Agent"},
		{"escaped NUL in Subject", invite(okFrom, okTo, "a", "Subject: \"a\\\x00\"\r\n"), "Control character in Subject"},
		{"NUL in a continuation line", invite(okFrom, okTo, "a", "X-Info: a\r\n b\x00\r\n"), "Control character in X-Info"},
		{"quoted-string across a fold", invite("\"Al\r\n \\\x01ice\" "+okFrom, okTo, "a", ""), ""},
		{"NUL in Request-URI", strings.Replace(invite(okFrom, okTo, "a", ""), "sip:bob@", "sip:b\x00ob@", 1), "Control character in start line"},
		{"escaped %00 in URI user", invite("<sip:null-%00-null@example.com>;tag=1", "sip:%00@example.com", "a", ""), ""},
		{"escaped CRLF in URI user", invite("<sip:%0d%0a@example.com>;tag=1", okTo, "a", ""), ""},
		{"NUL in body", strings.Replace(invite(okFrom, okTo, "a", ""), "Content-Length: 0\r\n\r\n", "Content-Length: 3\r\n\r\na\x00b", 1), ""},
	}
	p := NewParser(Limits{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := p.Parse([]byte(tt.msg))
			if tt.reason != "" {
				if err == nil || ReasonOf(err) != tt.reason {
					t.Fatalf("got %v, want %q", err, tt.reason)
				}
				res := BadRequest([]byte(tt.msg), CodeOf(err), ReasonOf(err), "sbc")
				if !strings.HasPrefix(string(res), "SIP/2.0 400 "+tt.reason+"\r\n") {
					t.Errorf("answer %q, want a 400 with the reason", res)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			from, _ := msg.From()
			to, _ := msg.To()
			for _, v := range []string{CallID(msg), from.Address.String(), to.Address.String()} {
				if !Printable(v) || strings.ContainsAny(v, "\t") {
					t.Errorf("recorded value %q is not printable", v)
				}
			}
		})
	}
}

// TestEscapedNullURI: RFC 4475 3.1.1.4 (escnull) is valid and must be
// accepted; its escaped NULs stay escaped in the URIs the SBC records.
func TestEscapedNullURI(t *testing.T) {
	data, err := os.ReadFile("../testdata/torture/escnull.dat")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := NewParser(Limits{}).Parse(data)
	if err != nil {
		t.Fatalf("escnull refused: %v", err)
	}
	from, _ := msg.From()
	to, _ := msg.To()
	for _, u := range []string{from.Address.String(), to.Address.String()} {
		if u != "sip:null-%00-null@example.com" {
			t.Errorf("recorded URI %q, want the escape kept", u)
		}
	}
}

// TestHeaderInt: the leading integer of a header's value, and an absent
// or non-numeric header reported as none; the absent one (most messages'
// Session-Expires) without an allocation.
func TestHeaderInt(t *testing.T) {
	m, err := NewParser(Limits{}).Parse([]byte(invite("<sip:a@192.0.2.1>;tag=1", "<sip:b@example.com>", "c1",
		"Session-Expires: 1800;refresher=uac\r\nMin-SE: x90\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		want int
		ok   bool
	}{
		{"Session-Expires", 1800, true},
		{"Max-Forwards", 70, true},
		{"Min-SE", 0, false},
		{"Retry-After", 0, false},
	} {
		if n, ok := HeaderInt(m, tt.name); n != tt.want || ok != tt.ok {
			t.Errorf("%s: %d, %v; want %d, %v", tt.name, n, ok, tt.want, tt.ok)
		}
	}
	if raceEnabled {
		return
	}
	if a := testing.AllocsPerRun(100, func() { HeaderInt(m, "Retry-After") }); a != 0 {
		t.Errorf("an absent header: %.0f allocations", a)
	}
}
