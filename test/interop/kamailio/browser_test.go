package kamailio

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The web phones are the SBC's own web page (JsSIP) in headless Chromium,
// driven by test/browser/driver.mjs (its scenario format is documented
// there); this is the least of the runner test/e2e has.

const (
	driverPath     = "../../browser/driver.mjs"
	playwrightPath = "../../../web/node_modules/playwright-core/package.json"
)

// needBrowser returns the Chromium executable, or skips the test when
// Chromium, node or playwright-core is missing (fails it under CI).
func needBrowser(t *testing.T) string {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	var missing []string
	if err != nil {
		missing = append(missing, "chromium")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
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

type scenario struct {
	Chromium          string  `json:"chromium"`
	AudioFile         string  `json:"audioFile"`
	IgnoreHTTPSErrors bool    `json:"ignoreHTTPSErrors"`
	TimeoutMs         int     `json:"timeoutMs"`
	Phones            []phone `json:"phones"`
}

// audioStats are the web phone's stats() from getStats.
type audioStats struct {
	PacketsReceived  float64 `json:"packetsReceived"`
	PacketsSent      float64 `json:"packetsSent"`
	TotalAudioEnergy float64 `json:"totalAudioEnergy"`
}

type phoneResult struct {
	OK    bool                       `json:"ok"`
	Error string                     `json:"error"`
	Step  string                     `json:"step"`
	Marks map[string]json.RawMessage `json:"marks"`
	DOM   json.RawMessage            `json:"dom"`
}

func (r phoneResult) stats(t *testing.T, label string) audioStats {
	t.Helper()
	var s audioStats
	if err := json.Unmarshal(r.Marks[label], &s); err != nil {
		t.Errorf("no stats %q: %v", label, err)
	}
	return s
}

// browserRun is a running driver.
type browserRun struct {
	cmd    *exec.Cmd
	done   chan struct{}
	mu     sync.Mutex
	result map[string]phoneResult
	stderr strings.Builder
}

// runBrowser starts the driver on sc; it (and Chromium, its process group)
// is killed when deadline passes or the test ends. gates maps a mark,
// "phone/name", to a file created when that phone reaches that mark: the
// go-ahead another phone's waitFile step waits for.
func runBrowser(t *testing.T, sc scenario, deadline time.Duration, gates map[string]string) *browserRun {
	t.Helper()
	data, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "scenario.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	r := &browserRun{done: make(chan struct{})}
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
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var ev struct {
				Event, Phone, Name string
				Result             map[string]phoneResult `json:"result"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			if path, ok := gates[ev.Phone+"/"+ev.Name]; ok && ev.Event == "mark" {
				_ = os.WriteFile(path, nil, 0o644)
			}
			if ev.Result != nil {
				r.mu.Lock()
				r.result = ev.Result
				r.mu.Unlock()
			}
		}
		_ = r.cmd.Wait()
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// mustPass waits for the driver and fails the test for every phone that
// failed.
func (r *browserRun) mustPass(t *testing.T) map[string]phoneResult {
	t.Helper()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.result == nil {
		t.Fatalf("browser driver gave no result:\n%s", tailString(r.stderr.String(), 4000))
	}
	for name, p := range r.result {
		if !p.OK {
			t.Errorf("browser %s failed at step %s: %s\n  dom %s", name, p.Step, p.Error, p.DOM)
		}
	}
	return r.result
}

// checkAudio fails unless the stats show audio both ways.
func checkAudio(t *testing.T, who string, s audioStats) {
	t.Helper()
	if s.PacketsReceived < 50 || s.PacketsSent == 0 || s.TotalAudioEnergy <= 0 {
		t.Errorf("%s: received %v packets (energy %v), sent %v; want audio both ways", who, s.PacketsReceived, s.TotalAudioEnergy, s.PacketsSent)
	}
}

// writeTone writes a 2 s WAV of 440 Hz + 660 Hz (48 kHz mono 16 bit) for
// Chromium's fake microphone, which loops it.
func writeTone(t *testing.T) string {
	t.Helper()
	const rate, secs = 48000, 2
	pcm := make([]byte, rate*secs*2)
	for i := range rate * secs {
		x := 0.25*math.Sin(2*math.Pi*440*float64(i)/rate) + 0.25*math.Sin(2*math.Pi*660*float64(i)/rate)
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(x*math.MaxInt16)))
	}
	h := []byte("RIFF")
	h = binary.LittleEndian.AppendUint32(h, uint32(36+len(pcm)))
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, 1)
	h = binary.LittleEndian.AppendUint16(h, 1)
	h = binary.LittleEndian.AppendUint32(h, rate)
	h = binary.LittleEndian.AppendUint32(h, rate*2)
	h = binary.LittleEndian.AppendUint16(h, 2)
	h = binary.LittleEndian.AppendUint16(h, 16)
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(len(pcm)))
	p := filepath.Join(t.TempDir(), "tone.wav")
	if err := os.WriteFile(p, append(h, pcm...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
