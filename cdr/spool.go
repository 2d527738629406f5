package cdr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// spool is the locked spool directory.
type spool struct {
	dir  string
	lock *os.File
}

// lockSpool creates dir if needed and takes its lock: two processes must
// never share a spool. The lock dies with the process, kill -9 included.
func lockSpool(dir string) (*spool, error) {
	if dir == "" {
		return nil, errors.New("no spool directory")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	if err := probeDir(dir); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another process", dir)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return &spool{dir: dir, lock: f}, nil
}

func (s *spool) unlock() { _ = s.lock.Close() }

func (s *spool) heartbeatPath() string { return filepath.Join(s.dir, "heartbeat") }

// lastAlive is the last sign of life of the previous run: the later of the
// heartbeat file's and the newest segment's modification times; now if
// neither exists.
func (s *spool) lastAlive(newestSegment string) time.Time {
	var last time.Time
	for _, p := range []string{s.heartbeatPath(), newestSegment} {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
	}
	if last.IsZero() {
		return time.Now()
	}
	return last
}

// touch sets the heartbeat file's modification time to now.
func (s *spool) touch() error {
	now := time.Now()
	err := os.Chtimes(s.heartbeatPath(), now, now)
	if errors.Is(err, os.ErrNotExist) {
		var f *os.File
		if f, err = os.Create(s.heartbeatPath()); err == nil {
			err = f.Close()
		}
	}
	return err
}

// heartbeat touches the heartbeat file and, while the spool fails,
// retries the backlog and the journal's writes and fsync every
// heartbeatEvery until Close.
func (r *Recorder) heartbeat() {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		if err := r.spool.touch(); err != nil {
			r.log.Debug("cdr spool: heartbeat", "err", err)
		}
		if r.backlogLen() > 0 || r.spoolFailing.Load() {
			r.retryBacklog() // and the frames the journal still holds
		}
		select {
		case <-t.C:
		case <-r.stop:
			return
		}
	}
}

// lost counts a record handed over after Close.
func (r *Recorder) lost(rec Record) {
	r.dropped.Add(1)
	r.log.Error("cdr: record after close is lost", "id", rec.ID, "a_call_id", rec.ACallID)
}

// keep holds a record the spool refused, dropping the oldest when the
// backlog is full (counted, logged: never silent).
func (r *Recorder) keep(rec Record) {
	r.backlogMu.Lock()
	defer r.backlogMu.Unlock()
	if len(r.backlog) >= maxBacklog {
		r.dropped.Add(1)
		r.log.Error("cdr: backlog full, record lost", "id", r.backlog[0].ID, "a_call_id", r.backlog[0].ACallID)
		r.backlog = r.backlog[1:]
	}
	r.backlog = append(r.backlog, rec)
}

func (r *Recorder) backlogLen() int {
	r.backlogMu.Lock()
	defer r.backlogMu.Unlock()
	return len(r.backlog)
}

// flushBacklog appends the backlog to the journal, oldest first, until
// one fails.
func (r *Recorder) flushBacklog() {
	r.backlogMu.Lock()
	defer r.backlogMu.Unlock()
	for len(r.backlog) > 0 {
		if _, err := r.j.append(kindEnd, &r.backlog[0]); err != nil {
			return
		}
		r.backlog = r.backlog[1:]
	}
	r.backlog = nil
}

// retryBacklog moves the backlog into the spool and writes and fsyncs
// everything appended.
func (r *Recorder) retryBacklog() {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return
	}
	r.flushBacklog()
	if err := r.j.syncAll(); err != nil {
		r.spoolFailed(err)
		return
	}
	if r.backlogLen() == 0 {
		r.spoolRecovered()
	}
}

// spoolFailed counts a failed spool write or fsync; the first of a series
// is logged.
func (r *Recorder) spoolFailed(err error) {
	r.spoolErrors.Add(1)
	if !r.spoolFailing.Swap(true) {
		r.log.Error("cdr spool failing; records are kept in memory", "err", err)
	}
}

func (r *Recorder) spoolRecovered() {
	if r.spoolFailing.Swap(false) {
		r.log.Info("cdr spool recovered")
	}
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
