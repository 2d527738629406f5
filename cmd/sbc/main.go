// Command sbc is the session border controller: a WebRTC ⇄ SIP
// back-to-back user agent.
//
//	sbc [-config FILE]          run (embedded defaults without -config)
//	sbc -check [-config FILE]   validate the configuration and exit
//	sbc -version                print the version and exit
//
// Every config key can be overridden from the environment (SBC_ prefix, see
// configs/default.yaml). The first SIGINT or SIGTERM starts a graceful
// shutdown; a second one exits at once with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/sbc-project/sbc/internal/app"
	"github.com/sbc-project/sbc/internal/config"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info is used.
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is main without the process exit, returning the exit status.
func run(args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sbc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config `file`; empty runs on the embedded defaults")
	check := fs.Bool("check", false, "validate the configuration, list every problem, and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sbc: unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "sbc", buildVersion())
		return 0
	}

	cfg, err := loadConfig(*configPath, environ)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	if *check {
		fmt.Fprintln(stdout, "config OK")
		return 0
	}

	log := newLogger(cfg.Log, stderr)
	ctx, stop := signalContext(log)
	defer stop()
	if err := app.Run(ctx, cfg, log); err != nil {
		log.Error("sbc stopped", "err", err)
		return 1
	}
	return 0
}

// loadConfig loads and validates; errors are Problems where possible.
func loadConfig(path string, environ []string) (*config.Config, error) {
	cfg, err := config.Load(path, environ)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// printProblems writes every configuration problem on its own line, or the
// error itself when it is not a list of problems (an unreadable file).
func printProblems(w io.Writer, err error) {
	var ps config.Problems
	if !errors.As(err, &ps) {
		fmt.Fprintln(w, "sbc:", err)
		return
	}
	for _, p := range ps {
		fmt.Fprintln(w, p.String())
	}
}

// newLogger builds the process logger from a validated Log section.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo // unreachable after Validate
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// signalContext returns a context cancelled by the first SIGINT or SIGTERM;
// a second signal exits the process at once with status 1. stop releases
// the signal handling.
func signalContext(log *slog.Logger) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			log.Info("shutting down; signal again to stop at once", "signal", s.String())
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			log.Warn("second signal, exiting now", "signal", s.String())
			os.Exit(1)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// buildVersion returns version, or the module version when built with
// `go install module@version`.
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}
