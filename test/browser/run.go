package browser

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// event is one line of the driver's output.
type event struct {
	at         time.Time              // when the Run read it
	Event      string                 `json:"event"`
	Phone      string                 `json:"phone"`
	Name       string                 `json:"name"`
	SetupError string                 `json:"setupError"`
	Result     map[string]PhoneResult `json:"result"`
}

// Run is a running driver. Its methods are for the test's goroutine (they
// fail the test); the Run reads the driver's output on its own.
type Run struct {
	t      testing.TB
	cmd    *exec.Cmd
	gates  map[string]string
	done   chan struct{} // closed when the driver exited and its output is read
	stderr strings.Builder
	start  time.Time

	mu     sync.Mutex
	seen   []event // the step events so far
	result map[string]PhoneResult
	setup  string
}

// killDelay is how long a cancelled driver has to close its browser
// before its process group is killed.
const killDelay = 5 * time.Second

// Start runs the driver on sc. The driver is killed (its process group,
// the browser included) when sc.Deadline passes or the test ends.
func Start(t testing.TB, sc Scenario) *Run {
	t.Helper()
	data, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "scenario.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := sc.Deadline
	if deadline <= 0 {
		deadline = DefaultDeadline
	}
	argv := append(append([]string{}, sc.Prefix...), "node", fromRoot(t, "test/browser/driver.mjs"), file)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	r := &Run{t: t, gates: sc.Gates, done: make(chan struct{}), start: time.Now()}
	r.cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// SIGTERM first: puppeteer closes Firefox on it, and Firefox runs in
	// a process group of its own, which a SIGKILL of the driver's group
	// would leave running. Whatever still runs after WaitDelay is killed.
	r.cmd.Cancel = func() error {
		pgid := r.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		time.AfterFunc(killDelay, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
		return nil
	}
	r.cmd.WaitDelay = killDelay + 5*time.Second
	r.cmd.Stderr = &r.stderr
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start browser driver: %v", err)
	}
	go r.read(out)
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// read parses the driver's output lines until it exits, creating the
// gate of each mark that has one.
func (r *Run) read(out io.Reader) {
	defer close(r.done)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue
		}
		ev.at = time.Now()
		r.mu.Lock()
		if ev.Result != nil {
			r.result = ev.Result
		}
		if ev.SetupError != "" {
			r.setup = ev.SetupError
		}
		if ev.Event != "" {
			r.seen = append(r.seen, ev)
		}
		r.mu.Unlock()
		// The gate opens once the mark is seen, so a wait for the mark
		// never lags the phone that goes on through the gate.
		if path, ok := r.gates[ev.Phone+"/"+ev.Name]; ok && ev.Event == "mark" {
			_ = os.WriteFile(path, nil, 0o644)
		}
	}
	_ = r.cmd.Wait()
}

// launchTimeout bounds the browser's launch, which WaitEvent's timeout
// does not include: Chromium alone took 17.7 s to start in a loaded CI
// run, eating most of a 30 s bound meant for the call.
const launchTimeout = 90 * time.Second

// WaitEvent waits for a step of phone to start: do is the step's name, and
// for marks name is the mark's name. timeout counts from the browser's
// launch (the driver's launched event) or from the call, whichever is
// later; the launch itself has launchTimeout more. It fails the test when
// the driver ends first or the bound passes.
func (r *Run) WaitEvent(phone, do, name string, timeout time.Duration) {
	r.t.Helper()
	start := time.Now()
	for !r.seenEvent(phone, do, name) {
		select {
		case <-r.done:
			// The driver may have ended right after the event: its
			// output is all read once done is closed.
			if r.seenEvent(phone, do, name) {
				return
			}
			r.t.Fatalf("browser driver ended before %s %s %s:\n%s", phone, do, name, r.report())
		case <-time.After(20 * time.Millisecond):
		}
		deadline := start.Add(launchTimeout + timeout)
		if at, ok := r.launchedAt(); ok {
			deadline = start.Add(timeout)
			if at.After(start) {
				deadline = at.Add(timeout)
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("browser: no %s %s %s within %v of the browser's launch; steps so far:\n%s", phone, do, name, timeout, r.progress())
		}
	}
}

// launchedAt is when the driver reported the browser launched.
func (r *Run) launchedAt() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.seen {
		if ev.Event == "launched" {
			return ev.at, true
		}
	}
	return time.Time{}, false
}

// seenEvent reports whether the driver has reported the event.
func (r *Run) seenEvent(phone, do, name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.seen {
		if ev.Phone == phone && ev.Event == do && ev.Name == name {
			return true
		}
	}
	return false
}

// WaitExit fails the test unless the driver ends within timeout.
func (r *Run) WaitExit(timeout time.Duration) {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(timeout):
		r.t.Fatalf("browser driver still running after %v; steps so far:\n%s", timeout, r.progress())
	}
}

// Wait waits for the driver to exit and returns each phone's result; a
// driver that gave none (it could not start) fails the test.
func (r *Run) Wait() map[string]PhoneResult {
	r.t.Helper()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.result == nil {
		r.t.Fatalf("browser driver gave no result (setup: %q):\n%s", r.setup, tail(r.stderr.String()))
	}
	return r.result
}

// MustPass waits for the driver and fails the test for every phone that
// failed, returning the results.
func (r *Run) MustPass() map[string]PhoneResult {
	r.t.Helper()
	res := r.Wait()
	for name, p := range res {
		if !p.OK {
			r.t.Errorf("browser %s failed at step %s: %s\n  dom %+v state %s page errors %v screenshot %s",
				name, p.Step, p.Error, p.DOM, p.State, p.PageErrors, p.Screenshot)
		}
	}
	return res
}

// progress lists each phone's steps so far with the time each started,
// counted from the driver's start: where a slow run spent its time.
func (r *Run) progress() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	byPhone := map[string][]string{}
	var names []string
	for _, ev := range r.seen {
		if _, ok := byPhone[ev.Phone]; !ok {
			names = append(names, ev.Phone)
		}
		label := ev.Event
		if ev.Name != "" {
			label += " " + ev.Name
		}
		byPhone[ev.Phone] = append(byPhone[ev.Phone], fmt.Sprintf("%s@%.1fs", label, ev.at.Sub(r.start).Seconds()))
	}
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "  %s: %s\n", n, strings.Join(byPhone[n], ", "))
	}
	if len(names) == 0 {
		b.WriteString("  (no step started)\n")
	}
	return b.String()
}

// report is the result so far and the end of the driver's stderr.
func (r *Run) report() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _ := json.Marshal(r.result)
	return string(b) + "\n" + tail(r.stderr.String())
}

// tail is the last 4000 bytes of s.
func tail(s string) string {
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// Signal sends sig to every process of the driver's browser (the node
// driver's descendants), by PID, and returns how many it signalled.
func (r *Run) Signal(sig syscall.Signal) int {
	r.t.Helper()
	pids := descendants(r.cmd.Process.Pid)
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig)
	}
	return len(pids)
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at ')'.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
