package baresip

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// needTools skips the test when baresip or sox is missing, unless CI
// is set: there a missing tool fails (scripts/test.sh installs them).
func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"baresip", "sox"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed (scripts/test.sh installs it)", tool)
			}
			t.Skipf("%s is not installed (Debian packages baresip-core, sox)", tool)
		}
	}
}

// phoneOptions describe one baresip.
type phoneOptions struct {
	user    string
	ip      string  // its own loopback address
	tone    float64 // the frequency it plays, Hz
	rtpBase int     // its RTP ports are rtpBase to rtpBase+99
	srtp    bool    // mediaenc=srtp-mand
	cert    string  // sip_certificate (cert and key): it listens on TLS too
	caFile  string  // sip_cafile: the CA it verifies TLS peers with
	// register, when set, is the SBC's address (host:port) to register
	// at over TCP, with password webPassword: calls then reach the phone
	// on its connection, from 127.0.0.1 (baresip binds no address to
	// its outgoing connections).
	register string
}

// phone is a running baresip, driven through its ctrl_tcp socket. It
// records what it sends and receives as WAV files in rec.
type phone struct {
	t       *testing.T
	o       phoneOptions
	sipPort int // UDP and TCP; TLS on sipPort+1
	rec     string
	// archived counts the recordings archiveRecordings moved (their new
	// names' prefix); only the test's goroutine touches it.
	archived int
	cmd      *exec.Cmd
	conn     net.Conn

	mu      sync.Mutex
	events  []event
	changed chan struct{} // closed and replaced when events or replies grow
	replies map[string]reply
	closed  bool
	token   int
}

// event is one event baresip pushed on the control socket.
type event struct {
	Type      string `json:"type"`
	Param     string `json:"param"`
	ID        string `json:"id"`
	Direction string `json:"direction"`
}

type reply struct {
	OK   bool   `json:"ok"`
	Data string `json:"data"`
}

// startPhone writes a config directory for o, starts baresip from it and
// connects to its control socket. The process is stopped by PID when the
// test ends.
func startPhone(t *testing.T, o phoneOptions) *phone {
	t.Helper()
	dir := t.TempDir()
	p := &phone{t: t, o: o, sipPort: freePort(t, o.ip), rec: filepath.Join(dir, "rec"),
		changed: make(chan struct{}), replies: map[string]reply{}}
	ctrl := freePort(t, o.ip)
	tone := filepath.Join(dir, "tone.wav")
	// Longer than any call: aufile stops at the end of the file.
	if out, err := exec.Command("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", tone,
		"synth", "60", "sine", strconv.FormatFloat(o.tone, 'f', -1, 64), "vol", "0.5").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v: %s", err, out)
	}
	if err := os.Mkdir(p.rec, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "config"), p.config(tone, ctrl))
	writeFile(t, filepath.Join(dir, "accounts"), p.account()+"\n")
	log, err := os.Create(filepath.Join(dir, "baresip.log"))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command("baresip", "-f", dir)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start baresip: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		p.stop()
		_ = p.cmd.Process.Kill()
		<-exited
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("baresip %s log (tail):\n%s", o.user, tail(b, 3000))
		}
	})
	p.connect(t, net.JoinHostPort(o.ip, strconv.Itoa(ctrl)), exited)
	return p
}

// config is baresip's config file: no terminal, no sound card; the tone
// file as the source and the sndfile recorder on every call.
func (p *phone) config(tone string, ctrl int) string {
	lines := []string{
		"poll_method epoll",
		fmt.Sprintf("sip_listen %s:%d", p.o.ip, p.sipPort),
		"net_interface " + p.o.ip,
		"audio_player alsa,null",
		"audio_source aufile," + tone,
		"audio_alert alsa,null",
		"ausrc_srate 8000",
		"ausrc_channels 1",
		fmt.Sprintf("rtp_ports %d-%d", p.o.rtpBase, p.o.rtpBase+99),
		"rtcp_mux no",
		"snd_path " + p.rec,
		"module_path /usr/lib/baresip/modules",
		"module g711.so",
		"module aufile.so",
		"module alsa.so",
		"module sndfile.so",
		"module srtp.so",
		"module ctrl_tcp.so",
		"module_tmp account.so",
		"module_app menu.so",
		fmt.Sprintf("ctrl_tcp_listen %s:%d", p.o.ip, ctrl),
	}
	if p.o.cert != "" {
		lines = append(lines, "sip_certificate "+p.o.cert)
	}
	if p.o.caFile != "" {
		lines = append(lines, "sip_cafile "+p.o.caFile)
	}
	return strings.Join(lines, "\n") + "\n"
}

// account is the phone's one account: no registration, answers every
// call at once, PCMU only.
func (p *phone) account() string {
	a := fmt.Sprintf("<sip:%s@%s:%d>;regint=0;answermode=auto;audio_codecs=pcmu", p.o.user, p.o.ip, p.sipPort)
	if p.o.register != "" {
		a = fmt.Sprintf("<sip:%s@%s;transport=tcp>;auth_user=%s;auth_pass=%s;"+
			"regint=600;answermode=auto;audio_codecs=pcmu", p.o.user, p.o.register, p.o.user, webPassword)
	}
	if p.o.srtp {
		a += ";mediaenc=srtp-mand"
	}
	return a
}

// connect waits for the control socket and reads it until it closes.
func (p *phone) connect(t *testing.T, addr string, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			p.conn = c
			break
		}
		select {
		case <-exited:
			t.Fatalf("baresip %s exited at start", p.o.user)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip %s: control socket %s: %v", p.o.user, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	go p.read(bufio.NewReader(p.conn))
}

// read parses the netstrings baresip sends: replies and events.
func (p *phone) read(r *bufio.Reader) {
	defer p.stop()
	for {
		msg, err := readNetstring(r)
		if err != nil {
			return
		}
		var m struct {
			Response bool   `json:"response"`
			Event    bool   `json:"event"`
			Token    string `json:"token"`
			reply
			event
		}
		if json.Unmarshal(msg, &m) != nil {
			continue
		}
		p.mu.Lock()
		switch {
		case m.Response:
			p.replies[m.Token] = m.reply
		case m.Event:
			p.events = append(p.events, m.event)
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

func (p *phone) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		if p.conn != nil {
			p.conn.Close()
		}
	}
}

func readNetstring(r *bufio.Reader) ([]byte, error) {
	head, err := r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(head[:len(head)-1])
	if err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("bad netstring length %q", head)
	}
	b := make([]byte, n+1)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	if b[n] != ',' {
		return nil, fmt.Errorf("netstring not ended by a comma")
	}
	return b[:n], nil
}

// do runs a command (dial, accept, hangup, hold, resume, sndcode) and
// fails the test unless baresip answers ok within 5 s.
func (p *phone) do(command, params string) {
	p.t.Helper()
	p.mu.Lock()
	p.token++
	tok := strconv.Itoa(p.token)
	p.mu.Unlock()
	b, _ := json.Marshal(map[string]string{"command": command, "params": params, "token": tok})
	if _, err := fmt.Fprintf(p.conn, "%d:%s,", len(b), b); err != nil {
		p.t.Fatalf("%s: %s: %v", p.o.user, command, err)
	}
	r := waitFor(p, command+" "+params, 5*time.Second, func() (reply, bool) {
		r, ok := p.replies[tok]
		return r, ok
	})
	if !r.OK {
		p.t.Fatalf("%s: %s %s: %s", p.o.user, command, params, r.Data)
	}
}

// mark is where the next waitEvent starts looking.
func (p *phone) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

// waitEvent waits up to timeout for an event of type typ pushed after
// mark, and returns it.
func (p *phone) waitEvent(mark int, typ string, timeout time.Duration) event {
	p.t.Helper()
	e := waitFor(p, "event "+typ, timeout, func() (event, bool) {
		for _, e := range p.events[min(mark, len(p.events)):] {
			if e.Type == typ || e.Type == "CALL_CLOSED" {
				return e, true
			}
		}
		return event{}, false
	})
	if e.Type != typ {
		p.t.Fatalf("%s: call closed (%s) waiting for %s", p.o.user, e.Param, typ)
	}
	return e
}

// waitFor waits for found, called under p.mu, to report true.
func waitFor[T any](p *phone, what string, timeout time.Duration, found func() (T, bool)) T {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		v, ok := found()
		ch, closed := p.changed, p.closed
		p.mu.Unlock()
		if ok {
			return v
		}
		if closed {
			p.t.Fatalf("%s: control socket closed waiting for %s", p.o.user, what)
		}
		select {
		case <-ch:
		case <-deadline:
			p.t.Fatalf("%s: no %s within %s; events: %v", p.o.user, what, timeout, p.eventTypes())
		}
	}
}

func (p *phone) eventTypes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.events {
		if e.Type != "CALL_RTCP" {
			out = append(out, e.Type+"("+e.Param+")")
		}
	}
	return out
}

// recordings lists the phone's received-audio recordings (sndfile's
// dump-<time>-dec.wav), oldest first.
func (p *phone) recordings() []string {
	files, _ := filepath.Glob(filepath.Join(p.rec, "*-dec.wav"))
	slices.Sort(files)
	return files
}

// archiveRecordings moves the phone's recordings out of the way once a
// call is checked. baresip names a call's recording by the second it
// began: two calls begun in the same second (a call takes about one)
// shared one file, and the count of recordings the test goes by did not
// grow. Archived, the next call's file is new whatever its name.
func (p *phone) archiveRecordings(t *testing.T) {
	t.Helper()
	old := filepath.Join(p.rec, "old")
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(p.rec, "*.wav"))
	for _, f := range files {
		p.archived++
		if err := os.Rename(f, filepath.Join(old, strconv.Itoa(p.archived)+"-"+filepath.Base(f))); err != nil {
			t.Fatal(err)
		}
	}
}

// heard counts the blocks of tone in the phone's newest recording, if
// it has more than before (0 otherwise, or while it cannot be read).
func (p *phone) heard(before int, tone float64) int {
	recs := p.recordings()
	if len(recs) <= before {
		return 0
	}
	s, err := readWAV(recs[len(recs)-1])
	if err != nil {
		return 0
	}
	return toneBlocks(s, tone)
}

func writeFile(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.ToValidUTF8(b, nil))
}
