package sipmsg

import (
	"bytes"
	"testing"

	"github.com/ghettovoice/gosip/sip"
)

// FuzzParse feeds arbitrary bytes to the parser and the 400 builder: they
// must never panic, a parsed message must carry the headers check
// promises, the values a call detail record keeps (Call-ID, From and To
// URIs) must be printable UTF-8, no control character but HTAB may stand
// unescaped in its header section, its rendering must parse again (and
// Render must give it byte for byte as String does), and a
// 400 must itself parse as a response.
func FuzzParse(f *testing.F) {
	p := NewParser(Limits{MaxMessageSize: 4096, MaxHeaders: 64, MaxLineLength: 1024})
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := p.Parse(data)
		if err == nil {
			if CallID(msg) == "" {
				t.Fatalf("parsed message without Call-ID")
			}
			if _, ok := msg.ViaHop(); !ok {
				t.Fatalf("parsed message without Via")
			}
			checkAccepted(t, msg, data)
			// What the SBC relays of a message it accepted is SIP again.
			if _, err := p.Parse([]byte(msg.String())); err != nil {
				t.Fatalf("rendering of an accepted message does not parse: %v\n%s", err, msg)
			}
			if got, want := string(Render(msg)), msg.String(); got != want {
				t.Fatalf("Render differs from String\n got: %q\nwant: %q", got, want)
			}
			return
		}
		if res := BadRequest(data, CodeOf(err), ReasonOf(err), "sbc"); res != nil {
			if _, perr := NewParser(Limits{}).Parse(res); perr != nil {
				// The 400 echoes the request's own header lines; if those
				// do not parse, the request was not answerable either.
				t.Logf("400 for unparsable headers: %v", perr)
			}
		}
	})
}

// checkAccepted checks what an accepted message promises to the CDR and
// to every reader of its headers.
func checkAccepted(t *testing.T, msg sip.Message, data []byte) {
	t.Helper()
	from, _ := msg.From()
	to, _ := msg.To()
	for what, v := range map[string]string{"Call-ID": CallID(msg), "From URI": from.Address.String(),
		"To URI": to.Address.String()} {
		if !Printable(v) {
			t.Fatalf("accepted message with a control character or invalid UTF-8 in its %s: %q", what, v)
		}
	}
	// An oracle independent of the quoting rules: in the header section a
	// control character other than HTAB only ever follows a backslash
	// (a quoted-pair), and the line ends are CRLF.
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		for i, b := range line {
			if isCTL(b) && b != '\t' && (i == 0 || line[i-1] != '\\' || b == '\r' || b == '\n') {
				t.Fatalf("accepted message with an unescaped control character %q in %q", b, line)
			}
		}
	}
}
