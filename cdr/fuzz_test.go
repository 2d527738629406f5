package cdr

import (
	"os"
	"path/filepath"
	"testing"
)

// The spool and unfinished files are read back after crashes and disk
// damage: any bytes must give a clean answer, never a panic.

func FuzzFormatScan(f *testing.F) {
	r := FromCall(answeredCall("seed"), "n")
	line, _ := jsonLines{}.appendRecord(nil, &r)
	c := newCSV()
	row, _ := c.appendRecord(c.header(), &r)
	f.Add(line)
	f.Add(append(line, line[:20]...))
	f.Add(row)
	f.Add(append(row, '"'))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []fileFormat{jsonLines{}, c} {
			recs, valid := format.scan(data)
			if valid < 0 || valid > int64(len(data)) {
				t.Fatalf("%s: valid %d of %d bytes", format.ext(), valid, len(data))
			}
			last := int64(-1)
			for _, rec := range recs {
				if rec.start <= last || rec.start >= valid || rec.id == "" {
					t.Fatalf("%s: record %+v after %d, valid %d", format.ext(), rec, last, valid)
				}
				last = rec.start
			}
		}
	})
}

func FuzzJournalScan(f *testing.F) {
	r := FromCall(answeredCall("seed"), "n")
	frame, _ := appendFrame(nil, kindEnd, &r)
	two, _ := appendFrame(append([]byte(nil), frame...), kindStart, &r)
	f.Add(frame)
	f.Add(two)
	f.Add(two[:len(two)-3])
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 'E'})
	path := filepath.Join(f.TempDir(), segName(1)) // one file per worker, rewritten each time
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		rec := recovery{open: map[string]Record{}}
		size, err := scanSegment(path, 1, &rec)
		if err != nil {
			t.Fatal(err)
		}
		if size < 0 || size > int64(len(data)) || rec.skipped != int64(len(data))-size {
			t.Fatalf("size %d skipped %d of %d bytes", size, rec.skipped, len(data))
		}
		for _, e := range rec.ends {
			if e.off > size {
				t.Fatalf("record ends at %d past the valid %d", e.off, size)
			}
		}
	})
}
