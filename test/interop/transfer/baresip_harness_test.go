package transfer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// baresip instances driven over their JSON control socket (ctrl_tcp,
// netstring-framed), each on its own address of this package's range
// (127.0.3.0/24), with a tone file as their microphone and, when asked,
// recording what they receive (sndfile).

// need fails (in CI) or skips (elsewhere) when a tool is missing.
func need(t *testing.T, cmd string) {
	t.Helper()
	if _, err := exec.LookPath(cmd); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (scripts/test.sh installs it)", cmd)
		}
		t.Skipf("%s not installed", cmd)
	}
}

// baresip is one running instance.
type baresip struct {
	t    *testing.T
	ip   string
	port int    // SIP, UDP
	rec  string // snd_path; "" when not recording
	cmd  *exec.Cmd
	ctrl net.Conn
	out  bytes.Buffer // its output, for failures

	mu     sync.Mutex
	events []string // type of every event, in order
	wg     sync.WaitGroup
}

// tone writes a 30 s sine of freq Hz, 8 kHz mono, into dir.
func tone(t *testing.T, dir string, freq int) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("tone%d.wav", freq))
	if out, err := exec.Command("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", p, "synth", "30", "sine",
		strconv.Itoa(freq)).CombinedOutput(); err != nil {
		t.Fatalf("sox: %v\n%s", err, out)
	}
	return p
}

// startBaresip runs baresip as user on ip, auto-answering, its microphone
// a tone of freq Hz; record keeps what it receives.
func startBaresip(t *testing.T, user, ip string, freq int, record bool) *baresip {
	t.Helper()
	dir := t.TempDir()
	b := &baresip{t: t, ip: ip, port: freePort(t, ip)}
	ctrlPort := freePort(t, ip)
	var rec string
	if record {
		b.rec = filepath.Join(dir, "rec")
		if err := os.Mkdir(b.rec, 0o755); err != nil {
			t.Fatal(err)
		}
		rec = "snd_path " + b.rec + "\nmodule sndfile.so\n"
	}
	cfg := fmt.Sprintf("poll_method epoll\nsip_listen %s:%d\nnet_interface %s\naudio_player alsa,null\n"+
		"audio_source aufile,%s\naudio_alert alsa,null\nausrc_srate 8000\nausrc_channels 1\nrtp_ports 30000-39999\n"+
		"rtcp_mux no\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule alsa.so\n%s"+
		"module ctrl_tcp.so\nmodule_tmp account.so\nmodule_app menu.so\nctrl_tcp_listen %s:%d\n",
		ip, b.port, ip, tone(t, dir, freq), rec, ip, ctrlPort)
	acct := fmt.Sprintf("<sip:%s@%s:%d>;regint=0;answermode=auto;audio_codecs=pcmu\n", user, ip, b.port)
	for name, text := range map[string]string{"config": cfg, "accounts": acct} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.cmd = exec.Command("baresip", "-f", dir)
	b.cmd.Stdout, b.cmd.Stderr = &syncWriter{b: &b.out, mu: &b.mu}, &syncWriter{b: &b.out, mu: &b.mu}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stop)
	b.ctrl = dialCtrl(t, net.JoinHostPort(ip, strconv.Itoa(ctrlPort)))
	b.wg.Go(b.readEvents)
	return b
}

// stop ends the process (by its PID) and the reader; idempotent.
func (b *baresip) stop() {
	if b.cmd.ProcessState == nil {
		_ = b.cmd.Process.Kill()
		_ = b.cmd.Wait()
	}
	if b.ctrl != nil {
		b.ctrl.Close()
	}
	b.wg.Wait()
}

func dialCtrl(t *testing.T, addr string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip control socket %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// command sends one control command (netstring-framed JSON).
func (b *baresip) command(cmd, params string) {
	b.t.Helper()
	msg, _ := json.Marshal(map[string]string{"command": cmd, "params": params, "token": cmd})
	if _, err := fmt.Fprintf(b.ctrl, "%d:%s,", len(msg), msg); err != nil {
		b.t.Fatalf("baresip %s: %v", cmd, err)
	}
}

// readEvents records the type of every event pushed on the socket.
func (b *baresip) readEvents() {
	r := bufio.NewReader(b.ctrl)
	for {
		lenText, err := r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(lenText[:len(lenText)-1]))
		if err != nil || n < 0 || n > 1<<20 {
			return
		}
		buf := make([]byte, n+1) // the payload and its ','
		if _, err := ioReadFull(r, buf); err != nil {
			return
		}
		var ev struct {
			Event bool   `json:"event"`
			Type  string `json:"type"`
		}
		if json.Unmarshal(buf[:n], &ev) == nil && ev.Event {
			b.mu.Lock()
			b.events = append(b.events, ev.Type)
			b.mu.Unlock()
		}
	}
}

// count is how many events of type typ arrived.
func (b *baresip) count(typ string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, e := range b.events {
		if e == typ {
			n++
		}
	}
	return n
}

// output is what the process printed so far.
func (b *baresip) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// recording returns the path of the first received-audio file.
func (b *baresip) recording() string {
	m, _ := filepath.Glob(filepath.Join(b.rec, "*-dec.wav"))
	if len(m) == 0 {
		return ""
	}
	return m[0]
}

type syncWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func ioReadFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// freePort is a UDP and TCP port free on ip.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	for range 20 {
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		u.Close()
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free port")
	return 0
}

// frequency is sox's rough frequency of a WAV file.
func frequency(t *testing.T, path string) int {
	t.Helper()
	out, err := exec.Command("sox", path, "-n", "stat").CombinedOutput()
	if err != nil {
		t.Fatalf("sox stat %s: %v\n%s", path, err, out)
	}
	for line := range strings.Lines(string(out)) {
		if name, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "Rough   frequency" {
			f, _ := strconv.Atoi(strings.TrimSpace(val))
			return f
		}
	}
	t.Fatalf("sox stat %s: no rough frequency\n%s", path, out)
	return 0
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool, show ...*baresip) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			for _, b := range show {
				b.mu.Lock()
				t.Logf("baresip on %s: events %v\n%s", b.ip, b.events, b.out.String())
				b.mu.Unlock()
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
