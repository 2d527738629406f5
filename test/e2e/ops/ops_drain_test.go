package ops

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/admin"
	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// freeTCPPort returns a port free on 127.0.0.1 for a moment.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// opsBinary is the sbc binary run with a config file of its own: one UDP
// listener, the admin server, one trunk "pbx" every call is routed to,
// and jsonl and csv CDRs.
type opsBinary struct {
	proc  *sbcProcess
	sip   string // ip:port of the UDP listener
	api   *e2e.AdminClient
	sinks e2e.CDRSinks
	file  string // the config file
}

// opsConfig renders the config; adminExtra is added to the admin section
// (", drain_timeout: 1s") and extra appended as YAML.
func opsConfig(sip, adminAddr string, pbxPort int, sinks e2e.CDRSinks, adminExtra, extra string) string {
	return fmt.Sprintf(`
node_id: ops
log: {level: info}
sip:
  listeners: [{transport: udp, addr: %q}]
  invite_timeout: 2s
media: {rtp_ports: 40000-49999}
admin: {addr: %q, token: ops-token%s}
trunks: [{name: pbx, uri: "sip:%s:%d", options_interval: 0s}]
routes: [{name: all, target: trunks, trunks: [pbx], trusted_sources: [127.0.0.0/8]}]
cdr_spool: %q
cdr:
  - {type: jsonl, dir: %q}
  - {type: csv, dir: %q}
%s`, sip, adminAddr, adminExtra, e2e.PBXIP(), pbxPort, sinks.Spool, sinks.JSONL, sinks.CSV, extra)
}

func startOpsBinary(t *testing.T, bin string, pbxPort int, adminExtra, extra string) *opsBinary {
	t.Helper()
	o := &opsBinary{sinks: e2e.NewCDRSinks(t, ""), file: filepath.Join(t.TempDir(), "sbc.yaml")}
	o.sip = fmt.Sprintf("127.0.0.1:%d", e2e.FreeUDPPort(t, "127.0.0.1"))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	text := opsConfig(o.sip, adminAddr, pbxPort, o.sinks, adminExtra, extra)
	if err := os.WriteFile(o.file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	o.proc = runSBC(t, bin, o.file)
	o.api = &e2e.AdminClient{T: t, Base: "http://" + adminAddr, Token: "ops-token"}
	return o
}

// exitCode waits for the process to end and returns its status.
func (p *sbcProcess) exitCode(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("sbc still running after %v:\n%s", within, p.logs())
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *sbcProcess) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// TestDrainBinary runs the sbc binary and stops it with SIGTERM while
// calls are up: new calls get 503 with Retry-After and /readyz fails,
// the calls up finish, their CDRs are written and the process exits 0;
// calls still up at admin.drain_timeout are ended with BYE (CDR cause
// sbc_shutdown); a second signal exits at once.
func TestDrainBinary(t *testing.T) {
	sipptest.Require(t)
	bin := buildSBC(t)

	t.Run("calls finish", func(t *testing.T) {
		const n = 3
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		uas := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
			LocalIP: e2e.PBXIP(), Calls: n, Timeout: 30 * time.Second})
		o := startOpsBinary(t, bin, int(uas.Addr().Port()), ", drain_timeout: 20s", "")
		uac := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
			LocalIP: e2e.CallerIP(), Remote: o.sip, Calls: n, Rate: 10, Timeout: 30 * time.Second, Args: []string{"-s", "1000", "-d", "2500"}})
		e2e.WaitFor(t, 10*time.Second, "three calls up", func() bool {
			var l struct{ Calls []admin.Call }
			o.api.JSON("GET", "/api/v1/calls", "", 200, &l)
			answered := 0
			for _, c := range l.Calls {
				if c.State == "answered" {
					answered++
				}
			}
			return answered == n
		})
		o.proc.signal(t, syscall.SIGTERM)
		e2e.WaitFor(t, 5*time.Second, "/readyz to fail", func() bool { code, _ := o.api.Do("GET", "/readyz", ""); return code == 503 })
		ua := e2e.DialUA(t, "UDP", o.sip)
		late := ua.Invite("1000", "")
		res := ua.Expect(503)
		if sipmsg.Header(res, "Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		late.AckFailure(sipmsg.ToTag(res))
		if code := o.proc.exitCode(t, 20*time.Second); code != 0 {
			t.Errorf("exit status %d, want 0:\n%s", code, o.proc.logs())
		}
		if err := uac.Wait().Check(n); err != nil {
			t.Error(err)
		}
		if err := uas.Wait().Check(n); err != nil {
			t.Error(err)
		}
		recs := o.sinks.Records(t)
		if len(recs) != n {
			t.Fatalf("%d records, want %d", len(recs), n)
		}
		for _, r := range recs {
			if r.Disposition != outcome.Answered || r.HangupCause != "caller_bye" {
				t.Errorf("record %+v", r)
			}
		}
		if !strings.Contains(o.proc.logs(), "drained: no call left") {
			t.Errorf("no drain message:\n%s", o.proc.logs())
		}
	})

	t.Run("timeout ends the rest", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		uas := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
			LocalIP: e2e.PBXIP(), Calls: 1, Timeout: 20 * time.Second})
		o := startOpsBinary(t, bin, int(uas.Addr().Port()), ", drain_timeout: 1s", "")
		caller := e2e.NewSIPClient(t, "UDP", o.sip)
		d := caller.Invite("1000", e2e.UASSDP())
		res := d.Await(1, 10*time.Second, nil)
		if res.StatusCode() != 200 {
			t.Fatalf("call answered %d", res.StatusCode())
		}
		d.Established(res)
		d.Ack()
		time.Sleep(200 * time.Millisecond) // the ACK reaches the callee
		o.proc.signal(t, syscall.SIGTERM)
		if code := o.proc.exitCode(t, 15*time.Second); code != 0 {
			t.Errorf("exit status %d, want 0:\n%s", code, o.proc.logs())
		}
		if len(caller.Requests("BYE")) != 1 {
			t.Errorf("caller got %d BYE, want 1", len(caller.Requests("BYE")))
		}
		if err := uas.Wait().Check(1); err != nil {
			t.Error(err)
		}
		recs := o.sinks.Records(t)
		if len(recs) != 1 || recs[0].HangupCause != "sbc_shutdown" || recs[0].HangupSide != "sbc" || recs[0].Disposition != outcome.Answered {
			t.Errorf("records %+v", recs)
		}
	})

	t.Run("second signal", func(t *testing.T) {
		pbx := e2e.NewUAS(t)
		o := startOpsBinary(t, bin, pbx.Port(), ", drain_timeout: 30s", "")
		ua := e2e.DialUA(t, "UDP", o.sip)
		call := ua.Invite("1000", "")
		inv := pbx.ExpectReq("INVITE")
		pbx.Respond(inv, 200, "OK", "p1", e2e.UASSDP())
		call.Answered(ua.Expect(200))
		call.Ack()
		o.proc.signal(t, syscall.SIGTERM)
		e2e.WaitFor(t, 5*time.Second, "the drain", func() bool { return strings.Contains(o.proc.logs(), "draining") })
		o.proc.signal(t, syscall.SIGTERM)
		if code := o.proc.exitCode(t, 5*time.Second); code != 1 {
			t.Errorf("exit status %d after a second signal, want 1", code)
		}
		if !strings.Contains(o.proc.logs(), "second signal") {
			t.Errorf("no second-signal message:\n%s", o.proc.logs())
		}
	})
}
