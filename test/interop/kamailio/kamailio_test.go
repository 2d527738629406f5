package kamailio

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/internal/app"
	"github.com/sbc-project/sbc/internal/config"
)

// The shipped files under test, relative to this package.
const (
	configsDir = "../../../configs"
	kamailioCF = configsDir + "/kamailio"
)

// needKamailio skips the test when kamailio is missing, except under CI
// (scripts/test.sh installs it there).
func needKamailio(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kamailio")
	if err == nil {
		return path
	}
	msg := "kamailio is not installed (Debian package kamailio): run scripts/test.sh, which installs it"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// freePort returns a port free for both UDP and TCP on ip.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	for range 20 {
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		u.Close()
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free port on " + ip)
	return 0
}

// kamailioProc is a running Kamailio.
type kamailioProc struct {
	cmd  *exec.Cmd
	addr netip.AddrPort
	mu   sync.Mutex
	log  strings.Builder
	done chan struct{}
}

// logWriter keeps Kamailio's log for the failure message.
type logWriter struct{ k *kamailioProc }

func (w logWriter) Write(p []byte) (int, error) {
	w.k.mu.Lock()
	defer w.k.mu.Unlock()
	if w.k.log.Len() < 1<<20 {
		w.k.log.Write(p)
	}
	return len(p), nil
}

// Log returns what Kamailio logged so far.
func (k *kamailioProc) Log() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.log.String()
}

// startKamailio checks cfg (kamailio -c) and runs it in the foreground
// with the given -A defines, listening on addr; it returns once Kamailio
// accepts TCP connections there. It is stopped by its PID when the test
// ends.
func startKamailio(t *testing.T, cfg string, addr netip.AddrPort, defines ...string) *kamailioProc {
	t.Helper()
	bin := needKamailio(t)
	var args []string
	for _, d := range defines {
		args = append(args, "-A", d)
	}
	if out, err := exec.Command(bin, append(append([]string{"-c", "-f", cfg}, args...), "-Y", t.TempDir())...).CombinedOutput(); err != nil {
		t.Fatalf("kamailio -c -f %s: %v\n%s", cfg, err, out)
	}
	run := t.TempDir()
	k := &kamailioProc{addr: addr, done: make(chan struct{})}
	k.cmd = exec.Command(bin, append([]string{"-f", cfg, "-DD", "-E", "-Y", run, "-P", filepath.Join(run, "kamailio.pid")}, args...)...)
	k.cmd.Stdout, k.cmd.Stderr = logWriter{k}, logWriter{k}
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("start kamailio: %v", err)
	}
	go func() { _ = k.cmd.Wait(); close(k.done) }()
	t.Cleanup(func() { k.stop(t) })
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err == nil {
			c.Close()
			return k
		}
		select {
		case <-k.done:
			t.Fatalf("kamailio exited at start:\n%s", k.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("kamailio not listening on %s after 15 s:\n%s", addr, k.Log())
		}
	}
}

// stop ends Kamailio (its process group: the main process and its
// children) by PID, SIGTERM first.
func (k *kamailioProc) stop(t *testing.T) {
	pid := k.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-k.done
	}
	if t.Failed() {
		t.Logf("kamailio log:\n%s", tailString(k.Log(), 8000))
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// loadConfig loads a shipped SBC config and moves it onto the test's
// loopback address ip: every listener on ip (port 0 for WebSocket ones,
// port for the others), public and media addresses ip, CDRs, spool and
// bans in temporary directories, no admin server, a self-signed
// certificate. Trunk URIs are the caller's to set.
func loadConfig(t *testing.T, name, ip string, port int) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join(configsDir, name), nil)
	if err != nil {
		t.Fatalf("load configs/%s: %v", name, err)
	}
	for i := range cfg.SIP.Listeners {
		l := &cfg.SIP.Listeners[i]
		p := port
		if strings.HasPrefix(l.Transport, "ws") {
			p = 0
		}
		l.Addr = net.JoinHostPort(ip, strconv.Itoa(p))
	}
	cfg.SIP.PublicAddr = ip
	cfg.SIP.TLS = config.TLS{}
	cfg.Media.BindIP, cfg.Media.PublicIP = ip, ip
	cfg.SIP.OverloadDelay = 0 // the race detector on two busy cores is not overload
	dir := t.TempDir()
	for i := range cfg.CDR {
		cfg.CDR[i].Dir = filepath.Join(dir, "cdr")
	}
	cfg.CDRSpool = filepath.Join(dir, "cdr-spool")
	cfg.Policy.Bans.File = filepath.Join(dir, "bans.json")
	cfg.Admin.Addr = ""
	return cfg
}

// setTrunk points the trunk name of cfg at uri.
func setTrunk(t *testing.T, cfg *config.Config, name, uri string) {
	t.Helper()
	for i := range cfg.Trunks {
		if cfg.Trunks[i].Name == name {
			cfg.Trunks[i].URI = uri
			return
		}
	}
	t.Fatalf("no trunk %q in the config", name)
}

// sbc is an SBC running in-process.
type sbc struct {
	app    *app.App
	cfg    *config.Config
	closed bool
}

// startSBC validates cfg and runs it; it is closed when the test ends
// (unless the test closed it), and its goroutines must be gone by then.
func startSBC(t *testing.T, cfg *config.Config) *sbc {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	before := runtime.NumGoroutine()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := app.New(cfg, log, app.Options{Timers: txn.Timers{}})
	if err != nil {
		t.Fatal(err)
	}
	s := &sbc{app: a, cfg: cfg}
	t.Cleanup(func() {
		s.close(t)
		waitGoroutines(t, before)
	})
	return s
}

func (s *sbc) close(t *testing.T) {
	if s.closed {
		return
	}
	s.closed = true
	if err := s.app.Close(); err != nil {
		t.Errorf("close %s: %v", s.cfg.NodeID, err)
	}
}

func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Errorf("goroutines leaked: %d > %d", runtime.NumGoroutine(), before)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// quote makes a Kamailio string define: NAME="value".
func quote(name, value string) string { return fmt.Sprintf("%s=%q", name, value) }
