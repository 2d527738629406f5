package cdr

import (
	"bytes"
	"encoding/json"
	"errors"
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

// FuzzRecordDecode: a journal frame's payload, whatever its bytes, decodes
// to a record or an error, and a decoded record goes through every
// writer's encoding without a panic (a refusal is an answer).
func FuzzRecordDecode(f *testing.F) {
	good := FromCall(answeredCall("seed"), "n")
	body, _ := json.Marshal(good)
	bad := poisoned("seed")
	poison, _ := json.Marshal(bad)
	f.Add(body)
	f.Add(poison)
	f.Add([]byte(`{"id":"x","a_call_id":"\ud800\u0000","start_time":"2026-13-01T00:00:00Z","duration_s":1e400}`))
	f.Add([]byte(`{"id":"x","setup_ms":"1","sip_code":1.5,"end_time":null,"a_to_b_packets":-1}`))
	c := newCSV()
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if err := r.decode(data); err != nil {
			return
		}
		_, _ = jsonLines{}.appendRecord(nil, &r)
		_, _ = c.appendRecord(nil, &r)
		for _, col := range columns {
			_ = col.value(&r)
			_ = col.text(&r)
		}
		clean := r
		clean.clean()
		if line, err := c.appendRecord(nil, &clean); err != nil {
			t.Fatalf("csv refuses a cleaned record: %v (%q)", err, line)
		}
	})
}

// FuzzQuarantineOpen: a quarantine file, whatever a crash or an operator
// left in it, opens without a panic, keeps only whole lines, and takes
// the next record.
func FuzzQuarantineOpen(f *testing.F) {
	q := Quarantined{Writer: "postgres", Error: "no", SQLState: "22021", Record: poisoned("seed")}
	line, _ := json.Marshal(q)
	line = append(line, '\n')
	f.Add(line)
	f.Add(append(append([]byte(nil), line...), line[:30]...))
	f.Add([]byte("not json\n{\"record\":{\"id\":\"\"}}\n{\"record\":7}\n"))
	dir := f.TempDir() // one file per worker, rewritten each time
	f.Fuzz(func(t *testing.T, data []byte) {
		path := QuarantinePath(dir, "w")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		q, err := openQuarantine(dir, "w")
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 && got[len(got)-1] != '\n' || !bytes.HasPrefix(data, got) {
			t.Fatalf("after open the file holds %q of %q", got, data)
		}
		rec := poisoned("next")
		held := q.ids[rec.ID] // the fuzzer may have written it
		added, err := q.add(&rec, &refusal{err: errors.New("refused")})
		if err != nil || added == held {
			t.Fatalf("add: added %v with the record held %v: %v", added, held, err)
		}
		if again, err := openQuarantine(dir, "w"); err != nil || !again.ids[rec.ID] {
			t.Fatalf("reopened: %v, record found %v", err, err == nil && again.ids[rec.ID])
		}
	})
}
