package kamailio

import (
	"bytes"
	"net"
	"sync/atomic"
	"testing"
)

// optionsWatch counts the OPTIONS an SBC answered 200, from the SIP
// messages it exports over HEP (hep.addr) to this collector: the proof
// that the LB's probes reach the node and are answered.
type optionsWatch struct {
	conn     net.PacketConn
	answered atomic.Int64
}

// newOptionsWatch listens on ip:0 (UDP) until the test ends.
func newOptionsWatch(t *testing.T, ip string) *optionsWatch {
	t.Helper()
	c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	w := &optionsWatch{conn: c}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			// A HEP v3 packet carries the SIP message as its payload
			// chunk, as sent: a 200 whose CSeq names OPTIONS.
			p := buf[:n]
			if i := bytes.Index(p, []byte("SIP/2.0 200 ")); i >= 0 && bytes.Contains(p[i:], []byte(" OPTIONS\r\n")) {
				w.answered.Add(1)
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return w
}

func (w *optionsWatch) addr() string { return w.conn.LocalAddr().String() }
