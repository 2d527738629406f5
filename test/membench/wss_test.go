package membench

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Shape of BenchmarkIdleWSS. SBC_MEM_CONNS overrides wssConns.
const (
	wssConns  = 10000
	wssWarmup = 200 // opened and closed before the baseline
	// wssSources is how many loopback addresses (127.0.1.1 up) the clients
	// dial from, so that no source exceeds the SBC's max_conns_per_ip.
	wssSources  = 100
	wssPerIP    = 200 // the default sip.max_conns_per_ip, kept
	wssDialers  = 8
	wssDeadline = 10 * time.Second // per handshake and upgrade
)

// BenchmarkIdleWSS opens N TLS+WebSocket connections (subprotocol sip) to
// the sbc binary, leaves them idle, and reports kB/idle-wss-conn: the
// change of the SBC's RSS, once stable, divided by N. Run with
// -benchtime=1x: one iteration is the whole measurement.
func BenchmarkIdleWSS(b *testing.B) {
	n := envInt(b, "SBC_MEM_CONNS", wssConns)
	if n > wssSources*wssPerIP {
		b.Fatalf("%d connections exceed %d sources x %d per source", n, wssSources, wssPerIP)
	}
	needFDs(b, n+wssWarmup+200)
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	wss := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	dir := b.TempDir()
	p := startSBC(b, fmt.Sprintf(`
node_id: membench
log: {level: info}
sip:
  listeners: [{name: wss, transport: wss, addr: %q}]
  max_conns_per_ip: %d
admin: {addr: %q}
cdr_spool: %s/spool
cdr: [{type: jsonl, dir: %s/cdr}]
policy: {bans: {file: %s/bans.json}}
`, wss, wssPerIP, admin, dir, dir, dir), admin)
	for b.Loop() {
		warm := openWSS(b, wss, wssWarmup)
		closeAll(warm)
		rss0 := p.settledRSS(b)
		st0 := p.runtimeStats(b)
		p.heapProfile(b, "wss-before")
		conns := openWSS(b, wss, n)
		rss1 := p.settledRSS(b)
		st1 := p.runtimeStats(b)
		p.heapProfile(b, "wss-after")
		report(b, "idle-wss-conn", n, rss0, rss1, st0, st1)
		closeAll(conns)
	}
}

// openWSS opens n upgraded connections from wssSources addresses; any
// failure fails b.
func openWSS(b *testing.B, addr string, n int) []net.Conn {
	b.Helper()
	conns := make([]net.Conn, n)
	errs := make(chan error, wssDialers)
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	for range wssDialers {
		wg.Go(func() {
			for {
				next.Lock()
				k := i
				i++
				next.Unlock()
				if k >= n {
					return
				}
				src := net.IPv4(127, 0, 1, 1+byte(k%wssSources))
				c, err := dialWSS(addr, src)
				if err != nil {
					errs <- fmt.Errorf("connection %d from %s: %w", k, src, err)
					return
				}
				conns[k] = c
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		b.Fatal(err)
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// dialWSS opens a TLS connection from src and completes a WebSocket
// upgrade offering the sip subprotocol, as a browser does.
func dialWSS(addr string, src net.IP) (net.Conn, error) {
	d := &net.Dialer{Timeout: wssDeadline, LocalAddr: &net.TCPAddr{IP: src}}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) // self-signed test SBC
	if err != nil {
		return nil, err
	}
	if err := upgrade(c, addr); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func upgrade(c net.Conn, host string) error {
	_ = c.SetDeadline(time.Now().Add(wssDeadline))
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	// The server sends nothing after the 101 until we do: reading the
	// response through a buffer loses nothing.
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Sec-WebSocket-Protocol") != "sip" {
		return fmt.Errorf("upgrade answered %s, subprotocol %q", res.Status, res.Header.Get("Sec-WebSocket-Protocol"))
	}
	return c.SetDeadline(time.Time{})
}
