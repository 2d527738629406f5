package sdpconv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzTranslate parses arbitrary bodies and renders whatever parses as an
// offer toward every kind and as an answer to itself: nothing may panic,
// and every SDP written must parse again, with pion/sdp (through
// Unmarshal, which reads T.38 image m-lines) and with Parse.
// The seed corpus (testdata/fuzz/FuzzTranslate) holds the realistic SDPs
// of testdata/.
func FuzzTranslate(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.sdp"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed sdp: %v", err)
	}
	for _, name := range files {
		f.Add(load(f, filepath.Base(name)))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrBadSDP) || d != nil {
				t.Fatalf("Parse error %v does not wrap ErrBadSDP", err)
			}
			return
		}
		if !Equivalent(d, d) {
			t.Fatal("a description is not equivalent to itself")
		}
		for _, to := range []Kind{KindRTP, KindSRTP, KindWebRTC} {
			translate(t, d, to)
		}
	})
}

// translate renders d toward to as an offer and as an answer to itself.
func translate(t *testing.T, d *Description, to Kind) {
	local := localFor(len(d.Media), to, "")
	out, err := RenderOffer(d, to, local)
	if err == nil {
		checkRendered(t, "offer toward "+to.String(), out, len(d.Media))
	} else if !errors.Is(err, ErrNoCodec) {
		t.Fatalf("offer toward %s: %v", to, err)
	}
	out, plan, err := RenderAnswer(d, d, to, local)
	if err != nil {
		if !errors.Is(err, ErrNoCodec) {
			t.Fatalf("answer toward %s: %v", to, err)
		}
		return
	}
	checkRendered(t, "answer toward "+to.String(), out, len(d.Media))
	if len(plan.Streams) != len(d.Media) {
		t.Fatalf("answer toward %s: %d streams for %d m-lines", to, len(plan.Streams), len(d.Media))
	}
	for _, sp := range plan.Streams {
		for pt := range 128 {
			if sp.OffererToAnswerer[pt] < -1 || sp.OffererToAnswerer[pt] > 127 || sp.AnswererToOfferer[pt] < -1 || sp.AnswererToOfferer[pt] > 127 {
				t.Fatalf("answer toward %s: payload type map out of range at %d", to, pt)
			}
		}
	}
}

// checkRendered fails unless body parses again with n m-lines and never
// names 0.0.0.0.
func checkRendered(t *testing.T, what string, body []byte, n int) {
	if _, err := Unmarshal(body); err != nil {
		t.Fatalf("%s: pion cannot parse it (image m-lines aside): %v\n%s", what, err, body)
	}
	d, err := Parse(body)
	if err != nil {
		t.Fatalf("%s: %v\n%s", what, err, body)
	}
	if len(d.Media) != n {
		t.Fatalf("%s: %d m-lines, want %d", what, len(d.Media), n)
	}
	for l := range strings.SplitSeq(string(body), "\r\n") {
		if strings.HasPrefix(l, "c=") && strings.Contains(l, "0.0.0.0") {
			t.Fatalf("%s: writes %s", what, l)
		}
	}
}

// TestFuzzCorpusMatchesTestdata keeps the checked-in seed corpus in step
// with testdata/*.sdp.
func TestFuzzCorpusMatchesTestdata(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.sdp"))
	for _, name := range files {
		base := strings.TrimSuffix(filepath.Base(name), ".sdp")
		if _, err := os.Stat(filepath.Join("testdata", "fuzz", "FuzzTranslate", base)); err != nil {
			t.Errorf("no seed corpus entry for %s: %v", name, err)
		}
	}
}
