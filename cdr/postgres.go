package cdr

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Migrations is the SQL the postgres writer applies at each connect, every
// file of cdr/migrations in name order (each statement idempotent).
//
//go:embed migrations/*.sql
var migrations embed.FS

// PostgreSQL timing.
const (
	pgConnectTimeout = 5 * time.Second  // per connection attempt, unless the DSN sets connect_timeout
	pgWriteTimeout   = 30 * time.Second // per batch
	migrationLock    = 7405451226851    // pg_advisory_xact_lock key: nodes migrate one at a time
)

// insertSQL inserts one record; a record already there is left alone.
var insertSQL = func() string {
	names := Columns()
	args := make([]string, len(names))
	for i := range names {
		args[i] = "$" + strconv.Itoa(i+1)
	}
	return "INSERT INTO cdr (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(args, ", ") +
		") ON CONFLICT (id) DO NOTHING"
}()

// pgSink inserts records into the cdr table, one transaction per batch.
type pgSink struct {
	key  string
	cfg  *pgx.ConnConfig
	conn *pgx.Conn
	log  *slog.Logger
}

// newPGSink parses the DSN; errors name the config key. The password is
// never part of an error.
func newPGSink(w WriterConfig, log *slog.Logger) (*pgSink, error) {
	cfg, err := pgx.ParseConfig(w.DSN)
	if err != nil {
		return nil, fmt.Errorf("%s.dsn: %w", w.Key, err) // pgconn redacts the password
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	return &pgSink{key: w.Key, cfg: cfg, log: log}, nil
}

// probe connects once at start. A server that answers with a refusal
// (authentication, unknown database, no privilege to create the table) is
// a configuration error, returned naming the key; a server that cannot be
// reached is not: the writer starts failing and records wait in the spool.
func (p *pgSink) probe(ctx context.Context) error {
	err := p.connect(ctx)
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && configError(pgErr.Code) {
		return fmt.Errorf("%s.dsn: %w", p.key, err)
	}
	p.log.Warn("cdr postgres unreachable at start; records wait in the spool", "err", err)
	return nil
}

// configError reports SQLSTATE codes that a retry cannot fix: invalid
// authorization (28), unknown database (3D000), syntax or access rule
// violations (42).
func configError(code string) bool {
	return strings.HasPrefix(code, "28") || code == "3D000" || strings.HasPrefix(code, "42")
}

// connect opens a connection and applies the migrations.
func (p *pgSink) connect(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, p.cfg)
	if err != nil {
		return fmt.Errorf("connect postgres: %w", err)
	}
	if err := migrate(ctx, conn); err != nil {
		_ = conn.Close(ctx)
		return err
	}
	p.conn = conn
	return nil
}

// migrate applies every migration file in one transaction.
func migrate(ctx context.Context, conn *pgx.Conn) error {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	slices.Sort(files)
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		for _, f := range files {
			sql, err := migrations.ReadFile(f)
			if err != nil {
				return fmt.Errorf("read migration %s: %w", f, err)
			}
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return fmt.Errorf("apply migration %s: %w", f, err)
			}
		}
		return nil
	})
}

// write inserts recs in one transaction. When PostgreSQL refuses a record
// for good (refusedCode), the records before it are inserted again in a
// transaction of their own and the refusal names the record; the records
// after it are the next write's. Inserts are idempotent (ON CONFLICT (id)
// DO NOTHING), so a record sent again is never a duplicate.
func (p *pgSink) write(ctx context.Context, recs []Record) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, pgWriteTimeout)
	defer cancel()
	if p.conn == nil || p.conn.IsClosed() {
		if err := p.connect(ctx); err != nil {
			return 0, err
		}
	}
	n := len(recs)
	var refused error
	for n > 0 {
		bad, err := p.insert(ctx, recs[:n])
		if err == nil {
			return n, refused
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || !refusedCode(pgErr.Code) {
			// The connection may be half-dead (server restart): start afresh.
			_ = p.close()
			return 0, fmt.Errorf("insert into postgres: %w", err)
		}
		switch {
		case bad >= 0 && bad < n:
			n, refused = bad, &refusal{code: pgErr.Code, err: fmt.Errorf("insert into postgres: %w", err)}
		case n == 1:
			n, refused = 0, &refusal{code: pgErr.Code, err: fmt.Errorf("insert into postgres: %w", err)}
		default:
			// No statement was named (a deferred check at commit): the
			// first half goes alone, and so on down to the record.
			n, refused = n/2, nil
		}
	}
	return 0, refused
}

// insert inserts recs in one transaction. On failure, bad is the index of
// the statement that failed, or -1 when none did (BEGIN, COMMIT).
func (p *pgSink) insert(ctx context.Context, recs []Record) (bad int, err error) {
	var b pgx.Batch
	args := make([]any, len(columns))
	for i := range recs {
		for k, c := range columns {
			args[k] = c.value(&recs[i])
		}
		b.Queue(insertSQL, slices.Clone(args)...)
	}
	bad = -1
	err = pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
		br := tx.SendBatch(ctx, &b)
		for i := range recs {
			if _, err := br.Exec(); err != nil {
				bad = i
				_ = br.Close()
				return err
			}
		}
		return br.Close()
	})
	return bad, err
}

// refusedCode reports the SQLSTATE codes that refuse one record for good:
// sent again, the same bytes get the same answer. Class 22, data exception
// (22021 character_not_in_repertoire: a NUL in text; 22P05
// untranslatable_character; 22001 string too long for a column an
// operator narrowed; 22003 numeric value out of range); class 23,
// integrity constraint violation (a CHECK or NOT NULL the row fails); and
// 54000, program_limit_exceeded (an index row too large: kilobytes of
// text in a column with a btree index, as an operator may add). Every
// other error (connection lost, server shutting down,
// lock or statement timeout, a table or privilege missing) concerns all
// records alike and is retried with the records waiting in the spool.
func refusedCode(code string) bool {
	return strings.HasPrefix(code, "22") || strings.HasPrefix(code, "23") || code == "54000"
}

func (*pgSink) committed(time.Time) error { return nil }
func (*pgSink) due() time.Time            { return time.Time{} }

func (p *pgSink) close() error {
	if p.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := p.conn.Close(ctx)
	p.conn = nil
	return err
}
