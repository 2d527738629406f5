package security

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// The proof under floods: a legitimate SIPp caller on one loopback address
// keeps completing calls through the SBC to a SIPp trunk while a flooder
// on another address sends INVITEs, REGISTERs, OPTIONS or random bytes as
// fast as it can. This is the bounded functional version run in CI;
// scripts/bench-flood.sh runs longer floods against a separate SBC process
// and measures its CPU (BENCHMARKS.md, "Policy under floods").

var (
	floodLegitIP  = e2e.IP(20) // the legitimate caller, trusted by the route
	floodAttacker = e2e.IP(10) // the flooder, trusted by nothing
)

const (
	floodCalls      = 30    // legitimate calls per flood
	floodCallRate   = 10    // legitimate calls per second
	floodRate       = 500   // flood requests per second (SIPp -r)
	floodCount      = 1500  // flood requests per run (-m): about 3 s
	floodGarbage    = 15000 // garbage datagrams: about 3 s at floodRate*10
	floodMinLegitOK = 0.9
)

// Why 90 %: the flood, two SIPp processes and the SBC under the race
// detector share two CPUs, and a UDP socket queue full of flood packets can
// drop a legitimate datagram before the SBC ever reads it (the policy
// chain cannot help there). SIPp's retransmissions recover from that, so
// every call is expected to complete; the bound leaves room for a rare
// call lost to scheduling on a loaded CI machine. A flood that starves the
// legitimate caller (the chain spending its time on the flood) fails far
// below it.

type floodCase struct {
	name     string
	scenario string   // testdata SIPp scenario; "" for the garbage flood
	args     []string // extra SIPp arguments
	// wantBan: the flooder must end up banned (a garbage flood never
	// parses, so nothing counts toward a ban; it is dropped on parse).
	wantBan bool
}

func TestPolicyFlood(t *testing.T) {
	sipptest.Require(t)
	cases := []floodCase{
		{name: "INVITE", scenario: "invite_flood.xml", args: []string{"-s", "1000"}, wantBan: true},
		{name: "REGISTER", scenario: "register_flood.xml", args: []string{"-s", "flood"}, wantBan: true},
		{name: "OPTIONS", scenario: "options_flood.xml", args: []string{"-s", "ping"}, wantBan: true},
		{name: "garbage"},
	}
	for _, fc := range cases {
		t.Run(fc.name, func(t *testing.T) { runFlood(t, fc) })
	}
}

// floodSBC is the SBC of the flood tests: REGISTERs for flood* users go
// to the local registrar, every call goes to the trunk pbx, and only the
// legitimate caller's address is trusted; the admin API is on for the
// ban list, the bans file in a temporary directory.
func floodSBC(t *testing.T, uas *sipptest.Proc) *e2e.SBC {
	t.Helper()
	return e2e.StartSBC(t, e2e.SBCOptions{
		Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: uas.Addr().Addr().String(), Port: int(uas.Addr().Port())}},
		Mutate: func(c *config.Config) {
			e2e.WithAdmin(scanToken)(c)
			c.Users = []config.User{{Username: "alice", Password: alicePassword}}
			c.Routes = []config.Route{
				{Name: "users", Match: config.Match{RURIUser: "^(alice|flood.*)$"}, Target: config.TargetRegistered},
				{Name: "pbx", Target: config.TargetTrunks, Trunks: []string{"pbx"}, TrustedSources: []string{floodLegitIP + "/32"}},
			}
			c.Policy.Bans.File = filepath.Join(t.TempDir(), "bans.json")
		},
	})
}

func runFlood(t *testing.T, fc floodCase) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	uas := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
		LocalIP: e2e.PBXIP(), Calls: sipptest.Unlimited, Timeout: 45 * time.Second})
	sbc := floodSBC(t, uas)

	var flood *sipptest.Proc
	var garbage garbageResult
	var wg sync.WaitGroup
	if fc.scenario != "" {
		flood = sipptest.Start(ctx, t, sipptest.Options{Scenario: filepath.Join("testdata", fc.scenario),
			LocalIP: floodAttacker, Remote: sbc.UDP.String(), Calls: floodCount, Rate: floodRate,
			Args: append([]string{"-nr", "-trace_counts"}, fc.args...), Timeout: 30 * time.Second})
	} else {
		wg.Add(1)
		go func() {
			defer wg.Done()
			garbage = floodGarbageUDP(ctx, floodAttacker, sbc.UDP.String(), floodGarbage, 5*time.Second)
		}()
	}
	legit := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
		LocalIP: floodLegitIP, Remote: sbc.UDP.String(), Calls: floodCalls, Rate: floodCallRate,
		Args: []string{"-s", "1000", "-d", "200"}, Timeout: 40 * time.Second})

	res := legit.Wait()
	ok := float64(res.Stats.Successful) / floodCalls
	t.Logf("%s flood: legitimate caller completed %d of %d calls (%.0f %%), failed %d, retransmissions %d",
		fc.name, res.Stats.Successful, floodCalls, 100*ok, res.Stats.Failed, res.Stats.Retransmissions)
	if ok < floodMinLegitOK {
		t.Errorf("%s flood starved the legitimate caller: %.0f %% of calls completed, want >= %.0f %%\n%s",
			fc.name, 100*ok, 100*floodMinLegitOK, res.Summary())
	}

	bans := bans(sbc, t)
	if reason, banned := bans[floodLegitIP]; banned {
		t.Errorf("the legitimate caller %s was banned (%s)", floodLegitIP, reason)
	}
	if flood != nil {
		fr := flood.Wait()
		seen := floodCounts(t, flood.Dir())
		t.Logf("%s flood: the flooder sent %d, saw %s; SIPp: %d ok, %d failed", fc.name, seen.sent, seen, fr.Stats.Successful, fr.Stats.Failed)
		if fr.Stats.Failed != 0 {
			// A 503 without Retry-After, or an answer the scenario does not
			// expect, fails a flood call.
			t.Errorf("%s flood: %d flood calls got an unexpected answer (or a 503 without Retry-After)\n%s", fc.name, fr.Stats.Failed, fr.Summary())
		}
		if seen.codes[503] == 0 {
			t.Errorf("%s flood: no 503 with Retry-After before the silence: %s", fc.name, seen)
		}
		if seen.silent == 0 || seen.answered() >= seen.sent/2 {
			t.Errorf("%s flood: the SBC kept answering the flooder (%d answered of %d sent): %s", fc.name, seen.answered(), seen.sent, seen)
		}
	} else {
		wg.Wait()
		t.Logf("garbage flood: sent %d datagrams in %s, %d answers came back", garbage.sent, garbage.took.Round(time.Millisecond), garbage.answers)
		if garbage.sent == 0 {
			t.Errorf("garbage flood sent nothing")
		}
		if garbage.answers != 0 {
			t.Errorf("the SBC answered %d random datagrams", garbage.answers)
		}
	}
	if reason, banned := bans[floodAttacker]; banned {
		t.Logf("%s flood: flooder banned (%s)", fc.name, reason)
	} else if fc.wantBan {
		t.Errorf("%s flood: flooder %s not banned; bans: %v", fc.name, floodAttacker, bans)
	}

	uas.Stop()
	// Idle includes transactions: the last BYE's server transaction
	// lingers 64*T1 (6.4 s with the harness's T1) after the last call.
	sbc.WaitIdle(t)
	t.Logf("%s flood: idle after %s", fc.name, time.Since(start).Round(time.Millisecond))
}

// floodSeen is what the flooder received, from SIPp's -trace_counts.
type floodSeen struct {
	sent   int
	codes  map[int]int // final and provisional answers by status code
	silent int         // requests that got no answer within 1 s
}

func (s floodSeen) answered() int {
	n := 0
	for code, c := range s.codes {
		if code >= 200 {
			n += c
		}
	}
	return n
}

func (s floodSeen) String() string {
	var parts []string
	for _, code := range []int{100, 200, 401, 403, 404, 407, 503} {
		if c := s.codes[code]; c > 0 {
			parts = append(parts, strconv.Itoa(c)+"×"+strconv.Itoa(code))
		}
	}
	for code, c := range s.codes {
		switch code {
		case 100, 200, 401, 403, 404, 407, 503:
		default:
			parts = append(parts, strconv.Itoa(c)+"×"+strconv.Itoa(code))
		}
	}
	parts = append(parts, strconv.Itoa(s.silent)+" unanswered")
	return strings.Join(parts, ", ")
}

var reCountCol = regexp.MustCompile(`^(\d+)_(\w+)_(Sent|Recv|Timeout)$`)

// floodCounts reads the last line of the flood scenario's -trace_counts
// file (<scenario>_<pid>_counts.csv in SIPp's directory): requests sent
// (message 0), answers received per status code, and receive timeouts
// (the first receive is the one that times out: silence).
func floodCounts(t *testing.T, dir string) floodSeen {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*_counts.csv"))
	if len(files) != 1 {
		t.Fatalf("want one SIPp counts file in %s, got %v", dir, files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		t.Fatalf("SIPp counts file %s has no data", files[0])
	}
	head := strings.Split(lines[0], ";")
	vals := strings.Split(lines[len(lines)-1], ";")
	seen := floodSeen{codes: map[int]int{}}
	for i, h := range head {
		m := reCountCol.FindStringSubmatch(h)
		if m == nil || i >= len(vals) {
			continue
		}
		n, _ := strconv.Atoi(vals[i])
		switch {
		case m[1] == "0" && m[3] == "Sent":
			seen.sent = n
		case m[3] == "Recv":
			if code, err := strconv.Atoi(m[2]); err == nil {
				seen.codes[code] += n
			}
		case m[3] == "Timeout":
			seen.silent += n
		}
	}
	return seen
}

type garbageResult struct {
	sent, answers int
	took          time.Duration
}

// floodGarbageUDP sends count datagrams of random bytes (1 to 1400 of
// them) from ip to dst, at most for limit, and counts what comes back.
func floodGarbageUDP(ctx context.Context, ip, dst string, count int, limit time.Duration) garbageResult {
	var res garbageResult
	raddr, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		return res
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		return res
	}
	defer c.Close()
	var answers sync.WaitGroup
	answers.Add(1)
	go func() {
		defer answers.Done()
		buf := make([]byte, 65536)
		for {
			if _, _, err := c.ReadFromUDP(buf); err != nil {
				return
			}
			res.answers++
		}
	}()
	start := time.Now()
	deadline := start.Add(limit)
	buf := make([]byte, 1400)
	// Paced in bursts of 50 every 10 ms: 5000 datagrams a second.
	for res.sent < count && time.Now().Before(deadline) && ctx.Err() == nil {
		for i := 0; i < 50 && res.sent < count; i++ {
			_, _ = rand.Read(buf[:2])
			n := 1 + int(binary.BigEndian.Uint16(buf[:2]))%len(buf)
			_, _ = rand.Read(buf[:n])
			if _, err := c.WriteToUDP(buf[:n], raddr); err == nil {
				res.sent++
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.took = time.Since(start)
	time.Sleep(200 * time.Millisecond) // late answers, if any
	_ = c.SetReadDeadline(time.Now())
	answers.Wait()
	return res
}
