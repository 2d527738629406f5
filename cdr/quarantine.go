package cdr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// A record a writer's destination refuses for good (bad data, not a broken
// destination: PostgreSQL cannot store a NUL, a CSV file should not carry
// one) must not block the records behind it, and must not be lost either.
// The writer sets it aside in its quarantine file in the spool,
// "quarantine-<writer>.jsonl", one JSON object a line (Quarantined),
// fsynced before the writer's cursor moves past the record; then delivery
// goes on. Replay delivers such a file once the cause is dealt with.

const quarantinePrefix = "quarantine-"

// QuarantinePath is the quarantine file of writer name in spool dir.
func QuarantinePath(dir, name string) string {
	return filepath.Join(dir, quarantinePrefix+name+".jsonl")
}

// Quarantined is one line of a quarantine file.
type Quarantined struct {
	Time     Timestamp `json:"time"`               // when it was set aside
	Writer   string    `json:"writer"`             // the writer that refused it
	Error    string    `json:"error"`              // the destination's refusal
	SQLState string    `json:"sqlstate,omitempty"` // PostgreSQL's error code, if it came from PostgreSQL
	Record   Record    `json:"record"`             // the record exactly as spooled
}

// refusal is a sink's answer that one record can never be written as it
// is. Retrying would give the same answer, so the record is quarantined.
type refusal struct {
	code string // SQLSTATE; "" when not from PostgreSQL
	err  error
}

func (e *refusal) Error() string { return "record refused: " + e.err.Error() }
func (e *refusal) Unwrap() error { return e.err }

// quarantine is one writer's quarantine file. It is used from the writer's
// goroutine only.
type quarantine struct {
	path, writer string
	ids          map[string]bool // records in the file: a record is set aside once
}

// openQuarantine reads what the file holds already. A torn last line (a
// crash mid-append, before the fsync that would have let the cursor move)
// is cut off: the record is still after the cursor and is refused again.
func openQuarantine(dir, writer string) (*quarantine, error) {
	q := &quarantine{path: QuarantinePath(dir, writer), writer: writer, ids: map[string]bool{}}
	data, err := os.ReadFile(q.path)
	if errors.Is(err, os.ErrNotExist) {
		return q, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read quarantine of %s: %w", writer, err)
	}
	whole := bytes.LastIndexByte(data, '\n') + 1
	if whole < len(data) {
		if err := os.Truncate(q.path, int64(whole)); err != nil {
			return nil, fmt.Errorf("cut torn line of quarantine of %s: %w", writer, err)
		}
	}
	for line := range bytes.Lines(data[:whole]) {
		var e struct {
			Record struct {
				ID string `json:"id"`
			} `json:"record"`
		}
		if json.Unmarshal(line, &e) == nil && e.Record.ID != "" {
			q.ids[e.Record.ID] = true
		}
	}
	return q, nil
}

// held is the number of records in the file.
func (q *quarantine) held() int { return len(q.ids) }

// add appends rec with the reason it was refused and fsyncs the file. It
// returns false, and writes nothing, when the file holds rec already (a
// crash came between the quarantine and the cursor update).
func (q *quarantine) add(rec *Record, why *refusal) (bool, error) {
	if q.ids[rec.ID] {
		return false, nil
	}
	line, err := json.Marshal(Quarantined{Time: At(time.Now()), Writer: q.writer, Error: why.err.Error(),
		SQLState: why.code, Record: *rec})
	if err != nil {
		return false, fmt.Errorf("encode quarantined record %s: %w", rec.ID, err)
	}
	if err := appendSync(q.path, append(line, '\n')); err != nil {
		return false, fmt.Errorf("quarantine record %s: %w", rec.ID, err)
	}
	q.ids[rec.ID] = true
	return true, nil
}

// appendSync appends data to the file at path, creating it, and fsyncs it
// (and the directory, for a new file). A failed write is cut off again, so
// that the file only ever holds whole lines.
func appendSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		_ = f.Truncate(fi.Size())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && fi.Size() == 0 {
		err = syncDir(filepath.Dir(path))
	}
	return err
}
