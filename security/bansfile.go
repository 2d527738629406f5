package security

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// bansFileVersion is the format of the bans file:
//
//	{"version": 1, "bans": [{"addr": "192.0.2.7", "reason": "auth_failures",
//	  "since": "2025-01-02T03:04:05Z", "until": "2025-01-02T04:04:05Z"}]}
//
// until is left out for a ban that lasts until removed.
const bansFileVersion = 1

type bansFile struct {
	Version int        `json:"version"`
	Bans    []BanEntry `json:"bans"`
}

// MaxBanReason bounds the reason text kept per ban.
const MaxBanReason = 256

// decodeBans parses a bans file and returns the bans still in force at now.
// An empty file (only white space) holds no bans. Unknown fields, a wrong
// version, a bad address, a duplicate address, or more than MaxBans bans
// are errors: a file the SBC did not write is not guessed at.
func decodeBans(data []byte, now time.Time) ([]ban, error) {
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
	if f.Version != bansFileVersion {
		return nil, fmt.Errorf("bans file version %d, want %d", f.Version, bansFileVersion)
	}
	if len(f.Bans) > MaxBans {
		return nil, fmt.Errorf("%d bans, more than %d", len(f.Bans), MaxBans)
	}
	out := make([]ban, 0, len(f.Bans))
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
		x := ban{prefix: p, reason: e.Reason, since: e.Since}
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

// encodeBans writes entries as a bans file.
func encodeBans(entries []BanEntry) ([]byte, error) {
	data, err := json.MarshalIndent(bansFile{Version: bansFileVersion, Bans: entries}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
