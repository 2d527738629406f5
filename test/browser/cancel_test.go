package browser

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestCancelledDriverClosesFirefox: a driver still running when its test
// ends (a failed or timed-out test) leaves no Firefox behind. puppeteer
// starts Firefox in a process group of its own, so killing the driver's
// group alone would orphan it; the Run asks the driver to close first.
func TestCancelledDriverClosesFirefox(t *testing.T) {
	if _, err := exec.LookPath("firefox-esr"); err != nil {
		need(t, "firefox-esr is missing (Debian package firefox-esr): run scripts/test.sh, which installs it")
	}
	NodeModule(t, "puppeteer-core/package.json")
	var browsers []int
	t.Run("driver", func(t *testing.T) {
		r := Start(t, Scenario{Browser: "firefox", Deadline: time.Minute, Phones: []Phone{{Name: "a",
			URL: "about:blank", Steps: []Step{Do("wait", "call", "in-call", "timeoutMs", 60000)}}}})
		r.WaitEvent("", "launched", "", 30*time.Second)
		browsers = childrenOf(r.cmd.Process.Pid)
		if len(browsers) == 0 {
			t.Fatal("the driver has launched no browser process")
		}
	}) // the subtest's end cancels the driver, still waiting
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range browsers {
		for running(pid) {
			if time.Now().After(deadline) {
				_ = exec.Command("kill", "-9", "--", "-"+strconv.Itoa(pid)).Run()
				t.Fatalf("Firefox (pid %d) still running after its driver was cancelled", pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so after ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := bytes.Fields(b[i+1:])
		if len(fields) > 1 && string(fields[1]) == strconv.Itoa(pid) {
			if n, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// running reports whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	fields := bytes.Fields(b[i+1:])
	return len(fields) > 0 && string(fields[0]) != "Z"
}
