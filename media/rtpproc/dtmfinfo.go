package rtpproc

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors of ParseDTMFInfo. The SIP layer answers an INFO it
// cannot use with 415 (ErrDTMFContentType) or 400 (ErrBadDTMF).
var (
	// ErrDTMFContentType marks an INFO body type other than
	// application/dtmf-relay and application/dtmf.
	ErrDTMFContentType = errors.New("rtpproc: unsupported DTMF content type")
	// ErrBadDTMF marks a DTMF INFO body that does not name one key press.
	ErrBadDTMF = errors.New("rtpproc: malformed DTMF body")
)

// Content types of SIP INFO DTMF bodies.
const (
	// ContentTypeDTMFRelay is the de-facto standard body
	// "Signal=5\r\nDuration=160\r\n".
	ContentTypeDTMFRelay = "application/dtmf-relay"
	// ContentTypeDTMF is a body holding the signal alone.
	ContentTypeDTMF = "application/dtmf"
)

// DefaultInfoDuration is the duration of an INFO key press that states
// none (or zero).
const DefaultInfoDuration = 250 * time.Millisecond

// maxInfoDuration bounds the Duration of an INFO body: longer is not a
// key press.
const maxInfoDuration = time.Minute

// ParseDTMFInfo reads the key press in a SIP INFO body. contentType is the
// Content-Type header value (parameters and case are ignored):
//
//   - application/dtmf-relay: lines "Key=Value" (CRLF or LF). Signal is
//     required: a digit, *, #, A-D, ! or F (flash), or an event code 0-16
//     (10 is *, 11 is #, 12-15 are A-D, 16 is flash). Duration is in
//     milliseconds; absent or 0 means DefaultInfoDuration. Other keys are
//     ignored.
//   - application/dtmf: the signal alone, as above, e.g. "5" or "5\r\n";
//     the duration is DefaultInfoDuration.
//
// The event's Volume is DefaultVolume. Errors wrap ErrDTMFContentType or
// ErrBadDTMF.
func ParseDTMFInfo(contentType string, body []byte) (Event, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return Event{}, fmt.Errorf("dtmf info content type %q: %w", contentType, ErrDTMFContentType)
	}
	switch mt {
	case ContentTypeDTMFRelay:
		return parseDTMFRelay(body)
	case ContentTypeDTMF:
		digit, err := parseSignal(string(bytes.TrimSpace(body)))
		if err != nil {
			return Event{}, fmt.Errorf("application/dtmf body: %w", err)
		}
		return Event{Digit: digit, Duration: DefaultInfoDuration, Volume: DefaultVolume}, nil
	}
	return Event{}, fmt.Errorf("dtmf info content type %q: %w", mt, ErrDTMFContentType)
}

// parseDTMFRelay reads an application/dtmf-relay body.
func parseDTMFRelay(body []byte) (Event, error) {
	ev := Event{Duration: DefaultInfoDuration, Volume: DefaultVolume}
	haveSignal := false
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return Event{}, fmt.Errorf("dtmf-relay line %q: %w: no '='", line, ErrBadDTMF)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch {
		case strings.EqualFold(key, "Signal"):
			if haveSignal {
				return Event{}, fmt.Errorf("dtmf-relay: %w: more than one Signal", ErrBadDTMF)
			}
			digit, err := parseSignal(val)
			if err != nil {
				return Event{}, fmt.Errorf("dtmf-relay: %w", err)
			}
			ev.Digit, haveSignal = digit, true
		case strings.EqualFold(key, "Duration"):
			d, err := parseInfoDuration(val)
			if err != nil {
				return Event{}, fmt.Errorf("dtmf-relay: %w", err)
			}
			ev.Duration = d
		}
	}
	if !haveSignal {
		return Event{}, fmt.Errorf("dtmf-relay: %w: no Signal", ErrBadDTMF)
	}
	return ev, nil
}

// parseSignal reads a signal: one character, or an event code 0-16.
func parseSignal(s string) (byte, error) {
	switch {
	case s == "!":
		return 'F', nil
	case len(s) == 1:
		if code, ok := eventCode(s[0]); ok {
			return eventDigits[code], nil
		}
	case len(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9':
		if code := int(s[0]-'0')*10 + int(s[1]-'0'); code < len(eventDigits) {
			return eventDigits[code], nil
		}
	}
	return 0, fmt.Errorf("signal %q: %w: not a digit, *, #, A-D, flash or event code 0-16", s, ErrBadDTMF)
}

// parseInfoDuration reads a Duration value in milliseconds.
func parseInfoDuration(s string) (time.Duration, error) {
	ms, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w: not a number of milliseconds", s, ErrBadDTMF)
	}
	d := time.Duration(ms) * time.Millisecond
	switch {
	case ms == 0:
		return DefaultInfoDuration, nil
	case d > maxInfoDuration:
		return 0, fmt.Errorf("duration %q: %w: longer than %s", s, ErrBadDTMF, maxInfoDuration)
	}
	return d, nil
}

// FormatDTMFRelay renders ev as an application/dtmf-relay INFO body:
// "Signal=5\r\nDuration=160\r\n", the duration in whole milliseconds
// (DefaultInfoDuration when ev has none). A flash is sent as Signal=16;
// ev.Digit should be one of Event's digits (lower case is upper-cased).
func FormatDTMFRelay(ev Event) (contentType string, body []byte) {
	signal := string(ev.Digit)
	if code, ok := eventCode(ev.Digit); ok {
		signal = eventDigits[code : code+1]
		if code == 16 {
			signal = "16"
		}
	}
	ms := ev.Duration.Milliseconds()
	if ms <= 0 {
		ms = DefaultInfoDuration.Milliseconds()
	}
	return ContentTypeDTMFRelay, []byte("Signal=" + signal + "\r\nDuration=" + strconv.FormatInt(ms, 10) + "\r\n")
}
