package sipmsg

import (
	"os"
	"testing"
)

// BenchmarkParse parses a browser's INVITE with its SDP offer: what every
// call costs the parser, its checks of the raw lines included.
func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/torture/valid_invite.sip")
	if err != nil {
		b.Fatal(err)
	}
	p := NewParser(Limits{})
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := p.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
