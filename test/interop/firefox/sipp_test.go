package firefox

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/test/sipptest"
)

// sipp is a SIPp process inside the namespace. test/sipptest picks free
// ports and checks binds from the test's own namespace, so this small
// runner starts SIPp on the namespace's fixed addresses instead.
type sipp struct {
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
	err  error
}

// startSIPp runs one call of scenario (in test/sipp) on local (ip:port),
// echoing RTP on mediaPort; remote is the SBC for a UAC, "" for a UAS.
// A UAS is started once its SIP socket is bound. It is killed by its PID
// when the test ends.
func startSIPp(t *testing.T, ns netns, scenario, local string, mediaPort int, remote string, extra ...string) *sipp {
	t.Helper()
	ap := netip.MustParseAddrPort(local)
	p := &sipp{dir: t.TempDir(), done: make(chan struct{})}
	var args []string
	if remote != "" {
		args = append(args, remote)
	}
	args = append(args, "-sf", sipptest.ScenarioPath(scenario), "-t", "u1",
		"-i", ap.Addr().String(), "-p", fmt.Sprint(ap.Port()), "-bind_local",
		"-ci", ap.Addr().String(), "-cp", fmt.Sprint(ap.Port()+1000),
		"-rtp_echo", "-mi", ap.Addr().String(), "-mp", fmt.Sprint(mediaPort),
		"-m", "1", "-nostdin", "-timeout", "60", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(p.dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(p.dir, "messages.log"))
	p.cmd = ns.command("sipp", append(args, extra...)...)
	p.cmd.Dir = p.dir
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start sipp: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	if remote == "" {
		p.waitBound(t, ap)
	}
	return p
}

// waitBound waits until SIPp's UDP socket on ap shows in its own
// namespace's /proc/PID/net/udp.
func (p *sipp) waitBound(t *testing.T, ap netip.AddrPort) {
	t.Helper()
	a := ap.Addr().As4()
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], ap.Port())
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/udp", p.cmd.Process.Pid))
		if strings.Contains(string(data), want) {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("sipp exited before binding %s: %v\n%s", ap, p.err, p.logs())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipp did not bind %s within 10 s", ap)
		}
	}
}

// wait waits for SIPp to end its call and fails t unless it passed.
func (p *sipp) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("sipp still running after %v\n%s", timeout, p.logs())
	}
	if p.err != nil {
		t.Errorf("sipp failed: %v\n%s", p.err, p.logs())
	}
}

// logs is the end of SIPp's error and message logs.
func (p *sipp) logs() string {
	var b strings.Builder
	for _, name := range []string{"errors.log", "messages.log"} {
		data, _ := os.ReadFile(filepath.Join(p.dir, name))
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", name, data)
	}
	return b.String()
}
