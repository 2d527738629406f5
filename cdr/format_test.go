package cdr

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestFormatScan: each format reads back what it wrote, and a file cut at
// any byte keeps exactly the records before the cut.
func TestFormatScan(t *testing.T) {
	awkward := FromCall(answeredCall("quoted"), "n")
	awkward.FromURI = `"Bob, \"the builder\"" <sip:bob@example.com>` + "\n" + `x`
	recs := []Record{FromCall(answeredCall("one"), "n"), awkward, FromCall(failedCall("three", 486, "rejected", "b", true), "n")}
	for _, f := range []fileFormat{jsonLines{}, newCSV()} {
		t.Run(f.ext(), func(t *testing.T) {
			data := f.header()
			var starts []int64
			for i := range recs {
				starts = append(starts, int64(len(data)))
				var err error
				if data, err = f.appendRecord(data, &recs[i]); err != nil {
					t.Fatal(err)
				}
			}
			got, valid := f.scan(data)
			if valid != int64(len(data)) || len(got) != len(recs) {
				t.Fatalf("scan of a whole file: %d records, valid %d of %d", len(got), valid, len(data))
			}
			for i, g := range got {
				if g.id != recs[i].ID || g.start != starts[i] {
					t.Errorf("record %d: %+v, want %s at %d", i, g, recs[i].ID, starts[i])
				}
			}
			ends := append(starts[1:len(starts):len(starts)], int64(len(data)))
			for cut := int64(len(data)) - 1; cut >= 0; cut-- {
				whole, wantValid := 0, int64(0) // records ending at or before cut
				if cut >= int64(len(f.header())) {
					wantValid = int64(len(f.header()))
				}
				for whole < len(recs) && ends[whole] <= cut {
					wantValid = ends[whole]
					whole++
				}
				got, valid := f.scan(data[:cut])
				if len(got) != whole || valid != wantValid {
					t.Fatalf("cut at %d: %d records valid %d, want %d valid %d", cut, len(got), valid, whole, wantValid)
				}
			}
		})
	}
}

// TestFileSinkRecover: an unfinished file is cut back before the first
// record the cursor does not cover and continued; older unfinished files
// are finished; empty ones removed.
func TestFileSinkRecover(t *testing.T) {
	dir := t.TempDir()
	w := WriterConfig{Key: "cdr[0]", Type: TypeCSV, Dir: dir, MaxBytes: 1 << 20, RotateEvery: time.Hour}
	format := newCSV()
	write := func(name string, ids ...string) {
		data := format.header()
		for _, id := range ids {
			r := FromCall(answeredCall(id), "n")
			data, _ = format.appendRecord(data, &r)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(".cdr-n-20261121T100000.000Z.csv.part", "old1", "old2")
	write(".cdr-n-20261121T100500.000Z.csv.part")
	write(".cdr-n-20261121T101000.000Z.csv.part", "a", "b", "c", "d")
	s, err := newFileSink(w, "n", format, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	// The cursor is before c: c and d will be delivered again.
	if err := s.recover(slices.Values([]string{"c", "d", "e"})); err != nil {
		t.Fatal(err)
	}
	if s.records != 2 || s.opened != time.Date(2026, 11, 21, 10, 10, 0, 0, time.UTC) {
		t.Errorf("continued file: %d records, opened %v", s.records, s.opened)
	}
	recs := []Record{FromCall(answeredCall("c"), "n"), FromCall(answeredCall("d"), "n"), FromCall(answeredCall("e"), "n")}
	if n, err := s.write(t.Context(), recs); err != nil || n != 3 {
		t.Fatal(n, err)
	}
	if err := s.committed(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, dir)
	if got := csvIDs(rows); !slices.Equal(got, []string{"old1", "old2", "a", "b", "c", "d", "e"}) {
		t.Errorf("records %v", got)
	}
	if files := finished(t, dir, "csv"); len(files) != 2 || filepath.Base(files[0]) != "cdr-n-20261121T100000.000Z.csv" {
		t.Errorf("files %v", files)
	}
}

// TestFinalNameTaken: a finished file never overwrites another.
func TestFinalNameTaken(t *testing.T) {
	dir := t.TempDir()
	s, err := newFileSink(WriterConfig{Key: "k", Dir: dir}, "n", jsonLines{}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := FromCall(answeredCall(fmt.Sprint(i)), "n")
		if _, err := s.write(t.Context(), []Record{r}); err != nil {
			t.Fatal(err)
		}
		s.committed(time.Now())
		// Same name every time: the opening time is fixed.
		s.part = filepath.Join(dir, ".cdr-n-20261121T100000.000Z.jsonl.part")
		if err := os.Rename(s.f.Name(), s.part); err != nil {
			t.Fatal(err)
		}
		if err := s.finish(); err != nil {
			t.Fatal(err)
		}
	}
	files := finished(t, dir, "jsonl")
	want := []string{"cdr-n-20261121T100000.000Z-1.jsonl", "cdr-n-20261121T100000.000Z-2.jsonl", "cdr-n-20261121T100000.000Z.jsonl"}
	for i, f := range files {
		if filepath.Base(f) != want[i] {
			t.Errorf("files %v, want %v", files, want)
			break
		}
	}
	if len(readJSONL(t, dir)) != 3 {
		t.Error("records lost")
	}
}
