// Package console tests the operator console (internal/console) in
// headless Chromium against a live WebRTC call through the SBC; its
// addresses are 127.0.13.0/24 (test/e2e/net.go).
package console

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/browser"
	"github.com/sbc-project/sbc/test/e2e"
)

// scenario is console.mjs's input (see its header).
type scenario struct {
	Chromium  string `json:"chromium"`
	Base      string `json:"base"`
	Token     string `json:"token"`
	Shots     string `json:"shots"`
	TimeoutMs int    `json:"timeoutMs"`
	Ban       string `json:"ban"`
	Ladder    bool   `json:"ladder"`
	DTLS      bool   `json:"dtls"`
	DownTrunk string `json:"downTrunk"`
}

// line is one line of console.mjs's output.
type line struct {
	Event  string  `json:"event"`
	ID     string  `json:"id"`
	Result *result `json:"result"`
}

type result struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Step  string `json:"step"`
	DOM   string `json:"dom"`
	Facts struct {
		NavHidden        bool     `json:"navHidden"`
		NoTokenStatus    int      `json:"noTokenStatus"`
		WrongTokenError  string   `json:"wrongTokenError"`
		CallRow          string   `json:"callRow"`
		LoginAfterReload bool     `json:"loginAfterReload"`
		Trunks           string   `json:"trunks"`
		Registrations    string   `json:"registrations"`
		BanRow           string   `json:"banRow"`
		CDRRow           string   `json:"cdrRow"`
		EndedState       string   `json:"endedState"`
		PageErrors       []string `json:"pageErrors"`
		Ladder           struct {
			A, B   int
			DTLS   string `json:"dtls"`
			Charts []struct {
				From       string `json:"from"`
				Samples    int    `json:"samples"`
				MaxPackets int    `json:"maxPackets"`
			} `json:"charts"`
		} `json:"ladder"`
	} `json:"facts"`
}

// TestConsole: a pion browser calls the PBX through the SBC; headless
// Chromium opens the console: without the token it shows the login and
// the API answers 401, a wrong token is refused; with it the call appears
// in the live table, its page shows the SIP ladder of both legs, the DTLS
// milestone and a quality chart with packets, and its hang-up button ends
// the call (BYE on both legs); the registrations page lists alice, the
// trunks page lists the PBX trunk and the history of the one down, a ban
// is added and removed through the bans page, and the CDR search finds
// the call's record, whose link opens the ended call's ladder. A
// screenshot of each page is a test artifact.
func TestConsole(t *testing.T) {
	chromium := browser.NeedChromium(t)
	const token = "console-t0ken"
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{})
	// A second trunk nobody answers on: its OPTIONS probes mark it down,
	// which the trunks page shows in its history.
	dead := e2e.TrunkSpec{Name: "backup", Addr: e2e.IP(20), Port: e2e.FreeUDPPort(t, e2e.IP(20)), Options: 200 * time.Millisecond}
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: append(pbx.Trunk(), dead), Mutate: func(c *config.Config) {
		c.Admin.Addr = e2e.IP(10) + ":0"
		c.Admin.Token = token
		// alice registers over UDP (the registrations page lists her);
		// the browser's call goes to the PBX.
		c.Users = []config.User{{Username: "alice", Password: "secret"}}
		c.Routes = append([]config.Route{{Name: "register", Match: config.Match{Listener: "udp"},
			Target: config.TargetRegistered}}, c.Routes...)
	}})
	calls := e2e.WatchCalls(sbc)
	api := sbc.Admin(t, token)
	if code, _ := (&e2e.AdminClient{T: t, Base: api.Base}).Do("GET", "/api/v1/calls", ""); code != 401 {
		t.Fatalf("API without the token: %d, want 401", code)
	}
	phone := e2e.DialUAFrom(t, "UDP", sbc.UDP.String(), e2e.IP(30))
	if res := phone.Register("alice", "secret", 300); res.StatusCode() != 200 {
		t.Fatalf("alice's REGISTER: %d %s", res.StatusCode(), res.Reason())
	}
	web := e2e.NewWebPhone(t, sbc)
	web.Call("1000")
	e2e.WaitCount(t, "the PBX echoes the browser", web.Rx, "WEB1", 25)

	backup, _ := sbc.App.Routes().Trunk(dead.Name)
	e2e.WaitFor(t, 10*time.Second, "the backup trunk down", func() bool { return !backup.Up() })

	shots := t.ArtifactDir()
	sc := scenario{Chromium: chromium, Base: api.Base, Token: token, Shots: shots, TimeoutMs: 20000,
		Ban: "192.0.2.77", Ladder: true, DownTrunk: dead.Name}
	res := runConsole(t, sc, func(ev line) {
		if ev.Event == "hungup" {
			rec := calls.WaitEnded(t)
			if rec.ID != ev.ID || rec.Cause != outcome.CauseAdminHangup {
				t.Errorf("hung up from the console: record %s cause %q, want %s ended by the admin", rec.ID, rec.Cause, ev.ID)
			}
		}
	})
	if !res.OK {
		t.Fatalf("console step %q: %s\npage text:\n%s", res.Step, res.Error, res.DOM)
	}
	checkFacts(t, sc, res)
	for _, name := range []string{"login", "calls", "call", "trunks", "registrations", "bans", "cdrs", "ended"} {
		if st, err := os.Stat(filepath.Join(shots, name+".png")); err != nil || st.Size() == 0 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
	web.Close()
	sbc.WaitCallsIdle(t)
}

// checkFacts checks what console.mjs found on the pages.
func checkFacts(t *testing.T, sc scenario, res result) {
	t.Helper()
	f := res.Facts
	for _, e := range f.PageErrors {
		t.Errorf("page error: %s", e)
	}
	if !f.NavHidden || f.NoTokenStatus != 401 || !strings.Contains(f.WrongTokenError, "401") || !f.LoginAfterReload {
		t.Errorf("login: nav hidden %v, API status without token %d, wrong token %q, login after reload %v",
			f.NavHidden, f.NoTokenStatus, f.WrongTokenError, f.LoginAfterReload)
	}
	if !strings.Contains(f.CallRow, "1000") || !strings.Contains(f.CallRow, "ws") || !strings.Contains(f.CallRow, "PCMU") {
		t.Errorf("calls table row %q: want the number, the transports and the codecs", f.CallRow)
	}
	if f.Ladder.A < 2 || f.Ladder.B < 2 || sc.DTLS && !strings.Contains(f.Ladder.DTLS, "dtls-connected") {
		t.Errorf("ladder: %+v", f.Ladder)
	}
	packets := false
	for _, c := range f.Ladder.Charts {
		packets = packets || c.Samples > 0 && c.MaxPackets > 0
	}
	if len(f.Ladder.Charts) != 2 || !packets {
		t.Errorf("quality charts: %+v, want one per direction, one with packets", f.Ladder.Charts)
	}
	if !strings.Contains(f.Trunks, "pbx") || !strings.Contains(f.Trunks, "down") || !strings.Contains(f.BanRow, "console test") {
		t.Errorf("trunks %q, ban row %q", f.Trunks, f.BanRow)
	}
	if !strings.Contains(f.Registrations, "sip:alice@example.com") || !strings.Contains(f.Registrations, e2e.IP(30)) {
		t.Errorf("registrations table %q: want alice from %s", f.Registrations, e2e.IP(30))
	}
	if !strings.Contains(f.CDRRow, "ANSWERED") || f.EndedState != "ended" {
		t.Errorf("CDR row %q: want the answered call; its timeline's state %q, want ended", f.CDRRow, f.EndedState)
	}
}

// runConsole runs console.mjs on sc, handing each event to on, and
// returns its result. Its process group (Chromium too) is killed when the
// test ends or after two minutes.
func runConsole(t *testing.T, sc scenario, on func(line)) result {
	t.Helper()
	data, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "scenario.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", browser.Path(t, "console.mjs"), file)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start console.mjs: %v", err)
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }() // Chromium, if node left it
	var res *result
	sc2 := bufio.NewScanner(out)
	sc2.Buffer(make([]byte, 1<<16), 1<<22)
	for sc2.Scan() {
		var ev line
		if err := json.Unmarshal(sc2.Bytes(), &ev); err != nil {
			t.Logf("console.mjs: %s", sc2.Text())
			continue
		}
		t.Logf("console.mjs: %s", sc2.Text())
		if ev.Result != nil {
			res = ev.Result
			continue
		}
		on(ev)
	}
	_ = cmd.Wait()
	if res == nil {
		t.Fatalf("console.mjs gave no result: %s", stderr.String())
	}
	return *res
}
