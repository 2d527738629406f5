// Package pgtest runs a throwaway PostgreSQL server for tests, from the
// binaries of the Debian postgresql package (/usr/lib/postgresql/*/bin)
// or those on PATH: a new cluster in a temporary directory, listening on
// 127.0.0.1 at a free port, with password authentication over TCP. The
// server is a child process, stopped by its PID when the test ends.
//
// PostgreSQL refuses to run as root; when the tests run as root, the
// cluster is created and run as the "postgres" user the Debian package
// creates.
//
// Without PostgreSQL, tests using it are skipped, except under CI=true
// where they fail: CI must run them (scripts/test.sh installs postgresql).
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Password is the password of the superuser "postgres" over TCP.
const Password = "sbc-test-password"

// startTimeout bounds how long a server may take to accept connections.
const startTimeout = 60 * time.Second

// Server is one running (or stopped) PostgreSQL cluster.
type Server struct {
	// Port is the TCP port on 127.0.0.1; it stays the same across Stop and
	// Start.
	Port int

	bin  string // directory of initdb and postgres
	root string // temporary directory: data, socket, password file
	cred *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs bytes.Buffer
}

// Bin returns the directory holding initdb and postgres, or "".
func Bin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) }) // newest first
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && isExec(filepath.Join(filepath.Dir(p), "postgres")) {
		return filepath.Dir(p)
	}
	return ""
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Require skips t when PostgreSQL is not installed, or fails it under
// CI=true.
func Require(t testing.TB) string {
	t.Helper()
	bin := Bin()
	if bin != "" {
		return bin
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("PostgreSQL is not installed and CI=true: install the postgresql package (scripts/test.sh does)")
	}
	t.Skip("PostgreSQL is not installed (Debian package postgresql): run scripts/test.sh")
	return ""
}

// Start creates a cluster and starts its server; both are removed when t
// ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{bin: Require(t)}
	if err := s.init(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		s.Stop(t)
		_ = os.RemoveAll(s.root)
	})
	s.Start(t)
	return s
}

// init makes the temporary directory and the cluster in it.
func (s *Server) init() error {
	root, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return err
	}
	s.root = root
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs the user postgres (Debian package postgresql): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(root, uid, gid); err != nil {
			return err
		}
	}
	pwfile := filepath.Join(root, "pwfile")
	if err := os.WriteFile(pwfile, []byte(Password+"\n"), 0o600); err != nil {
		return err
	}
	if s.cred != nil {
		if err := os.Chown(pwfile, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return err
		}
	}
	if s.Port, err = freePort(); err != nil {
		return err
	}
	cmd := s.command("initdb", "-D", s.dataDir(), "-U", "postgres", "--pwfile="+pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

func (s *Server) dataDir() string { return filepath.Join(s.root, "data") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.root
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

// Start starts the server (again, after Stop) and waits until it accepts
// connections.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		t.Fatal("pgtest: server already running")
	}
	cmd := s.command("postgres", "-D", s.dataDir(), "-p", strconv.Itoa(s.Port), "-k", s.root,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=50", "-c", "shared_buffers=16MB",
		"-c", "dynamic_shared_memory_type=mmap", "-c", "logging_collector=off")
	cmd.Stdout, cmd.Stderr = &syncWriter{s: s}, &syncWriter{s: s}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		t.Fatalf("pgtest: start postgres: %v", err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := s.waitReady(done); err != nil {
		s.Stop(t)
		t.Fatalf("pgtest: %v\n%s", err, s.Logs())
	}
}

func (s *Server) waitReady(done <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err == nil {
			_ = conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-done:
			return errors.New("postgres exited during start")
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after %s: %v", startTimeout, err)
		}
	}
}

// Stop shuts the server down (fast shutdown: SIGINT to its PID) and waits
// for it to exit; it is killed if it does not exit within 30 s.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("pgtest: postgres ignored SIGINT and was killed\n%s", s.Logs())
	}
}

// DSN returns a connection string for database db as postgres.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", Password, s.Port, db)
}

// CreateDB creates a new, empty database and returns its DSN.
func (s *Server) CreateDB(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return s.DSN(name)
}

// Logs returns what the server printed.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

type syncWriter struct{ s *Server }

func (w *syncWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.logs.Len() < 1<<20 {
		w.s.logs.Write(p)
	}
	return len(p), nil
}

// freePort returns a TCP port free on 127.0.0.1 at the time of the call.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
