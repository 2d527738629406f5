package cdr

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/test/cdr/pgtest"
)

// crashEnv, when set in the environment, makes the test binary a helper
// process: it records calls on the Config given as JSON in that variable
// until it is killed, printing "B id" before CallStarted, "S id" after it,
// "A id" once its answer frame is in the journal's file, and "E id"
// after CallEnded returned.
const crashEnv = "CDR_CRASH_HELPER_CONFIG"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(crashEnv); cfg != "" {
		crashHelper(cfg)
		return
	}
	os.Exit(m.Run())
}

func crashHelper(text string) {
	var cfg Config
	if err := json.Unmarshal([]byte(text), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	r, err := Open(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	say := func(what, id string) {
		mu.Lock()
		fmt.Fprintln(out, what, id)
		out.Flush()
		mu.Unlock()
	}
	prefix := os.Getenv("CDR_CRASH_PREFIX")
	var next sync.Mutex
	n := 0
	for range 12 { // calls in parallel
		go func() {
			for {
				next.Lock()
				n++
				i := n
				next.Unlock()
				c := call(prefix, i)
				c.Start, c.Ring, c.Answer = time.Now(), time.Now(), time.Now()
				if i%3 == 1 {
					c.Answer = time.Time{}
				}
				say("B", c.ID)
				started := c
				started.Answer, started.End, started.Cause, started.Side, started.SIPCode = time.Time{}, time.Time{}, "", "", 0
				r.CallStarted(started)
				say("S", c.ID)
				time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
				if !c.Answer.IsZero() {
					answered := c
					answered.End, answered.Cause, answered.Side, answered.SIPCode = time.Time{}, "", "", 0
					go func(p position) { // no wait: the call ends meanwhile, as calls do
						inFile(r, p)
						say("A", c.ID)
					}(r.progress(kindAnswer, &answered))
				}
				time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
				c.End = time.Now()
				r.CallEnded(c)
				say("E", c.ID)
			}
		}()
	}
	select {} // until killed
}

// inFile waits until the frame ending at p is in the journal's file; the
// helper exits with status 3 if it is not within 5 s.
func inFile(r *Recorder, p position) {
	for range 5000 {
		if r.j.inFile(p) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "frame ending at", p, "not in the file after 5 s")
	os.Exit(3)
}

// crashRound runs the helper until it reported at least ended calls, kills
// it with SIGKILL, and returns the ids it reported per letter.
func crashRound(t *testing.T, cfg Config, prefix string, ended int) map[string]map[string]bool {
	t.Helper()
	text, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+string(text), "CDR_CRASH_PREFIX="+prefix)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[string]bool{"B": {}, "S": {}, "A": {}, "E": {}}
	killed := false
	timeout := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer timeout.Stop()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		what, id, _ := strings.Cut(sc.Text(), " ")
		if seen[what] == nil {
			continue
		}
		seen[what][id] = true
		if !killed && len(seen["E"]) >= ended {
			_ = cmd.Process.Signal(syscall.SIGKILL) // by PID, mid-traffic
			killed = true
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die by SIGKILL: %v\n%s", err, stderr.String())
	}
	return seen
}

// TestCrashExactlyOnce kills a process recording calls with SIGKILL at
// random moments, several times over one spool, then checks that every
// call whose CallEnded returned has its record exactly once in every
// writer, and that every call that was started has exactly one record:
// its own, or an sbc_restart one, answered if its answer frame was in the
// file.
func TestCrashExactlyOnce(t *testing.T) {
	cfg := fileConfig(t)
	cfg.Log = nil
	cfg.SegmentBytes = 32 << 10                                                      // rolls and compactions
	cfg.Writers[0].MaxBytes, cfg.Writers[0].RotateEvery = 4<<10, 20*time.Millisecond // rotations
	cfg.Writers[1].MaxBytes = 8 << 10
	var dsn string
	if pgtest.Bin() != "" || os.Getenv("CI") == "true" {
		dsn = pgtest.Start(t).CreateDB(t, "crash")
		cfg.Writers = append(cfg.Writers, WriterConfig{Key: "cdr[2]", Type: TypePostgres, DSN: dsn})
		t.Log("with PostgreSQL")
	} else {
		t.Log("PostgreSQL not installed: files only")
	}
	began, ended := map[string]bool{}, map[string]bool{}
	started, answered := map[string]bool{}, map[string]bool{}
	for round := range 6 {
		seen := crashRound(t, cfg, fmt.Sprintf("r%d", round), 20+rand.IntN(200))
		for what, into := range map[string]map[string]bool{"B": began, "S": started, "A": answered, "E": ended} {
			for id := range seen[what] {
				into[id] = true
			}
		}
	}
	cfg.Log = testLog(t)
	r := mustOpen(t, cfg) // the last restart: delivers and finishes everything
	waitDelivered(t, r, 30*time.Second)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	recs := readJSONL(t, cfg.Writers[0].Dir)
	byID := map[string]Record{}
	for _, rec := range recs {
		byID[rec.ID] = rec
	}
	jsonSet := once(t, "jsonl", jsonIDs(recs))
	csvSet := once(t, "csv", csvIDs(readCSV(t, cfg.Writers[1].Dir)))
	sets := map[string]map[string]bool{"jsonl": jsonSet, "csv": csvSet}
	if dsn != "" {
		pg := map[string]bool{}
		for id := range pgRecords(t, dsn) {
			pg[id] = true
		}
		sets["postgres"] = pg
	}
	restarted := 0
	for id := range ended {
		if byID[id].HangupCause == string(outcome.CauseSBCRestart) {
			t.Errorf("%s: CallEnded returned, yet its record is %s", id, outcome.CauseSBCRestart)
		}
	}
	for id := range started {
		if !jsonSet[id] {
			t.Errorf("%s: started but has no record", id)
		}
	}
	for id := range answered {
		if byID[id].AnswerTime.IsZero() {
			t.Errorf("%s: its answer frame was in the file, yet its record %s has no answer", id, byID[id].HangupCause)
		}
	}
	for name, set := range sets {
		for id := range set {
			if !began[id] {
				t.Errorf("%s: record %s for a call never begun", name, id)
			}
			if !jsonSet[id] {
				t.Errorf("%s has %s, jsonl does not", name, id)
			}
		}
		if len(set) != len(jsonSet) {
			t.Errorf("%s has %d records, jsonl %d", name, len(set), len(jsonSet))
		}
	}
	for _, rec := range recs {
		if rec.HangupCause == string(outcome.CauseSBCRestart) {
			restarted++
		}
	}
	t.Logf("%d calls begun, %d started, %d ended before a kill; %d records, %d of them %s; %d jsonl files",
		len(began), len(started), len(ended), len(recs), restarted, outcome.CauseSBCRestart,
		len(finished(t, cfg.Writers[0].Dir, "jsonl")))
	if len(ended) == 0 || restarted == 0 {
		t.Errorf("the kills hit no call in progress: the test proves nothing")
	}
	if segs, _ := listSegments(cfg.SpoolDir); len(segs) > 2 {
		t.Errorf("%d spool segments left after full delivery", len(segs))
	}
}
