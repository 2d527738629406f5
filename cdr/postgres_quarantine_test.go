package cdr

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sbc-project/sbc/test/cdr/pgtest"
)

// TestPostgresQuarantine: records PostgreSQL refuses for good are set
// aside and the rest are delivered, against one throwaway server.
func TestPostgresQuarantine(t *testing.T) {
	pg := pgtest.Start(t)
	t.Run("a NUL in a spooled record", func(t *testing.T) { testPoisonedSpool(t, pg) })
	t.Run("bad records anywhere in a batch", func(t *testing.T) { testBadAnywhere(t, pg) })
	t.Run("a Call-ID of kilobytes", func(t *testing.T) { testLongCallID(t, pg) })
	t.Run("refusal at commit", func(t *testing.T) { testRefusalAtCommit(t, pg) })
}

// testPoisonedSpool: a spool an older version left, good records around
// one with a NUL in its Call-ID. Before the quarantine, PostgreSQL refused
// the batch on every retry and nothing after it was ever delivered.
func testPoisonedSpool(t *testing.T, pg *pgtest.Server) {
	dsn := pg.CreateDB(t, "poison")
	cfg := pgConfig(t, dsn)
	cfg.Writers = append(cfg.Writers, WriterConfig{Key: "cdr[2]", Type: TypeCSV, Dir: filepath.Join(t.TempDir(), "csv")})
	recs := goodAndBad("p", 9, 4)
	ends := oldSpool(t, cfg.SpoolDir, recs...)

	r := mustOpen(t, cfg)
	s := waitDelivered(t, r, 30*time.Second)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	pgw := s.Writers[1]
	if pgw.Delivered != 8 || pgw.Quarantined != 1 || pgw.Failing || !s.Alarm() {
		t.Fatalf("postgres writer %+v, want 8 delivered, 1 quarantined, not failing, and the alarm", pgw)
	}
	checkRows(t, dsn, recs, 4)
	q := readQuarantine(t, cfg.SpoolDir, "postgres")
	if len(q) != 1 || !reflect.DeepEqual(q[0].Record, recs[4]) || q[0].SQLState != "22021" ||
		!strings.Contains(q[0].Error, "(SQLSTATE 22021)") || q[0].Writer != "postgres" {
		t.Fatalf("quarantine %+v, want the record with PostgreSQL's error", q)
	}
	if p, ok, err := loadCursor(cfg.SpoolDir, "postgres"); err != nil || !ok || p != ends[len(ends)-1] {
		t.Fatalf("cursor at %v (%v), want past the last record %v", p, err, ends[len(ends)-1])
	}
	if n := len(readJSONL(t, cfg.Writers[0].Dir)); n != 9 {
		t.Errorf("jsonl holds %d records, want all 9", n)
	}

	r = mustOpen(t, cfg)
	s = waitDelivered(t, r, 30*time.Second)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, w := range s.Writers {
		if w.Delivered != 0 || w.Quarantined != 0 {
			t.Errorf("after restart %s delivered %d, quarantined %d; want nothing again", w.Name, w.Delivered, w.Quarantined)
		}
	}
	checkRows(t, dsn, recs, 4)
	if q := readQuarantine(t, cfg.SpoolDir, "postgres"); len(q) != 1 {
		t.Errorf("quarantine holds %d records after restart, want 1", len(q))
	}
	checkReplay(t, cfg, dsn, recs[4])
}

// testBadAnywhere: refused records first, last, in a row and across two
// batches.
func testBadAnywhere(t *testing.T, pg *pgtest.Server) {
	dsn := pg.CreateDB(t, "anywhere")
	cfg := pgConfig(t, dsn)
	bad := []int{0, 1, 100, 255, 256, 299}
	recs := goodAndBad("a", 300, bad...)
	oldSpool(t, cfg.SpoolDir, recs...)
	r := mustOpen(t, cfg)
	s := waitDelivered(t, r, 30*time.Second)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if pgw := s.Writers[1]; pgw.Delivered != 294 || pgw.Quarantined != 6 {
		t.Fatalf("postgres writer %+v, want 294 delivered, 6 quarantined", pgw)
	}
	checkRows(t, dsn, recs, bad...)
	var ids []string
	for _, q := range readQuarantine(t, cfg.SpoolDir, "postgres") {
		ids = append(ids, q.Record.ID)
	}
	var want []string
	for _, b := range bad {
		want = append(want, recs[b].ID)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("quarantined %v, want %v in spool order", ids, want)
	}
}

// testLongCallID: a Call-ID of kilobytes (SIP sets no limit) is stored:
// a btree index on a_call_id refused it (54000); a table made with one
// gets the hash index at the next connect.
func testLongCallID(t *testing.T, pg *pgtest.Server) {
	dsn := pg.CreateDB(t, "long")
	w := WriterConfig{Key: "cdr[1]", Type: TypePostgres, DSN: dsn}
	first, err := newPGSink(w, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := first.write(context.Background(), goodAndBad("l", 1)); n != 1 || err != nil {
		t.Fatalf("first write: %d, %v", n, err)
	}
	first.close()
	pgExec(t, dsn, "CREATE INDEX cdr_a_call_id_idx ON cdr (a_call_id)") // as the first migration made it
	s, err := newPGSink(w, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	long := FromCall(answeredCall("long"), "n")
	long.ACallID = sipToken(8000)
	if n, err := s.write(context.Background(), []Record{long}); n != 1 || err != nil {
		t.Fatalf("write of a record with an 8000-byte Call-ID: %d, %v", n, err)
	}
	if rows := pgRecords(t, dsn); rows["long"] == nil {
		t.Error("the record is not in postgres")
	}
	var btree int
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_indexes WHERE indexname = 'cdr_a_call_id_idx'").Scan(&btree); err != nil || btree != 0 {
		t.Errorf("the btree index is still there (%d, %v)", btree, err)
	}
}

// testRefusalAtCommit: a refusal no statement is named for (a deferred
// constraint checked at COMMIT) is found by halves.
func testRefusalAtCommit(t *testing.T, pg *pgtest.Server) {
	dsn := pg.CreateDB(t, "commit")
	s, err := newPGSink(WriterConfig{Key: "cdr[1]", Type: TypePostgres, DSN: dsn}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	taken := FromCall(answeredCall("taken"), "n")
	if n, err := s.write(context.Background(), []Record{taken}); n != 1 || err != nil {
		t.Fatalf("first write: %d, %v", n, err)
	}
	pgExec(t, dsn, "ALTER TABLE cdr ADD CONSTRAINT one_record_per_call UNIQUE (a_call_id) DEFERRABLE INITIALLY DEFERRED")
	recs := goodAndBad("c", 6)
	recs[3].ACallID = taken.ACallID
	var refused []string
	for done := 0; done < len(recs); {
		n, err := s.write(context.Background(), recs[done:])
		done += n
		var r *refusal
		switch {
		case errors.As(err, &r):
			if r.code != "23505" {
				t.Errorf("refusal %v, want SQLSTATE 23505", r)
			}
			refused = append(refused, recs[done].ID)
			done++
		case err != nil:
			t.Fatal(err)
		}
	}
	if !slices.Equal(refused, []string{recs[3].ID}) {
		t.Errorf("refused %v, want %s", refused, recs[3].ID)
	}
	checkRows(t, dsn, append(recs, taken), 3)
}

// checkReplay replays the postgres writer's quarantine file, holding
// poisoned, twice: the record goes in once with its NUL made U+FFFD. A
// record PostgreSQL refuses whatever its text (a disposition the table's
// CHECK refuses) is refused again and reported.
func checkReplay(t *testing.T, cfg Config, dsn string, poisoned Record) {
	t.Helper()
	path := QuarantinePath(cfg.SpoolDir, "postgres")
	unfit := FromCall(answeredCall("unfit"), "node-1")
	unfit.Disposition = "PAID"
	if _, err := openQuarantineAndAdd(cfg.SpoolDir, "postgres", unfit); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		res, err := Replay(cfg, path)
		if err != nil {
			t.Fatal(err)
		}
		if res.Writer != "postgres" || res.Delivered != 1 || len(res.Refused) != 1 ||
			res.Refused[0].Record.ID != "unfit" || res.Refused[0].SQLState != "23514" {
			t.Fatalf("replay %d: %+v, want 1 delivered and the unfit record refused (23514)", round, res)
		}
	}
	rows := pgRecords(t, dsn)
	if rows[poisoned.ID] == nil || rows["unfit"] != nil {
		t.Fatalf("after replay: poisoned in postgres %v, unfit %v", rows[poisoned.ID] != nil, rows["unfit"] != nil)
	}
	var callID string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT a_call_id FROM cdr WHERE id = $1", poisoned.ID).Scan(&callID); err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(poisoned.ACallID, "\x00", "\uFFFD"); callID != want {
		t.Errorf("replayed a_call_id %q, want %q", callID, want)
	}
	if q := readQuarantine(t, cfg.SpoolDir, "postgres"); len(q) != 2 {
		t.Errorf("the quarantine file holds %d records after replay, want it unchanged (2)", len(q))
	}
}

// openQuarantineAndAdd sets rec aside in writer's quarantine file.
func openQuarantineAndAdd(dir, writer string, rec Record) (bool, error) {
	q, err := openQuarantine(dir, writer)
	if err != nil {
		return false, err
	}
	return q.add(&rec, &refusal{err: errors.New("set aside by the test")})
}

// checkRows checks that the cdr table holds recs but those at the indexes
// in bad, each once.
func checkRows(t *testing.T, dsn string, recs []Record, bad ...int) {
	t.Helper()
	rows := pgRecords(t, dsn)
	if len(rows) != len(recs)-len(bad) {
		t.Errorf("%d rows, want %d", len(rows), len(recs)-len(bad))
	}
	for i, rec := range recs {
		if got := rows[rec.ID] != nil; got == slices.Contains(bad, i) {
			t.Errorf("record %d (%s) in postgres: %v", i, rec.ID, got)
		}
	}
}

// sipToken returns n random characters a Call-ID may hold; random, so
// that PostgreSQL cannot compress them below its index limit.
func sipToken(n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// pgExec runs one statement at dsn.
func pgExec(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}
