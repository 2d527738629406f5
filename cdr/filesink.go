package cdr

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// File names. A file in progress is hidden and marked: a pipeline that
// takes cdr-*.jsonl never sees it until the rename that finishes it.
const (
	partPrefix = ".cdr-"
	partSuffix = ".part"
	nameTime   = "20060102T150405.000Z"
)

// fileSink writes records to rotating files in one directory.
//
// Invariant: a file is finished (renamed) only when the cursor covers all
// of it, so after a crash only the unfinished file (the .part) can hold
// records the cursor does not cover; recover cuts them off and they are
// written again.
type fileSink struct {
	dir      string
	node     string // node_id as it may appear in a file name
	format   fileFormat
	maxBytes int64
	every    time.Duration
	log      *slog.Logger

	f       *os.File // the part file; nil when none is open
	part    string   // its path
	opened  time.Time
	size    int64 // bytes written and fsynced
	covered int64 // bytes the cursor covers
	records int   // records in the file
	broken  bool  // a failed write could not be cut off: cut before writing
	buf     []byte
}

// newFileSink checks that dir exists or can be made, and that files can be
// created in it. Errors name the config key.
func newFileSink(w WriterConfig, node string, format fileFormat, log *slog.Logger) (*fileSink, error) {
	if err := os.MkdirAll(w.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("%s.dir: %w", w.Key, err)
	}
	if err := probeDir(w.Dir); err != nil {
		return nil, fmt.Errorf("%s.dir: %w", w.Key, err)
	}
	return &fileSink{dir: w.Dir, node: safeName(node), format: format, maxBytes: w.MaxBytes,
		every: w.RotateEvery, log: log}, nil
}

// probeBytes is what probeDir writes: a directory with less room than
// this fails at start.
const probeBytes = 64 << 10

// probeDir writes, fsyncs and removes a file in dir, so that a directory
// that is unwritable, read-only or on a full disk fails at start rather
// than at the first call.
func probeDir(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(make([]byte, probeBytes))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write a test file in %s: %w", dir, err)
	}
	return nil
}

// safeName keeps letters, digits, '.', '-' and '_' of s, for file names.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// recover repairs the unfinished files a previous run left: each is cut
// back before its torn tail and before the first record the cursor does
// not cover (after: the ids of the spool's records after the cursor), then
// all but the newest are finished; the newest is continued.
func (s *fileSink) recover(after iter.Seq[string]) error {
	parts, err := filepath.Glob(filepath.Join(s.dir, partPrefix+"*."+s.format.ext()+partSuffix))
	if err != nil {
		return fmt.Errorf("find unfinished files: %w", err)
	}
	if len(parts) == 0 {
		return nil
	}
	slices.Sort(parts) // names start with the time the file was opened
	type part struct {
		path    string
		cut     int64
		records []idAt
		current bool // in this version's layout: may be continued
	}
	found := make([]part, len(parts))
	where := map[string]int{} // record id -> index in found
	for i, path := range parts {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read unfinished file: %w", err)
		}
		recs, valid := s.format.scan(data)
		found[i] = part{path: path, cut: valid, records: recs, current: s.format.current(data)}
		for _, r := range recs {
			where[r.id] = i
		}
	}
	for id := range after {
		if i, ok := where[id]; ok {
			p := &found[i]
			for k, r := range p.records {
				if r.id == id && r.start < p.cut {
					p.cut, p.records = r.start, p.records[:k]
					break
				}
			}
		}
	}
	for i, p := range found {
		if err := s.adopt(p.path, p.cut, len(p.records), i == len(found)-1 && p.current); err != nil {
			return err
		}
	}
	return nil
}

// adopt cuts an unfinished file to size and finishes it, continues it
// (last) or, holding no record, removes it.
func (s *fileSink) adopt(path string, size int64, records int, last bool) error {
	if records == 0 {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove empty unfinished file: %w", err)
		}
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open unfinished file: %w", err)
	}
	if fi, err := f.Stat(); err == nil && fi.Size() != size {
		s.log.Warn("cdr file: cutting an unfinished file back to what was delivered", "file", path,
			"from", fi.Size(), "to", size)
		if err := f.Truncate(size); err != nil {
			f.Close()
			return fmt.Errorf("cut unfinished file: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("cut unfinished file: %w", err)
		}
	}
	s.f, s.part, s.size, s.covered, s.records = f, path, size, size, records
	s.opened = partTime(path)
	if last {
		return nil
	}
	return s.finish()
}

// partTime reads the opening time from a part file's name
// (.cdr-<node>-<time>.<ext>.part); now if it has none.
func partTime(path string) time.Time {
	name := strings.TrimSuffix(filepath.Base(path), partSuffix)
	name = strings.TrimSuffix(name, filepath.Ext(name))
	if i := strings.LastIndexByte(name, '-'); i >= 0 {
		if t, err := time.Parse(nameTime, name[i+1:]); err == nil {
			return t
		}
	}
	return time.Now()
}

// write appends records to the part file, up to the size limit, and
// fsyncs it. A record the format cannot encode ends the write with a
// refusal naming it, after the records before it are written.
func (s *fileSink) write(_ context.Context, recs []Record) (int, error) {
	if s.broken {
		if err := s.cutBack(); err != nil {
			return 0, err
		}
	}
	if s.f == nil {
		if err := s.create(); err != nil {
			return 0, err
		}
	}
	s.buf = s.buf[:0]
	if s.size == 0 {
		s.buf = append(s.buf, s.format.header()...)
	}
	n := 0
	var refused error
	for n < len(recs) {
		var err error
		if s.buf, err = s.format.appendRecord(s.buf, &recs[n]); err != nil {
			refused = &refusal{err: err}
			break
		}
		n++
		if s.maxBytes > 0 && s.size+int64(len(s.buf)) >= s.maxBytes {
			break // finish this file before writing more
		}
	}
	if n == 0 {
		return 0, refused // the header, if any, waits for the first record
	}
	_, err := s.f.Write(s.buf)
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		s.broken = true
		if cerr := s.cutBack(); cerr != nil {
			s.log.Warn("cdr file: cut back after a failed write", "err", cerr)
		}
		return 0, fmt.Errorf("write %s: %w", s.part, err)
	}
	s.size += int64(len(s.buf))
	s.records += n
	return n, refused
}

// cutBack removes what was written after the last commit.
func (s *fileSink) cutBack() error {
	if err := s.f.Truncate(s.covered); err != nil {
		return fmt.Errorf("cut back %s: %w", s.part, err)
	}
	s.size, s.broken = s.covered, false
	return nil
}

// create starts a new part file.
func (s *fileSink) create() error {
	now := time.Now().UTC()
	path := filepath.Join(s.dir, partPrefix+s.node+"-"+now.Format(nameTime)+"."+s.format.ext()+partSuffix)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("create cdr file: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("create cdr file: %w", err)
	}
	s.f, s.part, s.opened, s.size, s.covered, s.records = f, path, now, 0, 0, 0
	return nil
}

func (s *fileSink) committed(now time.Time) error {
	s.covered = s.size
	if s.f == nil || s.records == 0 {
		return nil
	}
	if (s.maxBytes > 0 && s.size >= s.maxBytes) || (s.every > 0 && !now.Before(s.opened.Add(s.every))) {
		return s.finish()
	}
	return nil
}

func (s *fileSink) due() time.Time {
	if s.f == nil || s.every <= 0 || s.records == 0 {
		return time.Time{}
	}
	return s.opened.Add(s.every)
}

// finish renames the part file to its final name. The cursor covers it.
func (s *fileSink) finish() error {
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("finish %s: %w", s.part, err)
	}
	final, err := s.finalName()
	if err != nil {
		return err
	}
	if err := os.Rename(s.part, final); err != nil {
		return fmt.Errorf("finish %s: %w", s.part, err)
	}
	if err := syncDir(s.dir); err != nil {
		s.log.Warn("cdr file: fsync directory", "err", err)
	}
	s.log.Info("cdr file finished", "file", final, "records", s.records, "bytes", s.size)
	_ = s.f.Close()
	s.f, s.part = nil, ""
	return nil
}

// finalName is the part's name without the leading dot and the .part
// suffix, with -1, -2... added if a file of that name exists.
func (s *fileSink) finalName() (string, error) {
	base := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(s.part), "."), partSuffix)
	stem := strings.TrimSuffix(base, "."+s.format.ext())
	for i := 0; i < 1000; i++ {
		name := base
		if i > 0 {
			name = stem + "-" + strconv.Itoa(i) + "." + s.format.ext()
		}
		path := filepath.Join(s.dir, name)
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			return path, nil
		}
	}
	return "", fmt.Errorf("finish %s: no free name", s.part)
}

// close finishes the file if the cursor covers it; an empty one is
// removed; one with records past the cursor is left for recover.
func (s *fileSink) close() error {
	if s.f == nil {
		return nil
	}
	switch {
	case s.records == 0 && s.size == s.covered:
		_ = s.f.Close()
		s.f = nil
		return os.Remove(s.part)
	case s.size == s.covered && !s.broken:
		return s.finish()
	default:
		err := s.f.Close()
		s.f = nil
		return err
	}
}
