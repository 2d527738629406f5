package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"net/url"
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

// The browser tests drive the SBC's own web phone page (served on its
// WSS and WS listeners at /) in headless Chromium through playwright-core:
// test/browser/driver.mjs takes a JSON scenario of phones and steps and
// prints JSON lines, events as steps start and a result at the end. The
// SBC runs in-process, so the tests check its calls, CDRs and the echo
// destination's DTMF record directly. Chromium's fake microphone plays a
// tone file written by the test.

const (
	driverPath     = "../browser/driver.mjs"
	playwrightPath = "../../web/node_modules/playwright-core/package.json"
)

// needBrowser returns the Chromium executable, or skips the test when
// Chromium, node or playwright-core is missing (fails it when CI is set:
// CI must run the browser tests; scripts/test.sh installs them).
func needBrowser(t *testing.T) string {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		chromium, err = exec.LookPath("/usr/bin/chromium")
	}
	var missing []string
	if err != nil {
		missing = append(missing, "chromium (Debian package chromium)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (Debian package npm)")
	}
	if _, err := os.Stat(playwrightPath); err != nil {
		missing = append(missing, "playwright-core (npm ci in web/)")
	}
	if len(missing) > 0 {
		msg := "browser tests need " + strings.Join(missing, ", ") + ": run scripts/test.sh, which installs them"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return chromium
}

// writeTone writes a WAV file of a two-tone signal (440 Hz + 660 Hz, 48 kHz
// mono, 16 bit, 2 s: Chromium loops it) for the fake microphone.
func writeTone(t *testing.T) string {
	t.Helper()
	const rate, secs = 48000, 2
	pcm := make([]byte, rate*secs*2)
	for i := range rate * secs {
		x := 0.25*math.Sin(2*math.Pi*440*float64(i)/rate) + 0.25*math.Sin(2*math.Pi*660*float64(i)/rate)
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(x*math.MaxInt16)))
	}
	var h []byte
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(36+len(pcm)))
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16) // fmt chunk size
	h = binary.LittleEndian.AppendUint16(h, 1)  // PCM
	h = binary.LittleEndian.AppendUint16(h, 1)  // mono
	h = binary.LittleEndian.AppendUint32(h, rate)
	h = binary.LittleEndian.AppendUint32(h, rate*2) // bytes per second
	h = binary.LittleEndian.AppendUint16(h, 2)      // block align
	h = binary.LittleEndian.AppendUint16(h, 16)     // bits per sample
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(len(pcm)))
	p := filepath.Join(t.TempDir(), "tone.wav")
	if err := os.WriteFile(p, append(h, pcm...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// artifactsDir is where screenshots go: $SBC_TEST_ARTIFACTS, else
// test/e2e/artifacts (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SBC_TEST_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	dir, err := filepath.Abs(dir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatalf("artifacts directory: %v", err)
	}
	return dir
}

// phoneURL is the web phone page on a listener: https for WSS, http for
// WS, with the query parameters of the page contract.
func phoneURL(addr netip.AddrPort, secure bool, q url.Values) string {
	scheme := "http"
	if secure {
		scheme = "https"
	}
	return scheme + "://" + addr.String() + "/?" + q.Encode()
}

// touch creates the empty file path: a go-ahead the driver waits for
// (waitFile, StartFile).
func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// step is one driver step: {"do": name, key: value...}.
type step map[string]any

// do builds a step from its name and key/value pairs.
func do(name string, kv ...any) step {
	s := step{"do": name}
	for i := 0; i+1 < len(kv); i += 2 {
		s[kv[i].(string)] = kv[i+1]
	}
	return s
}

type browserPhone struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// StartFile, when set, holds the phone back (no page yet) until the
	// test creates this file: the test's go-ahead.
	StartFile string `json:"startFile,omitempty"`
	Steps     []step `json:"steps"`
}

type browserScenario struct {
	Chromium          string         `json:"chromium"`
	AudioFile         string         `json:"audioFile"`
	IgnoreHTTPSErrors bool           `json:"ignoreHTTPSErrors"`
	SPKI              string         `json:"spki,omitempty"`
	TimeoutMs         int            `json:"timeoutMs,omitempty"`
	FailureShots      string         `json:"failureShots,omitempty"`
	HostResolverRules string         `json:"hostResolverRules,omitempty"` // e.g. "MAP a.example 127.0.0.1"
	Phones            []browserPhone `json:"phones"`
	// Deadline bounds the driver's whole run (it is killed then); zero:
	// defaultBrowserDeadline. The test's own waits should fail first.
	Deadline time.Duration `json:"-"`
}

// defaultBrowserDeadline bounds a driver run whose scenario sets none.
const defaultBrowserDeadline = 90 * time.Second

// newScenario is a scenario with the tone as microphone, accepting the
// SBC's self-signed certificate, and failure screenshots in the artifacts.
func newScenario(t *testing.T, phones ...browserPhone) browserScenario {
	t.Helper()
	return browserScenario{Chromium: needBrowser(t), AudioFile: writeTone(t), IgnoreHTTPSErrors: true,
		TimeoutMs: 15000, FailureShots: artifactsDir(t), Phones: phones}
}

// audioStats are the web phone's stats() from getStats.
type audioStats struct {
	PacketsReceived  float64 `json:"packetsReceived"`
	PacketsSent      float64 `json:"packetsSent"`
	BytesReceived    float64 `json:"bytesReceived"`
	TotalAudioEnergy float64 `json:"totalAudioEnergy"`
}

type phoneResult struct {
	OK         bool                       `json:"ok"`
	Error      string                     `json:"error"`
	Step       string                     `json:"step"`
	Screenshot string                     `json:"screenshot"`
	Marks      map[string]json.RawMessage `json:"marks"`
	State      json.RawMessage            `json:"state"`
	DOM        struct {
		Status    string `json:"status"`
		CallState string `json:"callState"`
		Error     string `json:"error"`
	} `json:"dom"`
	PageErrors []string `json:"pageErrors"`
}

// stats returns the stats an audio step kept under label.
func (r phoneResult) stats(t *testing.T, label string) audioStats {
	t.Helper()
	var s audioStats
	if err := json.Unmarshal(r.Marks[label], &s); err != nil {
		t.Errorf("no stats %q: %v", label, err)
	}
	return s
}

// text returns a string a step kept under label.
func (r phoneResult) text(label string) string {
	var s string
	_ = json.Unmarshal(r.Marks[label], &s)
	return s
}

type driverEvent struct {
	at         time.Time              // when the test read it
	Event      string                 `json:"event"`
	Phone      string                 `json:"phone"`
	Name       string                 `json:"name"`
	SetupError string                 `json:"setupError"`
	Result     map[string]phoneResult `json:"result"`
}

// browserRun is a running driver.
type browserRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	done   chan struct{}
	stderr strings.Builder
	start  time.Time

	mu     sync.Mutex
	seen   []driverEvent // the step events so far
	result map[string]phoneResult
	setup  string
}

// startBrowser runs the driver on sc; it is killed (its process group,
// Chromium included) when the test ends.
func startBrowser(t *testing.T, sc browserScenario) *browserRun {
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
		deadline = defaultBrowserDeadline
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	r := &browserRun{t: t, done: make(chan struct{}), start: time.Now()}
	r.cmd = exec.CommandContext(ctx, "node", driverPath, file)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.cmd.Cancel = func() error { return syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL) }
	r.cmd.WaitDelay = 5 * time.Second
	r.cmd.Stderr = &r.stderr
	out, err := r.cmd.StdoutPipe()
	if err != nil {
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

// read parses the driver's output lines until it exits.
func (r *browserRun) read(out interface{ Read([]byte) (int, error) }) {
	defer close(r.done)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var ev driverEvent
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
	}
	_ = r.cmd.Wait()
}

// waitEvent waits for a step of phone to start: do is the step's name, and
// for marks name is the mark's name.
func (r *browserRun) waitEvent(phone, do, name string, timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		for _, ev := range r.seen {
			if ev.Phone == phone && ev.Event == do && ev.Name == name {
				r.mu.Unlock()
				return
			}
		}
		r.mu.Unlock()
		select {
		case <-r.done:
			r.t.Fatalf("browser driver ended before %s %s %s:\n%s", phone, do, name, r.report())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("browser: no %s %s %s within %v; steps so far:\n%s", phone, do, name, timeout, r.progress())
		}
	}
}

// wait waits for the driver to exit and returns each phone's result; a
// driver that could not start fails the test.
func (r *browserRun) wait() map[string]phoneResult {
	r.t.Helper()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.result == nil {
		r.t.Fatalf("browser driver gave no result (setup: %q):\n%s", r.setup, tail([]byte(r.stderr.String())))
	}
	return r.result
}

// mustPass waits for the driver and fails the test for every phone that
// failed, returning the results.
func (r *browserRun) mustPass() map[string]phoneResult {
	r.t.Helper()
	res := r.wait()
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
func (r *browserRun) progress() string {
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

func (r *browserRun) report() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _ := json.Marshal(r.result)
	return string(b) + "\n" + tail([]byte(r.stderr.String()))
}

// signalBrowser sends sig to every process of the driver's Chromium (the
// node driver's descendants), by pid.
func (r *browserRun) signalBrowser(sig syscall.Signal) int {
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
