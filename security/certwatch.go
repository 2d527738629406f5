package security

import (
	"context"
	"crypto/sha256"
	"os"
	"time"
)

// Watch reloads the certificate when its files change, checking every
// interval until ctx is done; it blocks, so run it on a goroutine the
// caller waits for. A check looks at the files' modification times and
// sizes and, when either moved, at their content: a pair whose content
// differs from the one in force is loaded and, if usable, made current for
// new handshakes (connections already up keep theirs). A pair that cannot
// be used (half written, key and certificate not matching, expired, a file
// missing) leaves the current certificate in force; the error is logged once
// for each new content and the files are read again at the next check, so
// a renewal written in two steps is picked up once both are in place.
// For a self-signed store, or every <= 0, Watch returns at once.
func (s *CertStore) Watch(ctx context.Context, every time.Duration) {
	if s.certFile == "" || every <= 0 {
		return
	}
	var w certWatch
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.check(&w)
		}
	}
}

// certWatch is what Watch remembers between checks.
type certWatch struct {
	stamp  [2]fileStamp      // of the files when their content was last in force
	failed [sha256.Size]byte // what last failed (content or error), logged once
}

// fileStamp is the cheap identity of a file: a change of content almost
// always moves one of them; the content hash decides.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}
}

// check is one tick of Watch.
func (s *CertStore) check(w *certWatch) {
	stamp := [2]fileStamp{stampOf(s.certFile), stampOf(s.keyFile)}
	if stamp == w.stamp && stamp[0] != (fileStamp{}) {
		return
	}
	certPEM, keyPEM, err := readPair(s.certFile, s.keyFile)
	if err != nil {
		s.watchFailed(w, sha256.Sum256([]byte(err.Error())), err)
		return
	}
	sum := pairHash(certPEM, keyPEM)
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if sum == s.loaded {
		w.stamp = stamp
		return
	}
	pair, err := parsePair(s.certFile, certPEM, keyPEM)
	if err != nil {
		// Stamp not recorded: read again next tick (the writer may not
		// be done).
		s.watchFailed(w, sum, err)
		return
	}
	s.swap(pair, sum)
	w.stamp, w.failed = stamp, [sha256.Size]byte{}
}

// watchFailed logs err unless the same failure (by key) was logged last.
func (s *CertStore) watchFailed(w *certWatch, key [sha256.Size]byte, err error) {
	if key == w.failed {
		return
	}
	w.failed = key
	s.log.Error("TLS certificate files changed but cannot be used; the current certificate stays",
		"cert_file", s.certFile, "key_file", s.keyFile, "err", err)
}
