package cdr

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sbc-project/sbc/b2bua/outcome"
)

// testLog logs to t at warn and above (state changes at info are noise).
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fileConfig is a recorder on a fresh spool with a jsonl and a csv writer.
func fileConfig(t testing.TB) Config {
	dir := t.TempDir()
	return Config{
		NodeID:   "node-1",
		SpoolDir: filepath.Join(dir, "spool"),
		Writers: []WriterConfig{
			{Key: "cdr[0]", Type: TypeJSONL, Dir: filepath.Join(dir, "jsonl")},
			{Key: "cdr[1]", Type: TypeCSV, Dir: filepath.Join(dir, "csv")},
		},
		Log: testLog(t),
	}
}

func mustOpen(t testing.TB, cfg Config) *Recorder {
	t.Helper()
	r, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// call is a finished call record with an id made of prefix and n.
func call(prefix string, n int) outcome.CallRecord {
	c := answeredCall(fmt.Sprintf("%s-%06d", prefix, n))
	if n%3 == 1 {
		c = failedCall(c.ID, 486, "rejected", "b", true)
	}
	return c
}

// runCalls records n calls from workers goroutines: started, answered if
// they were, ended.
func runCalls(r *Recorder, prefix string, n, workers int) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c := call(prefix, i)
				started := c
				started.Answer, started.End, started.Cause, started.Side, started.SIPCode = time.Time{}, time.Time{}, "", "", 0
				r.CallStarted(started)
				if !c.Answer.IsZero() {
					answered := c
					answered.End, answered.Cause, answered.Side = time.Time{}, "", ""
					r.CallAnswered(answered)
				}
				r.CallEnded(c)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// finished returns the finished files of a file writer, sorted, and fails
// t if an unfinished one is left.
func finished(t testing.TB, dir, ext string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "cdr-*."+ext))
	if err != nil {
		t.Fatal(err)
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "*"+partSuffix))
	if len(parts) > 0 {
		t.Errorf("unfinished files left in %s: %v", dir, parts)
	}
	slices.Sort(files)
	return files
}

// readJSONL parses every record of the finished jsonl files in dir.
func readJSONL(t testing.TB, dir string) []Record {
	t.Helper()
	var out []Record
	for _, f := range finished(t, dir, "jsonl") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 || data[len(data)-1] != '\n' {
			t.Errorf("%s: empty or not ending with a newline", f)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		for {
			var r Record
			if err := dec.Decode(&r); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, r)
		}
	}
	return out
}

// readCSV parses every row of the finished csv files in dir, by column.
func readCSV(t testing.TB, dir string) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, f := range finished(t, dir, "csv") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(rows) < 2 || !slices.Equal(rows[0], Columns()) {
			t.Fatalf("%s: want the header and at least one row, got %d rows", f, len(rows))
		}
		for _, row := range rows[1:] {
			m := map[string]string{}
			for i, name := range rows[0] {
				m[name] = row[i]
			}
			out = append(out, m)
		}
	}
	return out
}

// csvRow is what a record looks like in CSV.
func csvRow(r *Record) map[string]string {
	m := map[string]string{}
	for _, c := range columns {
		m[c.name] = c.text(r)
	}
	return m
}

// pgIDs returns the ids in the cdr table at dsn, failing t on duplicates
// (which the primary key forbids anyway).
func pgRecords(t testing.TB, dsn string) map[string]map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Render every column as text the way the CSV writer does.
	rows, err := conn.Query(ctx, `SELECT id, node_id, disposition, sip_code::text, hangup_cause, hangup_side,
		coalesce(to_char(start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), ''),
		coalesce(to_char(answer_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), ''),
		coalesce(to_char(end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), ''),
		setup_ms::text, trim_scale(duration_s)::text, trim_scale(billsec_s)::text, a_codec, b_codec,
		a_to_b_packets::text, a_to_b_jitter_ms::text, b_to_a_mos::text FROM cdr`)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"id", "node_id", "disposition", "sip_code", "hangup_cause", "hangup_side", "start_time",
		"answer_time", "end_time", "setup_ms", "duration_s", "billsec_s", "a_codec", "b_codec", "a_to_b_packets",
		"a_to_b_jitter_ms", "b_to_a_mos"}
	out := map[string]map[string]string{}
	for rows.Next() {
		vals := make([]string, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for i, n := range names {
			m[n] = vals[i]
		}
		if _, dup := out[vals[0]]; dup {
			t.Errorf("id %s twice in postgres", vals[0])
		}
		out[vals[0]] = m
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// once checks that ids holds each id at most once and returns them as a
// set.
func once(t testing.TB, what string, ids []string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, id := range ids {
		if set[id] {
			t.Errorf("%s: %s delivered twice", what, id)
		}
		set[id] = true
	}
	return set
}

func jsonIDs(recs []Record) []string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	return ids
}

func csvIDs(rows []map[string]string) []string {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r["id"]
	}
	return ids
}

// waitDelivered waits until every writer has delivered everything spooled.
func waitDelivered(t testing.TB, r *Recorder, limit time.Duration) Stats {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		s := r.Stats()
		pending := uint64(0)
		for _, w := range s.Writers {
			pending += w.Pending
		}
		if pending == 0 {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("writers still have records pending after %s: %+v", limit, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
