package security

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// bansFileVersion is the format of the bans file:
//
//	{"version": 2, "bans": [{"addr": "192.0.2.7", "reason": "5 authentication failures within 5m0s",
//	  "since": "2025-01-02T03:04:05Z", "until": "2025-01-02T04:04:05Z", "scope": "udp", "evidence": 5}]}
//
// until is left out for a ban that lasts until removed, evidence for a
// ban an operator made. Version 1 (before scopes) is still read: its bans
// have neither scope nor evidence, and are read as bans on every
// transport that are never evicted, as they were.
const bansFileVersion = 2

type bansFile struct {
	Version int        `json:"version"`
	Bans    []BanEntry `json:"bans"`
}

// MaxBanReason bounds the reason text kept per ban.
const MaxBanReason = 256

// decodeBans parses a bans file and returns the bans still in force at now.
// An empty file (only white space) holds no bans. Unknown fields, a wrong
// version, a bad address, scope or evidence, a duplicate address, or more
// than MaxBans bans are errors: a file the SBC did not write is not
// guessed at.
func decodeBans(data []byte, now time.Time) ([]*ban, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f bansFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a bans file: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a bans file: data after the JSON object")
	}
	if f.Version != 1 && f.Version != bansFileVersion {
		return nil, fmt.Errorf("bans file version %d, want 1 or %d", f.Version, bansFileVersion)
	}
	if len(f.Bans) > MaxBans {
		return nil, fmt.Errorf("%d bans, more than %d", len(f.Bans), MaxBans)
	}
	out := make([]*ban, 0, len(f.Bans))
	seen := make(map[string]bool, len(f.Bans))
	for i, e := range f.Bans {
		p, err := ParseBanAddr(e.Addr)
		if err != nil {
			return nil, fmt.Errorf("bans[%d]: %w", i, err)
		}
		if len(e.Reason) > MaxBanReason {
			return nil, fmt.Errorf("bans[%d]: reason longer than %d bytes", i, MaxBanReason)
		}
		if seen[p.String()] {
			return nil, fmt.Errorf("bans[%d]: %s listed twice", i, e.Addr)
		}
		seen[p.String()] = true
		ev, err := entryEvidence(e)
		if err != nil {
			return nil, fmt.Errorf("bans[%d]: %w", i, err)
		}
		x := &ban{prefix: p, reason: e.Reason, since: e.Since, evidence: ev, index: -1}
		if e.Until != nil {
			if e.Until.IsZero() {
				return nil, fmt.Errorf("bans[%d]: zero until; leave it out for a ban until removed", i)
			}
			x.until = *e.Until
		}
		if !x.expired(now) {
			out = append(out, x)
		}
	}
	return out, nil
}

// entryEvidence reads a ban's scope and evidence: a UDP-only ban is a
// dynamic one, with evidence.
func entryEvidence(e BanEntry) (Evidence, error) {
	scope, err := ParseScope(e.Scope)
	switch {
	case err != nil:
		return Evidence{}, err
	case e.Evidence < 0:
		return Evidence{}, fmt.Errorf("evidence %d: want 0 (an operator's ban) or more", e.Evidence)
	case scope == ScopeUDP && e.Evidence == 0:
		return Evidence{}, errors.New("scope udp without evidence: only dynamic bans are UDP-only")
	}
	return Evidence{Scope: scope, Events: e.Evidence}, nil
}

// encodeBans writes entries as a bans file.
func encodeBans(entries []BanEntry) ([]byte, error) {
	data, err := json.MarshalIndent(bansFile{Version: bansFileVersion, Bans: entries}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// flushLater is the delayed write Ban schedules.
func (b *Bans) flushLater() {
	b.mu.Lock()
	b.timer = nil
	b.flushed = time.Now()
	v := b.version
	b.mu.Unlock()
	if err := b.persist(v); err != nil {
		b.log.Error("bans not saved", "err", err)
	}
}

// persist writes the file unless a write of version v or later already
// succeeded: concurrent changes share one write. The snapshot is taken
// under wmu, so the last write always holds the latest state.
func (b *Bans) persist(v uint64) error {
	if b.file == "" {
		return nil
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.written >= v {
		return nil
	}
	b.mu.Lock()
	b.sweep()
	entries := b.snapshot()
	cur := b.version
	b.mu.Unlock()
	data, err := encodeBans(entries)
	if err != nil {
		return fmt.Errorf("encode bans: %w", err)
	}
	if err := writeFileAtomic(b.file, data); err != nil {
		return err
	}
	b.written = cur
	return nil
}

// writeFileAtomic replaces file with data: a temporary file in the same
// directory is written, fsynced and renamed over it, and the directory is
// fsynced, so a crash leaves the old file or the new one, never a mix.
func writeFileAtomic(file string, data []byte) error {
	dir := filepath.Dir(file)
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp*")
	if err != nil {
		return fmt.Errorf("write bans file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write bans file %s: %w", file, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not every file system syncs directories
		_ = d.Close()
	}
	return nil
}
