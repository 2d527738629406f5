// Package sbcproc runs the SBC as a separate process for the interop tests
// (test/interop/...): the sbc binary built from this module, a config the
// test writes, optionally inside a network namespace, with its JSON log and
// CDRs (jsonl) read back. Independent endpoints (Firefox, linphone) meet it
// the way an operator deploys it, not an in-process copy.
//
// A test package that uses it calls Main from its TestMain, which removes
// the binary built for the run.
package sbcproc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sbc-project/sbc/cdr"
)

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

// Main runs the package's tests and removes the binary Build made.
func Main(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// Build returns the path of the sbc binary, built once per test process
// with `go build ./cmd/sbc` from the module's root.
func Build(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			build.err = err
			return
		}
		if build.dir, build.err = os.MkdirTemp("", "sbc-interop-"); build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "sbc")
		cmd := exec.Command("go", "build", "-o", build.bin, "./cmd/sbc")
		cmd.Dir = root
		build.out, build.err = cmd.CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("go build ./cmd/sbc: %v\n%s", build.err, build.out)
	}
	return build.bin
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the module (go env GOMOD = %q)", mod)
	}
	return filepath.Dir(mod), nil
}

// Options describe one SBC process.
type Options struct {
	// Config is the YAML config. Its log format must be json (Log reads it)
	// and its jsonl CDR writer must write to CDRDir.
	Config string
	// Dir holds the config, the log, the CDRs (CDRDir) and the spool.
	Dir string
	// Prefix runs the binary through a command, e.g. {"ip", "netns",
	// "exec", name}; that command must exec the binary (keep its PID).
	Prefix []string
	// Env is added to the process's environment (SBC_* overrides of the
	// config's keys, as an operator sets them per node).
	Env []string
}

// CDRDir is where a config written for dir should put its jsonl CDRs.
func CDRDir(dir string) string { return filepath.Join(dir, "cdr") }

// SpoolDir is where a config written for dir should put its CDR spool.
func SpoolDir(dir string) string { return filepath.Join(dir, "spool") }

// Proc is a running SBC.
type Proc struct {
	cmd      *exec.Cmd
	dir      string
	log      string
	done     chan struct{}
	stopOnce sync.Once
}

// Start writes the config, checks it with `sbc -check`, starts the SBC and
// waits until it logs "sbc started". It is stopped (SIGTERM, then SIGKILL
// after 10 s) by its PID when the test ends.
func Start(t testing.TB, o Options) *Proc {
	t.Helper()
	bin := Build(t)
	cfg := filepath.Join(o.Dir, "sbc.yaml")
	if err := os.WriteFile(cfg, []byte(o.Config), 0o600); err != nil {
		t.Fatal(err)
	}
	check := exec.Command(bin, "-check", "-config", cfg)
	check.Env = append(environ(), o.Env...)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("sbc -check: %v\n%s", err, out)
	}
	p := &Proc{dir: o.Dir, log: filepath.Join(o.Dir, "sbc.log"), done: make(chan struct{})}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, o.Prefix...), bin, "-config", cfg)
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.Env = append(environ(), o.Env...)
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start sbc: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(p.Stop)
	p.waitLog(t, "sbc started", 20*time.Second)
	return p
}

// environ is the test's environment without its SBC_ variables: the SBC
// takes each as a config key and refuses to start on one it does not know
// (scripts/test.sh sets SBC_TEST_ARTIFACTS, a test may set
// SBC_TEST_DEBUG), and only Options.Env should configure it.
func environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SBC_") {
			out = append(out, kv)
		}
	}
	return out
}

// Stop ends the SBC by its PID: SIGTERM (it drains, then exits), SIGKILL
// when it is still up 10 s later. It runs when the test ends too; a second
// call does nothing.
func (p *Proc) Stop() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// Kill ends the SBC at once by its PID (SIGKILL: a crash, not a
// shutdown) and waits until it has exited. Stop does nothing after it.
func (p *Proc) Kill() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// LogEntry is one line of the SBC's JSON log.
type LogEntry map[string]any

// Str returns the entry's key as a string ("" when absent).
func (e LogEntry) Str(key string) string {
	s, _ := e[key].(string)
	return s
}

// Log returns the entries logged so far whose msg is msg.
func (p *Proc) Log(t testing.TB, msg string) []LogEntry {
	t.Helper()
	data, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	var out []LogEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e LogEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Str("msg") == msg {
			out = append(out, e)
		}
	}
	return out
}

// LogTail is the end of the SBC's log, for failure messages.
func (p *Proc) LogTail() string {
	data, _ := os.ReadFile(p.log)
	if len(data) > 6000 {
		data = data[len(data)-6000:]
	}
	return string(data)
}

func (p *Proc) waitLog(t testing.TB, msg string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for len(p.Log(t, msg)) == 0 {
		select {
		case <-p.done:
			t.Fatalf("sbc exited before %q:\n%s", msg, p.LogTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sbc: no %q within %v:\n%s", msg, timeout, p.LogTail())
		}
	}
}

// Records returns the CDRs written so far, in order: the finished files
// (cdr-*.jsonl), then the one in progress (.cdr-*.part), whose records are
// on disk too.
func (p *Proc) Records(t testing.TB) []cdr.Record {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(CDRDir(p.dir), "cdr-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	part, err := filepath.Glob(filepath.Join(CDRDir(p.dir), ".cdr-*.part"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, part...)
	var recs []cdr.Record
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var r cdr.Record
			if err := json.Unmarshal(line, &r); err != nil {
				t.Fatalf("cdr %s: %v: %s", f, err, line)
			}
			recs = append(recs, r)
		}
	}
	return recs
}

// WaitRecords waits until n CDRs are written and returns them.
func (p *Proc) WaitRecords(t testing.TB, n int, timeout time.Duration) []cdr.Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		recs := p.Records(t)
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d CDRs after %v, want %d: %+v\n%s", len(recs), timeout, n, recs, p.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Digits returns the DTMF digits the echo destination logged for the call
// whose B-leg Call-ID is bCallID, and how each arrived ("rfc4733", "info").
func (p *Proc) Digits(t testing.TB, bCallID string) (digits string, via []string) {
	t.Helper()
	for _, e := range p.Log(t, "echo dtmf") {
		if e.Str("call_id") == bCallID {
			digits += e.Str("digit")
			via = append(via, e.Str("via"))
		}
	}
	return digits, via
}

// NeedTools skips t unless every command is on PATH, naming the Debian
// package of each missing one (tools maps command to package); with CI set
// a missing tool fails t instead: CI must run these tests, and
// scripts/test.sh installs them.
func NeedTools(t testing.TB, tools map[string]string) {
	t.Helper()
	var missing []string
	for cmd, pkg := range tools {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", cmd, pkg))
		}
	}
	if len(missing) == 0 {
		return
	}
	sort.Strings(missing)
	msg := "missing " + strings.Join(missing, ", ") + ": run scripts/test.sh, which installs them"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
