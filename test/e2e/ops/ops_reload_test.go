package ops

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sbc-project/sbc/security"
	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// writeCert writes a new self-signed pair to certFile and keyFile, each
// replaced in one rename as a certificate renewal tool does.
func writeCert(t *testing.T, certFile, keyFile string) [32]byte {
	t.Helper()
	certPEM, keyPEM, err := security.SelfSigned([]string{"127.0.0.1"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for file, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		tmp := file + ".new"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(pair.Certificate[0])
}

// TestReloadUnderLoad runs the sbc binary under SIPp load and, mid-load,
// moves the route from trunk a to trunk b and renews the WSS certificate
// with SIGHUP: no call is lost, calls after the reload go to b, a new WSS
// handshake gets the new certificate, and a key only a restart applies is
// reported. An invalid config is then refused (SIGHUP and the admin API)
// with its problems, and the running one keeps routing calls.
func TestReloadUnderLoad(t *testing.T) {
	sipptest.Require(t)
	bin := buildSBC(t)
	const n = 40
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	uasA := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
		LocalIP: e2e.PBXIP(), Calls: sipptest.Unlimited, Timeout: 50 * time.Second})
	uasB := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
		LocalIP: e2e.PBXIP(), Calls: sipptest.Unlimited, Timeout: 50 * time.Second})

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCert(t, certFile, keyFile)
	wss := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	sinks := e2e.NewCDRSinks(t, "")
	sip := fmt.Sprintf("127.0.0.1:%d", e2e.FreeUDPPort(t, "127.0.0.1"))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	config := func(trunk, inviteTimeout string) string {
		return fmt.Sprintf(`
log: {level: info}
sip:
  listeners: [{transport: udp, addr: %q}, {transport: wss, addr: %q}]
  tls: {cert_file: %q, key_file: %q}
  invite_timeout: %s
media: {rtp_ports: 40000-49999}
admin: {addr: %q, token: ops-token}
trunks:
  - {name: a, uri: "sip:%s:%d", options_interval: 0s}
  - {name: b, uri: "sip:%s:%d", options_interval: 0s}
routes: [{name: all, target: trunks, trunks: [%s], trusted_sources: [127.0.0.0/8]}]
cdr_spool: %q
cdr: [{type: jsonl, dir: %q}, {type: csv, dir: %q}]
`, sip, wss, certFile, keyFile, inviteTimeout, adminAddr, e2e.PBXIP(), uasA.Addr().Port(), e2e.PBXIP(), uasB.Addr().Port(), trunk,
			sinks.Spool, sinks.JSONL, sinks.CSV)
	}
	file := filepath.Join(dir, "sbc.yaml")
	write := func(text string) {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(config("a", "2s"))
	proc := runSBC(t, bin, file)
	api := &e2e.AdminClient{T: t, Base: "http://" + adminAddr, Token: "ops-token"}
	if got := e2e.ServedCert(t, wss); got != first {
		t.Fatal("wss does not serve the configured certificate")
	}

	uac := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
		LocalIP: e2e.CallerIP(), Remote: sip, Calls: n, Rate: 20, Timeout: 40 * time.Second, Args: []string{"-s", "1000", "-d", "400"}})
	time.Sleep(800 * time.Millisecond) // calls up on trunk a
	second := writeCert(t, certFile, keyFile)
	write(config("b", "3s"))
	proc.signal(t, syscall.SIGHUP)
	e2e.WaitFor(t, 5*time.Second, "the reload", func() bool { return strings.Contains(proc.logs(), "configuration reloaded") })
	if got := e2e.ServedCert(t, wss); got != second {
		t.Error("wss still serves the old certificate after the reload")
	}
	if logs := proc.logs(); !strings.Contains(logs, "sip.invite_timeout") || !strings.Contains(logs, "need a restart") {
		t.Errorf("the restart-only key was not reported:\n%s", logs)
	}
	if err := uac.Wait().Check(n); err != nil {
		t.Fatalf("calls lost across the reload: %v", err)
	}

	// An invalid config is refused, with its problems, and changes nothing.
	write(strings.Replace(config("nosuch", "3s"), "log: {level: info}", "log: {level: loud}", 1))
	proc.signal(t, syscall.SIGHUP)
	e2e.WaitFor(t, 5*time.Second, "the refusal", func() bool { return strings.Contains(proc.logs(), "reload refused") })
	code, body := api.Do("POST", "/api/v1/reload", "")
	var refused struct {
		Error    string
		Problems []string
	}
	_ = json.Unmarshal(body, &refused)
	if code != 422 || len(refused.Problems) != 2 || !strings.Contains(strings.Join(refused.Problems, "\n"), "nosuch") {
		t.Errorf("reload through the api: %d %s", code, body)
	}
	for _, want := range []string{`log.level: \"loud\"`, `routes[0].trunks[0]`} {
		if !strings.Contains(proc.logs(), want) {
			t.Errorf("log lacks the problem %s:\n%s", want, proc.logs())
		}
	}
	ua := e2e.DialUA(t, "UDP", sip)
	call := ua.Invite("1000", "")
	call.Answered(ua.Expect(200))
	call.Ack()
	call.Bye()
	ua.Expect(200)

	proc.stop(t, syscall.SIGTERM)
	if code := proc.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d:\n%s", code, proc.logs())
	}
	resA, resB := uasA.Stop(), uasB.Stop()
	if resA.Stats.Successful == 0 || resB.Stats.Successful < 2 || resA.Stats.Successful+resB.Stats.Successful != n+1 ||
		resA.Stats.Failed+resB.Stats.Failed != 0 {
		t.Errorf("trunk a took %d calls (%d failed), trunk b %d (%d failed); want %d in all, some on each",
			resA.Stats.Successful, resA.Stats.Failed, resB.Stats.Successful, resB.Stats.Failed, n+1)
	}
	if recs := sinks.Records(t); len(recs) != n+1 {
		t.Errorf("%d records, want %d", len(recs), n+1)
	}
	t.Logf("trunk a: %d calls, trunk b: %d calls", resA.Stats.Successful, resB.Stats.Successful)
}
