package sipptest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
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

// Loopback addresses of the end-to-end topology (see the package comment).
const (
	SBCIP    = "127.0.0.1"
	CallerIP = "127.0.0.2"
	CalleeIP = "127.0.0.3"
)

// Transports, as SIPp's -t takes them: one socket for all calls.
const (
	UDP = "u1"
	TCP = "t1"
)

// Unlimited as Options.Calls runs SIPp without -m: a UAS then answers until
// Stop, the context or the timeout ends it.
const Unlimited = -1

// DefaultTimeout bounds a run whose Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// killGrace is how long past its own -timeout SIPp may run before it is
// killed.
const killGrace = 10 * time.Second

// stopGrace is how long Stop waits for a soft exit before it kills: running
// calls get that long to finish.
const stopGrace = 3 * time.Second

// Options describes one SIPp run. The zero value of every field but
// Scenario has a usable default.
type Options struct {
	// Scenario is the path of the XML scenario, usually ScenarioPath(name).
	Scenario string
	// Args are extra SIPp arguments such as -s, -d or -key, appended last.
	Args []string
	// LocalIP is the address SIPp binds and advertises (-i, -bind_local).
	// Default: CallerIP when Remote is set, CalleeIP otherwise.
	LocalIP string
	// LocalPort is the SIP port (-p); 0 picks a free one on LocalIP.
	LocalPort int
	// Remote is host:port of the peer for a UAC; empty for a UAS.
	Remote string
	// Transport is UDP (default) or TCP.
	Transport string
	// Calls is -m, the number of calls after which SIPp exits. 0 means 1;
	// Unlimited runs without -m.
	Calls int
	// Rate is -r in calls per second; 0 keeps SIPp's default (10).
	Rate int
	// Timeout is SIPp's global -timeout (with -timeout_error, so reaching
	// it fails the run with exit code 255, an Unlimited UAS too), rounded up
	// to whole seconds. Default DefaultTimeout. The process is killed
	// killGrace after it.
	Timeout time.Duration
	// MessageLog records every message sent and received (-trace_msg) into
	// Result.Messages. Costly under load.
	MessageLog bool
}

// Proc is a running SIPp process. Its methods are safe for concurrent use.
type Proc struct {
	addr netip.AddrPort
	dir  string
	cmd  *exec.Cmd
	opts Options

	done     chan struct{} // closed once the process has exited and result is set
	result   Result
	stopOnce sync.Once
}

// Available reports whether a sipp binary is on PATH.
func Available() bool {
	_, err := exec.LookPath("sipp")
	return err == nil
}

// Require skips t when sipp is not installed, except under CI=true where a
// missing sipp fails t: CI must run every SIPp test.
func Require(t testing.TB) {
	t.Helper()
	if Available() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("sipp is not installed and CI=true: install sip-tester (scripts/test.sh does)")
	} else {
		t.Skip("sipp is not installed: run scripts/test.sh, which installs sip-tester")
	}
}

// Start runs SIPp with opts and returns once it is ready: for a UAS (no
// Remote) that is when its SIP socket is bound, so a UAC or the SBC may
// send to Addr at once. Setup problems fail t. The process is killed, by
// its PID, when ctx is done, killGrace after its timeout, and when the test
// ends; it never outlives t. Start must be called from the test goroutine.
func Start(ctx context.Context, t testing.TB, opts Options) *Proc {
	t.Helper()
	Require(t)
	opts = withDefaults(opts)
	scenario, err := filepath.Abs(opts.Scenario) // SIPp runs in its own directory
	if err != nil {
		t.Fatalf("sipp scenario: %v", err)
	}
	if _, err := os.Stat(scenario); err != nil {
		t.Fatalf("sipp scenario: %v", err)
	}
	opts.Scenario = scenario
	// The ports are picked free and released for SIPp, so another process
	// may take one in between: a UAS that cannot bind is started again on
	// new ports (a UAC's late bind error shows in its result instead).
	for attempt := 1; ; attempt++ {
		if p := startOnce(ctx, t, opts); p != nil {
			return p
		} else if attempt == 3 {
			t.Fatalf("sipp %s: its ports were taken %d times in a row", filepath.Base(opts.Scenario), attempt)
		}
	}
}

// startOnce starts SIPp on freshly picked ports. It returns the process,
// or nil when a port was taken before SIPp could bind it, which is worth a
// retry; any other failure ends t.
func startOnce(ctx context.Context, t testing.TB, opts Options) *Proc {
	t.Helper()
	addr, err := localAddr(opts)
	if err != nil {
		t.Fatalf("sipp local address: %v", err)
	}
	ctrl, err := freePort("udp", controlIP(addr.Addr()))
	if err != nil {
		t.Fatalf("sipp control port: %v", err)
	}
	p := &Proc{addr: addr, dir: t.TempDir(), opts: opts, done: make(chan struct{})}
	if err := p.start(ctx, ctrl); err != nil {
		t.Fatalf("start sipp %s: %v", filepath.Base(opts.Scenario), err)
	}
	t.Cleanup(func() {
		p.kill()
		<-p.done
	})
	if opts.Remote == "" {
		if err := p.waitReady(5 * time.Second); err != nil {
			p.kill()
			res := p.Wait()
			summary := res.Summary()
			if opts.LocalPort == 0 && strings.Contains(summary, "Address already in use") {
				t.Logf("sipp %s: a port was taken before it could bind; starting it again", filepath.Base(opts.Scenario))
				return nil
			}
			t.Fatalf("sipp %s not ready on %s: %v\n%s", filepath.Base(opts.Scenario), addr, err, summary)
		}
	}
	return p
}

// controlIP is where SIPp's remote control socket binds (-ci): its own
// address, except that SIPp cannot bind that socket on IPv6 (EAFNOSUPPORT),
// so an IPv6 run takes 127.0.0.1.
func controlIP(local netip.Addr) netip.Addr {
	if local.Is6() {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return local
}

func withDefaults(o Options) Options {
	if o.LocalIP == "" {
		o.LocalIP = CalleeIP
		if o.Remote != "" {
			o.LocalIP = CallerIP
		}
	}
	if o.Transport == "" {
		o.Transport = UDP
	}
	if o.Calls == 0 {
		o.Calls = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

func localAddr(o Options) (netip.AddrPort, error) {
	ip, err := netip.ParseAddr(o.LocalIP)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("parse local ip: %w", err)
	}
	if o.LocalPort != 0 {
		return netip.AddrPortFrom(ip, uint16(o.LocalPort)), nil
	}
	network := "udp"
	if o.Transport == TCP {
		network = "tcp"
	}
	port, err := freePort(network, ip)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ip, port), nil
}

// freePort asks the kernel for a port free on ip and releases it for SIPp.
// Another process may take it in between; SIPp then exits with a bind error
// that Start reports.
func freePort(network string, ip netip.Addr) (uint16, error) {
	bind := netip.AddrPortFrom(ip, 0).String()
	if network == "tcp" {
		l, err := net.Listen("tcp", bind)
		if err != nil {
			return 0, fmt.Errorf("pick free tcp port: %w", err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).AddrPort().Port(), nil
	}
	c, err := net.ListenPacket("udp", bind)
	if err != nil {
		return 0, fmt.Errorf("pick free udp port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Port(), nil
}

func (p *Proc) start(ctx context.Context, ctrl uint16) error {
	stdout, err := os.Create(p.file("stdout.log"))
	if err != nil {
		return fmt.Errorf("create stdout log: %w", err)
	}
	stderr, err := os.Create(p.file("stderr.log"))
	if err != nil {
		stdout.Close()
		return fmt.Errorf("create stderr log: %w", err)
	}
	cmd := exec.CommandContext(ctx, "sipp", p.args(ctrl)...)
	cmd.Dir = p.dir // SIPp writes any file not named below next to it
	cmd.Stdin = nil // /dev/null: SIPp must not wait for keys
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = killGrace
	if err := cmd.Start(); err != nil {
		stdout.Close()
		stderr.Close()
		return fmt.Errorf("exec: %w", err)
	}
	p.cmd = cmd
	watchdog := time.AfterFunc(p.opts.Timeout+killGrace, p.kill)
	go func() {
		err := cmd.Wait()
		watchdog.Stop()
		stdout.Close()
		stderr.Close()
		p.result = p.collect(exitCode(err))
		close(p.done)
	}()
	return nil
}

func (p *Proc) args(ctrl uint16) []string {
	o := p.opts
	var a []string
	if o.Remote != "" {
		a = append(a, o.Remote)
	}
	secs := int(math.Ceil(o.Timeout.Seconds()))
	a = append(a,
		"-sf", o.Scenario,
		"-t", o.Transport,
		"-i", p.addr.Addr().String(),
		"-p", strconv.Itoa(int(p.addr.Port())),
		"-bind_local",
		"-ci", controlIP(p.addr.Addr()).String(),
		"-cp", strconv.Itoa(int(ctrl)),
		"-nostdin",
		"-timeout", strconv.Itoa(secs), "-timeout_error",
		"-trace_err", "-error_file", p.file("errors.log"),
		"-trace_stat", "-stf", p.file("stats.csv"),
		"-trace_screen", "-screen_file", p.file("screen.log"),
	)
	if o.Calls != Unlimited {
		a = append(a, "-m", strconv.Itoa(o.Calls))
	}
	if o.Rate > 0 {
		a = append(a, "-r", strconv.Itoa(o.Rate))
	}
	if o.MessageLog {
		a = append(a, "-trace_msg", "-message_file", p.file("messages.log"))
	}
	return append(a, o.Args...)
}

func (p *Proc) file(name string) string { return filepath.Join(p.dir, name) }

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode() // -1 when a signal ended it
	}
	return -1
}

// Addr is the address SIPp's SIP socket is bound to: give it to the SBC as
// a trunk (UAS) or expect requests from it (UAC).
func (p *Proc) Addr() netip.AddrPort { return p.addr }

// Dir is the directory holding SIPp's logs for this run; it is removed when
// the test ends.
func (p *Proc) Dir() string { return p.dir }

// Wait blocks until SIPp exits and returns its result. Every call returns
// the same Result.
func (p *Proc) Wait() Result {
	<-p.done
	return p.result
}

// Stop asks SIPp for a soft exit (SIGUSR1: no new calls, running calls
// finish), kills it if it has not exited within stopGrace, and returns its
// result. It is how an Unlimited UAS is ended, and how a UAS left waiting
// by a failed caller is ended early.
func (p *Proc) Stop() Result {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGUSR1)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			p.kill()
		}
	})
	return p.Wait()
}

// kill ends the process by its PID unless it has already exited.
func (p *Proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
	}
}

// waitReady polls until SIPp's SIP socket is bound or SIPp exits.
func (p *Proc) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := bound(p.opts.Transport == TCP, p.addr)
		if err != nil {
			// No /proc/net: give SIPp a moment instead of proof.
			time.Sleep(500 * time.Millisecond)
			return nil
		}
		if ok {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("sipp exited with code %d", p.result.ExitCode)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("socket not bound after %s", limit)
		}
	}
}
