package ops

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/test/cdr/pgtest"
	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// buildSBC builds cmd/sbc into a directory removed when t ends.
func buildSBC(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sbc")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sbc-project/sbc/cmd/sbc").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// sbcProcess is the sbc binary running as a child process.
type sbcProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  strings.Builder
}

// runSBC starts the binary with config file cfg and waits for "sbc started".
func runSBC(t *testing.T, bin, cfg string) *sbcProcess {
	t.Helper()
	p := &sbcProcess{cmd: exec.Command(bin, "-config", cfg), done: make(chan struct{})}
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if !once && strings.Contains(sc.Text(), "sbc started") {
				once = true
				started <- true
			}
		}
		_ = p.cmd.Wait()
		close(p.done)
		if !once {
			started <- false
		}
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	select {
	case ok := <-started:
		if !ok {
			t.Fatalf("sbc exited at start:\n%s", p.logs())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("sbc did not start:\n%s", p.logs())
	}
	return p
}

func (p *sbcProcess) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop sends sig to the process, by its PID, and waits for it to exit.
func (p *sbcProcess) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("sbc still running 30s after %v:\n%s", sig, p.logs())
	}
}

// TestCDRKill9: the sbc binary is killed with SIGKILL mid-traffic and
// started again on the same spool. Every call the caller saw answered has
// exactly one record in every writer (its own, or one with hangup_cause
// sbc_restart for the calls that were up at the kill), and no record is
// duplicated.
func TestCDRKill9(t *testing.T) {
	sipptest.Require(t)
	pg := pgtest.Start(t)
	sinks := e2e.NewCDRSinks(t, pg.CreateDB(t, "kill9"))
	bin := buildSBC(t)
	port := e2e.FreeUDPPort(t, "127.0.0.1")
	cfgFile := filepath.Join(t.TempDir(), "sbc.yaml")
	cfgText := fmt.Sprintf(`
node_id: kill9
log: {level: info}
sip:
  listeners: [{transport: udp, addr: "127.0.0.1:%d"}]
media: {rtp_ports: 40000-49999}
admin: {addr: ""}
# SIPp's ~40 echo calls at once all come from one address.
policy: {admission: {echo: {max_calls: 0, max_calls_per_ip: 0}}}
cdr_spool: %q
cdr:
  - {type: jsonl, dir: %q, max_bytes: 16384, rotate_every: 500ms}
  - {type: csv, dir: %q, max_bytes: 8192}
  - {type: postgres, dsn: %q}
`, port, sinks.Spool, sinks.JSONL, sinks.CSV, sinks.DSN)
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	first := runSBC(t, bin, cfgFile)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	const n = 200
	uac := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
		LocalIP: e2e.CallerIP(), Remote: fmt.Sprintf("127.0.0.1:%d", port), Calls: n, Rate: 25, MessageLog: true, Timeout: 120 * time.Second,
		Args: []string{"-s", "echo", "-d", "1500"}})
	time.Sleep(3 * time.Second) // about 75 calls placed, about 35 up
	first.stop(t, syscall.SIGKILL)
	second := runSBC(t, bin, cfgFile)
	res := uac.Wait()
	second.stop(t, syscall.SIGTERM) // drains the writers and finishes the files
	if !strings.Contains(second.logs(), "sbc_restart") {
		t.Errorf("the restart recorded no call left up:\n%s", second.logs())
	}

	recs := sinks.Records(t)
	invited, answered, completed := sippCallIDs(res)
	byCallID := map[string][]cdr.Record{}
	restarted := 0
	for _, r := range recs {
		if !invited[r.ACallID] {
			t.Errorf("record %s for a Call-ID SIPp never sent: %+v", r.ID, r)
		}
		byCallID[r.ACallID] = append(byCallID[r.ACallID], r)
		if r.HangupCause == string(outcome.CauseSBCRestart) {
			restarted++
		}
	}
	for id, rs := range byCallID {
		// A caller's INVITE retransmitted to the new process is a new
		// attempt for it: one sbc_restart record plus one of its own.
		own := slices.DeleteFunc(slices.Clone(rs), func(r cdr.Record) bool { return r.HangupCause == string(outcome.CauseSBCRestart) })
		if len(own) > 1 || len(rs)-len(own) > 1 {
			t.Errorf("Call-ID %s has %d records: %+v", id, len(rs), rs)
		}
	}
	for id := range answered {
		if len(byCallID[id]) == 0 {
			t.Errorf("call %s was answered but has no record", id)
		}
	}
	for id := range completed {
		if len(byCallID[id]) == 0 {
			t.Errorf("call %s completed but has no record", id)
		}
	}
	t.Logf("SIPp: %d invited, %d answered, %d completed; %d records, %d with %s",
		len(invited), len(answered), len(completed), len(recs), restarted, string(outcome.CauseSBCRestart))
	if restarted == 0 {
		t.Error("no call was up at the kill: the test proves nothing")
	}
}
