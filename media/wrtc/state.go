package wrtc

import "time"

// State is the life cycle of a Transport: New, then Connected once ICE and
// DTLS are up, Failed on an unrecoverable error, Closed after Close.
// Failed and Closed are final (Closed follows Failed on Close).
type State int

// Transport states.
const (
	StateNew       State = iota // created; ICE and DTLS not (yet) up
	StateConnected              // DTLS done, SRTP keys ready: media flows
	StateFailed                 // handshake timed out or failed, or the path died
	StateClosed                 // Close was called
)

// Failure reasons passed to the OnState callback with StateFailed.
const (
	ReasonICETimeout          = "ice_timeout"          // no valid check from the peer within HandshakeTimeout (also after an ICE restart)
	ReasonDTLSTimeout         = "dtls_timeout"         // ICE up, DTLS not done within HandshakeTimeout
	ReasonDTLSFailed          = "dtls_failed"          // DTLS handshake error, alert, or no SRTP profile
	ReasonFingerprintMismatch = "fingerprint_mismatch" // peer certificate matches no a=fingerprint
	ReasonICEDisconnected     = "ice_disconnected"     // no STUN consent or media from the peer for ConsentTimeout
)

// String returns the lower-case name of s.
func (s State) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateConnected:
		return "connected"
	case StateFailed:
		return "failed"
	case StateClosed:
		return "closed"
	default:
		return "unknown"
	}
}

// canMoveTo reports whether s -> next is a legal transition.
func (s State) canMoveTo(next State) bool {
	switch next {
	case StateConnected:
		return s == StateNew
	case StateFailed:
		return s == StateNew || s == StateConnected
	case StateClosed:
		return s != StateClosed
	default:
		return false
	}
}

// stateEvent is one transition queued for the OnState callback.
type stateEvent struct {
	state  State
	reason string
}

// maxStateEvents is the most transitions a transport can make
// (Connected, Failed, Closed), so queueing one never blocks.
const maxStateEvents = 3

// OnState sets the callback for state changes; nil removes it. Set it before
// SetRemote to see every change. f runs on a goroutine of the transport, one
// call at a time, in transition order; reason is empty except for
// StateFailed (one of the Reason constants). f may call Close; Close does not
// wait for an f that is running at the time, but otherwise returns only after
// f has seen StateClosed.
func (t *Transport) OnState(f func(s State, reason string)) {
	t.mu.Lock()
	t.onState = f
	t.mu.Unlock()
}

// OnICE sets f to be called, with the time, on the peer's first valid
// connectivity check, which puts the path up (nominated false; again
// after an ICE restart), and once on its first nomination, a check with
// USE-CANDIDATE (nominated true), which may come before or after. f runs
// on the ICE agent's goroutine and must not block. Set it before
// SetRemote.
func (t *Transport) OnICE(f func(at time.Time, nominated bool)) {
	t.onICE.Store(&f)
}

// setState moves to s and queues the callback; illegal transitions (for
// example Connected after Failed) are ignored. Reports whether it moved.
// The caller must hold t.mu.
func (t *Transport) setStateLocked(s State, reason string) bool {
	if !t.state.canMoveTo(s) {
		return false
	}
	t.state = s
	t.events <- stateEvent{state: s, reason: reason} // never blocks: see maxStateEvents
	if s == StateClosed {
		close(t.events)
	}
	return true
}

// setState is setStateLocked for callers that do not hold t.mu.
func (t *Transport) setState(s State, reason string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.setStateLocked(s, reason)
}

// notify delivers state events to the OnState callback until Close closes
// the queue.
func (t *Transport) notify() {
	defer close(t.notified)
	for ev := range t.events {
		t.mu.Lock()
		f := t.onState
		t.mu.Unlock()
		if f == nil {
			continue
		}
		t.inCallback.Store(true)
		f(ev.state, ev.reason)
		t.inCallback.Store(false)
	}
}
