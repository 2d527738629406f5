package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startYAML is a config on free loopback ports whose CDR spool and files
// are in dir, with one SIP listener ("{name, transport, addr}") and the
// YAML of more top-level keys in extra.
func startYAML(dir, listener, extra string) string {
	return fmt.Sprintf(`
sip:
  listeners:
    - %s
cdr_spool: %q
cdr: [{type: jsonl, dir: %q}]
policy: {bans: {file: ""}}
%s`, listener, filepath.Join(dir, "spool"), filepath.Join(dir, "cdr"), extra)
}

// holdTCP and holdUDP keep a loopback port busy for the test, as another
// process would.
func holdTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func holdUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String()
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// checkFailedStart runs the binary on cfg and checks that it exits 1 and
// that stderr ends with want, without a panic.
func checkFailedStart(t *testing.T, cfg, want string) {
	t.Helper()
	code, _, stderr := sbc(t, nil, "-config", writeFile(t, cfg))
	if code != 1 {
		t.Errorf("exit status %d, want 1\n%s", code, stderr)
	}
	if got := lastLine(stderr); got != want {
		t.Errorf("last line of stderr:\n  %s\nwant\n  %s\nstderr:\n%s", got, want, stderr)
	}
	if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
		t.Errorf("stderr shows a panic:\n%s", stderr)
	}
}

// TestStartPortTaken: for each kind of listener, with its port held by
// another socket, sbc exits 1 and its last line names the config key, the
// listener and the address.
func TestStartPortTaken(t *testing.T) {
	udp := `{name: sip, transport: udp, addr: "127.0.0.1:0"}`
	tests := []struct {
		name string
		hold func(*testing.T) string
		cfg  func(dir, addr string) string
		want string // %s: the held address
	}{
		{"sip udp", holdUDP, func(d, a string) string { return startYAML(d, listener("udp", a), "") },
			`sip.listeners[0] (listener "udp", udp %s)`},
		{"sip tcp", holdTCP, func(d, a string) string { return startYAML(d, listener("tcp", a), "") },
			`sip.listeners[0] (listener "tcp", tcp %s)`},
		{"sip tls", holdTCP, func(d, a string) string { return startYAML(d, listener("tls", a), "") },
			`sip.listeners[0] (listener "tls", tls %s)`},
		{"sip ws", holdTCP, func(d, a string) string { return startYAML(d, listener("ws", a), "") },
			`sip.listeners[0] (listener "ws", ws %s)`},
		{"sip wss", holdTCP, func(d, a string) string { return startYAML(d, listener("wss", a), "") },
			`sip.listeners[0] (listener "wss", wss %s)`},
		{"admin", holdTCP, func(d, a string) string { return startYAML(d, udp, fmt.Sprintf("admin: {addr: %q}\n", a)) },
			`admin.addr (admin server, tcp %s)`},
		{"web phone", holdTCP, func(d, a string) string { return startYAML(d, udp, fmt.Sprintf("webphone: {addr: %q}\n", a)) },
			`webphone.addr (web phone, tcp %s)`},
		{"webrtc udp", holdUDP, func(d, a string) string { return startYAML(d, udp, webrtc(a)) },
			`media.webrtc_port (WebRTC media, udp %s)`},
		{"webrtc tcp", holdTCP, func(d, a string) string { return startYAML(d, udp, webrtc(a)) },
			`media.webrtc_port (WebRTC media, tcp %s)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.hold(t)
			checkFailedStart(t, tt.cfg(t.TempDir(), addr), "sbc: not started: "+fmt.Sprintf(tt.want, addr)+": address already in use")
		})
	}
}

func listener(transport, addr string) string {
	return fmt.Sprintf("{name: %s, transport: %s, addr: %q}", transport, transport, addr)
}

// webrtc puts media.webrtc_port on addr's port, the RTP ports below the
// ephemeral range it came from.
func webrtc(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("media: {webrtc_port: %s, rtp_ports: 20000-20999}\n", port)
}

// TestStartRefused: the other start-up failures end the same way, with
// one line naming the key and the file or address.
func TestStartRefused(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(key, []byte("no key"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The certificate is a directory: unreadable as a file, for root too.
	wss := fmt.Sprintf(`{name: wss, transport: wss, addr: "127.0.0.1:0"}
  tls: {cert_file: %q, key_file: %q}`, dir, key)
	checkFailedStart(t, startYAML(t.TempDir(), wss, ""), fmt.Sprintf(`sip.tls.cert_file: %q: cannot read: is a directory`, dir))

	udp := `{name: sip, transport: udp, addr: "127.0.0.1:0"}`
	checkFailedStart(t, startYAML(t.TempDir(), udp, "admin: {addr: \"0.0.0.0:0\"}\n"),
		`admin.token: "": required when admin.addr (0.0.0.0:0) is not a loopback address: `+
			`anyone who reaches it could ban, drain and hang up calls; set a long random token (SBC_ADMIN_TOKEN) or keep admin.addr on 127.0.0.1`)
}

// TestStartSpoolLocked: a second sbc on the CDR spool of a running one
// exits 1 naming cdr_spool and the directory; the first one goes on and
// stops cleanly.
func TestStartSpoolLocked(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, startYAML(dir, `{name: sip, transport: udp, addr: "127.0.0.1:0"}`, "admin: {addr: \"\"}\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := exec.CommandContext(ctx, binary, "-config", cfg)
	first.Env = cleanEnv()
	stderr, err := first.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	var log strings.Builder
	for !strings.Contains(log.String(), "sbc started") && lines.Scan() {
		log.WriteString(lines.Text() + "\n")
	}
	if !strings.Contains(log.String(), "sbc started") {
		_ = first.Wait()
		t.Fatalf("the first sbc did not start:\n%s", log.String())
	}

	checkFailedStart(t, startYAML(dir, `{name: sip, transport: udp, addr: "127.0.0.1:0"}`, "admin: {addr: \"\"}\n"),
		"sbc: not started: cdr_spool: "+filepath.Join(dir, "spool")+" is in use by another process")

	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		log.WriteString(lines.Text() + "\n")
	}
	if err := first.Wait(); err != nil {
		t.Errorf("the first sbc after SIGTERM: %v\n%s", err, log.String())
	}
}
