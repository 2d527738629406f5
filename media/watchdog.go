package media

import "time"

// watchdog calls a session's OnTimeout callback when no RTP has arrived
// from either side for Config.Timeout while neither side holds. The
// manager polls the relay counters of every session it has on one
// self-re-arming runtime timer (Manager.pollIdle), so the relay does no
// clock reads per packet, an idle session holds no goroutine, and a
// session keeps no timer of its own (a time.AfterFunc each was 0.15 kB
// an established call, and a goroutine for each poll). Its fields are
// guarded by Session.mu.
type watchdog struct {
	f          func()
	lastRx     uint64    // RTP accepted when last looked at
	lastActive time.Time // when RTP last flowed, or hold last held
	armed      bool      // media is set up: the polls look at the session
	fired      bool
}

// watchTicks is how many polls fit in one timeout: the callback runs
// between Timeout and Timeout*(1+1/watchTicks) after the last packet.
const watchTicks = 8

func pollInterval(timeout time.Duration) time.Duration {
	return max(timeout/watchTicks, time.Millisecond)
}

// arm starts the watchdog once media is set up; later calls do nothing.
// It allocates nothing. Called under s.mu.
func (w *watchdog) arm(s *Session) {
	if s.m.cfg.Timeout <= 0 || w.armed {
		return
	}
	_, w.lastRx = s.totals()
	w.lastActive = time.Now()
	w.armed = true
}

// stop keeps the polls from looking at the session again. Called under
// s.mu.
func (w *watchdog) stop() {
	w.armed = false
}

// watchLocked starts the manager's polls when its first session comes,
// with Config.Timeout set. Called with m.mu held.
func (m *Manager) watchLocked() {
	if m.cfg.Timeout <= 0 || m.watching || m.closed {
		return
	}
	m.watching = true
	d := pollInterval(m.cfg.Timeout)
	if m.watch == nil {
		m.watch = time.AfterFunc(d, m.pollIdle)
		return
	}
	m.watch.Reset(d)
}

// pollIdle is one poll of every session, on the manager's timer. It
// runs again after pollInterval while the manager has sessions: a poll
// comes at most that long after a session's watchdog is armed, so the
// callback still runs within Timeout*(1+1/watchTicks) of the last
// packet. The sessions are copied out of m.mu, which checkIdle may not
// hold (the callback closes the session, which forgets it).
func (m *Manager) pollIdle() {
	m.mu.Lock()
	if m.closed || len(m.sessions) == 0 {
		m.watching = false
		m.mu.Unlock()
		return
	}
	ss := m.watchBuf[:0]
	for s := range m.sessions {
		ss = append(ss, s)
	}
	m.mu.Unlock()
	for _, s := range ss {
		s.checkIdle()
	}
	clear(ss) // keep no closed session alive until the next poll
	m.watchBuf = ss[:0]
	m.mu.Lock()
	if m.closed {
		m.watching = false
	} else {
		m.watch.Reset(pollInterval(m.cfg.Timeout))
	}
	m.mu.Unlock()
}

// checkIdle is one poll of the session. The callback is decided under
// s.mu, after the closed check, and run without it, so it may call
// Close.
func (s *Session) checkIdle() {
	s.mu.Lock()
	w := &s.watch
	if s.closed || w.fired || !w.armed {
		s.mu.Unlock()
		return
	}
	timeout := s.m.cfg.Timeout
	_, rx := s.totals()
	now := time.Now()
	if rx != w.lastRx || s.hold[SideA] || s.hold[SideB] {
		w.lastRx, w.lastActive = rx, now
	}
	idle := now.Sub(w.lastActive)
	if idle < timeout {
		s.mu.Unlock()
		return
	}
	w.fired = true
	f := w.f
	s.mu.Unlock()
	s.logger().Info("media timeout", "idle", idle.Round(time.Millisecond))
	if f != nil {
		f()
	}
}
