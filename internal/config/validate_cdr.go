package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sys/unix"
)

// cdrName is what a cdr writer's name may hold: it names the writer's
// cursor file in the spool and its metrics.
var cdrName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// validateCDR checks cdr_spool and every cdr writer. Directories are
// checked without creating anything (writableDir).
func (c *Config) validateCDR(ps *Problems) {
	if len(c.CDR) == 0 {
		return // CDRs off: the spool is not used
	}
	spool := cleanDir(c.CDRSpool)
	if c.CDRSpool == "" {
		ps.add("cdr_spool", "", "required when cdr lists writers")
	} else if err := writableDir(c.CDRSpool); err != nil {
		ps.add("cdr_spool", c.CDRSpool, err.Error())
	}
	names := map[string]int{}
	dirs := map[string]int{} // type+dir of file writers, to index
	for i, w := range c.CDR {
		key := "cdr[" + strconv.Itoa(i) + "]"
		name := w.WriterName()
		switch j, dup := names[name]; {
		case !cdrName.MatchString(name):
			ps.add(key+".name", w.Name, "want 1 to 64 letters, digits, '-' or '_', starting with a letter or digit")
		case dup:
			ps.add(key+".name", w.Name, fmt.Sprintf("%s already names cdr[%d]; give writers of the same type distinct names", name, j))
		default:
			names[name] = i
		}
		if !checkOneOf(ps, key+".type", w.Type, cdrTypes) {
			continue
		}
		if w.Type == CDRPostgres {
			w.validatePostgres(ps, key)
			continue
		}
		w.validateFile(ps, key)
		if w.Dir == "" {
			continue
		}
		if c.CDRSpool != "" && cleanDir(w.Dir) == spool {
			ps.add(key+".dir", w.Dir, "must not be cdr_spool: whatever reads finished files would take the spool")
		}
		id := w.Type + "\x00" + cleanDir(w.Dir)
		if j, dup := dirs[id]; dup {
			ps.add(key+".dir", w.Dir, fmt.Sprintf("cdr[%d] already writes %s records there", j, w.Type))
			continue
		}
		dirs[id] = i
	}
}

// WriterName is the writer's name: Name, or Type when Name is empty.
func (w CDRWriter) WriterName() string {
	if w.Name == "" {
		return w.Type
	}
	return w.Name
}

// validatePostgres checks a postgres writer: a DSN pgx can parse, and none
// of the file writer keys.
func (w CDRWriter) validatePostgres(ps *Problems, key string) {
	switch {
	case w.DSN == "":
		ps.add(key+".dsn", "", "the postgres writer needs a dsn")
	default:
		if _, err := pgconn.ParseConfig(w.DSN); err != nil {
			ps.add(key+".dsn", RedactDSN(w.DSN), "want a PostgreSQL URL or key=value DSN: "+dsnReason(err))
		}
	}
	if w.Dir != "" {
		ps.add(key+".dir", w.Dir, "only jsonl and csv writers take a dir")
	}
	if w.MaxBytes != 0 {
		ps.add(key+".max_bytes", strconv.FormatInt(w.MaxBytes, 10), "only jsonl and csv writers rotate files")
	}
	if w.RotateEvery != 0 {
		ps.add(key+".rotate_every", w.RotateEvery.String(), "only jsonl and csv writers rotate files")
	}
}

// validateFile checks a jsonl or csv writer.
func (w CDRWriter) validateFile(ps *Problems, key string) {
	if w.DSN != "" {
		ps.add(key+".dsn", RedactDSN(w.DSN), "only the postgres writer takes a dsn")
	}
	if w.MaxBytes < 0 {
		ps.add(key+".max_bytes", strconv.FormatInt(w.MaxBytes, 10), "want 0 (no size limit) or more bytes")
	}
	if w.RotateEvery < 0 {
		ps.add(key+".rotate_every", w.RotateEvery.String(), "want 0 (no age limit) or a positive duration")
	}
	if w.Dir == "" {
		ps.add(key+".dir", "", "the "+w.Type+" writer needs a dir")
		return
	}
	if err := writableDir(w.Dir); err != nil {
		ps.add(key+".dir", w.Dir, err.Error())
	}
}

// writableDir reports why dir cannot be used as a directory this process
// writes files in: an existing dir must be a directory with write and
// search permission; a missing one must have a directory as its nearest
// existing parent. Whether that parent lets the SBC create dir is left to
// start-up, which reports it naming the key: -check may run as another
// user than the service.
func writableDir(dir string) error {
	p := filepath.Clean(dir)
	for {
		fi, err := os.Stat(p)
		switch {
		case err == nil && !fi.IsDir():
			if p == filepath.Clean(dir) {
				return errors.New("not a directory")
			}
			return fmt.Errorf("cannot create it: %s is not a directory", p)
		case err == nil && p == filepath.Clean(dir):
			if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
				return fmt.Errorf("not writable: %w", err)
			}
			return nil
		case err == nil:
			return nil
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR):
			return errors.New(fileReason(err))
		}
		parent := filepath.Dir(p)
		if parent == p {
			return errors.New("no existing parent directory")
		}
		p = parent
	}
}

// cleanDir is dir in a form two spellings of one directory share.
func cleanDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return filepath.Clean(dir)
}

// RedactDSN returns dsn with its password replaced by "xxxxx", for logs and
// problems.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, set := u.User.Password(); set {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	dsn = dsnPassword.ReplaceAllString(dsn, "${1}xxxxx")
	return urlPassword.ReplaceAllString(dsn, "${1}:xxxxx@")
}

var (
	// dsnPassword finds the password of a key=value DSN, quoted or not.
	dsnPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)
	// urlPassword finds user:password@ in a URL too broken to parse.
	urlPassword = regexp.MustCompile(`(//[^:@/]*):[^@]*@`)
)

// dsnReason words a pgconn parse error without the DSN it quotes (the
// problem shows it, redacted).
func dsnReason(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, "`: "); ok {
		return after
	}
	return msg
}
