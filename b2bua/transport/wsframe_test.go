package transport

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// rawWS is a WebSocket client that writes frames byte for byte as the
// test says, to check the server's side of RFC 6455.
type rawWS struct {
	c  net.Conn
	br *bufio.Reader
}

// dialRawWS connects to a WS (clientTLS nil) or WSS listener and upgrades
// with the sip subprotocol; extra is written right after the request, in
// the same write.
func dialRawWS(t *testing.T, addr string, clientTLS *tls.Config, extra []byte) *rawWS {
	t.Helper()
	var c net.Conn
	var err error
	if clientTLS != nil {
		c, err = tls.Dial("tcp", addr, clientTLS)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write(append([]byte(req), extra...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The example of RFC 6455 section 1.3.
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
		res.Header.Get("Sec-WebSocket-Protocol") != "sip" {
		t.Fatalf("upgrade answered %s %v", res.Status, res.Header)
	}
	return &rawWS{c: c, br: br}
}

// clientFrame is a masked client frame.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := []byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, mask...)
	for i, x := range payload {
		b = append(b, x^mask[i%4])
	}
	return b
}

func (w *rawWS) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := w.c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// readFrame reads one server frame, which must be final and unmasked.
func (w *rawWS) readFrame(t *testing.T) (op byte, payload []byte) {
	t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if h[0]&0xF0 != 0x80 || h[1]&0x80 != 0 {
		t.Fatalf("frame header % x: want FIN, no RSV, unmasked", h)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var x [2]byte
		_, _ = io.ReadFull(w.br, x[:])
		n = uint64(binary.BigEndian.Uint16(x[:]))
	case 127:
		var x [8]byte
		_, _ = io.ReadFull(w.br, x[:])
		n = binary.BigEndian.Uint64(x[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(w.br, payload); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h[0] & 0x0F, payload
}

// expectClose reads a close frame with code, then the end of the stream.
func (w *rawWS) expectClose(t *testing.T, code uint16) {
	t.Helper()
	op, p := w.readFrame(t)
	if op != wsClose || len(p) < 2 || binary.BigEndian.Uint16(p) != code {
		t.Fatalf("got frame op %d payload % x, want close %d", op, p, code)
	}
	if _, err := w.br.ReadByte(); err == nil {
		t.Fatal("data after the close frame")
	}
}

func TestWSFraming(t *testing.T) {
	msg := []byte(sipMsg("OPTIONS", "Content-Length", ""))
	big := []byte(sipMsg("MESSAGE", "Content-Length", string(bytes.Repeat([]byte("x"), 70000))))
	serverTLS, clientTLS := testTLS(t)
	tests := []struct {
		name  string
		write func(t *testing.T, w *rawWS)
		want  [][]byte // messages delivered, in order
		close uint16   // close code expected afterwards; 0: none, the conn stays
	}{
		{"one text frame", func(t *testing.T, w *rawWS) { w.write(t, clientFrame(true, wsText, msg)) }, [][]byte{msg}, 0},
		{"binary frame", func(t *testing.T, w *rawWS) { w.write(t, clientFrame(true, wsBinary, msg)) }, [][]byte{msg}, 0},
		{"two frames in one write", func(t *testing.T, w *rawWS) {
			w.write(t, append(clientFrame(true, wsText, msg), clientFrame(true, wsText, msg)...))
		}, [][]byte{msg, msg}, 0},
		{"byte by byte", func(t *testing.T, w *rawWS) {
			for _, b := range clientFrame(true, wsText, msg) {
				w.write(t, []byte{b})
				time.Sleep(time.Millisecond)
			}
		}, [][]byte{msg}, 0},
		{"fragments with a ping between", func(t *testing.T, w *rawWS) {
			w.write(t, clientFrame(false, wsText, msg[:10]))
			w.write(t, clientFrame(true, wsPing, []byte("p")))
			w.write(t, clientFrame(false, wsContinuation, msg[10:20]))
			w.write(t, clientFrame(true, wsContinuation, msg[20:]))
			if op, p := w.readFrame(t); op != wsPong || string(p) != "p" {
				t.Errorf("got op %d %q, want pong p", op, p)
			}
		}, [][]byte{msg}, 0},
		{"64-bit length", func(t *testing.T, w *rawWS) { w.write(t, clientFrame(true, wsText, big)) }, [][]byte{big}, 0},
		{"unmasked frame", func(t *testing.T, w *rawWS) { w.write(t, []byte{0x81, 0x02, 'h', 'i'}) }, nil, wsCloseProtocol},
		{"RSV1 set", func(t *testing.T, w *rawWS) {
			f := clientFrame(true, wsText, msg)
			f[0] |= 0x40
			w.write(t, f)
		}, nil, wsCloseProtocol},
		{"unknown opcode", func(t *testing.T, w *rawWS) { w.write(t, clientFrame(true, 0x3, msg)) }, nil, wsCloseProtocol},
		{"continuation first", func(t *testing.T, w *rawWS) { w.write(t, clientFrame(true, wsContinuation, msg)) }, nil, wsCloseProtocol},
		{"new message inside a fragmented one", func(t *testing.T, w *rawWS) {
			w.write(t, clientFrame(false, wsText, msg[:10]))
			w.write(t, clientFrame(true, wsText, msg))
		}, nil, wsCloseProtocol},
		{"fragmented ping", func(t *testing.T, w *rawWS) { w.write(t, clientFrame(false, wsPing, nil)) }, nil, wsCloseProtocol},
		{"ping of 126 bytes", func(t *testing.T, w *rawWS) {
			w.write(t, clientFrame(true, wsPing, make([]byte, 126)))
		}, nil, wsCloseProtocol},
		// The server closes on the header, before the payload is all sent:
		// the client's write may fail.
		{"frame above the limit", func(t *testing.T, w *rawWS) {
			_, _ = w.c.Write(clientFrame(true, wsText, make([]byte, 100001)))
		}, nil, wsCloseTooBig},
		{"fragments above the limit", func(t *testing.T, w *rawWS) {
			w.write(t, clientFrame(false, wsText, make([]byte, 60000)))
			_, _ = w.c.Write(clientFrame(true, wsContinuation, make([]byte, 40001)))
		}, nil, wsCloseTooBig},
		{"close handshake", func(t *testing.T, w *rawWS) {
			w.write(t, clientFrame(true, wsClose, closePayload(wsCloseNormal)))
		}, nil, wsCloseNormal},
	}
	for _, secure := range []bool{false, true} {
		kind, conf, cliConf := WS, (*tls.Config)(nil), (*tls.Config)(nil)
		if secure {
			kind, conf, cliConf = WSS, serverTLS, clientTLS
		}
		for _, tc := range tests {
			t.Run(kind.String()+"/"+tc.name, func(t *testing.T) {
				checkRoutines(t)
				l, rec := newTestLayer(t, Limits{MaxMessageSize: 100000})
				addr := listen(t, l, "ws", kind, conf)
				w := dialRawWS(t, addr.String(), cliConf, nil)
				tc.write(t, w)
				for i, want := range tc.want {
					if p := rec.next(t); !bytes.Equal(p.Data, want) {
						t.Fatalf("message %d: %d bytes, want %d", i, len(p.Data), len(want))
					}
				}
				if tc.close != 0 {
					w.expectClose(t, tc.close)
					eventually(t, "conn removed", func() bool { return l.Stats().Open[kind] == 0 })
					return
				}
				rec.none(t)
				// Still open: a message both ways.
				w.write(t, clientFrame(true, wsText, msg))
				p := rec.next(t)
				if err := l.Send(Target{Conn: p.Conn}, msg); err != nil {
					t.Fatal(err)
				}
				if op, got := w.readFrame(t); op != wsText || !bytes.Equal(got, msg) {
					t.Fatalf("got op %d %q", op, got)
				}
			})
		}
	}
}

// TestWSDataWithUpgrade checks that frames sent in the same write as the
// upgrade request (buffered by net/http, or by crypto/tls) are delivered.
func TestWSDataWithUpgrade(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	msg := []byte(sipMsg("REGISTER", "Content-Length", ""))
	for _, kind := range []Kind{WS, WSS} {
		t.Run(kind.String(), func(t *testing.T) {
			checkRoutines(t)
			l, rec := newTestLayer(t, Limits{})
			conf, cliConf := (*tls.Config)(nil), (*tls.Config)(nil)
			if kind == WSS {
				conf, cliConf = serverTLS, clientTLS
			}
			addr := listen(t, l, "ws", kind, conf)
			dialRawWS(t, addr.String(), cliConf, append(clientFrame(true, wsText, msg), clientFrame(true, wsText, msg)...))
			for range 2 {
				if p := rec.next(t); !bytes.Equal(p.Data, msg) {
					t.Fatalf("got %q", p.Data)
				}
			}
		})
	}
}

// TestWSIdleHasNoGoroutine checks that idle WebSockets cost no goroutine:
// 50 open connections that sent a message each leave the goroutine count
// where one connection left it.
func TestWSIdleHasNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("idle WebSockets are parked in epoll on Linux only")
	}
	checkRoutines(t)
	serverTLS, clientTLS := testTLS(t)
	l, rec := newTestLayer(t, Limits{})
	addr := listen(t, l, "wss", WSS, serverTLS)
	msg := []byte(sipMsg("OPTIONS", "Content-Length", ""))
	open := func(n int) {
		for range n {
			w := dialRawWS(t, addr.String(), clientTLS, nil)
			w.write(t, clientFrame(true, wsText, msg))
			rec.next(t)
		}
	}
	settled := func() int {
		// Readers return once they parked their connection.
		n := runtime.NumGoroutine()
		for range 50 {
			time.Sleep(20 * time.Millisecond)
			m := runtime.NumGoroutine()
			if m == n {
				break
			}
			n = m
		}
		return n
	}
	open(1)
	base := settled()
	open(50)
	if got := settled(); got > base+5 {
		t.Fatalf("%d goroutines with 51 idle connections, %d with 1", got, base)
	}
	if got := l.Stats().Open[WSS]; got != 51 {
		t.Fatalf("%d connections open, want 51", got)
	}
}

// discardEvents counts what a wsReader hands out.
type discardEvents struct{ messages int }

func (d *discardEvents) message([]byte)             { d.messages++ }
func (d *discardEvents) control(byte, []byte) error { return nil }

// TestWSHeaderAloneHoldsLittle checks that a frame header announcing a
// large payload does not make the reader allocate it before it arrives.
func TestWSHeaderAloneHoldsLittle(t *testing.T) {
	r := &wsReader{max: 65535}
	var ev discardEvents
	f := clientFrame(true, wsText, make([]byte, 60000))
	if err := r.feed(f[:8+100], &ev); err != nil { // header, mask and 100 bytes
		t.Fatal(err)
	}
	if c := cap(r.msg); c > wsMsgPrealloc {
		t.Fatalf("holding %d bytes after 100 of a 60000-byte frame", c)
	}
	if err := r.feed(f[8+100:], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.messages != 1 || !r.idle() {
		t.Fatalf("%d messages, idle %v", ev.messages, r.idle())
	}
}
