package media

import (
	"context"
	"log/slog"
)

// A session logs little (a hold, a latch move, a timeout), yet it used to
// keep a logger per session, per stream and per side made with
// Logger.With, and a text or JSON handler formats those attributes when
// With is called: some 270 bytes each, about 0.8 kB per call for lines
// most calls never write. A scope keeps the attributes as plain fields
// and hands them to the manager's handler only when a line is handled,
// so the line reads as it did (call_id, then mline, then side).

// scope is what a session's log lines say about where they come from.
type scope struct {
	h     slog.Handler // the manager's logger's
	id    string       // call_id
	mline int          // -1: not about one m-line
	side  Side         // -1: not about one side
}

// logger returns a logger for the session's lines: the attributes are
// formatted only for the lines that are written.
func (s *Session) logger() *slog.Logger {
	return slog.New(&scope{h: s.m.log.Handler(), id: s.id, mline: -1, side: -1})
}

// debug logs a debug line of the session, building its logger only when
// debug lines are written: three of them come with every call.
func (s *Session) debug(msg string, args ...any) {
	if s.m.log.Enabled(context.Background(), slog.LevelDebug) {
		s.logger().Debug(msg, args...)
	}
}

// sideLogger is the logger of the endpoint of m-line mline facing side;
// it is kept by the endpoint's sockets, so it is one small object.
func (s *Session) sideLogger(mline int, side Side) *slog.Logger {
	return slog.New(&scope{h: s.m.log.Handler(), id: s.id, mline: mline, side: side})
}

// attrs are the scope's attributes, in the order Logger.With added them.
func (sc *scope) attrs() []slog.Attr {
	as := make([]slog.Attr, 1, 3)
	as[0] = slog.String("call_id", sc.id)
	if sc.mline >= 0 {
		as = append(as, slog.Int("mline", sc.mline))
	}
	if sc.side >= 0 {
		as = append(as, slog.String("side", sc.side.String()))
	}
	return as
}

func (sc *scope) Enabled(ctx context.Context, l slog.Level) bool { return sc.h.Enabled(ctx, l) }

func (sc *scope) Handle(ctx context.Context, r slog.Record) error {
	return sc.h.WithAttrs(sc.attrs()).Handle(ctx, r)
}

// WithAttrs and WithGroup (pion's loggers under a WebRTC side) format
// the scope once, as Logger.With did.
func (sc *scope) WithAttrs(as []slog.Attr) slog.Handler {
	return sc.h.WithAttrs(sc.attrs()).WithAttrs(as)
}

func (sc *scope) WithGroup(name string) slog.Handler {
	return sc.h.WithAttrs(sc.attrs()).WithGroup(name)
}
