package wrtc

import (
	"errors"
	"fmt"
	"time"
)

// gather collects the host candidates for the agent's current credentials
// and stores them as t.local. Called by New and, under t.mu, by an ICE restart.
func (t *Transport) gather() error {
	select { // a stale completion from an earlier round
	case <-t.gathered:
	default:
	}
	if err := t.agent.GatherCandidates(); err != nil {
		return fmt.Errorf("gather candidates: %w", err)
	}
	timer := time.NewTimer(gatherTimeout)
	defer timer.Stop()
	select {
	case <-t.gathered:
	case <-timer.C:
		return errors.New("gather candidates: timed out")
	}
	cands, err := t.agent.GetLocalCandidates()
	if err != nil {
		return fmt.Errorf("local candidates: %w", err)
	}
	if len(cands) == 0 {
		return errors.New("gather candidates: no host candidate (is the mux bound to a usable IPv4 address?)")
	}
	ufrag, pwd, err := t.agent.GetLocalUserCredentials()
	if err != nil {
		return fmt.Errorf("local credentials: %w", err)
	}
	p := Params{Ufrag: ufrag, Pwd: pwd, Fingerprint: t.fp, ICELite: true}
	for _, c := range cands {
		p.Candidates = append(p.Candidates, c.Marshal())
	}
	t.local = p
	return nil
}
