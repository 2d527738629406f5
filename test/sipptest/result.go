package sipptest

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Result is what a finished SIPp run left behind.
type Result struct {
	// ExitCode is SIPp's exit status: 0 every call succeeded, 1 at least one
	// failed, 97 exit on internal command, 99 no call processed, 255 fatal
	// error (also the global timeout), 254 socket bind error; -1 when a
	// signal (the harness's kill) ended it.
	ExitCode int
	// Stats are SIPp's final cumulative counters. Zero when SIPp died
	// before writing them.
	Stats Stats
	// Messages are every SIP message sent and received, in order, when
	// Options.MessageLog was set.
	Messages []Message
	// Stderr, ErrorLog (the -trace_err file: unexpected messages, failed
	// checks, timeouts) and Screen (the final statistics screen) are kept,
	// each cut to its first and last maxLog/2 bytes, to explain a failure.
	Stderr   string
	ErrorLog string
	Screen   string
	// Scenario is the scenario file's base name.
	Scenario string
}

// Stats are SIPp's cumulative call counters, from the last line of its
// -trace_stat file.
type Stats struct {
	Created         int // TotalCallCreated: calls placed (UAC) or taken (UAS)
	Successful      int // SuccessfulCall(C): calls that reached the scenario's end
	Failed          int // FailedCall(C)
	Retransmissions int // Retransmissions(C)
	OutOfCallMsgs   int // OutOfCallMsgs(C): messages matching no call
	DeadCallMsgs    int // DeadCallMsgs(C): messages for calls already ended
	// Raw holds every column of the last line by its header name.
	Raw map[string]string
}

// maxLog bounds each log kept in a Result.
const maxLog = 16 << 10

// Check returns nil if SIPp exited 0 with exactly want successful calls and
// no failed one, and otherwise an error that carries the run's summary.
func (r Result) Check(want int) error {
	if r.ExitCode == 0 && r.Stats.Successful == want && r.Stats.Failed == 0 {
		return nil
	}
	return fmt.Errorf("sipp %s: want %d successful calls, got exit code %d, %d successful, %d failed\n%s",
		r.Scenario, want, r.ExitCode, r.Stats.Successful, r.Stats.Failed, r.Summary())
}

// Summary is a human-readable account of the run for test failures.
func (r Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- sipp %s: exit code %d, created %d, successful %d, failed %d, retransmissions %d\n",
		r.Scenario, r.ExitCode, r.Stats.Created, r.Stats.Successful, r.Stats.Failed, r.Stats.Retransmissions)
	for _, part := range []struct{ name, text string }{
		{"stderr", r.Stderr}, {"error log", r.ErrorLog}, {"screen", r.Screen},
	} {
		if strings.TrimSpace(part.text) != "" {
			fmt.Fprintf(&b, "--- %s:\n%s\n", part.name, part.text)
		}
	}
	return b.String()
}

// Received returns the messages SIPp received, in order.
func (r Result) Received() []Message { return r.filter(Received) }

// Sent returns the messages SIPp sent, in order, retransmissions included.
func (r Result) Sent() []Message { return r.filter(Sent) }

func (r Result) filter(d Direction) []Message {
	var out []Message
	for _, m := range r.Messages {
		if m.Dir == d {
			out = append(out, m)
		}
	}
	return out
}

// collect reads the run's files into a Result. A missing file leaves its
// part empty: SIPp may die before writing it.
func (p *Proc) collect(code int) Result {
	r := Result{ExitCode: code, Scenario: baseName(p.opts.Scenario)}
	r.Stderr = tail(p.file("stderr.log"))
	r.ErrorLog = tail(p.file("errors.log"))
	r.Screen = tail(p.file("screen.log"))
	if f, err := os.Open(p.file("stats.csv")); err == nil {
		st, err := parseStats(f)
		f.Close()
		if err == nil {
			r.Stats = st
		} else {
			r.ErrorLog += fmt.Sprintf("\n(sipptest: %v)", err)
		}
	}
	if p.opts.MessageLog {
		if b, err := os.ReadFile(p.file("messages.log")); err == nil {
			r.Messages = parseMessages(string(b))
		}
	}
	return r
}

func baseName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), ".xml")
}

func tail(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	// The first error is usually the cause (SIPp's "Aborting call on
	// unexpected message" comes before the dead calls it leaves), the
	// last ones the state at the end: keep both ends.
	if len(b) > maxLog {
		half := maxLog / 2
		return string(b[:half]) + "\n...\n" + string(b[len(b)-half:])
	}
	return string(b)
}

// parseStats reads a SIPp -trace_stat file (';'-separated, a header line
// then one line per dump) and returns the counters of the last line.
func parseStats(r io.Reader) (Stats, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Stats{}, fmt.Errorf("read stats: %w", err)
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = ';'
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	rows, err := cr.ReadAll()
	if err != nil {
		return Stats{}, fmt.Errorf("parse stats: %w", err)
	}
	if len(rows) < 2 {
		return Stats{}, fmt.Errorf("parse stats: %d lines, want a header and a row", len(rows))
	}
	header, last := rows[0], rows[len(rows)-1]
	st := Stats{Raw: make(map[string]string, len(header))}
	for i, name := range header {
		if i < len(last) && name != "" {
			st.Raw[name] = last[i]
		}
	}
	for _, f := range []struct {
		dst  *int
		name string
	}{
		{&st.Created, "TotalCallCreated"},
		{&st.Successful, "SuccessfulCall(C)"},
		{&st.Failed, "FailedCall(C)"},
		{&st.Retransmissions, "Retransmissions(C)"},
		{&st.OutOfCallMsgs, "OutOfCallMsgs(C)"},
		{&st.DeadCallMsgs, "DeadCallMsgs(C)"},
	} {
		v, ok := st.Raw[f.name]
		if !ok {
			return Stats{}, fmt.Errorf("parse stats: no column %s", f.name)
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return Stats{}, fmt.Errorf("parse stats: column %s: %w", f.name, err)
		}
		*f.dst = n
	}
	return st, nil
}
