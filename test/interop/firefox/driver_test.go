package firefox

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The browser side: test/browser/driver.mjs (shared with the Chromium
// tests of test/e2e) runs Firefox ESR through puppeteer-core, inside the
// namespace, on a JSON scenario of phones and steps, and prints JSON lines:
// events as steps start, a result per phone at the end.

const (
	driverPath    = "../../browser/driver.mjs"
	sipjsPage     = "../../browser/sipjs"
	sipjsLib      = "../../../web/node_modules/sip.js/lib"
	puppeteerPath = "../../../web/node_modules/puppeteer-core/package.json"
)

// step is one driver step: {"do": name, key: value...}.
type step map[string]any

func do(name string, kv ...any) step {
	s := step{"do": name}
	for i := 0; i+1 < len(kv); i += 2 {
		s[kv[i].(string)] = kv[i+1]
	}
	return s
}

type phone struct {
	Name  string `json:"name"`
	URL   string `json:"url"`
	Steps []step `json:"steps"`
}

type serveSpec struct {
	Addr string            `json:"addr"`
	Dirs map[string]string `json:"dirs"`
}

type scenario struct {
	Browser      string     `json:"browser"`
	SecureHosts  []string   `json:"secureHosts"`
	TimeoutMs    int        `json:"timeoutMs"`
	FailureShots string     `json:"failureShots,omitempty"`
	Serve        *serveSpec `json:"serve,omitempty"`
	Phones       []phone    `json:"phones"`
}

// audioStats are the page's stats(): getStats summed over audio RTP.
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
	Marks      map[string]json.RawMessage `json:"marks"`
	State      json.RawMessage            `json:"state"`
	PageErrors []string                   `json:"pageErrors"`
}

func (r phoneResult) stats(t *testing.T, label string) audioStats {
	t.Helper()
	var s audioStats
	if err := json.Unmarshal(r.Marks[label], &s); err != nil {
		t.Errorf("no stats %q: %v", label, err)
	}
	return s
}

type event struct {
	Event      string                 `json:"event"`
	Phone      string                 `json:"phone"`
	Name       string                 `json:"name"`
	SetupError string                 `json:"setupError"`
	Result     map[string]phoneResult `json:"result"`
}

// run is a running driver.
type run struct {
	t      *testing.T
	cmd    *exec.Cmd
	done   chan struct{}
	stderr strings.Builder

	mu     sync.Mutex
	events []event
	result map[string]phoneResult
	setup  string
}

// needFirefox skips the test (fails it under CI) unless Firefox ESR, node,
// SIPp and web/node_modules (puppeteer-core, SIP.js) are there.
func needFirefox(t *testing.T) {
	t.Helper()
	for _, f := range []string{puppeteerPath, filepath.Join(sipjsLib, "index.js")} {
		if _, err := os.Stat(f); err != nil {
			msg := "web/node_modules is incomplete (" + f + "): run scripts/test.sh, which runs npm ci in web/"
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// startDriver runs the driver on sc inside ns; it (and Firefox, its
// process group) is killed by PID when the test ends.
func startDriver(t *testing.T, ns netns, sc scenario) *run {
	t.Helper()
	data, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "scenario.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := &run{t: t, done: make(chan struct{})}
	r.cmd = ns.command("node", driverPath, file)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.cmd.Stderr = &r.stderr
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start driver: %v", err)
	}
	go r.read(bufio.NewScanner(out))
	t.Cleanup(func() {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	})
	return r
}

func (r *run) read(sc *bufio.Scanner) {
	defer close(r.done)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var ev event
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		r.mu.Lock()
		if ev.Result != nil {
			r.result = ev.Result
		}
		if ev.SetupError != "" {
			r.setup = ev.SetupError
		}
		if ev.Event != "" {
			r.events = append(r.events, ev)
		}
		r.mu.Unlock()
	}
	_ = r.cmd.Wait()
}

// waitMark waits until phone reaches its mark step named name.
func (r *run) waitMark(p, name string, timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		for _, ev := range r.events {
			if ev.Phone == p && ev.Event == "mark" && ev.Name == name {
				r.mu.Unlock()
				return
			}
		}
		r.mu.Unlock()
		select {
		case <-r.done:
			r.t.Fatalf("driver ended before %s reached %q: %s", p, name, r.report())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s did not reach %q within %v", p, name, timeout)
		}
	}
}

// mustPass waits for the driver to end (at most timeout) and fails t for
// a phone that failed; it returns the results.
func (r *run) mustPass(timeout time.Duration) map[string]phoneResult {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(timeout):
		r.t.Fatalf("driver still running after %v", timeout)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.result == nil {
		r.t.Fatalf("driver gave no result (setup: %q):\n%s", r.setup, r.stderr.String())
	}
	for name, p := range r.result {
		if !p.OK {
			r.t.Errorf("%s failed at step %s: %s\n  state %s page errors %v", name, p.Step, p.Error, p.State, p.PageErrors)
		}
	}
	return r.result
}

func (r *run) report() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _ := json.Marshal(r.result)
	s := r.stderr.String()
	if len(s) > 3000 {
		s = s[len(s)-3000:]
	}
	return string(b) + "\n" + s
}
