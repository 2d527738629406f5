package echo

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/sdp/v3"

	"github.com/sbc-project/sbc/media/rtpproc"
)

// KeptDigitCalls is how many calls' digits Digits still answers for after
// the calls ended: the oldest are forgotten first.
const KeptDigitCalls = 256

// eventClocks maps an RTP payload type (0-127) to the clock rate of the
// telephone-event format it carries, 0 for none.
type eventClocks [128]uint32

// stream is one echoed media stream: its socket and the telephone-event
// payload types negotiated for it, which the reader goroutine watches for.
type stream struct {
	conn *net.UDPConn
	// events is replaced, never changed, under UA.mu and read by the
	// stream's reader; nil: no telephone-event negotiated.
	events atomic.Pointer[eventClocks]
}

// setEvents takes the telephone-event payload types of an m-line (every
// rtpmap naming telephone-event: a browser offers one per clock rate and
// sends the one matching its audio codec's).
func (s *stream) setEvents(m *sdp.MediaDescription) {
	var ev eventClocks
	found := false
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(a.Value, " ")
		name, clock, _ := strings.Cut(enc, "/")
		n, err := strconv.ParseUint(pt, 10, 7)
		if !ok || err != nil || !strings.EqualFold(name, "telephone-event") {
			continue
		}
		c, err := strconv.ParseUint(clock, 10, 32)
		if err != nil || c == 0 {
			c = 8000
		}
		ev[n], found = uint32(c), true
	}
	if !found {
		s.events.Store(nil)
		return
	}
	s.events.Store(&ev)
}

// eventClock returns the clock rate of pt if it is a telephone-event
// payload type of the stream, else 0.
func (s *stream) eventClock(pt uint8) uint32 {
	if ev := s.events.Load(); ev != nil {
		return ev[pt&0x7f]
	}
	return 0
}

// digitLog records the DTMF the echo received, per Call-ID. Its zero value
// is not ready: use newDigitLog. Safe for concurrent use.
type digitLog struct {
	mu     sync.Mutex
	digits map[string][]byte
	order  []string // Call-IDs, oldest first, for forgetting
	total  atomic.Uint64
}

func newDigitLog() *digitLog { return &digitLog{digits: make(map[string][]byte)} }

// add appends a digit to the call's record.
func (l *digitLog) add(callID string, digit byte) {
	l.total.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.digits[callID]; !ok {
		if len(l.order) >= KeptDigitCalls {
			delete(l.digits, l.order[0])
			l.order = l.order[1:]
		}
		l.order = append(l.order, callID)
	}
	l.digits[callID] = append(l.digits[callID], digit)
}

func (l *digitLog) get(callID string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.digits[callID])
}

// Digits returns the DTMF digits received on the call with this Call-ID
// (the SBC's B-leg Call-ID toward the echo), in the order they ended, from
// RFC 4733 telephone events and SIP INFO (application/dtmf-relay,
// application/dtmf) alike; "" when none. Digits of ended calls are kept
// for the last KeptDigitCalls calls that had any.
func (u *UA) Digits(callID string) string { return u.dtmf.get(callID) }

// DigitsReceived is the number of DTMF digits received on all calls since
// Start.
func (u *UA) DigitsReceived() uint64 { return u.dtmf.total.Load() }

// digit records and logs one received key press.
func (u *UA) digit(callID string, ev rtpproc.Event, via string) {
	u.dtmf.add(callID, ev.Digit)
	u.log.Info("echo dtmf", "call_id", callID, "digit", string(ev.Digit), "duration", ev.Duration, "via", via)
}

// info records the key press of a SIP INFO, if its body is one; other
// INFO bodies are acknowledged and ignored.
func (u *UA) info(callID, contentType string, body []byte) {
	if contentType == "" {
		return
	}
	ev, err := rtpproc.ParseDTMFInfo(contentType, body)
	if err != nil {
		u.log.Debug("echo info without dtmf", "call_id", callID, "err", err)
		return
	}
	u.digit(callID, ev, "info")
}
