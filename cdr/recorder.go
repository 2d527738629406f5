package cdr

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
)

// Writer types.
const (
	TypeJSONL    = "jsonl"
	TypeCSV      = "csv"
	TypePostgres = "postgres"
)

// Defaults of Config.
const (
	DefaultSegmentBytes = 8 << 20          // bytes per journal segment
	DefaultDrainTimeout = 5 * time.Second  // Close waits this long for writers
	heartbeatEvery      = time.Second      // the heartbeat file is touched this often
	maxBacklog          = 100_000          // records held in memory while the spool cannot be written
	startProbeTimeout   = 10 * time.Second // bound on PostgreSQL checks at Open
)

// Config configures a Recorder. NodeID, SpoolDir and at least one writer
// are required.
type Config struct {
	// NodeID goes into every record's node_id and every file name.
	NodeID string
	// SpoolDir holds the journal, the cursors, the heartbeat and the lock.
	SpoolDir string
	// SpoolKey names SpoolDir in errors; default "cdr_spool".
	SpoolKey string
	// Writers receive every record.
	Writers []WriterConfig
	// Log receives state changes (writer failing, recovered, files
	// finished). Default: slog.Default().
	Log *slog.Logger
	// SegmentBytes starts a new journal segment after this many bytes.
	// Default DefaultSegmentBytes.
	SegmentBytes int64
	// DrainTimeout bounds how long Close waits for writers to deliver what
	// is spooled; the rest is delivered at the next start. Default
	// DefaultDrainTimeout.
	DrainTimeout time.Duration
	// TakenOver, when set, is asked at Open for the ids of the calls of
	// the previous run that another node continued after this one died,
	// and records (issue 19: the record names this node in
	// taken_over_from): those get no sbc_restart record here. Its error
	// is logged and every call left up gets its record, as without it.
	TakenOver func() (map[string]bool, error) `json:"-"`

	// pace replaces the writers' wait of commitEvery between deliveries
	// (tests).
	pace func(ctx context.Context, stop <-chan struct{})
}

// WriterConfig is one writer.
type WriterConfig struct {
	// Key names the writer in errors, as the config key of its entry, e.g.
	// "cdr[1]". Default "cdr writer <Name>".
	Key string
	// Name identifies the writer: its cursor in the spool and its stats.
	// Letters, digits, '-' and '_'; unique. Default: Type.
	Name string
	// Type is TypeJSONL, TypeCSV or TypePostgres.
	Type string
	// Dir, MaxBytes and RotateEvery configure file writers: the directory,
	// and the size (bytes) and age at which a file is finished; 0 for no
	// limit.
	Dir         string
	MaxBytes    int64
	RotateEvery time.Duration
	// DSN is the PostgreSQL connection string of a postgres writer.
	DSN string
}

var writerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Recorder makes every call's record durable in the spool and delivers it
// to each writer. It implements outcome.Observer and is safe for concurrent
// use. Close it after the B2BUA: records handed to it after Close are lost
// (and counted in Stats.Dropped).
type Recorder struct {
	node    string
	spool   *spool
	j       *journal
	runners []*runner
	log     *slog.Logger
	drain   time.Duration
	pace    func(ctx context.Context, stop <-chan struct{})

	mu     sync.RWMutex // observer calls hold it shared; Close exclusively
	closed bool

	stop   chan struct{} // closed by Close: writers drain and exit
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error

	backlogMu sync.Mutex
	backlog   []Record // finished records the spool could not take yet

	spoolErrors  atomic.Uint64
	spoolFailing atomic.Bool
	dropped      atomic.Uint64
	restarted    int
}

var _ outcome.Observer = (*Recorder)(nil)

// Open checks every writer, opens the spool, records the calls a previous
// run left up (hangup_cause sbc_restart) and starts delivering. It returns
// every configuration problem it finds (an unwritable directory, an
// unparsable DSN, a PostgreSQL server that refuses the credentials), each
// naming its key; a PostgreSQL server that cannot be reached is not an
// error: its records wait in the spool.
func Open(cfg Config) (*Recorder, error) {
	cfg = withDefaults(cfg)
	sinks, err := openSinks(cfg)
	if err != nil {
		return nil, err
	}
	r, err := openSpool(cfg, sinks)
	if err != nil {
		for _, s := range sinks {
			_ = s.close()
		}
		return nil, err
	}
	return r, nil
}

func withDefaults(cfg Config) Config {
	cfg.Log = cmp.Or(cfg.Log, slog.Default())
	cfg.SpoolKey = cmp.Or(cfg.SpoolKey, "cdr_spool")
	cfg.SegmentBytes = cmp.Or(cfg.SegmentBytes, DefaultSegmentBytes)
	cfg.DrainTimeout = cmp.Or(cfg.DrainTimeout, DefaultDrainTimeout)
	cfg.Writers = slices.Clone(cfg.Writers)
	for i := range cfg.Writers {
		w := &cfg.Writers[i]
		w.Name = cmp.Or(w.Name, w.Type)
		w.Key = cmp.Or(w.Key, "cdr writer "+w.Name)
	}
	return cfg
}

// openSinks builds every writer's sink, reporting all problems at once.
func openSinks(cfg Config) ([]sink, error) {
	var errs []error
	if cfg.NodeID == "" {
		errs = append(errs, errors.New("cdr: node id is empty"))
	}
	if len(cfg.Writers) == 0 {
		errs = append(errs, errors.New("cdr: no writers"))
	}
	names := map[string]bool{}
	sinks := make([]sink, 0, len(cfg.Writers))
	ctx, cancel := context.WithTimeout(context.Background(), startProbeTimeout)
	defer cancel()
	for _, w := range cfg.Writers {
		if !writerName.MatchString(w.Name) || names[w.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q is not a unique name of letters, digits, '-' and '_'", w.Key, w.Name))
			continue
		}
		names[w.Name] = true
		s, err := newSink(ctx, w, cfg.NodeID, cfg.Log.With("cdr_writer", w.Name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sinks = append(sinks, s)
	}
	if err := errors.Join(errs...); err != nil {
		for _, s := range sinks {
			_ = s.close()
		}
		return nil, err
	}
	return sinks, nil
}

func newSink(ctx context.Context, w WriterConfig, node string, log *slog.Logger) (sink, error) {
	switch w.Type {
	case TypeJSONL:
		return newFileSink(w, node, jsonLines{}, log)
	case TypeCSV:
		return newFileSink(w, node, newCSV(), log)
	case TypePostgres:
		s, err := newPGSink(w, log)
		if err != nil {
			return nil, err
		}
		if err := s.probe(ctx); err != nil {
			return nil, err
		}
		return s, nil
	default:
		return nil, fmt.Errorf("%s.type: %q is not jsonl, csv or postgres", w.Key, w.Type)
	}
}

// openSpool opens the spool, closes the calls of the previous run and
// starts a runner per sink.
func openSpool(cfg Config, sinks []sink) (*Recorder, error) {
	sp, err := lockSpool(cfg.SpoolDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.SpoolKey, err)
	}
	r := &Recorder{node: cfg.NodeID, spool: sp, log: cfg.Log, drain: cfg.DrainTimeout, stop: make(chan struct{}),
		pace: cfg.pace}
	if r.pace == nil {
		r.pace = paceFor(commitEvery)
	}
	fail := func(key string, err error) (*Recorder, error) {
		if r.j != nil {
			_ = r.j.close()
		}
		sp.unlock()
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	cursors, err := r.loadCursors(cfg.Writers)
	if err != nil {
		return fail(cfg.SpoolKey, err)
	}
	j, rec, err := openJournal(sp.dir, cfg.SegmentBytes, cfg.Log)
	if err != nil {
		return fail(cfg.SpoolKey, err)
	}
	r.j = j
	j.failed = r.spoolFailed
	if rec.skipped > 0 {
		cfg.Log.Warn("cdr spool: ignored a torn tail left by a crash", "bytes", rec.skipped)
	}
	if err := r.closeLeftovers(rec.open, sp.lastAlive(rec.newest), r.takenOver(cfg, len(rec.open))); err != nil {
		return fail(cfg.SpoolKey, err)
	}
	for i, w := range cfg.Writers {
		q, err := openQuarantine(sp.dir, w.Name)
		if err != nil {
			return fail(cfg.SpoolKey, err)
		}
		run, err := r.newRunner(w, sinks[i], q, cursors[w.Name], rec.ends)
		if err != nil {
			return fail(w.Key+".dir", err) // only file writers repair at start
		}
		r.runners = append(r.runners, run)
	}
	r.start()
	return r, nil
}

// loadCursors reads each writer's cursor and deletes the cursors of
// writers no longer configured (they would hold the spool forever).
func (r *Recorder) loadCursors(ws []WriterConfig) (map[string]*position, error) {
	out := map[string]*position{}
	names := map[string]bool{}
	for _, w := range ws {
		names[w.Name] = true
		p, ok, err := loadCursor(r.spool.dir, w.Name)
		if err != nil {
			return nil, err
		}
		if ok {
			out[w.Name] = &p
		}
	}
	stale, err := staleCursors(r.spool.dir, names)
	if err != nil {
		return nil, err
	}
	for _, name := range stale {
		r.log.Warn("cdr spool: forgetting the cursor of a writer no longer configured", "writer", name)
		if err := removeFile(cursorPath(r.spool.dir, name)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// takenOver asks cfg.TakenOver which of the open calls another node
// took over; nil when none could be.
func (r *Recorder) takenOver(cfg Config, open int) map[string]bool {
	if cfg.TakenOver == nil || open == 0 {
		return nil
	}
	ids, err := cfg.TakenOver()
	if err != nil {
		r.log.Error("cdr: calls taken over by another node unknown; recording every call left up", "err", err)
	}
	return ids
}

// closeLeftovers records the calls the previous run left up, ended at
// lastAlive by the restart, and makes them durable; those in taken
// another node continued and recorded: they are only closed.
func (r *Recorder) closeLeftovers(open map[string]Record, lastAlive time.Time, taken map[string]bool) error {
	left := make([]Record, 0, len(open))
	for _, rec := range open {
		if taken[rec.ID] {
			if _, err := r.j.append(kindGone, &rec); err != nil {
				return err
			}
			continue
		}
		left = append(left, rec)
	}
	if n := len(open) - len(left); n > 0 {
		r.log.Info("cdr: calls left up that another node took over and records", "calls", n)
	}
	slices.SortFunc(left, func(a, b Record) int { return a.StartTime.t.Compare(b.StartTime.t) })
	for _, rec := range left {
		final := rec.restarted(lastAlive)
		if _, err := r.j.append(kindEnd, &final); err != nil {
			return err
		}
	}
	if len(left) > 0 {
		r.log.Warn("cdr: recorded calls that were up when the previous run ended", "calls", len(left),
			"hangup_cause", outcome.CauseSBCRestart, "end_time", At(lastAlive).String())
	}
	r.restarted = len(left)
	return r.j.syncAll()
}

// newRunner sets a writer up at its cursor (the oldest spooled frame when
// it has none), with its quarantine file, and lets a file writer repair
// what a crash left.
func (r *Recorder) newRunner(w WriterConfig, s sink, q *quarantine, cursor *position, ends []position) (*runner, error) {
	from := r.j.first()
	if cursor != nil && from.before(*cursor) {
		from = *cursor
	}
	log := r.log.With("cdr_writer", w.Name)
	if n := q.held(); n > 0 {
		log.Warn("cdr writer has quarantined records waiting for an operator (README: replay)", "records", n,
			"file", q.path)
	}
	run := &runner{name: w.Name, typ: w.Type, sink: s, rd: newReader(r.j, from, log), spool: r.spool.dir,
		log: log, cursor: from, onCommit: r.compact, q: q, pace: r.pace}
	for _, e := range ends {
		if from.before(e) {
			run.base++
		}
	}
	if rc, ok := s.(recoverer); ok {
		if err := rc.recover(r.idsAfter(from, log)); err != nil {
			return nil, err
		}
	}
	return run, nil
}

// idsAfter yields the ids of the durable records after p.
func (r *Recorder) idsAfter(p position, log *slog.Logger) iter.Seq[string] {
	return func(yield func(string) bool) {
		rd := newReader(r.j, p, log)
		defer rd.closeFile()
		for {
			items, err := rd.read(batchMax, time.Time{}, r.closedChan())
			if err != nil || len(items) == 0 {
				return
			}
			for _, it := range items {
				if !yield(it.rec.ID) {
					return
				}
			}
		}
	}
}

// closedChan is a closed channel: read without waiting.
func (r *Recorder) closedChan() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// start runs the writers and the heartbeat.
func (r *Recorder) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	for _, run := range r.runners {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			run.run(ctx, r.stop)
		}()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.heartbeat()
	}()
}

// compact deletes the journal segments every writer has passed.
func (r *Recorder) compact() {
	low := r.runners[0].position()
	for _, run := range r.runners[1:] {
		if p := run.position(); p.before(low) {
			low = p
		}
	}
	r.j.removeBefore(low)
}

// CallStarted journals a call in progress, so that a crash leaves it a
// record (sbc_restart).
func (r *Recorder) CallStarted(c outcome.CallRecord) { _ = r.progress(kindStart, &c) }

// CallAnswered journals the answer of a call in progress.
func (r *Recorder) CallAnswered(c outcome.CallRecord) { _ = r.progress(kindAnswer, &c) }

// CallEnded builds the call's record and returns once it is fsynced in the
// spool. If the spool cannot be written (disk full), the record is kept in
// memory and retried every second, and Stats reports the alarm.
func (r *Recorder) CallEnded(c outcome.CallRecord) {
	var rec Record
	fromCall(&rec, &c, r.node)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		r.lost(rec)
		return
	}
	r.flushBacklog()
	p, err := r.j.append(kindEnd, &rec)
	if err != nil {
		r.spoolFailed(err)
		r.keep(rec)
		return
	}
	if err := r.j.syncTo(p); err != nil {
		r.spoolFailed(err)
		if errors.Is(err, errLost) {
			r.keep(rec)
		} // else the frame waits in the journal: a later write and fsync make it durable
		return
	}
	r.spoolRecovered()
}

// progress journals a call in progress and returns the position after
// its frame (the zero position if it was not taken).
func (r *Recorder) progress(kind frameKind, c *outcome.CallRecord) position {
	var rec Record
	fromCall(&rec, c, r.node)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return position{}
	}
	p, err := r.j.append(kind, &rec)
	if err != nil {
		r.spoolFailed(err)
	}
	return p
}

// Close stops taking records, lets every writer deliver what is spooled
// for up to the drain timeout, finishes the files and closes the spool.
// What is not delivered stays spooled for the next start. Safe to call
// more than once.
func (r *Recorder) Close() error {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.flushBacklog()
		errs := []error{r.j.syncAll()}
		close(r.stop)
		timer := time.AfterFunc(r.drain, r.cancel)
		r.wg.Wait()
		timer.Stop()
		r.cancel()
		errs = append(errs, r.j.close())
		if n := r.backlogLen() + r.j.refused(); n > 0 { // the journal's: frames it could not write
			r.dropped.Add(uint64(n))
			errs = append(errs, fmt.Errorf("cdr: %d records could not be spooled and are lost", n))
		}
		r.spool.unlock()
		r.err = errors.Join(errs...)
	})
	return r.err
}
