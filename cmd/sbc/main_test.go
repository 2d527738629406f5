package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the sbc command built once for the tests.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sbc-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "sbc")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// sbc runs the binary with args and extra environment and returns its exit
// status, stdout and stderr.
func sbc(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run sbc: %v", err)
	}
	return code, out.String(), errOut.String()
}

// cleanEnv is the test's environment without SBC_ variables, so that the
// binary sees only what a case sets.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SBC_") {
			env = append(env, kv)
		}
	}
	return env
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sbc.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        []string
		wantCode   int
		wantStdout string
		wantStderr []string // each line must appear in stderr, which has exactly these lines
	}{
		{name: "default file", args: []string{"-check", "-config", "../../configs/default.yaml"}, wantStdout: "config OK\n"},
		{name: "embedded defaults", args: []string{"-check"}, wantStdout: "config OK\n"},
		{
			name: "every validation problem",
			args: []string{"-check", "-config", writeFile(t, `
node_id: ""
log: {level: loud}
sip:
  listeners:
    - {transport: udp, addr: "localhost:5060"}
    - {transport: sctp, addr: "127.0.0.1:5060"}
media: {rtp_ports: 30000-20000}
routes:
  - {name: web, match: {ruri_user: "("}, target: trunks}
admin: {addr: nowhere}
`)},
			wantCode: 1,
			wantStderr: []string{
				`node_id: "": must not be empty`,
				`log.level: "loud": want one of debug, info, warn, error`,
				`sip.listeners[0].addr: "localhost:5060": want ip:port with a literal IP, such as 0.0.0.0:5060 or [::]:5060`,
				`sip.listeners[1].transport: "sctp": want one of udp, tcp, tls, ws, wss`,
				`media.rtp_ports: "30000-20000": want min below max`,
				`routes[0].trunks: "": target trunks needs at least one trunk`,
				"routes[0].match.ruri_user: \"(\": not a regular expression: error parsing regexp: missing closing ): `(`",
				`admin.addr: "nowhere": want ip:port with a literal IP, such as 0.0.0.0:5060 or [::]:5060`,
			},
		},
		{
			name:     "every load problem",
			args:     []string{"-check", "-config", writeFile(t, "bogus: 1\nsip:\n  max_headers: many\n")},
			env:      []string{"SBC_MEDIA_TIMEOUT=60"},
			wantCode: 1,
			wantStderr: []string{
				`bogus: "1": unknown key`,
				`sip.max_headers: "many": want a whole number`,
				`media.timeout: "60": want a duration with a unit, such as 500ms, 30s or 5m (from SBC_MEDIA_TIMEOUT)`,
			},
		},
		{
			name:       "environment override validated",
			args:       []string{"-check"},
			env:        []string{"SBC_ADMIN_ADDR=localhost"},
			wantCode:   1,
			wantStderr: []string{`admin.addr: "localhost": want ip:port with a literal IP, such as 0.0.0.0:5060 or [::]:5060`},
		},
		{
			name:     "admin beyond loopback without token",
			args:     []string{"-check"},
			env:      []string{"SBC_ADMIN_ADDR=0.0.0.0:9090"},
			wantCode: 1,
			wantStderr: []string{`admin.token: "": required when admin.addr (0.0.0.0:9090) is not a loopback address: ` +
				`anyone who reaches it could ban, drain and hang up calls`},
		},
		{name: "admin beyond loopback with token", args: []string{"-check"},
			env: []string{"SBC_ADMIN_ADDR=[::]:9090", "SBC_ADMIN_TOKEN=4b1d7e0c9a2f"}, wantStdout: "config OK\n"},
		{
			name:       "missing file",
			args:       []string{"-check", "-config", filepath.Join(t.TempDir(), "nope.yaml")},
			wantCode:   1,
			wantStderr: []string{"sbc: read config: open "},
		},
		{name: "version", args: []string{"-version"}, wantStdout: "sbc dev\n"},
		{name: "unknown flag", args: []string{"-nope"}, wantCode: 2, wantStderr: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := sbc(t, tt.env, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit status %d, want %d\nstderr:\n%s", code, tt.wantCode, stderr)
			}
			if tt.wantStdout != "" && stdout != tt.wantStdout {
				t.Errorf("stdout %q, want %q", stdout, tt.wantStdout)
			}
			if tt.wantStderr == nil {
				return
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != len(tt.wantStderr) {
				t.Errorf("stderr has %d lines, want %d:\n%s", len(lines), len(tt.wantStderr), stderr)
			}
			for _, want := range tt.wantStderr {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, want)
				}
				if !found {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}

// TestRunStopsOnSignal starts the SBC on free loopback ports and checks
// that SIGTERM shuts it down cleanly.
func TestRunStopsOnSignal(t *testing.T) {
	cfg := writeFile(t, fmt.Sprintf(`
sip:
  listeners:
    - {transport: udp, addr: "127.0.0.1:0"}
    - {transport: wss, addr: "127.0.0.1:0"}
cdr: [{type: jsonl, dir: %q}]
cdr_spool: %q
admin: {addr: ""}
`, t.TempDir(), t.TempDir()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "-config", cfg)
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	var log strings.Builder
	started := false
	for !started && lines.Scan() {
		log.WriteString(lines.Text() + "\n")
		started = strings.Contains(lines.Text(), "sbc started")
	}
	if !started {
		_ = cmd.Wait()
		t.Fatalf("sbc did not start:\n%s", log.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		log.WriteString(lines.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sbc after SIGTERM: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "shutting down") {
		t.Errorf("no shutdown message in the log:\n%s", log.String())
	}
}
