package cdr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A writer's cursor is the journal position up to which it has delivered
// every record, kept in the spool as "cursor-<name>": one line
// "<segment> <offset>". It is replaced atomically (write, fsync, rename,
// fsync the directory), so a crash leaves the old or the new one.

const cursorPrefix = "cursor-"

func cursorPath(dir, name string) string { return filepath.Join(dir, cursorPrefix+name) }

// loadCursor reads writer name's cursor; ok is false when it has none.
func loadCursor(dir, name string) (p position, ok bool, err error) {
	b, err := os.ReadFile(cursorPath(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return position{}, false, nil
	}
	if err != nil {
		return position{}, false, fmt.Errorf("read cursor of %s: %w", name, err)
	}
	if _, err := fmt.Sscanf(string(b), "%d %d\n", &p.seg, &p.off); err != nil || p.off < 0 {
		return position{}, false, fmt.Errorf("read cursor of %s: damaged file %q (deleting it makes the writer deliver again all the spool holds)",
			name, strings.TrimSpace(string(b)))
	}
	return p, true, nil
}

// saveCursor makes p writer name's cursor, durably.
func saveCursor(dir, name string, p position) error {
	path := cursorPath(dir, name)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	_, err = fmt.Fprintf(f, "%d %d\n", p.seg, p.off)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	return nil
}

// staleCursors returns the writer names that have a cursor in dir but are
// not in names.
func staleCursors(dir string, names map[string]bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read spool: %w", err)
	}
	var stale []string
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), cursorPrefix)
		if ok && !strings.HasSuffix(name, ".tmp") && !names[name] {
			stale = append(stale, name)
		}
	}
	return stale, nil
}
