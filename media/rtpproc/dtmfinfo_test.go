package rtpproc

import (
	"errors"
	"testing"
	"time"
)

func TestParseDTMFInfo(t *testing.T) {
	tests := []struct {
		name  string
		ctype string
		body  string
		digit byte
		dur   time.Duration
		err   error
	}{
		{"relay", "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', 160 * time.Millisecond, nil},
		{"relay LF, spaces, case", "Application/DTMF-Relay; charset=utf-8", "signal = #\nduration= 100\n", '#', 100 * time.Millisecond, nil},
		{"relay default duration", "application/dtmf-relay", "Signal=*\r\n", '*', 250 * time.Millisecond, nil},
		{"relay zero duration", "application/dtmf-relay", "Signal=1\r\nDuration=0\r\n", '1', 250 * time.Millisecond, nil},
		{"relay code 10", "application/dtmf-relay", "Signal=10\r\nDuration=80", '*', 80 * time.Millisecond, nil},
		{"relay code 11", "application/dtmf-relay", "Signal=11\r\n", '#', 250 * time.Millisecond, nil},
		{"relay code 16 flash", "application/dtmf-relay", "Signal=16\r\n", 'F', 250 * time.Millisecond, nil},
		{"relay flash !", "application/dtmf-relay", "Signal=!\r\nDuration=500\r\n", 'F', 500 * time.Millisecond, nil},
		{"relay lower-case letter", "application/dtmf-relay", "Signal=d\r\n", 'D', 250 * time.Millisecond, nil},
		{"relay code 05", "application/dtmf-relay", "Signal=05\r\n", '5', 250 * time.Millisecond, nil},
		{"relay other keys ignored", "application/dtmf-relay", "Foo=bar\r\nSignal=0\r\n", '0', 250 * time.Millisecond, nil},
		{"dtmf", "application/dtmf", "5", '5', 250 * time.Millisecond, nil},
		{"dtmf CRLF", "application/dtmf", "A\r\n", 'A', 250 * time.Millisecond, nil},
		{"dtmf code", "application/dtmf", "11\r\n", '#', 250 * time.Millisecond, nil},

		{"other type", "text/plain", "5", 0, 0, ErrDTMFContentType},
		{"unparsable type", "", "5", 0, 0, ErrDTMFContentType},
		{"relay no signal", "application/dtmf-relay", "Duration=100\r\n", 0, 0, ErrBadDTMF},
		{"relay empty", "application/dtmf-relay", "", 0, 0, ErrBadDTMF},
		{"relay bad signal", "application/dtmf-relay", "Signal=E\r\n", 0, 0, ErrBadDTMF},
		{"relay code 17", "application/dtmf-relay", "Signal=17\r\n", 0, 0, ErrBadDTMF},
		{"relay two signals", "application/dtmf-relay", "Signal=1\r\nSignal=2\r\n", 0, 0, ErrBadDTMF},
		{"relay bad duration", "application/dtmf-relay", "Signal=1\r\nDuration=-5\r\n", 0, 0, ErrBadDTMF},
		{"relay huge duration", "application/dtmf-relay", "Signal=1\r\nDuration=3600000\r\n", 0, 0, ErrBadDTMF},
		{"relay no equals", "application/dtmf-relay", "Signal 1\r\n", 0, 0, ErrBadDTMF},
		{"dtmf empty", "application/dtmf", "", 0, 0, ErrBadDTMF},
		{"dtmf two digits", "application/dtmf", "12 3", 0, 0, ErrBadDTMF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseDTMFInfo(tc.ctype, []byte(tc.body))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDTMFInfo: %v", err)
			}
			if ev.Digit != tc.digit || ev.Duration != tc.dur || ev.Volume != DefaultVolume {
				t.Fatalf("event %+v, want digit %q duration %s volume %d", ev, tc.digit, tc.dur, DefaultVolume)
			}
		})
	}
}

func TestFormatDTMFRelay(t *testing.T) {
	tests := []struct {
		ev   Event
		body string
	}{
		{Event{Digit: '5', Duration: 160 * time.Millisecond}, "Signal=5\r\nDuration=160\r\n"},
		{Event{Digit: '#', Duration: 1500 * time.Microsecond * 100}, "Signal=#\r\nDuration=150\r\n"},
		{Event{Digit: 'b'}, "Signal=B\r\nDuration=250\r\n"},
		{Event{Digit: 'F', Duration: time.Second}, "Signal=16\r\nDuration=1000\r\n"},
	}
	for _, tc := range tests {
		ct, body := FormatDTMFRelay(tc.ev)
		if ct != "application/dtmf-relay" || string(body) != tc.body {
			t.Errorf("FormatDTMFRelay(%+v) = %q %q, want application/dtmf-relay %q", tc.ev, ct, body, tc.body)
		}
		back, err := ParseDTMFInfo(ct, body)
		if err != nil || back.Digit != eventDigits[mustCode(t, tc.ev.Digit)] {
			t.Errorf("round trip of %q: %+v, %v", body, back, err)
		}
	}
}

func mustCode(t *testing.T, d byte) uint8 {
	t.Helper()
	c, ok := eventCode(d)
	if !ok {
		t.Fatalf("no code for %q", d)
	}
	return c
}
