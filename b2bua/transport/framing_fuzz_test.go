package transport

import (
	"bytes"
	"testing"
)

// FuzzStreamFramer feeds arbitrary bytes to the stream framer: it must never
// panic, never return a message above the size limit, always make progress,
// and return only messages that are a prefix of what is left of the input.
func FuzzStreamFramer(f *testing.F) {
	f.Add([]byte(sipMsg("INVITE", "Content-Length", "v=0\r\n")))
	f.Add([]byte("\r\n\r\n" + sipMsg("BYE", "l", "") + "\r\n"))
	f.Add([]byte("A sip:x SIP/2.0\r\nContent-Length:\r\n 2\r\nl: 2\r\n\r\nab"))
	f.Add([]byte("A sip:x SIP/2.0\r\nContent-Length: 99999999999999999999\r\n\r\n"))
	const maxMsg, maxLine = 512, 64
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		fr := newFramer(r, maxMsg, maxLine)
		for range len(in) + 1 {
			msg, ping, err := fr.next()
			if err != nil {
				return
			}
			if ping {
				continue
			}
			if len(msg) > maxMsg {
				t.Fatalf("message of %d bytes, limit %d", len(msg), maxMsg)
			}
			if !bytes.Contains(in, msg) {
				t.Fatalf("message %q is not in the input", msg)
			}
		}
		t.Fatalf("framer made no progress on %q", in)
	})
}
