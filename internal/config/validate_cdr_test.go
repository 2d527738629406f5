package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidateCDR(t *testing.T) {
	tmp := t.TempDir()
	aFile := filepath.Join(tmp, "file")
	writeFile(t, aFile, []byte("x"))
	cdr := func(ws ...CDRWriter) func(c *Config) { return func(c *Config) { c.CDR = ws } }
	jsonl := func(dir string) CDRWriter { return CDRWriter{Type: CDRJSONL, Dir: dir} }
	pg := CDRWriter{Type: CDRPostgres, DSN: "postgres://sbc:secret@db.example.com/cdr"}
	runValidateCases(t, []validateCase{
		{"none", cdr(), nil},
		{"none needs no spool", func(c *Config) { c.CDR, c.CDRSpool = nil, "" }, nil},
		{"type unknown", cdr(CDRWriter{Type: "xml", Dir: "x"}), []string{"cdr[0].type: want one of jsonl, csv, postgres"}},
		{"file writer without dir", cdr(CDRWriter{Type: CDRCSV}), []string{"cdr[0].dir: the csv writer needs a dir"}},
		{"postgres without dsn", cdr(CDRWriter{Type: CDRPostgres}), []string{"cdr[0].dsn: needs a dsn"}},
		{"postgres dsn unparsable", cdr(CDRWriter{Type: CDRPostgres, DSN: "postgres://u:secret@host:bad/db"}),
			[]string{"cdr[0].dsn: want a PostgreSQL URL or key=value DSN: failed to parse as URL"}},
		{"postgres key=value dsn", cdr(CDRWriter{Type: CDRPostgres, DSN: "host=127.0.0.1 port=5432 user=sbc dbname=cdr"}), nil},
		{"postgres with file keys", cdr(CDRWriter{Type: CDRPostgres, DSN: "postgres://db/cdr", Dir: "x", MaxBytes: 1, RotateEvery: time.Minute}),
			[]string{"cdr[0].dir: only jsonl and csv", "cdr[0].max_bytes: only jsonl and csv", "cdr[0].rotate_every: only jsonl and csv"}},
		{"file writer with dsn", cdr(CDRWriter{Type: CDRCSV, Dir: tmp, DSN: "postgres://db"}), []string{"cdr[0].dsn: only the postgres writer"}},
		{"negative limits", cdr(CDRWriter{Type: CDRCSV, Dir: tmp, MaxBytes: -1, RotateEvery: -time.Second}),
			[]string{"cdr[0].max_bytes: want 0", "cdr[0].rotate_every: want 0"}},
		{"two writers one file", cdr(jsonl("a"), CDRWriter{Name: "second", Type: CDRJSONL, Dir: "./a/"}),
			[]string{"cdr[1].dir: cdr[0] already writes jsonl records there"}},
		{"two writers one name", cdr(jsonl("a"), jsonl("b")),
			[]string{"cdr[1].name: jsonl already names cdr[0]; give writers of the same type distinct names"}},
		{"bad name", cdr(CDRWriter{Name: "a/b", Type: CDRJSONL, Dir: "a"}), []string{"cdr[0].name: want 1 to 64"}},
		{"jsonl, csv and postgres share a dir", cdr(jsonl("a"), CDRWriter{Type: CDRCSV, Dir: "a"}, pg), nil},
		{"spool is a writer's dir", func(c *Config) { c.CDR, c.CDRSpool = []CDRWriter{jsonl(tmp)}, tmp+"/" },
			[]string{"cdr[0].dir: must not be cdr_spool"}},
		{"spool missing", func(c *Config) { c.CDRSpool = "" }, []string{"cdr_spool: required when cdr lists writers"}},
		{"spool under a file", func(c *Config) { c.CDRSpool = filepath.Join(aFile, "spool") },
			[]string{"cdr_spool: cannot create it: " + aFile + " is not a directory"}},
		{"dir is a file", cdr(jsonl(aFile)), []string{"cdr[0].dir: not a directory"}},
		{"dir not there yet", cdr(jsonl(filepath.Join(tmp, "x", "y"))), nil},
	})
}

// TestValidateCDRPermissions needs a user whose permissions are enforced.
func TestValidateCDRPermissions(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may write anywhere")
	}
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	runValidateCases(t, []validateCase{
		{"dir read-only", func(c *Config) { c.CDR[0].Dir = ro }, []string{"cdr[0].dir: not writable: permission denied"}},
		// Left to start-up: -check may run as another user than the service.
		{"spool under read-only", func(c *Config) { c.CDRSpool = filepath.Join(ro, "spool") }, nil},
	})
}

func TestValidateCDRHidesPassword(t *testing.T) {
	c := Default()
	c.CDR = []CDRWriter{{Type: CDRPostgres, DSN: "postgres://sbc:secret@db:bad/cdr"}, {Name: "kv", Type: CDRPostgres, DSN: "host=db password='s3 cret' port=x"}}
	err := c.Validate()
	if err == nil {
		t.Fatal("no problem")
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "s3 cret") {
		t.Errorf("password in problems:\n%v", err)
	}
}

func TestRedactDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://sbc:secret@db:5432/cdr?sslmode=disable", "postgres://sbc:xxxxx@db:5432/cdr?sslmode=disable"},
		{"postgresql://sbc@db/cdr", "postgresql://sbc@db/cdr"},
		{"host=db user=sbc password=secret dbname=cdr", "host=db user=sbc password=xxxxx dbname=cdr"},
		{`host=db password='it\'s secret' dbname=cdr`, "host=db password=xxxxx dbname=cdr"},
		{"postgres://u:sec ret@[::1/db", "postgres://u:xxxxx@[::1/db"},
	}
	for _, tt := range tests {
		if got := RedactDSN(tt.in); got != tt.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoadCDR(t *testing.T) {
	path := writeConfig(t, "cdr:\n  - {type: csv, name: billing, dir: /var/cdr, max_bytes: 1024, rotate_every: 5m}\n  - {type: postgres, dsn: 'postgres://db/cdr'}\ncdr_spool: /var/spool/sbc\n")
	c, err := Load(path, []string{"SBC_CDR_SPOOL=/srv/spool"})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, c.CDRSpool, "/srv/spool")
	equal(t, c.CDR, []CDRWriter{
		{Name: "billing", Type: CDRCSV, Dir: "/var/cdr", MaxBytes: 1024, RotateEvery: 5 * time.Minute},
		{Name: CDRPostgres, Type: CDRPostgres, DSN: "postgres://db/cdr"},
	})
	_, err = Load(writeConfig(t, "cdr:\n  - {type: csv, rotate_every: 5, max_bytes: lots, spool: x}\n"), nil)
	wantProblems(t, err, "cdr[0].spool: unknown key", "cdr[0].max_bytes: want a whole number", "cdr[0].rotate_every: want a duration")
}
