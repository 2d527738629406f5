package baresip

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// minAudio is how much of the far side's tone each side must have heard
// in a call, in 20 ms blocks: half a second. A call lasts until the SBC
// relayed relayAudio packets each way and each phone's recording holds
// minAudio blocks (heard): the phones' jitter buffers and decoders run
// behind the relay, the more so on a loaded machine (a CI run's call
// ended with 0.4 s recorded after 42 packets relayed).
const (
	minAudio   = 25
	relayAudio = minAudio + 10
)

// pair is a caller and a callee baresip through one SBC.
type pair struct {
	sbc    *sbcUnderTest
	a, b   *phone
	target string    // what a dials
	dialed time.Time // when the last call started
}

// call is one call of a pair in progress.
type call struct {
	p            *pair
	id           string // the caller's Call-ID: leg A's in the SBC
	markA, markB int
	recA, recB   int // recordings each phone had before the call
}

// dial calls b from a and waits until both sides are established. It
// starts no two calls of a pair within one second of the clock: baresip
// names a call's recordings by the second it starts.
func (p *pair) dial(t *testing.T) *call {
	t.Helper()
	if wait := time.Until(p.dialed.Truncate(time.Second).Add(time.Second)); wait > 0 {
		time.Sleep(wait)
	}
	p.dialed = time.Now()
	c := &call{p: p, markA: p.a.mark(), markB: p.b.mark(), recA: len(p.a.recordings()), recB: len(p.b.recordings())}
	p.a.do("dial", p.target)
	c.id = p.a.waitEvent(c.markA, "CALL_ESTABLISHED", 10*time.Second).ID
	p.b.waitEvent(c.markB, "CALL_ESTABLISHED", 10*time.Second)
	return c
}

// flowing waits until the SBC has relayed n more packets each way than
// base, and returns the counts.
func (c *call) flowing(t *testing.T, base [2]uint64, n uint64) [2]uint64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, ok := c.p.sbc.relayed(c.id)
		if ok && got[0] >= base[0]+n && got[1] >= base[1]+n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("media not flowing both ways: relayed a→b %d, b→a %d since %v, want %d more each", got[0], got[1], base, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dtmf sends digit from one phone and waits for the other to report it.
func (c *call) dtmf(t *testing.T, from, to *phone, digit string) {
	t.Helper()
	m := to.mark()
	from.do("sndcode", digit)
	if e := to.waitEvent(m, "CALL_DTMF_START", 5*time.Second); e.Param != digit {
		t.Fatalf("%s received DTMF %q, want %q", to.o.user, e.Param, digit)
	}
}

// hold puts the call on hold from a (a re-INVITE through the SBC).
func (c *call) hold(t *testing.T) {
	t.Helper()
	m := c.p.b.mark()
	c.p.a.do("hold", "")
	c.p.b.waitEvent(m, "CALL_REMOTE_SDP", 5*time.Second)
}

// resume checks that b's media toward a stopped while held, resumes the
// call from a and waits for media both ways again.
func (c *call) resume(t *testing.T) {
	t.Helper()
	held := c.waitHeld(t)
	m := c.p.b.mark()
	c.p.a.do("resume", "")
	c.p.b.waitEvent(m, "CALL_REMOTE_SDP", 5*time.Second)
	c.flowing(t, held, minAudio)
}

// waitHeld waits until b→a has stopped growing for 200 ms, and returns
// the counts then.
func (c *call) waitHeld(t *testing.T) [2]uint64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	last, _ := c.p.sbc.relayed(c.id)
	since := time.Now()
	for time.Since(since) < 200*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("b→a kept flowing while on hold: %v", last)
		}
		time.Sleep(20 * time.Millisecond)
		got, _ := c.p.sbc.relayed(c.id)
		if got[1] != last[1] {
			since = time.Now()
		}
		last = got
	}
	return last
}

// hangup ends the call from the given phone and checks what each side
// heard and the call's record.
func (c *call) hangup(t *testing.T, by *phone) record {
	t.Helper()
	c.heard(t)
	by.do("hangup", "")
	c.p.a.waitEvent(c.markA, "CALL_CLOSED", 5*time.Second)
	c.p.b.waitEvent(c.markB, "CALL_CLOSED", 5*time.Second)
	r := c.p.sbc.waitRecord(t, c.id)
	if r.Disposition != "ANSWERED" || r.AToBPackets < minAudio || r.BToAPackets < minAudio {
		t.Fatalf("CDR %s, want ANSWERED with at least %d packets each way", r, minAudio)
	}
	c.checkAudio(t)
	c.p.a.archiveRecordings(t)
	c.p.b.archiveRecordings(t)
	return r
}

// heard waits until each phone's recording of the call holds minAudio
// blocks of the other's tone.
func (c *call) heard(t *testing.T) {
	t.Helper()
	waitHeard(t, c.p.a, c.recA, c.p.b.o.tone)
	waitHeard(t, c.p.b, c.recB, c.p.a.o.tone)
}

// checkAudio checks the recordings of the call: each side heard the
// other's tone, and not its own.
func (c *call) checkAudio(t *testing.T) {
	t.Helper()
	for _, side := range []struct {
		ph          *phone
		before      int
		heard, sent float64
	}{{c.p.a, c.recA, c.p.b.o.tone, c.p.a.o.tone}, {c.p.b, c.recB, c.p.a.o.tone, c.p.b.o.tone}} {
		recs := side.ph.recordings()
		if len(recs) <= side.before {
			t.Fatalf("%s recorded nothing in this call", side.ph.o.user)
		}
		checkHeard(t, side.ph.o.user, recs[len(recs)-1], side.heard, side.sent, minAudio)
	}
}

func target(user string, sbc netip.AddrPort, params string) string {
	return fmt.Sprintf("sip:%s@%s%s", user, sbc, params)
}

// runCalls makes n calls in a row on each pair, the pairs' calls at the
// same time, each proving audio both ways and DTMF from the caller; the
// second also DTMF from the callee, the third a hold and resume. baresip
// binds its RTP socket to the wildcard, so its RTP leaves from 127.0.0.1
// (the source the route to the SBC picks) whatever its SDP and SIP name,
// from the port its SDP names: the SBC latches it by that port at once
// (media/latch.go, rankSDPPort).
func runCalls(t *testing.T, pairs []*pair, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		calls := make([]*call, len(pairs))
		for j, p := range pairs {
			calls[j] = p.dial(t)
		}
		for _, c := range calls {
			c.flowing(t, [2]uint64{}, relayAudio)
			c.dtmf(t, c.p.a, c.p.b, "5")
			if i == 2 {
				c.dtmf(t, c.p.b, c.p.a, "#")
			}
		}
		if i == 3 {
			for _, c := range calls {
				c.hold(t)
			}
			for _, c := range calls {
				c.resume(t)
			}
		}
		for _, c := range calls {
			by := c.p.a
			if i%2 == 0 {
				by = c.p.b
			}
			r := c.hangup(t, by)
			t.Logf("call %d of %s: %s", i, c.p.a.o.ip, r)
		}
	}
}
