package app

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
)

// takeTCP and takeUDP hold a free loopback port until the test ends, as
// another process listening there would.
func takeTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// takeTCPOnly takes a TCP port whose UDP port of the same number is free
// when it returns, for a listener that binds both (the WebRTC port binds
// UDP first): an unrelated process holding that UDP port on a busy
// machine would otherwise fail the start on UDP, not on the TCP port the
// test took. It tries a bounded number of ports.
func takeTCPOnly(t *testing.T) string {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		if c, err := net.ListenPacket("udp", addr); err == nil {
			c.Close()
			t.Cleanup(func() { ln.Close() })
			return addr
		}
		ln.Close()
	}
	t.Fatal("no TCP port with its UDP twin free in 50 tries")
	return ""
}

func takeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String()
}

// waitGoroutines waits until no more goroutines run than before: a failed
// start must leave none behind.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines left after a failed start: %d > %d\n%s", runtime.NumGoroutine(), before,
				buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startConfig is testConfig with a CDR spool and writer in dir, the admin
// server and a second listener on free ports: what a failed start must
// give back.
func startConfig(dir string) *config.Config {
	c := testConfig()
	c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Name: "tcp", Transport: "tcp", Addr: "127.0.0.1:0"})
	c.CDRSpool = filepath.Join(dir, "spool")
	c.CDR = []config.CDRWriter{{Type: config.CDRJSONL, Dir: filepath.Join(dir, "cdr")}}
	c.Admin.Addr = "127.0.0.1:0"
	return c
}

// TestStartPortTaken: with one of its ports taken, New fails with a
// ListenError naming the config key, the listener and the address, leaves
// no goroutine, and releases what it had opened: the same config starts
// once the port is free (the spool lock and the other ports are back).
func TestStartPortTaken(t *testing.T) {
	tests := []struct {
		name    string
		take    func(t *testing.T) string
		set     func(c *config.Config, addr string)
		key     string
		what    string
		network string
	}{
		{"sip udp", takeUDP, func(c *config.Config, a string) { c.SIP.Listeners[0].Addr = a }, "sip.listeners[0]", `listener "udp"`, "udp"},
		{"sip tcp", takeTCP, func(c *config.Config, a string) { c.SIP.Listeners[1].Addr = a }, "sip.listeners[1]", `listener "tcp"`, "tcp"},
		{"sip tls", takeTCP, func(c *config.Config, a string) { addListener(c, "tls", a) }, "sip.listeners[2]", `listener "tls"`, "tls"},
		{"sip ws", takeTCP, func(c *config.Config, a string) { addListener(c, "ws", a) }, "sip.listeners[2]", `listener "ws"`, "ws"},
		{"sip wss", takeTCP, func(c *config.Config, a string) { addListener(c, "wss", a) }, "sip.listeners[2]", `listener "wss"`, "wss"},
		{"admin", takeTCP, func(c *config.Config, a string) { c.Admin.Addr = a }, "admin.addr", "admin server", "tcp"},
		{"web phone", takeTCP, func(c *config.Config, a string) { c.WebPhone.Enabled, c.WebPhone.Addr = true, a }, "webphone.addr", "web phone", "tcp"},
		{"webrtc udp", takeUDP, func(c *config.Config, a string) { setWebRTC(c, a) }, "media.webrtc_port", "WebRTC media", "udp"},
		{"webrtc tcp", takeTCPOnly, func(c *config.Config, a string) { setWebRTC(c, a) }, "media.webrtc_port", "WebRTC media", "tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.take(t)
			c := startConfig(t.TempDir())
			tt.set(c, addr)
			before := runtime.NumGoroutine()
			a, err := New(c, slog.New(slog.DiscardHandler), Options{})
			if err == nil {
				a.Close()
				t.Fatal("started with its port taken")
			}
			var le *ListenError
			if a != nil || !errors.As(err, &le) || !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("New = %v, %v; want nil and a ListenError for EADDRINUSE", a, err)
			}
			if le.Key != tt.key || le.What != tt.what || le.Network != tt.network || le.Addr != addr {
				t.Errorf("ListenError %+v, want key %s, what %s, %s %s", le, tt.key, tt.what, tt.network, addr)
			}
			want := tt.key + " (" + tt.what + ", " + tt.network + " " + addr + "): address already in use"
			if err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			waitGoroutines(t, before)
			// Everything else was given back: the same config (the port
			// freed) starts.
			c.SIP.Listeners, c.Admin.Addr, c.WebPhone.Addr, c.Media.WebRTCPort = startConfig("").SIP.Listeners, "127.0.0.1:0", "", 0
			a, err = New(c, slog.New(slog.DiscardHandler), Options{})
			if err != nil {
				t.Fatalf("start after the failed one: %v", err)
			}
			if err := a.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
}

func addListener(c *config.Config, transport, addr string) {
	c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Name: transport, Transport: transport, Addr: addr})
}

// setWebRTC puts the shared WebRTC port on addr's port, with the RTP
// ports below the ephemeral range the taken port came from.
func setWebRTC(c *config.Config, addr string) {
	_, p, _ := net.SplitHostPort(addr)
	c.Media.WebRTCPort, _ = strconv.Atoi(p)
	c.Media.RTPPorts = "20000-20999"
}

// TestStartSpoolLocked: a second SBC on the same CDR spool does not start,
// says why, and leaves the first one and no goroutine of its own behind.
func TestStartSpoolLocked(t *testing.T) {
	dir := t.TempDir()
	first, err := New(startConfig(dir), slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	before := runtime.NumGoroutine()
	second, err := New(startConfig(dir), slog.New(slog.DiscardHandler), Options{})
	if err == nil {
		second.Close()
		t.Fatal("a second SBC started on the same spool")
	}
	want := "cdr_spool: " + filepath.Join(dir, "spool") + " is in use by another process"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want %q", err, want)
	}
	waitGoroutines(t, before)
	if !first.Ready().Ready {
		t.Errorf("the first SBC is not ready any more: %+v", first.Ready())
	}
}

// TestStartCertUnreadable: a TLS listener whose certificate cannot be read
// (here a directory, which no one can read as a file, root included)
// fails the start with the key and the file.
func TestStartCertUnreadable(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startConfig(t.TempDir())
	addListener(c, "wss", "127.0.0.1:0")
	c.SIP.TLS.CertFile, c.SIP.TLS.KeyFile = dir, key
	before := runtime.NumGoroutine()
	a, err := New(c, slog.New(slog.DiscardHandler), Options{})
	if err == nil {
		a.Close()
		t.Fatal("started with an unreadable certificate")
	}
	if !strings.HasPrefix(err.Error(), "sip.tls.cert_file "+dir+", key_file "+key+": ") || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("error %q, want it to name sip.tls.cert_file, the files and the cause", err)
	}
	waitGoroutines(t, before)
}

// TestCloseTwice: Close is safe to call again after a start.
func TestCloseTwice(t *testing.T) {
	a, err := New(startConfig(t.TempDir()), slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}
