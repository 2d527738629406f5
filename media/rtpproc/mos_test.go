package rtpproc

import (
	"math"
	"testing"
)

func TestMOSKnownPoints(t *testing.T) {
	tests := []struct {
		name              string
		codec             string
		loss, jitter, rtt float64
		want, tol         float64
	}{
		// R = 93.2 - 0.024*20 = 92.72.
		{"G.711 clean", "PCMU", 0, 0, 0, 4.40, 0.01},
		{"PCMA same as PCMU", "PCMA", 0, 0, 0, 4.40, 0.01},
		// Ie_eff = 95*5/30.1 = 15.78; R = 76.94.
		{"G.711 5% loss", "PCMU", 5, 0, 0, 3.90, 0.01},
		// d = 150 + 40 + 20 = 210: Id = 5.04 + 3.60 = 8.64; R = 84.56.
		{"G.711 long delay", "pcmu", 0, 20, 300, 4.18, 0.01},
		{"unknown codec scores as PCMU", "G729", 5, 0, 0, 3.90, 0.01},
		// Ie_eff = 95*100/125.1 = 75.94; R = 16.78.
		{"all lost", "PCMU", 100, 0, 0, 1.16, 0.01},
		{"huge delay floors at 1", "PCMU", 0, 0, 2000, 1, 0},
		{"garbage inputs count as 0", "PCMU", math.NaN(), math.Inf(1), -5, 4.40, 0.01},
		{"loss over 100 capped", "PCMU", 1000, 0, 0, 1.16, 0.01},
		{"opus clean", "opus", 0, 0, 0, 4.40, 0.01},
		{"G722 clean", "G722", 0, 0, 0, 4.40, 0.01},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := MOS(tc.codec, tc.loss, tc.jitter, tc.rtt)
			if math.Abs(got-tc.want) > tc.tol {
				t.Fatalf("MOS = %.4f, want %.2f ± %.2f", got, tc.want, tc.tol)
			}
			if got < 1 || got > 4.5 {
				t.Fatalf("MOS %.4f outside [1, 4.5]", got)
			}
		})
	}
}

func TestMOSMonotonic(t *testing.T) {
	for _, codec := range []string{"PCMU", "G722", "opus"} {
		prev := math.Inf(1)
		for loss := 0.0; loss <= 50; loss += 0.5 {
			m := MOS(codec, loss, 10, 50)
			if m > prev {
				t.Fatalf("%s: MOS rises with loss at %.1f%%", codec, loss)
			}
			prev = m
		}
		prev = math.Inf(1)
		for jitter := 0.0; jitter <= 500; jitter += 5 {
			m := MOS(codec, 1, jitter, 50)
			if m > prev {
				t.Fatalf("%s: MOS rises with jitter at %.0f ms", codec, jitter)
			}
			prev = m
		}
		prev = math.Inf(1)
		for rtt := 0.0; rtt <= 2000; rtt += 10 {
			m := MOS(codec, 1, 10, rtt)
			if m > prev {
				t.Fatalf("%s: MOS rises with RTT at %.0f ms", codec, rtt)
			}
			prev = m
		}
	}
	if MOS("PCMU", 5, 0, 0) >= MOS("PCMU", 0, 0, 0) || MOS("PCMU", 0, 30, 0) >= MOS("PCMU", 0, 0, 0) {
		t.Fatal("loss or jitter does not lower the MOS")
	}
}

func TestMOSDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	if n := testing.AllocsPerRun(100, func() { MOS("opus", 1, 2, 3) }); n != 0 {
		t.Fatalf("MOS allocates %.1f times, want 0", n)
	}
}
