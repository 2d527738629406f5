// Package linphone tests the SBC with linphone-cli (linphonec) as an
// independent SIP caller: it calls the SBC's echo destination over UDP with
// a tone file as its microphone and records what it hears. The tone coming
// back, at its frequency, proves audio both ways; the CDR counts the
// packets. linphone advertises the machine's first interface address in
// its SDP, not the loopback address it sends from, so the SBC must latch
// onto where the media really comes from.
package linphone

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/test/interop/sbcproc"
)

func TestMain(m *testing.M) { sbcproc.Main(m) }

// Addresses from this package's range, 127.0.2.0/24.
const (
	sbcIP      = "127.0.2.1"
	linphoneIP = "127.0.2.2" // linphone's SIP (its RTP binds every address)
	toneHz     = 700.0
)

func sbcConfig(dir string, port int) string {
	return fmt.Sprintf(`node_id: linphone-interop
log: {level: info, format: json}
sip:
  listeners:
    - {name: udp, transport: udp, addr: "%[1]s:%[2]d", symmetric: true}
media:
  bind_ip: %[1]s
  rtp_ports: 21000-21099
routes:
  - {name: echo, match: {ruri_user: ^echo$}, target: echo}
cdr:
  - {name: jsonl, type: jsonl, dir: %[3]s}
cdr_spool: %[4]s
admin: {addr: "", drain_timeout: 1s}
`, sbcIP, port, sbcproc.CDRDir(dir), sbcproc.SpoolDir(dir))
}

// TestLinphoneCallsEcho: linphone calls the echo through the SBC, plays a
// 700 Hz tone and records the call; the recording's loudest second is that
// tone, and the CDR shows an answered call with media both ways.
func TestLinphoneCallsEcho(t *testing.T) {
	sbcproc.NeedTools(t, map[string]string{"linphonec": "linphone-cli"})
	dir := t.TempDir()
	port := freeUDPPort(t, sbcIP)
	sbc := sbcproc.Start(t, sbcproc.Options{Config: sbcConfig(dir, port), Dir: dir})
	tone, rx := filepath.Join(dir, "tone.wav"), filepath.Join(dir, "rx.wav")
	if err := writeTone(tone, toneHz, 30); err != nil {
		t.Fatal(err)
	}
	lp := startLinphone(t, dir)
	lp.send(t, "soundcard use files", "play "+tone, "record "+rx, fmt.Sprintf("call sip:echo@%s:%d", sbcIP, port))
	lp.waitOutput(t, "Media streams established", 20*time.Second)
	waitRecording(t, rx, 3*48000*2, 30*time.Second)
	lp.send(t, "terminate")
	lp.waitOutput(t, "ended", 10*time.Second)
	lp.quit(t)

	w, err := readWAV(rx)
	if err != nil {
		t.Fatalf("linphone's recording: %v", err)
	}
	f, share := peak(w.loudest(1), w.rate)
	t.Logf("linphone's SDP named %s; it heard %.0f Hz (%.0f%% of the energy) in %v", lp.sdpAddr(), f, 100*share, w)
	if f < toneHz-10 || f > toneHz+10 || share < 0.5 {
		t.Errorf("linphone heard %.0f Hz (%.0f%% of the energy) in its recording (%v), want its own %.0f Hz tone back",
			f, 100*share, w, toneHz)
	}
	recs := sbc.WaitRecords(t, 1, 10*time.Second)
	r := recs[0]
	t.Logf("CDR: %s, %d packets to the echo, %d back", r.Disposition, r.AToBPackets, r.BToAPackets)
	if len(recs) != 1 || r.Disposition != "ANSWERED" || r.Trunk != "echo" || r.HangupCause != "caller_bye" ||
		r.AToBPackets == 0 || r.BToAPackets == 0 || !strings.HasPrefix(r.SrcAddr, linphoneIP+":") {
		t.Errorf("CDRs %+v: want one ANSWERED echo call from %s ended by the caller, with media both ways", recs, linphoneIP)
	}
}

// waitRecording waits until linphone's recording at path holds size
// bytes. It writes the WAV header only when the call ends, so the length
// in seconds is not known before: 3 s of opus (what linphone and the echo
// agree on) decoded to 48 kHz 16-bit mono is 288 kB; an 8 kHz codec would
// take six times as long.
func waitRecording(t *testing.T, path string, size int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		fi, err := os.Stat(path)
		if err == nil && fi.Size() >= size {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("linphone's recording %s: not %d bytes within %v (%v)", path, size, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// linphone is a running linphonec, driven through its standard input.
// linphonecsh would talk to it through one pipe per user
// (/tmp/linphonec-<uid>), which two runs at once would share.
type linphone struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	done  chan struct{}
	mu    sync.Mutex
	out   strings.Builder
	debug string
}

// startLinphone runs linphonec with a fresh HOME and config in dir, its
// SIP on linphoneIP and a free port, and waits until that port is bound.
// It is killed by its PID when the test ends.
func startLinphone(t *testing.T, dir string) *linphone {
	t.Helper()
	home := filepath.Join(dir, "home")
	// Without its database directory linphone never brings its network up.
	if err := os.MkdirAll(filepath.Join(home, ".local/share/linphone"), 0o755); err != nil {
		t.Fatal(err)
	}
	sipPort, rtpPort := freeUDPPort(t, linphoneIP), evenFreeUDPPort(t)
	rc := filepath.Join(dir, "linphonerc")
	// sip_tcp_port and sip_tls_port 0: no TCP or TLS listener on every
	// address; ipv6_migration_done, or it turns IPv6 back on.
	cfg := fmt.Sprintf("[sip]\nsip_port=%d\nsip_tcp_port=0\nsip_tls_port=0\nbind_address=%s\nuse_ipv6=0\nipv6_migration_done=1\n"+
		"[rtp]\naudio_rtp_port=%d-%d\n", sipPort, linphoneIP, rtpPort, rtpPort+1)
	if err := os.WriteFile(rc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	lp := &linphone{done: make(chan struct{}), debug: filepath.Join(dir, "linphone.log")}
	lp.cmd = exec.Command("linphonec", "-c", rc, "-d", "5", "-l", lp.debug)
	lp.cmd.Env = append(os.Environ(), "HOME="+home)
	var err error
	if lp.in, err = lp.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := lp.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	lp.cmd.Stderr = lp.cmd.Stdout
	if err := lp.cmd.Start(); err != nil {
		t.Fatalf("start linphonec: %v", err)
	}
	go lp.read(out)
	t.Cleanup(func() {
		_ = lp.cmd.Process.Kill()
		<-lp.done
	})
	waitBound(t, lp, fmt.Sprintf("%s:%d", linphoneIP, sipPort))
	return lp
}

func (lp *linphone) read(out io.Reader) {
	defer close(lp.done)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lp.mu.Lock()
		lp.out.WriteString(sc.Text() + "\n")
		lp.mu.Unlock()
	}
	_ = lp.cmd.Wait()
}

func (lp *linphone) output() string {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.out.String()
}

// send writes commands to linphonec, one a line.
func (lp *linphone) send(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := io.WriteString(lp.in, c+"\n"); err != nil {
			t.Fatalf("linphonec %q: %v\n%s", c, err, lp.output())
		}
	}
}

// waitOutput waits until linphonec has printed text.
func (lp *linphone) waitOutput(t *testing.T, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(lp.output(), text) {
		select {
		case <-lp.done:
			t.Fatalf("linphonec exited before printing %q:\n%s", text, lp.output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("linphonec did not print %q within %v:\n%s", text, timeout, lp.output())
		}
	}
}

// sdpAddr is the connection address of linphone's first SDP (from its
// debug log): the machine's first interface address, not 127.0.2.2.
func (lp *linphone) sdpAddr() string {
	data, _ := os.ReadFile(lp.debug)
	for _, line := range strings.Split(string(data), "\n") {
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "c=IN IP4 "); ok {
			return a
		}
	}
	return "(not in the log)"
}

// quit asks linphonec to exit and waits for it (killed after 10 s).
func (lp *linphone) quit(t *testing.T) {
	t.Helper()
	lp.send(t, "quit")
	select {
	case <-lp.done:
	case <-time.After(10 * time.Second):
		t.Errorf("linphonec did not quit within 10 s; killing it")
		_ = lp.cmd.Process.Kill()
		<-lp.done
	}
}

// waitBound waits until linphonec's UDP socket on addr is bound (its
// /proc/PID/net/udp; a probe bind could steal the port).
func waitBound(t *testing.T, lp *linphone, addr string) {
	t.Helper()
	ua := net.UDPAddrFromAddrPort(mustAddrPort(t, addr))
	ip4 := ua.IP.To4()
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip4[3], ip4[2], ip4[1], ip4[0], ua.Port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/udp", lp.cmd.Process.Pid))
		if strings.Contains(string(data), want) {
			return
		}
		select {
		case <-lp.done:
			t.Fatalf("linphonec exited before binding %s:\n%s", addr, lp.output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("linphonec did not bind %s within 15 s:\n%s", addr, lp.output())
		}
	}
}
