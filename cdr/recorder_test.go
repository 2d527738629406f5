package cdr

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
)

// TestRecorderWritesEveryRecord: records from concurrent calls reach both
// file writers exactly once, field for field.
func TestRecorderWritesEveryRecord(t *testing.T) {
	cfg := fileConfig(t)
	fds := openFiles(t)
	r := mustOpen(t, cfg)
	const n = 300
	runCalls(r, "call", n, 16)
	s := waitDelivered(t, r, 10*time.Second)
	if s.Recorded != n || s.Alarm() {
		t.Errorf("stats %+v, want %d recorded and no alarm", s, n)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if after := openFiles(t); after > fds {
		t.Errorf("%d files open after Close, %d before", after, fds)
	}
	want := map[string]Record{}
	for i := range n {
		rec := FromCall(call("call", i), cfg.NodeID)
		want[rec.ID] = rec
	}
	got := readJSONL(t, cfg.Writers[0].Dir)
	once(t, "jsonl", jsonIDs(got))
	if len(got) != n {
		t.Errorf("jsonl has %d records, want %d", len(got), n)
	}
	for _, rec := range got {
		if !reflect.DeepEqual(rec, want[rec.ID]) {
			t.Errorf("jsonl record\n got %+v\nwant %+v", rec, want[rec.ID])
		}
	}
	rows := readCSV(t, cfg.Writers[1].Dir)
	once(t, "csv", csvIDs(rows))
	if len(rows) != n {
		t.Errorf("csv has %d rows, want %d", len(rows), n)
	}
	for _, row := range rows {
		w := want[row["id"]]
		if wantRow := csvRow(&w); !maps.Equal(row, wantRow) {
			t.Errorf("csv row\n got %v\nwant %v", row, wantRow)
		}
	}
}

// openFiles counts the process's open file descriptors.
func openFiles(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(entries)
}

// TestRotationUnderLoad: files are finished by size and by age while calls
// end concurrently; a reader polling the directory, like a pipeline, only
// ever sees whole files that never change afterwards.
func TestRotationUnderLoad(t *testing.T) {
	cfg := fileConfig(t)
	cfg.Writers[0].MaxBytes, cfg.Writers[0].RotateEvery = 8<<10, 30*time.Millisecond
	cfg.Writers[1].MaxBytes, cfg.Writers[1].RotateEvery = 4<<10, 0
	cfg.SegmentBytes = 64 << 10 // the spool rolls and compacts too
	r := mustOpen(t, cfg)

	stop := make(chan struct{})
	var seen sync.Map // finished file -> size when first seen
	var checks atomic.Int64
	pipeline := func() {
		for _, w := range cfg.Writers {
			files, _ := filepath.Glob(filepath.Join(w.Dir, "cdr-*"))
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Errorf("read finished file: %v", err)
					continue
				}
				if prev, ok := seen.LoadOrStore(f, len(data)); ok && prev.(int) != len(data) {
					t.Errorf("%s changed after it was finished: %d -> %d bytes", f, prev, len(data))
				}
				if len(data) == 0 || data[len(data)-1] != '\n' {
					t.Errorf("%s is not whole", f)
				}
				checks.Add(1)
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				pipeline()
			}
		}
	}()
	const n = 3000
	for round := range 10 { // spread over time so that age rotation happens
		runCalls(r, fmt.Sprintf("load%d", round), n/10, 32)
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-done
	pipeline()

	jsonFiles, csvFiles := finished(t, cfg.Writers[0].Dir, "jsonl"), finished(t, cfg.Writers[1].Dir, "csv")
	if len(jsonFiles) < 10 || len(csvFiles) < 10 {
		t.Errorf("%d jsonl and %d csv files, want many rotations", len(jsonFiles), len(csvFiles))
	}
	if ids := once(t, "jsonl", jsonIDs(readJSONL(t, cfg.Writers[0].Dir))); len(ids) != n {
		t.Errorf("jsonl: %d records, want %d", len(ids), n)
	}
	if ids := once(t, "csv", csvIDs(readCSV(t, cfg.Writers[1].Dir))); len(ids) != n {
		t.Errorf("csv: %d records, want %d", len(ids), n)
	}
	for _, f := range csvFiles {
		if fi, _ := os.Stat(f); fi.Size() > cfg.Writers[1].MaxBytes+1024 {
			t.Errorf("%s: %d bytes, over max_bytes by more than a record", f, fi.Size())
		}
	}
	if segs, _ := listSegments(cfg.SpoolDir); len(segs) > 2 {
		t.Errorf("spool keeps %d segments after everything was delivered, want compaction", len(segs))
	}
	t.Logf("%d jsonl files, %d csv files, %d pipeline checks", len(jsonFiles), len(csvFiles), checks.Load())
}

// TestOpenCallsAtClose: a call still up when the recorder closes, even
// after the segments that saw it start were compacted away, gets its
// sbc_restart record at the next start, and only once.
func TestOpenCallsAtClose(t *testing.T) {
	cfg := fileConfig(t)
	cfg.SegmentBytes = 4 << 10
	r := mustOpen(t, cfg)
	up := answeredCall("still-up")
	up.Start, up.Ring, up.Answer = time.Now().Add(-10*time.Second), time.Now().Add(-9*time.Second), time.Now().Add(-8*time.Second)
	up.End, up.Cause, up.Side = time.Time{}, "", ""
	r.CallStarted(up)
	r.CallAnswered(up)
	runCalls(r, "other", 200, 8) // many segments: the start is compacted away
	waitDelivered(t, r, 10*time.Second)
	// A writer counts records delivered before it saves its cursor, and
	// the spool compacts after the save: wait for the compaction itself.
	deadline := time.Now().Add(10 * time.Second)
	for {
		segs, _ := listSegments(cfg.SpoolDir)
		if len(segs) <= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d segments left, want compaction", len(segs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	for range 2 { // a second restart must not record it again
		r = mustOpen(t, cfg)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	recs := readJSONL(t, cfg.Writers[0].Dir)
	once(t, "jsonl", jsonIDs(recs))
	if len(recs) != 201 {
		t.Fatalf("%d records, want 201", len(recs))
	}
	i := slices.IndexFunc(recs, func(r Record) bool { return r.ID == "still-up" })
	if i < 0 {
		t.Fatal("no record for the call left up")
	}
	got := recs[i]
	if got.HangupCause != string(outcome.CauseSBCRestart) || got.HangupSide != "sbc" || got.Disposition != outcome.Answered || got.SIPCode != 200 {
		t.Errorf("record %+v, want sbc_restart, side sbc, ANSWERED 200", got)
	}
	if end := got.EndTime.Time(); end.After(before) || end.Before(got.AnswerTime.Time()) {
		t.Errorf("end_time %s, want the last heartbeat before the restart", got.EndTime)
	}
	if got.BillsecS <= 0 || got.ACodec != "opus/48000/2" {
		t.Errorf("billsec %v codec %q: what was known must be kept", got.BillsecS, got.ACodec)
	}
}

// TestWriterOutage: a writer whose directory disappears raises its alarm
// and queues in the spool; once it is back, it catches up in order, and
// the other writer never waits.
func TestWriterOutage(t *testing.T) {
	cfg := fileConfig(t)
	cfg.Writers[0].MaxBytes = 1 // one record per file: no file is open between batches
	r := mustOpen(t, cfg)
	dir := cfg.Writers[0].Dir
	runCalls(r, "before", 20, 4)
	waitDelivered(t, r, 10*time.Second)
	// An open file would keep working while its directory is renamed, so
	// the directory goes away between files.
	moved := dir + ".away"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	runCalls(r, "during", 100, 4)
	deadline := time.Now().Add(10 * time.Second)
	var s Stats
	for {
		s = r.Stats()
		if s.Writers[0].Failing && s.Writers[0].Pending > 0 && s.Writers[1].Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alarm for the broken writer: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !s.Alarm() || s.Writers[0].LastError == "" {
		t.Errorf("stats %+v, want the alarm with the error", s)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, dir); err != nil {
		t.Fatal(err)
	}
	s = waitDelivered(t, r, 15*time.Second)
	if s.Writers[0].Failing {
		t.Errorf("writer still failing after recovery: %+v", s.Writers[0])
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readJSONL(t, dir)
	if ids := once(t, "jsonl", jsonIDs(recs)); len(ids) != 120 {
		t.Errorf("%d records, want 120", len(ids))
	}
	for i := 1; i < len(recs); i++ { // in order: every "before" precedes every "during"
		if strings.HasPrefix(recs[i-1].ID, "during") && strings.HasPrefix(recs[i].ID, "before") {
			t.Errorf("out of order: %s before %s", recs[i-1].ID, recs[i].ID)
		}
	}
}

// TestSpoolFull: when the spool's disk refuses writes (ENOSPC from
// /dev/full), records wait in memory under an alarm and reach the spool
// and the writers once it accepts them again.
func TestSpoolFull(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full")
	}
	cfg := fileConfig(t)
	r := mustOpen(t, cfg)
	r.j.mu.Lock()
	good := r.j.f
	r.j.f = full
	r.j.mu.Unlock()
	runCalls(r, "full", 10, 2)
	s := r.Stats()
	if !s.SpoolFailing || s.Backlog != 10 || s.SpoolErrors == 0 || !s.Alarm() || s.Recorded != 0 {
		t.Errorf("stats %+v, want the spool alarm and 10 records in the backlog", s)
	}
	r.j.mu.Lock()
	r.j.f, r.j.broken = good, true // the disk has room again; start a new segment
	r.j.mu.Unlock()
	full.Close()
	runCalls(r, "after", 5, 1)
	s = waitDelivered(t, r, 10*time.Second)
	if s.SpoolFailing || s.Backlog != 0 || s.Recorded != 15 || s.Dropped != 0 {
		t.Errorf("stats %+v, want everything recorded", s)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if ids := once(t, "jsonl", jsonIDs(readJSONL(t, cfg.Writers[0].Dir))); len(ids) != 15 {
		t.Errorf("%d records, want 15", len(ids))
	}
}

// TestOpenErrors: configuration problems are reported at Open, all at
// once, each naming its key.
func TestOpenErrors(t *testing.T) {
	tmp := t.TempDir()
	aFile := filepath.Join(tmp, "file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	base := func() Config {
		return Config{NodeID: "n", SpoolDir: filepath.Join(tmp, "spool"), Log: testLog(t),
			Writers: []WriterConfig{{Key: "cdr[0]", Type: TypeJSONL, Dir: filepath.Join(tmp, "ok")}}}
	}
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string
	}{
		{"dir under a file", func(c *Config) { c.Writers[0].Dir = filepath.Join(aFile, "cdr") },
			[]string{"cdr[0].dir: mkdir " + aFile + ": not a directory"}},
		{"spool under a file", func(c *Config) { c.SpoolDir = filepath.Join(aFile, "spool") },
			[]string{"cdr_spool: mkdir " + aFile + ": not a directory"}},
		{"bad dsn and bad dir", func(c *Config) {
			c.Writers = append(c.Writers, WriterConfig{Key: "cdr[1]", Type: TypePostgres, DSN: "postgres://u:secret@h:bad/db"},
				WriterConfig{Key: "cdr[2]", Name: "csv2", Type: TypeCSV, Dir: aFile})
		}, []string{"cdr[1].dsn: cannot parse `postgres://u:xxxxxx@h:bad/db`", "cdr[2].dir: mkdir " + aFile}},
		{"unknown type", func(c *Config) { c.Writers[0].Type = "xml" }, []string{`cdr[0].type: "xml" is not`}},
		{"duplicate names", func(c *Config) { c.Writers = append(c.Writers, c.Writers[0]) }, []string{"cdr[0].name: \"jsonl\" is not a unique"}},
		{"no writers", func(c *Config) { c.Writers = nil }, []string{"cdr: no writers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.modify(&c)
			r, err := Open(c)
			if err == nil {
				r.Close()
				t.Fatal("opened")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("password in %q", err)
			}
		})
	}
	t.Run("spool in use", func(t *testing.T) {
		r := mustOpen(t, base())
		defer r.Close()
		_, err := Open(base())
		if err == nil || !strings.Contains(err.Error(), "cdr_spool: "+filepath.Join(tmp, "spool")+" is in use by another process") {
			t.Errorf("second Open on one spool: %v", err)
		}
	})
}

// TestWriterAddedAndRemoved: a writer added later starts at the oldest
// spooled record; a writer removed from the config no longer holds the
// spool.
func TestWriterAddedAndRemoved(t *testing.T) {
	cfg := fileConfig(t)
	jsonOnly := cfg
	jsonOnly.Writers = cfg.Writers[:1]
	r := mustOpen(t, jsonOnly)
	runCalls(r, "first", 10, 2)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = mustOpen(t, cfg) // csv added: gets what the spool still holds
	runCalls(r, "second", 10, 2)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(readCSV(t, cfg.Writers[1].Dir)); got < 10 {
		t.Errorf("csv got %d records, want at least the 10 after it was added", got)
	}
	if _, err := os.Stat(cursorPath(cfg.SpoolDir, "csv")); err != nil {
		t.Fatalf("csv has no cursor: %v", err)
	}
	r = mustOpen(t, jsonOnly) // csv removed: its cursor goes
	r.Close()
	if _, err := os.Stat(cursorPath(cfg.SpoolDir, "csv")); !os.IsNotExist(err) {
		t.Errorf("cursor of a removed writer kept: %v", err)
	}
	if ids := once(t, "jsonl", jsonIDs(readJSONL(t, cfg.Writers[0].Dir))); len(ids) != 20 {
		t.Errorf("jsonl %d records, want 20", len(ids))
	}
}

// TestAfterClose: a record handed over after Close is counted as lost.
func TestAfterClose(t *testing.T) {
	r := mustOpen(t, fileConfig(t))
	r.Close()
	r.CallStarted(call("late", 0))
	r.CallEnded(call("late", 0))
	if s := r.Stats(); s.Dropped != 1 || !s.Alarm() {
		t.Errorf("stats %+v, want 1 dropped and the alarm", s)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
