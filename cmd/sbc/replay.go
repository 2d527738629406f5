package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/internal/app"
	"github.com/sbc-project/sbc/internal/config"
)

// replayCDR delivers the records of a CDR quarantine file to the writer of
// cfg that set them aside (sbc -cdr-replay FILE), their control
// characters made U+FFFD, and returns the exit status: 0 when every record
// went in, 1 when one was refused again (each is listed with the reason)
// or the writer failed. The file is left as it is.
func replayCDR(cfg *config.Config, log *slog.Logger, path string, stdout, stderr io.Writer) int {
	res, err := cdr.Replay(app.CDRConfig(cfg, log), path)
	if res.Writer != "" {
		fmt.Fprintf(stdout, "cdr replay: %d records delivered to writer %s\n", res.Delivered, res.Writer)
	}
	for _, q := range res.Refused {
		fmt.Fprintf(stderr, "cdr replay: record %s refused again: %s\n", q.Record.ID, q.Error)
	}
	if err != nil {
		fmt.Fprintln(stderr, "sbc:", err)
		return 1
	}
	if len(res.Refused) > 0 {
		return 1
	}
	return 0
}
