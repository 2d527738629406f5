// Command sbc is the session border controller: a WebRTC ⇄ SIP
// back-to-back user agent.
//
//	sbc [-config FILE]          run (embedded defaults without -config)
//	sbc -check [-config FILE]   validate the configuration and exit
//	sbc -version                print the version and exit
//	sbc -cdr-replay FILE [-config FILE]
//	                            deliver a CDR quarantine file to its writer and exit
//
// Every config key can be overridden from the environment (SBC_ prefix, see
// configs/default.yaml). The first SIGINT or SIGTERM starts a graceful
// drain (see serve); a second one exits at once with status 1. SIGHUP
// reloads the configuration.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/internal/logging"
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
	replay := fs.String("cdr-replay", "", "deliver a CDR quarantine `file` (cdr_spool/quarantine-<writer>.jsonl) to its writer, and exit")
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

	log, level := newLogger(cfg.Log, stderr)
	if *replay != "" {
		return replayCDR(cfg, log, *replay, stdout, stderr)
	}
	return serve(cfg, log, level, func() (*config.Config, error) { return loadConfig(*configPath, environ) }, stderr)
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

// newLogger builds the process logger from a validated Log section, and
// the level a reload may change.
func newLogger(c config.Log, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level, err := logging.ParseLevel(c.Level)
	if err != nil {
		level = slog.LevelInfo // unreachable after Validate
	}
	return logging.New(w, c.Format, level)
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
