package cdr

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"time"
)

// item is a record read from the journal with the position just after its
// frame: the cursor once it is delivered.
type item struct {
	rec Record
	end position
}

// journalReader reads the durable records of the journal in order, for one
// writer. It is not safe for concurrent use.
type journalReader struct {
	j   *journal
	pos position // the next frame
	fr  *frameReader
	log *slog.Logger
}

func newReader(j *journal, from position, log *slog.Logger) *journalReader {
	return &journalReader{j: j, pos: from, log: log}
}

// read returns up to max records after the reader's position. It waits
// until at least one is durable, deadline passes (zero: no deadline) or
// stop is closed; then it may return none. It returns errClosed once the
// journal is closed and everything durable has been read.
func (r *journalReader) read(max int, deadline time.Time, stop <-chan struct{}) ([]item, error) {
	var items []item
	for {
		v := r.j.view(r.pos.seg)
		switch {
		case v.exists && r.pos.off < v.end:
			items = r.frames(items, max, v.end)
			if len(items) >= max {
				return items, nil
			}
			continue
		case v.hasNext && (v.closed || !v.exists):
			r.moveTo(v.next)
			continue
		case len(items) > 0:
			return items, nil
		case v.stopped:
			return nil, errClosed
		}
		if !r.wait(v.wake, deadline, stop) {
			return nil, nil
		}
	}
}

// frames appends the records of the frames before end in the current
// segment, up to max items.
func (r *journalReader) frames(items []item, max int, end int64) []item {
	if r.fr == nil {
		fr, err := openFrames(filepath.Join(r.j.dir, segName(r.pos.seg)), r.pos.off)
		if err != nil {
			r.log.Error("cdr spool: open segment; skipping it", "segment", r.pos.seg, "err", err)
			r.pos.off = end
			return items
		}
		r.fr = fr
	}
	for len(items) < max {
		kind, payload, err := r.fr.next(end)
		if errors.Is(err, io.EOF) {
			return items
		}
		if err != nil {
			// Durable frames were checked when written or scanned; this is
			// damage on disk since.
			r.log.Error("cdr spool: damaged frame; skipping the rest of the segment", "segment", r.pos.seg,
				"offset", r.pos.off, "err", err)
			r.closeFile()
			r.pos.off = end
			return items
		}
		r.pos.off = r.fr.off
		if kind != kindEnd {
			continue
		}
		var rec Record
		if err := rec.decode(payload); err != nil {
			r.log.Error("cdr spool: undecodable record; skipping it", "segment", r.pos.seg, "offset", r.pos.off, "err", err)
			continue
		}
		items = append(items, item{rec: rec, end: r.pos})
	}
	return items
}

// moveTo goes to the start of segment seq.
func (r *journalReader) moveTo(seq uint64) {
	r.closeFile()
	r.pos = position{seq, 0}
}

// wait waits for wake; false when deadline passed or stop is closed first.
func (r *journalReader) wait(wake <-chan struct{}, deadline time.Time, stop <-chan struct{}) bool {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return false
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-wake:
		return true
	case <-timeout:
		return false
	case <-stop:
		return false
	}
}

func (r *journalReader) closeFile() {
	if r.fr != nil {
		_ = r.fr.close()
		r.fr = nil
	}
}
