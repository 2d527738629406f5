package rtpproc

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

func TestEventPackets(t *testing.T) {
	tests := []struct {
		name      string
		dur       time.Duration
		clock     uint32
		durations []uint16 // duration field of each packet, ends last
	}{
		{"160 ms", 160 * time.Millisecond, 8000, []uint16{400, 800, 1200, 1280, 1280, 1280}},
		{"100 ms", 100 * time.Millisecond, 8000, []uint16{400, 800, 800, 800}},
		{"40 ms", 40 * time.Millisecond, 8000, []uint16{320, 320, 320, 320}},
		{"250 ms at 48 kHz", 250 * time.Millisecond, 48000, []uint16{2400, 4800, 7200, 9600, 12000, 12000, 12000}},
		{"clock 0 means 8000", 50 * time.Millisecond, 0, []uint16{400, 400, 400, 400}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkts, err := EventPackets('#', tc.dur, 101, 0xabc, 65534, 7777, tc.clock, 12)
			if err != nil {
				t.Fatalf("EventPackets: %v", err)
			}
			if len(pkts) != len(tc.durations) {
				t.Fatalf("%d packets, want %d", len(pkts), len(tc.durations))
			}
			for i, p := range pkts {
				h := header(t, p)
				end := i >= len(pkts)-3
				if h.PayloadType != 101 || h.SSRC != 0xabc || h.Timestamp != 7777 ||
					h.SequenceNumber != uint16(65534+i) || h.Marker != (i == 0) {
					t.Fatalf("packet %d: header %+v", i, h)
				}
				pl := p[12:]
				if len(pl) != 4 || pl[0] != 11 || (pl[1]&0x80 != 0) != end || pl[1]&0x3f != 12 ||
					binary.BigEndian.Uint16(pl[2:]) != tc.durations[i] {
					t.Fatalf("packet %d: payload % x, want event 11, end %v, volume 12, duration %d", i, pl, end, tc.durations[i])
				}
			}
		})
	}
}

func TestEventPacketsErrors(t *testing.T) {
	tests := []struct {
		name   string
		digit  byte
		dur    time.Duration
		pt     uint8
		volume uint8
		want   string
	}{
		{"bad digit", 'x', time.Second, 101, 10, "not a DTMF digit"},
		{"zero duration", '1', 0, 101, 10, "too short"},
		{"negative duration", '1', -time.Second, 101, 10, "too short"},
		{"too long", '1', 9 * time.Second, 101, 10, "overflows"},
		{"payload type", '1', time.Second, 128, 10, "payload type"},
		{"volume", '1', time.Second, 101, 64, "volume"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := EventPackets(tc.digit, tc.dur, tc.pt, 1, 1, 1, 8000, tc.volume)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// feedAll feeds pkts and returns the events reported ended.
func feedAll(t *testing.T, d *DTMFDetector, pkts [][]byte) []Event {
	t.Helper()
	var got []Event
	for _, p := range pkts {
		ev, ended, isEvent := d.Feed(p, 101, 8000)
		if !isEvent {
			t.Fatalf("packet not seen as an event: % x", p)
		}
		if ended {
			got = append(got, ev)
		}
	}
	return got
}

func train(t *testing.T, digit byte, dur time.Duration, seq uint16, ts uint32) [][]byte {
	t.Helper()
	pkts, err := EventPackets(digit, dur, 101, 1, seq, ts, 8000, 10)
	if err != nil {
		t.Fatalf("EventPackets: %v", err)
	}
	return pkts
}

func TestDTMFDetector(t *testing.T) {
	var d DTMFDetector
	five := train(t, '5', 160*time.Millisecond, 1, 1000)
	star := train(t, '*', 120*time.Millisecond, 7, 5000)
	flash := train(t, 'F', 500*time.Millisecond, 13, 9000)
	var all [][]byte
	all = append(all, five...)
	all = append(all, five[4]) // a late repeat of an end packet
	all = append(all, star...)
	all = append(all, five[1]) // a late update of the earlier event
	all = append(all, flash...)
	got := feedAll(t, &d, all)
	want := []Event{
		{Digit: '5', Duration: 160 * time.Millisecond, Volume: 10},
		{Digit: '*', Duration: 120 * time.Millisecond, Volume: 10},
		{Digit: 'F', Duration: 500 * time.Millisecond, Volume: 10},
	}
	if len(got) != len(want) {
		t.Fatalf("ended events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestDTMFDetectorLostEnds(t *testing.T) {
	var d DTMFDetector
	one := train(t, '1', 200*time.Millisecond, 1, 1000)
	two := train(t, '2', 100*time.Millisecond, 20, 9000)
	// '1' loses all three end packets; '2' keeps only one.
	got := feedAll(t, &d, append(one[:len(one)-3:len(one)-3], two[0], two[len(two)-1]))
	if len(got) != 2 || got[0].Digit != '1' || got[0].Duration != 150*time.Millisecond || got[1].Digit != '2' {
		t.Fatalf("ended events %+v, want '1' (150 ms, its last update) then '2'", got)
	}
}

func TestDTMFDetectorIgnores(t *testing.T) {
	var d DTMFDetector
	audio := pkt(1, 1, 1)
	if _, ended, isEvent := d.Feed(audio, 101, 8000); ended || isEvent {
		t.Fatal("an audio packet was taken for an event")
	}
	short := pktPT(101, 1, 1, 1, 2)
	if _, ended, isEvent := d.Feed(short, 101, 8000); ended || !isEvent {
		t.Fatalf("short event packet: ended %v isEvent %v, want false true", ended, isEvent)
	}
	tone := pktPT(101, 1, 1, 1, 4)
	tone[12], tone[13] = 40, 0x80 // a non-DTMF event code, ended
	if _, ended, isEvent := d.Feed(tone, 101, 8000); ended || !isEvent {
		t.Fatalf("tone event: ended %v isEvent %v, want false true", ended, isEvent)
	}
	if _, _, isEvent := d.Feed(nil, 101, 8000); isEvent {
		t.Fatal("nil taken for an event")
	}
}

func TestDTMFDetectorDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	var d DTMFDetector
	pkts := train(t, '9', time.Second, 1, 1)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		d.Feed(pkts[i%len(pkts)], 101, 8000)
		i++
	})
	if allocs != 0 {
		t.Fatalf("Feed allocates %.1f times per packet, want 0", allocs)
	}
}
