package announce

import (
	"testing"
	"time"
)

// blockOn reports, per 20 ms block of pcm, whether it holds any sound.
func blockOn(pcm []int16, rate int) []bool {
	n := rate / 50
	var out []bool
	for at := 0; at+n <= len(pcm); at += n {
		on := false
		for _, s := range pcm[at : at+n] {
			if s > 100 || s < -100 {
				on = true
				break
			}
		}
		out = append(out, on)
	}
	return out
}

func TestNamedTones(t *testing.T) {
	cases := []struct {
		name    string
		freqs   []float64
		cadence []time.Duration
	}{
		{"us", []float64{440, 480}, []time.Duration{2 * time.Second, 4 * time.Second}},
		{"eu", []float64{425}, []time.Duration{time.Second, 4 * time.Second}},
		{"uk", []float64{400, 450}, []time.Duration{400 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 2 * time.Second}},
	}
	for _, tc := range cases {
		for _, rate := range []int{8000, 16000, 48000} {
			tone, err := NamedTone(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			clip, err := tone.Clip(rate)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := clip.Duration(), tc.cadence[0]+tc.cadence[1]+func() time.Duration {
				if len(tc.cadence) > 2 {
					return tc.cadence[2] + tc.cadence[3]
				}
				return 0
			}(); got != want {
				t.Errorf("%s at %d: period %v, want %v", tc.name, rate, got, want)
			}
			// The cadence, from the sound of each 20 ms block.
			var want []bool
			for i, d := range tc.cadence {
				for range d / (20 * time.Millisecond) {
					want = append(want, i%2 == 0)
				}
			}
			got := blockOn(clip.PCM, rate)
			if len(got) != len(want) {
				t.Fatalf("%s at %d: %d blocks, want %d", tc.name, rate, len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("%s at %d: block %d (%v) on=%v, want %v", tc.name, rate, i, time.Duration(i)*20*time.Millisecond, got[i], want[i])
					break
				}
			}
			// The frequencies, within the first burst (100 ms in).
			burst := clip.PCM[rate/10 : rate/10+rate/5]
			for _, f := range tc.freqs {
				if p := Goertzel(burst, rate, f); p < 0.005 {
					t.Errorf("%s at %d: %g Hz power %.5f, want a tone", tc.name, rate, f, p)
				}
			}
			for _, f := range []float64{350, 620, 1000} {
				if p := Goertzel(burst, rate, f); p > 0.0005 {
					t.Errorf("%s at %d: %g Hz power %.5f, want none", tc.name, rate, f, p)
				}
			}
		}
	}
}

func TestToneErrors(t *testing.T) {
	if _, err := NamedTone("mars"); err == nil {
		t.Error("unknown tone name accepted")
	}
	if _, err := (Tone{Freqs: []float64{5000}}).Clip(8000); err == nil {
		t.Error("5000 Hz at 8 kHz accepted")
	}
	if _, err := (Tone{}).Clip(8000); err == nil {
		t.Error("a tone without frequencies accepted")
	}
}

func TestResample(t *testing.T) {
	src, err := (Tone{Freqs: []float64{1000}}).Clip(48000)
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []int{8000, 16000, 44100} {
		out := Resample(src.PCM, 48000, to)
		if len(out) != to {
			t.Errorf("48000 → %d: %d samples for one second, want %d", to, len(out), to)
		}
		mid := out[to/4 : to/2]
		if p := Goertzel(mid, to, 1000); p < 0.003 {
			t.Errorf("48000 → %d: 1 kHz power %.5f, want the tone", to, p)
		}
		if p := Goertzel(mid, to, 1500); p > 0.0005 {
			t.Errorf("48000 → %d: 1.5 kHz power %.5f, want none", to, p)
		}
	}
	// Up from 8 kHz too.
	src8, _ := (Tone{Freqs: []float64{440}}).Clip(8000)
	up := Resample(src8.PCM, 8000, 48000)
	if p := Goertzel(up[12000:24000], 48000, 440); p < 0.003 {
		t.Errorf("8000 → 48000: 440 Hz power %.5f", p)
	}
}
