package security

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/policy"
	"github.com/sbc-project/sbc/test/e2e"
)

// The proof against SIPVicious (Debian package sipvicious 0.3.3): svmap,
// svwar and svcrack run for real from their own loopback address against
// the SBC's UDP listener, and the test reads what they print and what the
// SBC's ban list (admin API, GET /api/v1/bans) says afterwards.

const (
	scanToken     = "scan-token"
	alicePassword = "Tr0ub4dor-and-3"
)

// needSIPVicious skips t when the SIPVicious tools are missing, except
// under CI=true where that fails t.
func needSIPVicious(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"svmap", "svwar", "svcrack"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed and CI=true: install the Debian package sipvicious", tool)
			}
			t.Skipf("%s is not installed (Debian package sipvicious)", tool)
		}
	}
}

// scanSBC is an SBC with two users (alice, bob) behind a route to
// registered users, its admin API on, and its bans file in a temporary
// directory. keepUA false empties the User-Agent blacklist, so the tools
// meet the SBC's other defences; mutate changes the config further.
func scanSBC(t *testing.T, keepUA bool, mutate func(*config.Config)) *e2e.SBC {
	t.Helper()
	return e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
		e2e.WithAdmin(scanToken)(c)
		c.Users = []config.User{{Username: "alice", Password: alicePassword}, {Username: "bob", Password: "b0b-secret-9"}}
		c.Routes = []config.Route{{Name: "users", Target: config.TargetRegistered}}
		c.Policy.Bans.File = filepath.Join(t.TempDir(), "bans.json")
		if !keepUA {
			c.Policy.Blacklist.UserAgents = []string{}
		}
		if mutate != nil {
			mutate(c)
		}
	}})
}

// bindShim runs a Python program (argv[2]) with every socket bound to the
// address argv[1] when the program asks for "any": svwar and svcrack 0.3.3
// accept -b but never hand it to their scanner (only svmap does), so
// without the shim they send from 127.0.0.1, the SBC's own address.
const bindShim = `import os, runpy, socket, sys
ip, prog = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.realpath(prog)))  # as when run directly
bind = socket.socket.bind
def bound(s, addr):
    if isinstance(addr, tuple) and addr[0] in ("", "0.0.0.0"):
        addr = (ip,) + tuple(addr[1:])
    return bind(s, addr)
socket.socket.bind = bound
sys.argv = [prog] + sys.argv[3:]
runpy.run_path(prog, run_name="__main__")
`

// runTool runs a SIPVicious tool from source address ip (its -b and -x,
// and bindShim), bounded to limit, in a temporary home (the tools keep
// sessions under ~/.sipvicious), and returns what it printed. A non-zero
// exit is not an error: the output is the verdict.
func runTool(t *testing.T, limit time.Duration, ip, name string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	// The tool's own interpreter (its #! line): the one whose packages
	// hold sipvicious, not whichever python3 comes first on PATH.
	script, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(script), "\n")
	python, ok := strings.CutPrefix(first, "#!")
	if !ok || strings.ContainsAny(strings.TrimSpace(python), " \t") {
		t.Fatalf("%s: want a #!/path/to/python line, got %q", path, first)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	args = append([]string{"-b", ip, "-x", ip}, args...)
	cmd := exec.CommandContext(ctx, strings.TrimSpace(python), append([]string{"-c", bindShim, ip, path}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+cmd.Dir)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %s:\n%s", name, limit, e2e.Tail(out))
	}
	t.Logf("%s %s (%s, err %v):\n%s", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), err, e2e.Tail(out))
	return string(out)
}

// bans returns the SBC's ban list as address → reason.
func bans(s *e2e.SBC, t *testing.T) map[string]string {
	t.Helper()
	var res struct {
		Bans []struct {
			Addr   string `json:"addr"`
			Reason string `json:"reason"`
		} `json:"bans"`
	}
	s.Admin(t, scanToken).JSON("GET", "/api/v1/bans", "", 200, &res)
	out := map[string]string{}
	for _, b := range res.Bans {
		out[b.Addr] = b.Reason
	}
	return out
}

// waitBanned waits until ip is on the ban list (bans made on the request
// path are visible at once; the wait only absorbs scheduling).
func waitBanned(s *e2e.SBC, t *testing.T, ip string) string {
	t.Helper()
	var reason string
	e2e.WaitFor(t, 3*time.Second, ip+" banned", func() bool {
		r, ok := bans(s, t)[ip]
		reason = r
		return ok
	})
	return reason
}

// reTableRow is a data row of the tables svmap, svwar and svcrack print
// ("| 100       | reqauth        |"); the header row is told apart by its
// first cell.
var reTableRow = regexp.MustCompile(`(?m)^\|\s*([^|]+?)\s*\|\s*([^|]*?)\s*\|\s*$`)

// tableRows returns the first two cells of every data row the tool
// printed, skipping the header (whose first cell is header).
func tableRows(out, header string) [][2]string {
	var rows [][2]string
	for _, m := range reTableRow.FindAllStringSubmatch(out, -1) {
		if m[1] == header {
			continue
		}
		rows = append(rows, [2]string{m[1], m[2]})
	}
	return rows
}

// writeLines writes a word list for svwar or svcrack.
func writeLines(t *testing.T, lines []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "words.txt")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyScan(t *testing.T) {
	needSIPVicious(t)
	t.Run("svmap", testSvmap)
	t.Run("svwar", testSvwar)
	t.Run("svcrack", testSvcrack)
}

// testSvmap: svmap's OPTIONS carry User-Agent friendly-scanner; the SBC
// drops them unanswered, so svmap finds nothing, and bans the source on
// the first one (bans.blacklisted: 1). Control: with the User-Agent
// blacklist emptied, the same svmap finds the SBC, so "found nothing" is
// the blacklist's doing and not a broken scan.
func testSvmap(t *testing.T) {
	scanner := e2e.IP(50)
	sbc := scanSBC(t, true, nil)
	port := e2e.Itoa(int(sbc.UDP.Port()))
	out := runTool(t, 30*time.Second, scanner, "svmap", "-p", port, "127.0.0.1")
	if rows := tableRows(out, "SIP Device"); len(rows) != 0 || !strings.Contains(out, "found nothing") {
		t.Errorf("svmap found the SBC despite the scanner User-Agent: %v", rows)
	}
	if reason := waitBanned(sbc, t, scanner); reason == "" {
		t.Errorf("ban of %s has no reason", scanner)
	}

	open := scanSBC(t, false, nil)
	out = runTool(t, 30*time.Second, e2e.IP(51), "svmap", "-p", e2e.Itoa(int(open.UDP.Port())), "127.0.0.1")
	if !strings.Contains(out, "127.0.0.1:"+e2e.Itoa(int(open.UDP.Port()))) {
		t.Errorf("control: svmap did not find the SBC without the User-Agent blacklist")
	}
	if _, banned := bans(open, t)[e2e.IP(51)]; banned {
		t.Errorf("control: an OPTIONS ping without a scanner User-Agent got its source banned")
	}
}

// svwarWords is the extension list: a numeric range around nothing, plus
// the real users hidden in it.
func svwarWords() []string {
	var words []string
	for i := 100; i <= 130; i++ {
		words = append(words, e2e.Itoa(i))
		if i == 110 {
			words = append(words, "alice")
		}
		if i == 120 {
			words = append(words, "bob")
		}
	}
	return words
}

// testSvwar: with the User-Agent blacklist on, svwar is dropped and
// banned at once. With it emptied, svwar (REGISTER, its default) meets the
// registrar, which challenges every REGISTER alike (401) whether the user
// exists or not, and OPTIONS is answered 200 for any user, so svwar lists
// no extension. svwar runs at its own speed: the 34 requests of its list
// stay within the rate limit's bursts, so no 503 (which svwar would print
// as a "weird" extension) blurs what the test proves.
func testSvwar(t *testing.T) {
	words := writeLines(t, svwarWords())
	t.Run("blacklisted", func(t *testing.T) {
		scanner := e2e.IP(52)
		sbc := scanSBC(t, true, nil)
		out := runTool(t, 30*time.Second, scanner, "svwar", "--force", "-p", e2e.Itoa(int(sbc.UDP.Port())),
			"--maximumtime", "2", "-d", words, "127.0.0.1")
		if rows := tableRows(out, "Extension"); len(rows) != 0 {
			t.Errorf("svwar listed extensions: %v", rows)
		}
		waitBanned(sbc, t, scanner)
	})
	// svwar's REGISTER scan stops at the first extension (a 401 like the
	// one for its random probe is a response it does not handle); its
	// OPTIONS scan goes through the whole list, every answer a 200.
	for i, method := range []string{"REGISTER", "OPTIONS"} {
		t.Run("no UA blacklist/"+method, func(t *testing.T) {
			scanner := e2e.IP(53 + i*10)
			sbc := scanSBC(t, false, nil)
			out := runTool(t, 40*time.Second, scanner, "svwar", "--force", "-v", "-m", method,
				"-p", e2e.Itoa(int(sbc.UDP.Port())), "--maximumtime", "2", "-d", words, "127.0.0.1")
			if !strings.Contains(out, "Ok SIP device found") {
				t.Fatalf("svwar never got an answer, so it proves nothing")
			}
			rows := tableRows(out, "Extension")
			for _, r := range rows {
				if r[0] == "alice" || r[0] == "bob" {
					t.Errorf("svwar found real extension %s (%s)", r[0], r[1])
				}
			}
			if len(rows) != 0 {
				t.Errorf("svwar listed %d extensions, want none (every extension is answered alike): %v", len(rows), rows)
			}
			// Nothing here counts toward a ban (no credentials were
			// wrong, no 404 was sent): the scan is not banned, it simply
			// learns nothing.
			if reason, banned := bans(sbc, t)[scanner]; banned {
				t.Logf("svwar's source was banned (%s)", reason)
			}
		})
	}
}

// testSvcrack: svcrack guesses alice's password over REGISTER (MD5 digest
// only: svcrack speaks nothing else, and an SBC offering SHA-256 first
// already defeats it). The word list has wrong passwords first and the
// real one after the ban threshold: the SBC bans the source after
// policy.bans.auth_failures wrong answers, so svcrack never gets to try
// it. Control: with auth-failure bans off, the same run finds the
// password, so the ban is what stopped it.
//
// svcrack sends a new REGISTER whenever nothing arrived for its select
// time (-t, 5 ms by default), answered or not: once the SBC takes longer
// than that (a loaded machine, the race detector) it sends 200 REGISTERs
// a second, a flood the per-source rate limit answers 503, at which
// svcrack stops ("unknown response") having tried a password or two. The
// banned and control runs pace it at 100 ms, the default REGISTER rate
// (10/s), so what they prove is the ban alone; "full speed" runs it at
// its own pace and checks what holds whichever defence stops it: no
// password found, at most auth_failures wrong answers (and the few in
// flight when the ban came) checked by the registrar.
func testSvcrack(t *testing.T) {
	run := func(t *testing.T, scanner string, failures int, pace ...string) (string, *e2e.SBC) {
		sbc := scanSBC(t, false, func(c *config.Config) {
			c.Auth.Algorithms = []string{"MD5"}
			c.Policy.Bans.AuthFailures = failures
		})
		limit := policy.DefaultBanAuthFailures
		var words []string
		for i := 0; i < limit+3; i++ {
			words = append(words, "wrong-"+e2e.Itoa(i))
		}
		words = append(words, alicePassword, "wrong-last")
		args := append([]string{"-v", "-u", "alice", "-p", e2e.Itoa(int(sbc.UDP.Port())), "--maximumtime", "2",
			"-d", writeLines(t, words)}, pace...)
		out := runTool(t, 40*time.Second, scanner, "svcrack", append(args, "127.0.0.1")...)
		return out, sbc
	}
	paced := []string{"-t", "0.1"}
	t.Run("banned", func(t *testing.T) {
		scanner := e2e.IP(54)
		out, sbc := run(t, scanner, policy.DefaultBanAuthFailures, paced...)
		if strings.Contains(out, alicePassword) {
			t.Errorf("svcrack found alice's password despite the ban")
		}
		if rows := tableRows(out, "Extension"); len(rows) != 0 {
			t.Errorf("svcrack reports cracked users: %v", rows)
		}
		reason := waitBanned(sbc, t, scanner)
		if got := sbc.App.Server().Stats().AuthFailures.Load(); got != uint64(policy.DefaultBanAuthFailures) {
			t.Errorf("%d auth failures reached the registrar, want exactly %d (the ban threshold): the ban must stop the rest", got, policy.DefaultBanAuthFailures)
		}
		t.Logf("svcrack banned (%s)", reason)
	})
	t.Run("control without bans", func(t *testing.T) {
		scanner := e2e.IP(55)
		out, sbc := run(t, scanner, 0, paced...)
		if !strings.Contains(out, alicePassword) {
			t.Errorf("control: svcrack did not find the password with bans off, so the banned run proves nothing")
		}
		if _, banned := bans(sbc, t)[scanner]; banned {
			t.Errorf("control: %s banned with auth-failure bans off", scanner)
		}
	})
	t.Run("full speed", func(t *testing.T) {
		scanner := e2e.IP(56)
		out, sbc := run(t, scanner, policy.DefaultBanAuthFailures)
		if strings.Contains(out, alicePassword) || len(tableRows(out, "Extension")) != 0 {
			t.Errorf("svcrack at full speed found alice's password")
		}
		// The ban threshold, and a wrong answer or two already being
		// checked when the ban came: never the ninth, the password.
		got := sbc.App.Server().Stats().AuthFailures.Load()
		if got > uint64(policy.DefaultBanAuthFailures)+2 {
			t.Errorf("%d auth failures reached the registrar, want at most %d", got, policy.DefaultBanAuthFailures+2)
		}
		_, banned := bans(sbc, t)[scanner]
		t.Logf("svcrack at full speed: %d wrong passwords checked, banned %v", got, banned)
	})
}
