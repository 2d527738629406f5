package b2bua

import (
	"slices"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// live reports whether at is an attempt the call still waits on: the
// current sequential attempt or one of the parallel forks.
func (c *Call) live(at *attempt) bool { return at == c.try || c.isFork(at) }

func (c *Call) isFork(at *attempt) bool { return slices.Contains(c.forks, at) }

// registeredDests are the bindings a call to a registered user rings
// (registration.Service.Bindings), as destinations.
func (s *Server) registeredDests(ruri sip.Uri) []dest {
	if s.reg == nil {
		return nil
	}
	var out []dest
	for _, b := range s.reg.Bindings(ruri) {
		uri, err := sipmsg.ParseURI(b.Contact)
		if err != nil {
			continue
		}
		aor, _ := sipmsg.ParseURI("sip:" + b.AOR)
		out = append(out, dest{name: "registered", ruri: uri, aor: aor, to: b.Flow.Target,
			contact: b.Contact, registered: b.Registered})
	}
	return out
}

// forkAll rings every destination at once (the bindings of a registered
// user). It reports false, having answered A, when none could be called.
func (c *Call) forkAll() bool {
	dests := c.setup.dests
	c.setup.dests = nil
	for _, d := range dests {
		if err := c.invite(d); err != nil {
			c.log.Warn("fork not sent", "dest", d.name, "err", err)
			if se, ok := err.(*sipError); ok {
				c.fail(se.cause)
				c.cancelForks(nil)
				return false
			}
		}
	}
	if len(c.forks) == 0 {
		c.fail(outcome.CauseNoBinding)
		return false
	}
	return true
}

// cancelForks sends CANCEL to every fork but keep. Their final answers
// (487, or a 2xx that crossed the CANCEL, which is ACKed and BYEd) still
// arrive and are handled as strays.
func (c *Call) cancelForks(keep *attempt) {
	for _, f := range c.forks {
		if f == keep || f.tx == nil {
			continue
		}
		if err := f.tx.Cancel(); err != nil {
			c.log.Debug("cancel fork", "err", err)
		}
	}
}

// onForkFailed takes a fork's final failure. A 6xx ends the search at once
// (RFC 3261 16.7); otherwise the call waits for the other forks and, when
// none is left, answers A with the best failure.
func (c *Call) onForkFailed(at *attempt, code int) {
	c.s.removeDialog(at.leg)
	c.forks = slices.DeleteFunc(c.forks, func(f *attempt) bool { return f == at })
	if c.state != stateCalling || c.cancelled {
		return
	}
	if code >= 600 {
		c.cancelForks(nil)
		for _, f := range c.forks {
			c.s.removeDialog(f.leg)
		}
		c.forks = nil
		c.failWith(outcome.Classify(outcome.CauseRejected, code, false))
		return
	}
	if c.setup.best == 0 || betterFailure(code, c.setup.best) {
		c.setup.best = code
	}
	if len(c.forks) > 0 {
		return
	}
	switch {
	case c.setup.best == 408:
		// No binding answered in time: 480, where a trunk that does not
		// answer gets the caller 408.
		c.failWith(outcome.Classify(outcome.CauseNoAnswer, 480, false))
	case c.setup.best >= 500:
		c.fail(outcome.CauseNoBinding)
	default:
		c.failWith(outcome.Classify(outcome.CauseRejected, c.setup.best, false))
	}
}

// betterFailure orders final failures of parallel forks: busy first, then
// other 4xx, then timeouts and 5xx.
func betterFailure(code, than int) bool {
	rank := func(c int) int {
		switch {
		case c == 486 || c == 600:
			return 0
		case c >= 400 && c < 500 && c != 408:
			return 1
		default:
			return 2
		}
	}
	return rank(code) < rank(than)
}
