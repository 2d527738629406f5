package media

import "time"

// watchdog calls a session's OnTimeout callback when no RTP has arrived
// from either side for Config.Timeout while neither side holds. It polls
// the relay counters on a self-re-arming time.AfterFunc, so the relay
// does no clock reads per packet and an idle session holds no goroutine.
// Its fields are guarded by Session.mu.
type watchdog struct {
	f          func()
	timer      *time.Timer
	lastRx     uint64    // RTP accepted when last looked at
	lastActive time.Time // when RTP last flowed, or hold last held
	fired      bool
}

// watchTicks is how many polls fit in one timeout: the callback runs
// between Timeout and Timeout*(1+1/watchTicks) after the last packet.
const watchTicks = 8

func pollInterval(timeout time.Duration) time.Duration {
	return max(timeout/watchTicks, time.Millisecond)
}

// arm starts the watchdog once media is set up; later calls do nothing.
// Called under s.mu.
func (w *watchdog) arm(s *Session) {
	timeout := s.m.cfg.Timeout
	if timeout <= 0 || w.timer != nil {
		return
	}
	_, w.lastRx = s.totals()
	w.lastActive = time.Now()
	w.timer = time.AfterFunc(pollInterval(timeout), s.checkIdle)
}

// stop keeps the watchdog from polling again. Called under s.mu.
func (w *watchdog) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// checkIdle is one poll. The callback is decided under s.mu, after the
// closed check, and run without it, so it may call Close.
func (s *Session) checkIdle() {
	s.mu.Lock()
	w := &s.watch
	if s.closed || w.fired {
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
		w.timer.Reset(pollInterval(timeout))
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
