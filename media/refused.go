package media

// Refused undoes what the last offer from side from told the session
// about that side's transport, when the other side refused the offer (a
// final response of 300 or more, nothing answered): the side's endpoints
// go back to what its previous SDP said, so media toward it goes where it
// still listens. A fax gateway whose T.38 re-INVITE the far end refuses
// (488, no fax) stays on its audio port, and the call goes on there.
// Streams the offer opened stay until the next offer or Close.
//
// It acts between plain RTP sides only (where the SDP passes through and
// re-learning the previous SDP changes nothing but the addresses); with
// another side, or when there is nothing to undo, it does nothing.
func (s *Session) Refused(from Side) {
	if !from.valid() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.before
	if s.closed || !s.offered || s.offerFrom != from || prev == nil || !s.plain() {
		return
	}
	if err := s.learn(from, prev, false); err != nil {
		s.logger().Info("refused offer not undone", "side", from.String(), "err", err)
		return
	}
	s.last[from], s.before, s.offered = prev, nil, false
	if b := s.bodies; b != nil {
		b.last[from], b.before = b.before, nil
	}
	s.logger().Info("refused offer undone", "side", from.String())
}
