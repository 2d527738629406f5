package cdr

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFileSinkRecoverOlderCSV: an unfinished CSV file of the version
// before the transfer columns (32 columns) is finished as it is, its
// records kept, and the records after it go into a file with the current
// header; it is neither removed nor continued with rows of another width.
func TestFileSinkRecoverOlderCSV(t *testing.T) {
	dir := t.TempDir()
	format := newCSV()
	oldHead := strings.Join(Columns()[:oldestColumns], ",") + "\n"
	var data bytes.Buffer
	data.WriteString(oldHead)
	for _, id := range []string{"old1", "old2"} {
		r := FromCall(answeredCall(id), "n")
		row, err := format.appendRecord(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		// The older writer's row: the same fields without the later ones
		// (no field of this record holds a comma).
		fields := strings.Split(strings.TrimSuffix(string(row), "\n"), ",")
		data.WriteString(strings.Join(fields[:oldestColumns], ",") + "\n")
	}
	name := ".cdr-n-20261121T100000.000Z.csv.part"
	if err := os.WriteFile(filepath.Join(dir, name), data.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	w := WriterConfig{Key: "cdr[0]", Type: TypeCSV, Dir: dir, MaxBytes: 1 << 20, RotateEvery: time.Hour}
	s, err := newFileSink(w, "n", format, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.recover(slices.Values([]string{"new"})); err != nil {
		t.Fatal(err)
	}
	r := FromCall(answeredCall("new"), "n")
	if n, err := s.write(t.Context(), []Record{r}); err != nil || n != 1 {
		t.Fatal(n, err)
	}
	if err := s.committed(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	files := finished(t, dir, "csv")
	if len(files) != 2 {
		t.Fatalf("files %v, want the older one finished and a new one", files)
	}
	old, err := os.ReadFile(files[0])
	if err != nil || string(old) != data.String() {
		t.Errorf("the older file changed (%v):\n%s", err, old)
	}
	cur, err := os.ReadFile(files[1])
	if err != nil || !bytes.HasPrefix(cur, format.header()) || !strings.Contains(string(cur), "\nnew,") {
		t.Errorf("the new file (%v):\n%s", err, cur)
	}
}
