package webphone

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/browser"
	"github.com/sbc-project/sbc/test/e2e"
)

// TestBrowserDigestRealClients: real SIP.js and JsSIP in headless Chromium
// (test/browser/digest.mjs) register with the SBC as its own registrar,
// whose nonces live 1 s. Each library's own refresh comes after its nonce
// expired (SIP.js even sends its last Authorization again); it unregisters
// (SIP.js again with its last Authorization: refused as a replay before,
// logged `registration refused ... reason=replay`) and the binding is
// gone; it registers again on an expired nonce. Every time the client
// recovers from a stale challenge by itself, and no failure counts toward
// a ban.
func TestBrowserDigestRealClients(t *testing.T) {
	chromium := browser.NeedChromium(t)
	const nonceTTL = time.Second
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
		c.Users = []config.User{{Username: "alice", Password: "secret"}, {Username: "bob", Password: "secret"}}
		c.Auth.NonceTTL = nonceTTL
		c.Registrar.MinExpires = time.Second
		c.Routes = []config.Route{{Name: "web-register", Match: config.Match{Listener: "ws"}, Target: config.TargetRegistered}}
	}})
	gates := t.TempDir()
	uas := []map[string]any{
		{"lib": "sipjs", "user": "alice", "password": "secret", "expires": 4},
		{"lib": "jssip", "user": "bob", "password": "secret", "expires": 10}, // JsSIP refreshes 5 s early, 10 s at least
	}
	sc := map[string]any{"chromium": chromium, "page": "http://" + sbc.WS.String() + "/", "ws": "ws://" + sbc.WS.String(),
		"domain": "example.com", "gates": gates, "timeoutMs": 20000, "uas": uas}
	events := runDigestDriver(t, sc)

	binding := func(user string) (uint32, bool) {
		bs := sbc.App.Bindings().Lookup(user + "@example.com")
		if len(bs) != 1 {
			return 0, false
		}
		return bs[0].CSeq, true
	}
	gate := func(i int, name string) { e2e.Touch(t, filepath.Join(gates, strconv.Itoa(i)+"-"+name)) }
	for ev := range events {
		if ev.Result != nil {
			if !ev.Result.OK {
				t.Fatalf("browser: %s", ev.Result.Error)
			}
			break
		}
		user := uas[ev.UA]["user"].(string)
		switch ev.Event {
		case "registered":
			cseq, ok := binding(user)
			if !ok {
				t.Fatalf("%s registered, but the SBC holds no binding for %s", uas[ev.UA]["lib"], user)
			}
			// The library refreshes by itself, on a nonce older than its TTL.
			waitUntil(t, uas[ev.UA]["lib"].(string)+"'s own refresh accepted", 20*time.Second, func() bool {
				c, ok := binding(user)
				return ok && c > cseq
			})
			gate(ev.UA, "refreshed")
		case "unregistered":
			if _, ok := binding(user); ok {
				t.Fatalf("%s unregistered, but the SBC still holds %s's binding", uas[ev.UA]["lib"], user)
			}
			since := time.Now()
			waitUntil(t, "the last nonce to expire", 5*time.Second, func() bool { return time.Since(since) > nonceTTL })
			gate(ev.UA, "expired")
		case "registered-again":
			if _, ok := binding(user); !ok {
				t.Fatalf("%s registered again, but the SBC holds no binding for %s", uas[ev.UA]["lib"], user)
			}
			gate(ev.UA, "done")
		}
	}
	waitUntil(t, "every binding removed", 10*time.Second, func() bool { return sbc.App.Bindings().Len() == 0 })
	if got := sbc.App.Server().Stats().AuthFailures.Load(); got != 0 {
		t.Errorf("%d auth failures counted for clients with the right password, want 0", got)
	}
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type digestEvent struct {
	Event  string `json:"event"`
	UA     int    `json:"ua"`
	Result *struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"result"`
}

// runDigestDriver runs test/browser/digest.mjs on sc and hands its events
// over, the result last; the channel closes when the driver exits. The
// driver and its Chromium are killed after 120 s or when the test ends.
func runDigestDriver(t *testing.T, sc map[string]any) <-chan digestEvent {
	t.Helper()
	data, _ := json.Marshal(sc)
	file := filepath.Join(t.TempDir(), "digest.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	cmd := exec.CommandContext(ctx, "node", "../../browser/digest.mjs", file)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Stderr = e2e.LogWriter{T: t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start digest driver: %v", err)
	}
	events := make(chan digestEvent, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(events)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev digestEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil && (ev.Event != "" || ev.Result != nil) {
				select {
				case events <- ev:
				case <-ctx.Done():
				}
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() { cancel(); <-done })
	return events
}
