package cdr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// ReplayResult is what Replay did.
type ReplayResult struct {
	// Writer is the writer named in the quarantine file.
	Writer string
	// Delivered counts the records written to its destination.
	Delivered int
	// Refused holds the records the destination refused again, each with
	// the new reason, in file order.
	Refused []Quarantined
}

// Replay delivers the records of a quarantine file (QuarantinePath, or a
// copy of one) to the writer of cfg that set them aside, named in the
// file. Their text fields are first made printable, as FromCall makes
// every new record (a NUL becomes U+FFFD), so that a record refused for
// such a byte goes through. Replay neither needs the spool nor changes
// the file, and may run while the SBC runs: PostgreSQL inserts are
// idempotent (a record already there is left alone); a file writer writes
// one new, finished file per replay. Records refused again are in the
// result; any other failure is an error, and the result says what was
// delivered before it.
func Replay(cfg Config, path string) (ReplayResult, error) {
	cfg = withDefaults(cfg)
	lines, err := readQuarantined(path)
	if err != nil || len(lines) == 0 {
		return ReplayResult{}, err
	}
	res := ReplayResult{Writer: lines[0].Writer}
	i := slices.IndexFunc(cfg.Writers, func(w WriterConfig) bool { return w.Name == res.Writer })
	if i < 0 {
		return res, fmt.Errorf("replay %s: writer %q is not in the configuration", path, res.Writer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startProbeTimeout)
	s, err := newSink(ctx, cfg.Writers[i], cfg.NodeID, cfg.Log.With("cdr_writer", res.Writer))
	cancel()
	if err != nil {
		return res, err
	}
	recs := make([]Record, len(lines))
	for k := range lines {
		recs[k] = lines[k].Record
		recs[k].clean()
	}
	err = replayTo(s, recs, &res)
	if cerr := s.close(); err == nil && cerr != nil {
		err = fmt.Errorf("replay to %s: %w", res.Writer, cerr)
	}
	return res, err
}

// replayTo writes recs to s in order, setting refused records aside in
// res.
func replayTo(s sink, recs []Record, res *ReplayResult) error {
	for done := 0; done < len(recs); {
		n, err := s.write(context.Background(), recs[done:])
		done += n
		res.Delivered += n
		if n > 0 {
			if cerr := s.committed(time.Now()); cerr != nil {
				return fmt.Errorf("replay to %s: %w", res.Writer, cerr)
			}
		}
		var why *refusal
		switch {
		case err == nil:
		case errors.As(err, &why):
			res.Refused = append(res.Refused, Quarantined{Time: At(time.Now()), Writer: res.Writer,
				Error: why.err.Error(), SQLState: why.code, Record: recs[done]})
			done++
		default:
			return fmt.Errorf("replay to %s: %w", res.Writer, err)
		}
	}
	return nil
}

// readQuarantined parses a quarantine file; every line must name the same
// writer.
func readQuarantined(path string) ([]Quarantined, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	var out []Quarantined
	n := 0
	for line := range bytes.Lines(data) {
		n++
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var q Quarantined
		if err := json.Unmarshal(line, &q); err != nil {
			return nil, fmt.Errorf("replay %s: line %d: %w", path, n, err)
		}
		if q.Writer == "" || q.Record.ID == "" || (len(out) > 0 && q.Writer != out[0].Writer) {
			return nil, fmt.Errorf("replay %s: line %d: want a record with an id and the same writer as line 1", path, n)
		}
		out = append(out, q)
	}
	return out, nil
}
