package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/internal/app"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/internal/logging"
)

func NeedSIPp(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sipp is not installed (Debian package sip-tester)")
		}
		t.Skip("sipp not installed")
	}
}

type TrunkSpec struct {
	Name      string
	Addr      string
	Port      int
	Transport string
	Options   time.Duration
}

type SBCOptions struct {
	Trunks        []TrunkSpec
	RingTimeout   time.Duration
	InviteTimeout time.Duration
	Mutate        func(*config.Config)
	// noValidate runs a config Validate would refuse, for timers shorter
	// than production allows (RFC 4028 Min-SE is 90s).
	NoValidate bool
	// logOut, when set, receives the SBC's log as JSON lines through
	// internal/logging (per-call tracing) instead of the test log.
	LogOut io.Writer
	// rfcTimers runs the SIP timers of RFC 3261 (T1 500 ms: an answer is
	// retransmitted for 32 s waiting for its ACK) and the production
	// invite_timeout (32 s) instead of the harness's shorter ones: a real
	// browser on a loaded machine acknowledges an answer only once it has
	// applied its SDP, which can take longer than 6.4 s, and a callee on
	// such a machine may take longer than 2 s to answer at all.
	RFCTimers bool
}

type SBC struct {
	// linger is how long a finished transaction may stay (Timer D, K, M:
	// 64*T1) before waitIdle gives up on it.
	linger time.Duration
	App    *app.App
	UDP    netip.AddrPort
	TCP    netip.AddrPort
	WS     netip.AddrPort
	WSS    netip.AddrPort
}

// StartSBC runs the SBC in-process on 127.0.0.1 with UDP and TCP on one
// free port, WS and WSS on others, routing every call to the trunks in
// order.
func StartSBC(t *testing.T, o SBCOptions) *SBC {
	t.Helper()
	cfg := config.Default()
	// The overload control answers 503 when messages wait over 20 ms; a
	// CI machine running the race detector on two busy cores can make
	// them wait that long without anything being wrong with the SBC. It
	// has its own tests on real sockets (b2bua/overload_load_test.go).
	cfg.SIP.OverloadDelay = 0
	port := FreeUDPPort(t, "127.0.0.1")
	// Symmetric as a loaded config has it by default (Go literals leave
	// it false).
	sym := config.DefaultSymmetric
	cfg.SIP.Listeners = []config.Listener{
		{Name: "udp", Transport: "udp", Addr: "127.0.0.1:" + Itoa(port), Symmetric: sym},
		{Name: "tcp", Transport: "tcp", Addr: "127.0.0.1:" + Itoa(port), Symmetric: sym},
		{Name: "ws", Transport: "ws", Addr: "127.0.0.1:0", Symmetric: sym},
		{Name: "wss", Transport: "wss", Addr: "127.0.0.1:0", Symmetric: sym},
	}
	cfg.Media.RTPPorts = "40000-49999"
	cfg.Trunks = nil
	var names []string
	for _, tr := range o.Trunks {
		uri := fmt.Sprintf("sip:%s:%d", tr.Addr, tr.Port)
		if tr.Transport != "" && tr.Transport != "udp" {
			uri += ";transport=" + tr.Transport
		}
		timeout := time.Second
		if tr.Options > 0 && tr.Options < timeout {
			timeout = tr.Options
		}
		cfg.Trunks = append(cfg.Trunks, config.Trunk{Name: tr.Name, URI: uri, OptionsInterval: tr.Options,
			OptionsTimeout: timeout, FailureThreshold: 1})
		names = append(names, tr.Name)
	}
	cfg.Routes = []config.Route{{Name: "echo", Match: config.Match{RURIUser: "^echo$"}, Target: config.TargetEcho}}
	if len(names) > 0 {
		// The harness's callers are loopback test phones, trusted like a
		// PBX's network: the policy tests build their own untrusted routes.
		cfg.Routes = append(cfg.Routes, config.Route{Name: "all", Target: config.TargetTrunks, Trunks: names,
			TrustedSources: []string{"127.0.0.0/8", "::1"}})
	}
	cfg.SIP.RingTimeout = 20 * time.Second
	if o.RingTimeout > 0 {
		cfg.SIP.RingTimeout = o.RingTimeout
	}
	cfg.SIP.InviteTimeout = 2 * time.Second
	if o.RFCTimers {
		// A callee slowed by a loaded machine (the echo destination next
		// to ten browsers) gets the production time to answer too.
		cfg.SIP.InviteTimeout = config.DefaultInviteTimeout
	}
	if o.InviteTimeout > 0 {
		cfg.SIP.InviteTimeout = o.InviteTimeout
	}
	cfg.Admin.Addr = ""
	// CDRs of test SBCs stay in the test's temporary directory.
	cfg.CDRSpool = filepath.Join(t.TempDir(), "cdr-spool")
	cfg.CDR = []config.CDRWriter{{Type: config.CDRJSONL, Dir: filepath.Join(t.TempDir(), "cdr")}}
	cfg.Policy.Bans.File = filepath.Join(t.TempDir(), "bans.json")
	if o.Mutate != nil {
		o.Mutate(cfg)
	}
	if err := cfg.Validate(); err != nil && !o.NoValidate {
		t.Fatalf("test config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(LogWriter{T: t}, &slog.HandlerOptions{Level: logLevel()}))
	if o.LogOut != nil {
		log, _ = logging.New(o.LogOut, logging.FormatJSON, logLevel())
	}
	before := runtime.NumGoroutine()
	timers := txn.Timers{T1: 100 * time.Millisecond, T2: 400 * time.Millisecond, T4: 500 * time.Millisecond}
	if o.RFCTimers {
		timers = txn.Timers{} // zero: RFC 3261
	}
	a, err := app.New(cfg, log, app.Options{Timers: timers})
	// The port FreeUDPPort found free can be taken by another test's
	// socket before the SBC binds it (go test runs packages side by side):
	// the SBC then starts on another one, a bounded number of times.
	for try := 0; err != nil && errors.Is(err, syscall.EADDRINUSE) && try < 5; try++ {
		old := "127.0.0.1:" + Itoa(port)
		port = FreeUDPPort(t, "127.0.0.1")
		moved := false
		for i := range cfg.SIP.Listeners {
			if cfg.SIP.Listeners[i].Addr == old {
				cfg.SIP.Listeners[i].Addr = "127.0.0.1:" + Itoa(port)
				moved = true
			}
		}
		if !moved {
			break // the test chose the address: its own error to report
		}
		t.Logf("%v; starting on port %d instead", err, port)
		a, err = app.New(cfg, log, app.Options{Timers: timers})
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &SBC{App: a, linger: 64 * timers.T1}
	if o.RFCTimers {
		s.linger = 64 * 500 * time.Millisecond
	}
	s.UDP, _ = a.Addr("udp")
	s.TCP, _ = a.Addr("tcp")
	s.WS, _ = a.Addr("ws")
	s.WSS, _ = a.Addr("wss")
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		WaitGoroutines(t, before)
	})
	return s
}

func logLevel() slog.Level {
	if os.Getenv("SBC_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// waitIdle asserts that no call, transaction or media session is left.
func (s *SBC) WaitIdle(t *testing.T) {
	t.Helper()
	s.WaitIdleProbing(t, false)
}

// waitIdleProbing is waitIdle for an SBC whose OPTIONS probes keep
// transactions open: only calls and media are checked when probing.
func (s *SBC) WaitIdleProbing(t *testing.T, probing bool) {
	t.Helper()
	deadline := time.Now().Add(s.linger + 10*time.Second)
	for {
		calls, txs, media, echo := s.App.Server().ActiveCalls(), s.App.Server().Transactions(), s.App.Media().Active(), s.App.Echo().Calls()
		if probing {
			txs = 0
		}
		if calls == 0 && txs == 0 && media == 0 && echo == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not idle: calls=%d transactions=%d media=%d echo=%d", calls, txs, media, echo)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func WaitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Errorf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), before, buf[:n])
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func FreeUDPPort(t *testing.T, ip string) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		u.Close()
		// the same port must be free on TCP too (SIPp and the SBC use both)
		l, err := net.Listen("tcp", net.JoinHostPort(ip, Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free port")
	return 0
}

func Itoa(n int) string { return strconv.Itoa(n) }

func Tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

type LogWriter struct{ T *testing.T }

func (w LogWriter) Write(p []byte) (int, error) {
	w.T.Log(string(p))
	return len(p), nil
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}

// EvenFreePort is a free even UDP port on ip whose odd neighbour is free
// too (SIPp echoes RTP on it and RTCP on the next).
func EvenFreePort(t *testing.T, ip string) int {
	t.Helper()
	for range 50 {
		c, err := listenEvenUDP(ip)
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c2, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip), Port: port + 1})
		c.Close()
		if err == nil {
			c2.Close()
			return port
		}
	}
	t.Fatal("no free even port pair")
	return 0
}

func WaitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartUAS runs SIPp's built-in UAS for n calls on PBXIP and returns
// its port and a wait function that returns the messages it received.
func StartUAS(t *testing.T, n int, transport string) (int, func() string) {
	t.Helper()
	port := FreeUDPPort(t, PBXIP())
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	msgFile := filepath.Join(dir, "msgs.log")
	cmd := exec.CommandContext(ctx, "sipp", "-sn", "uas", "-i", PBXIP(), "-p", Itoa(port), "-m", Itoa(n),
		"-t", transport, "-nostdin", "-trace_err", "-trace_msg", "-message_file", msgFile)
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	return port, func() string {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("sipp uas: %v\n%s", err, Tail([]byte(out.String())))
		}
		b, _ := readFile(msgFile)
		return b
	}
}
