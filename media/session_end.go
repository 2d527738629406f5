package media

// The end of a session: streams retired mid-call, Stop (nothing relayed
// any more, counters final) and Close (ports given back), and the
// counters that outlive them.

// retire closes the stream of m-line i, if any, keeping its counters.
func (s *Session) retire(i int) {
	if st := s.stopStream(i); st != nil {
		st.release()
	}
}

// stopStream stops the stream of m-line i, if any, keeping its counters,
// and returns it for its ports to be released.
func (s *Session) stopStream(i int) *stream {
	if i >= len(s.streams) || s.streams[i] == nil {
		return nil
	}
	st := s.streams[i]
	s.streams[i] = nil
	st.stop()
	stats, rx := st.stats()
	if s.retired == nil {
		s.retired = new(retired)
	}
	s.retired.AtoB.add(stats.AtoB)
	s.retired.BtoA.add(stats.BtoA)
	s.retired.rx += rx
	s.debug("media stream closed", "mline", i)
	s.reroute()
	return st
}

// Stop ends the session's media: no packet is relayed once it returns, its
// goroutines are gone and Stats are final, but its ports stay allocated
// until Close. A call stops its media, makes its record durable and only
// then closes the session (ARCHITECTURE.md: records before resources).
// Idempotent.
func (s *Session) Stop() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.endTranscoding()
	if s.stop != nil {
		close(s.stop)
	}
	s.watch.stop()
	if s.stateTick != nil {
		s.stateTick.Stop()
	}
	for i := range s.streams {
		if st := s.stopStream(i); st != nil {
			s.held = append(s.held, st)
		}
	}
	s.streams = nil
	for i, w := range s.wt {
		if w != nil {
			w.stop()
			s.heldSides = append(s.heldSides, w)
			s.wt[i] = nil
		}
	}
	s.mu.Unlock()
	s.evMu.Lock()
	s.evClosed = true
	s.evMu.Unlock()
	s.tasks.Wait()
	s.debug("media session stopped")
}

// Close stops the session (see Stop) and gives its ports back: they go to
// quarantine. It is idempotent. Stats stay readable and final after Close.
func (s *Session) Close() {
	s.Stop()
	s.mu.Lock()
	held, sides := s.held, s.heldSides
	s.held, s.heldSides = nil, nil
	s.mu.Unlock()
	for _, st := range held {
		st.release()
	}
	for _, w := range sides {
		w.release()
	}
	s.m.forget(s)
}

// Stats returns the session's counters so far, released streams included.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, _ := s.totals()
	return st
}

// retired are the counters of a session's streams already closed: most
// calls close none before they end, so a session keeps them behind a
// pointer (Stats is 256 bytes).
type retired struct {
	Stats
	rx uint64 // RTP accepted from either side
}

// totals sums live and retired counters; rx is RTP accepted from either
// side. Called under s.mu.
func (s *Session) totals() (Stats, uint64) {
	var total Stats
	var rx uint64
	if s.retired != nil {
		total, rx = s.retired.Stats, s.retired.rx
	}
	for _, st := range s.streams {
		if st == nil {
			continue
		}
		stats, r := st.stats()
		total.AtoB.add(stats.AtoB)
		total.BtoA.add(stats.BtoA)
		rx += r
	}
	return total, rx
}
