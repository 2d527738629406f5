package app

import (
	"log/slog"
	"strconv"

	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/internal/config"
)

// newRecorder opens the CDR recorder the config describes: the spool at
// cdr_spool and one writer per cdr entry. It returns nil, nil when cdr
// lists no writer (CDRs off). Its errors name the config key at fault
// (cdr_spool, cdr[1].dir, cdr[2].dsn...).
func newRecorder(cfg *config.Config, takenOver func() (map[string]bool, error), log *slog.Logger) (*cdr.Recorder, error) {
	if len(cfg.CDR) == 0 {
		return nil, nil
	}
	c := CDRConfig(cfg, log)
	c.TakenOver = takenOver
	return cdr.Open(c)
}

// CDRConfig translates the cdr and cdr_spool sections into the recorder's
// config: what newRecorder opens, and what cdr.Replay delivers to.
func CDRConfig(cfg *config.Config, log *slog.Logger) cdr.Config {
	writers := make([]cdr.WriterConfig, len(cfg.CDR))
	for i, w := range cfg.CDR {
		writers[i] = cdr.WriterConfig{
			Key:         "cdr[" + strconv.Itoa(i) + "]",
			Name:        w.WriterName(),
			Type:        w.Type,
			Dir:         w.Dir,
			MaxBytes:    w.MaxBytes,
			RotateEvery: w.RotateEvery,
			DSN:         w.DSN,
		}
	}
	return cdr.Config{
		NodeID:   cfg.NodeID,
		SpoolDir: cfg.CDRSpool,
		SpoolKey: "cdr_spool",
		Writers:  writers,
		Log:      log,
	}
}
