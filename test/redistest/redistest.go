// Package redistest runs a throwaway Redis server for tests, from the
// Debian redis-server package: no persistence, a temporary directory,
// listening on a loopback address at a free port. The server is a child
// process, stopped by its PID when the test ends, and may be stopped and
// started again on the same address to play a Redis outage.
//
// Without redis-server, tests using it are skipped, except under CI=true
// where they fail: CI must run them (scripts/test.sh installs
// redis-server).
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long the server may take to answer PING.
const startTimeout = 30 * time.Second

// Server is one running (or stopped) redis-server.
type Server struct {
	// Addr is host:port; it stays the same across Stop and Start.
	Addr string

	bin string
	dir string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs bytes.Buffer
}

// Start runs redis-server on ip (a loopback address) at a free port and
// waits until it answers PING. The test fails (or skips outside CI) if it
// cannot.
func Start(t testing.TB, ip string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server not found (CI=%s): scripts/test.sh installs it", os.Getenv("CI"))
		}
		t.Skip("redis-server not found: apt-get install redis-server (scripts/test.sh does)")
	}
	s := &Server{Addr: net.JoinHostPort(ip, strconv.Itoa(freePort(t, ip))), bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// Start starts the server again after Stop, on the same address.
func (s *Server) Start() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return nil
	}
	host, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command(s.bin, "--bind", host, "--port", port, "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = &lockedWriter{s}, &lockedWriter{s}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("redis-server: %w", err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited at start: %s", s.Addr, s.Logs())
		default:
		}
		if s.ping() == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("redis-server on %s did not answer PING within %s: %s", s.Addr, startTimeout, s.Logs())
}

// Stop kills the server (SIGKILL: an outage, not a shutdown) and waits
// for it to exit. Safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Logs returns what the server printed.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// Do sends one command in the inline protocol and returns the first line
// of the reply, for tests that plant data (e.g. a key of the wrong type).
func (s *Server) Do(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write(req.Bytes()); err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	line, _, _ := bytes.Cut(buf[:n], []byte("\r\n"))
	return string(line), nil
}

func (s *Server) ping() error {
	r, err := s.Do("PING")
	if err != nil {
		return err
	}
	if r != "+PONG" {
		return fmt.Errorf("PING: %q", r)
	}
	return nil
}

type lockedWriter struct{ s *Server }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.logs.Write(p)
}

// freePort returns a TCP port free on ip now.
func freePort(t testing.TB, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("no free port on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
