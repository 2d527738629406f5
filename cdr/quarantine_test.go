package cdr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// oldSpool writes recs into the journal in dir as they are, without the
// cleaning FromCall does now: the spool an older version, which let a NUL
// through, left behind. It returns the position after each record.
func oldSpool(t *testing.T, dir string, recs ...Record) []position {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	j, _ := openTestJournal(t, dir, DefaultSegmentBytes)
	ends := make([]position, len(recs))
	for i := range recs {
		p, err := j.append(kindEnd, &recs[i])
		if err != nil {
			t.Fatal(err)
		}
		ends[i] = p
	}
	if err := j.syncAll(); err != nil {
		t.Fatal(err)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	return ends
}

// poisoned is the record of a call whose Call-ID held a NUL, as an older
// version spooled it.
func poisoned(id string) Record {
	r := FromCall(answeredCall(id), "node-1")
	r.ACallID = "evil\x00" + id
	return r
}

// goodAndBad returns n records with ids prefix-000000...; those at the
// indexes in bad are poisoned.
func goodAndBad(prefix string, n int, bad ...int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		id := fmt.Sprintf("%s-%06d", prefix, i)
		recs[i] = FromCall(answeredCall(id), "node-1")
		for _, b := range bad {
			if b == i {
				recs[i] = poisoned(id)
			}
		}
	}
	return recs
}

// readQuarantine parses a writer's quarantine file.
func readQuarantine(t *testing.T, spool, writer string) []Quarantined {
	t.Helper()
	data, err := os.ReadFile(QuarantinePath(spool, writer))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []Quarantined
	for line := range bytes.Lines(data) {
		var q Quarantined
		if err := json.Unmarshal(line, &q); err != nil {
			t.Fatalf("quarantine line %q: %v", line, err)
		}
		out = append(out, q)
	}
	return out
}

// TestQuarantineFileWriters: a spool holding a record with a NUL between
// good ones. JSON lines carries the NUL escaped; CSV refuses it, sets it
// aside and goes on. A restart neither delivers nor quarantines again.
func TestQuarantineFileWriters(t *testing.T) {
	cfg := fileConfig(t)
	recs := goodAndBad("f", 7, 3)
	ends := oldSpool(t, cfg.SpoolDir, recs...)

	r := mustOpen(t, cfg)
	s := waitDelivered(t, r, 10*time.Second)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	jsonl, csvw := s.Writers[0], s.Writers[1]
	if jsonl.Delivered != 7 || jsonl.Quarantined != 0 || csvw.Delivered != 6 || csvw.Quarantined != 1 || !s.Alarm() {
		t.Fatalf("stats %+v, want jsonl 7 delivered, csv 6 delivered and 1 quarantined, and the alarm", s.Writers)
	}
	if !strings.Contains(csvw.LastQuarantined, recs[3].ID) || csvw.Failing {
		t.Errorf("csv writer: last quarantined %q, failing %v", csvw.LastQuarantined, csvw.Failing)
	}
	if got := readJSONL(t, cfg.Writers[0].Dir); len(got) != 7 || got[3].ACallID != recs[3].ACallID {
		t.Fatalf("jsonl: %d records, want 7 with the NUL kept", len(got))
	}
	rows := readCSV(t, cfg.Writers[1].Dir)
	if ids := once(t, "csv", csvIDs(rows)); len(ids) != 6 || ids[recs[3].ID] {
		t.Fatalf("csv holds %v, want the 6 good records", ids)
	}
	q := readQuarantine(t, cfg.SpoolDir, "csv")
	if len(q) != 1 || !reflect.DeepEqual(q[0].Record, recs[3]) || q[0].Writer != "csv" ||
		!strings.Contains(q[0].Error, "NUL in field a_call_id") || q[0].SQLState != "" {
		t.Fatalf("quarantine %+v, want the poisoned record with the reason", q)
	}
	for _, w := range []string{"jsonl", "csv"} {
		if p, ok, err := loadCursor(cfg.SpoolDir, w); err != nil || !ok || p != ends[len(ends)-1] {
			t.Errorf("cursor of %s at %v (%v), want %v", w, p, err, ends[len(ends)-1])
		}
	}
	if _, err := os.Stat(QuarantinePath(cfg.SpoolDir, "jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("jsonl has a quarantine file: %v", err)
	}

	r = mustOpen(t, cfg)
	s = waitDelivered(t, r, 10*time.Second)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, w := range s.Writers {
		if w.Delivered != 0 || w.Quarantined != 0 {
			t.Errorf("after restart %s delivered %d, quarantined %d; want nothing again", w.Name, w.Delivered, w.Quarantined)
		}
	}
	if q := readQuarantine(t, cfg.SpoolDir, "csv"); len(q) != 1 {
		t.Errorf("quarantine holds %d records after restart, want 1", len(q))
	}
	once(t, "jsonl", jsonIDs(readJSONL(t, cfg.Writers[0].Dir)))
}

// TestQuarantineCrashWindow: the process died after the quarantine file
// took the record and before the cursor moved past it. The restart finds
// the record refused again and does not set it aside twice.
func TestQuarantineCrashWindow(t *testing.T) {
	cfg := fileConfig(t)
	recs := goodAndBad("w", 3, 1)
	oldSpool(t, cfg.SpoolDir, recs...)
	q, err := openQuarantine(cfg.SpoolDir, "csv")
	if err != nil {
		t.Fatal(err)
	}
	if added, err := q.add(&recs[1], &refusal{err: errors.New("refused before the crash")}); !added || err != nil {
		t.Fatalf("add: %v, %v", added, err)
	}

	r := mustOpen(t, cfg)
	s := waitDelivered(t, r, 10*time.Second)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if csvw := s.Writers[1]; csvw.Delivered != 2 || csvw.Quarantined != 0 {
		t.Errorf("csv delivered %d, quarantined %d; want 2 and 0 (already set aside)", csvw.Delivered, csvw.Quarantined)
	}
	if q := readQuarantine(t, cfg.SpoolDir, "csv"); len(q) != 1 || q[0].Error != "refused before the crash" {
		t.Errorf("quarantine %+v, want the one line of before the crash", q)
	}
}

// TestQuarantineTornLine: a line cut by a crash before its fsync is cut
// off when the file is opened; whole lines stay.
func TestQuarantineTornLine(t *testing.T) {
	dir := t.TempDir()
	q, err := openQuarantine(dir, "pg")
	if err != nil {
		t.Fatal(err)
	}
	first := poisoned("t1")
	if _, err := q.add(&first, &refusal{code: "22021", err: errors.New("no NUL")}); err != nil {
		t.Fatal(err)
	}
	whole, _ := os.ReadFile(q.path)
	if err := os.WriteFile(q.path, append(whole, `{"time":"2026-11-21T10:15:00.123Z","writer":"pg","rec`...), 0o640); err != nil {
		t.Fatal(err)
	}
	q, err = openQuarantine(dir, "pg")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(q.path); !bytes.Equal(got, whole) || q.held() != 1 {
		t.Fatalf("file after open: %q (%d held), want the whole line only", got, q.held())
	}
	second := poisoned("t2")
	if added, err := q.add(&second, &refusal{err: errors.New("no NUL")}); !added || err != nil {
		t.Fatalf("add after repair: %v, %v", added, err)
	}
	if got := readQuarantine(t, dir, "pg"); len(got) != 2 || got[1].Record.ID != "t2" || got[0].SQLState != "22021" {
		t.Fatalf("quarantine %+v", got)
	}
}

// TestFileSinkRefusal: a record the format cannot encode ends a write
// after the records before it are durable; the next write goes on.
func TestFileSinkRefusal(t *testing.T) {
	dir := t.TempDir()
	s, err := newFileSink(WriterConfig{Key: "cdr[0]", Dir: dir}, "n", newCSV(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	recs := goodAndBad("s", 4, 0, 2)
	var refused []string
	for done := 0; done < len(recs); {
		n, err := s.write(context.Background(), recs[done:])
		done += n
		var r *refusal
		switch {
		case errors.As(err, &r):
			refused = append(refused, recs[done].ID)
			done++
		case err != nil:
			t.Fatal(err)
		}
		if err := s.committed(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if want := []string{recs[0].ID, recs[2].ID}; !reflect.DeepEqual(refused, want) {
		t.Errorf("refused %v, want %v", refused, want)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "cdr-*.csv"))
	if len(files) != 1 {
		t.Fatalf("files %v, want one", files)
	}
	if rows := readCSV(t, dir); len(rows) != 2 || rows[0]["id"] != recs[1].ID || rows[1]["id"] != recs[3].ID {
		t.Errorf("csv rows %v, want the two good records", csvIDs(rows))
	}
}

// TestReplayFileWriter: the csv writer's quarantine replays into one new,
// finished file, the NUL made U+FFFD; a file that does not fit is refused
// with the line it stumbles on.
func TestReplayFileWriter(t *testing.T) {
	cfg := fileConfig(t)
	bad := poisoned("r1")
	if err := os.MkdirAll(cfg.SpoolDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := openQuarantineAndAdd(cfg.SpoolDir, "csv", bad); err != nil {
		t.Fatal(err)
	}
	res, err := Replay(cfg, QuarantinePath(cfg.SpoolDir, "csv"))
	if err != nil || res.Writer != "csv" || res.Delivered != 1 || len(res.Refused) != 0 {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	rows := readCSV(t, cfg.Writers[1].Dir)
	if len(rows) != 1 || rows[0]["id"] != "r1" || rows[0]["a_call_id"] != "evil\uFFFDr1" {
		t.Fatalf("csv after replay: %v", rows)
	}

	tests := []struct{ name, content, want string }{
		{"unknown writer", `{"writer":"gone","record":{"id":"x"}}` + "\n", `writer "gone" is not in the configuration`},
		{"mixed writers", `{"writer":"csv","record":{"id":"x"}}` + "\n" + `{"writer":"jsonl","record":{"id":"y"}}` + "\n", "line 2: want"},
		{"not json", "{\"writer\":\"csv\",\n", "line 1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "q.jsonl")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Replay(cfg, path); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
