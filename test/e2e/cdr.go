package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/internal/config"
)

// CDRSinks are the writers of a test SBC: jsonl and csv in their own
// directories, and postgres when dsn is set.
type CDRSinks struct {
	Spool, JSONL, CSV, DSN string
}

func NewCDRSinks(t *testing.T, dsn string) CDRSinks {
	dir := t.TempDir()
	return CDRSinks{Spool: filepath.Join(dir, "spool"), JSONL: filepath.Join(dir, "jsonl"), CSV: filepath.Join(dir, "csv"), DSN: dsn}
}

// apply points cfg's CDRs at the sinks, with files rotated often.
func (s CDRSinks) Apply(cfg *config.Config) {
	cfg.CDRSpool = s.Spool
	cfg.CDR = []config.CDRWriter{
		{Name: "jsonl", Type: config.CDRJSONL, Dir: s.JSONL, MaxBytes: 8 << 10, RotateEvery: 300 * time.Millisecond},
		{Name: "csv", Type: config.CDRCSV, Dir: s.CSV, MaxBytes: 4 << 10},
	}
	if s.DSN != "" {
		cfg.CDR = append(cfg.CDR, config.CDRWriter{Name: "postgres", Type: config.CDRPostgres, DSN: s.DSN})
	}
}

// records reads every writer's records once the SBC is closed, checks that
// no writer has a record twice or an unfinished file, and that all hold
// the same records; it returns the jsonl ones.
func (s CDRSinks) Records(t *testing.T) []cdr.Record {
	t.Helper()
	var recs []cdr.Record
	files := FinishedCDRFiles(t, s.JSONL, "jsonl")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		for dec.More() {
			var r cdr.Record
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			recs = append(recs, r)
		}
	}
	ids := uniqueIDs(t, "jsonl", recordIDs(recs))
	csvIDs := uniqueIDs(t, "csv", s.csvIDs(t))
	if !maps2Equal(ids, csvIDs) {
		t.Errorf("csv holds %d records, jsonl %d, or other ones", len(csvIDs), len(ids))
	}
	if s.DSN != "" {
		if pg := uniqueIDs(t, "postgres", pgIDs(t, s.DSN)); !maps2Equal(ids, pg) {
			t.Errorf("postgres holds %d records, jsonl %d, or other ones", len(pg), len(ids))
		}
	}
	return recs
}

func (s CDRSinks) csvIDs(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, f := range FinishedCDRFiles(t, s.CSV, "csv") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil || len(rows) < 2 || !slices.Equal(rows[0], cdr.Columns()) {
			t.Fatalf("%s: %d rows, %v: want the header and rows", f, len(rows), err)
		}
		for _, row := range rows[1:] {
			ids = append(ids, row[0])
		}
	}
	return ids
}

func FinishedCDRFiles(t *testing.T, dir, ext string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "cdr-*."+ext))
	if parts, _ := filepath.Glob(filepath.Join(dir, ".*.part")); len(parts) > 0 {
		t.Errorf("unfinished files left: %v", parts)
	}
	slices.Sort(files)
	return files
}

func pgIDs(t *testing.T, dsn string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id FROM cdr")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func recordIDs(recs []cdr.Record) []string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	return ids
}

func uniqueIDs(t *testing.T, what string, ids []string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, id := range ids {
		if set[id] {
			t.Errorf("%s: record %s twice", what, id)
		}
		set[id] = true
	}
	return set
}

func maps2Equal(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
