package cdr

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sbc-project/sbc/test/cdr/pgtest"
)

// pgConfig is a recorder with a jsonl writer and a postgres writer at dsn.
func pgConfig(t testing.TB, dsn string) Config {
	cfg := fileConfig(t)
	cfg.Writers = []WriterConfig{cfg.Writers[0], {Key: "cdr[1]", Type: TypePostgres, DSN: dsn}}
	return cfg
}

// TestPostgres runs against one throwaway server.
func TestPostgres(t *testing.T) {
	pg := pgtest.Start(t)

	t.Run("every record, field by field", func(t *testing.T) {
		dsn := pg.CreateDB(t, "every")
		cfg := pgConfig(t, dsn)
		r := mustOpen(t, cfg)
		const n = 500
		runCalls(r, "pg", n, 16)
		waitDelivered(t, r, 20*time.Second)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		rows := pgRecords(t, dsn)
		if len(rows) != n {
			t.Fatalf("%d rows, want %d", len(rows), n)
		}
		for i := range n {
			rec := FromCall(call("pg", i), cfg.NodeID)
			want := csvRow(&rec)
			for col, got := range rows[rec.ID] {
				if got != want[col] {
					t.Errorf("%s.%s = %q, want %q", rec.ID, col, got, want[col])
				}
			}
		}
	})

	t.Run("redelivery is idempotent", func(t *testing.T) {
		dsn := pg.CreateDB(t, "idem")
		w := WriterConfig{Key: "cdr[1]", Type: TypePostgres, DSN: dsn}
		s, err := newPGSink(w, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		recs := []Record{FromCall(call("dup", 1), "n"), FromCall(call("dup", 2), "n")}
		for range 3 {
			if n, err := s.write(context.Background(), recs); err != nil || n != 2 {
				t.Fatalf("write: %d, %v", n, err)
			}
		}
		if rows := pgRecords(t, dsn); len(rows) != 2 {
			t.Errorf("%d rows after writing 2 records 3 times, want 2", len(rows))
		}
	})

	t.Run("nodes migrate at once", func(t *testing.T) {
		dsn := pg.CreateDB(t, "migrate")
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				conn, err := pgx.Connect(ctx, dsn)
				if err != nil {
					errs <- err
					return
				}
				defer conn.Close(ctx)
				errs <- migrate(ctx, conn)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("start-up errors", func(t *testing.T) {
		dsn := pg.CreateDB(t, "startup")
		tests := []struct{ name, dsn, want string }{
			{"wrong password", strings.Replace(dsn, pgtest.Password, "wrong", 1), "cdr[1].dsn: connect postgres: failed to connect"},
			{"unknown database", strings.Replace(dsn, "/startup?", "/nosuchdb?", 1), "(SQLSTATE 3D000)"},
			{"unparsable", "postgres://u:pw@127.0.0.1:notaport/db", "cdr[1].dsn: cannot parse"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r, err := Open(pgConfig(t, tt.dsn))
				if err == nil {
					r.Close()
					t.Fatal("opened")
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %q, want it to contain %q", err, tt.want)
				}
				if strings.Contains(err.Error(), pgtest.Password) {
					t.Errorf("password in %q", err)
				}
			})
		}
	})
}

// TestPostgresDownAtStart: an unreachable server does not stop the SBC:
// the writer raises its alarm and its records wait in the spool.
func TestPostgresDownAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	cfg := pgConfig(t, fmt.Sprintf("postgres://sbc:pw@127.0.0.1:%d/cdr?sslmode=disable&connect_timeout=1", port))
	r := mustOpen(t, cfg)
	defer r.Close()
	runCalls(r, "down", 5, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := r.Stats()
		if s.Writers[1].Failing && s.Writers[1].Pending == 5 && s.Writers[0].Pending == 0 && s.Alarm() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want the postgres writer failing with 5 pending", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPostgresOutage stops PostgreSQL mid-run and starts it again: no
// record is lost, none is duplicated, and the alarm rises and clears.
func TestPostgresOutage(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.CreateDB(t, "outage")
	cfg := pgConfig(t, dsn)
	r := mustOpen(t, cfg)
	defer r.Close()

	stop := make(chan struct{})
	done := make(chan int)
	go func() { // steady traffic through the whole outage
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			case <-time.After(2 * time.Millisecond):
			}
			runCalls(r, fmt.Sprintf("out%04d", n), 5, 5)
			n++
		}
	}()
	time.Sleep(300 * time.Millisecond)
	pg.Stop(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := r.Stats()
		if s.Writers[1].Failing && s.Writers[1].Pending > 20 {
			t.Logf("during the outage: %+v", s.Writers[1])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alarm while postgres is down: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	pg.Start(t)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	rounds := <-done
	s := waitDelivered(t, r, 30*time.Second)
	if s.Writers[1].Failing || s.Alarm() {
		t.Errorf("alarm after recovery: %+v", s)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	want := once(t, "jsonl", jsonIDs(readJSONL(t, cfg.Writers[0].Dir)))
	rows := pgRecords(t, dsn)
	if len(want) != rounds*5 || len(rows) != len(want) {
		t.Errorf("%d calls, %d in jsonl, %d rows in postgres", rounds*5, len(want), len(rows))
	}
	for id := range want {
		if rows[id] == nil {
			t.Errorf("%s lost in postgres", id)
		}
	}
	t.Logf("%d records through the outage; %d failed attempts", len(rows), s.Writers[1].Failures)
}
