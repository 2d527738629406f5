package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sbc-project/sbc/internal/app"
	"github.com/sbc-project/sbc/internal/config"
)

// serve runs the SBC until it has drained, and returns the exit status.
//
//   - SIGTERM or SIGINT (or POST /api/v1/drain) starts a graceful drain:
//     new calls get 503, calls up go on until they end or
//     admin.drain_timeout passes; then the rest are ended with BYE, their
//     CDRs written, and serve returns 0.
//   - A second SIGTERM or SIGINT returns 1 at once.
//   - SIGHUP reloads the configuration (see app.App.Reload).
//
// A start-up failure (a port taken, a certificate unreadable, the CDR
// spool locked by another sbc...) returns 1 after writing one line to
// stderr that names the config key, the listener and its address:
//
//	sbc: not started: admin.addr (admin server, tcp 127.0.0.1:9090): address already in use
//
// Whatever had started is stopped first, so that line is the last one.
func serve(cfg *config.Config, log *slog.Logger, level *slog.LevelVar, load func() (*config.Config, error), stderr io.Writer) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	a, err := app.New(cfg, log, app.Options{Level: level, Load: load})
	if err != nil {
		fmt.Fprintln(stderr, "sbc: not started:", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 1
	}
	a.Started(cfg)
	stopping := false
	drained := a.Drained()
	var closed chan error // set once the drain is over and Close runs
	for {
		select {
		case s := <-sigs:
			switch {
			case s == syscall.SIGHUP:
				log.Info("reloading the configuration", "signal", s.String())
				_, _ = a.Reload() // it logs the outcome and every problem
			case stopping:
				log.Warn("second signal, exiting now", "signal", s.String())
				return 1
			default:
				stopping = true
				log.Info("shutting down: draining calls; signal again to stop at once", "signal", s.String())
				a.Drain()
			}
		case <-drained:
			drained = nil // closed for good: take it once
			stopping = true
			log.Info("sbc stopping")
			closed = make(chan error, 1)
			go func() { closed <- a.Close() }()
		case err := <-closed:
			if err != nil {
				log.Error("sbc stopped with errors", "err", err)
				return 1
			}
			log.Info("sbc stopped")
			return 0
		}
	}
}
