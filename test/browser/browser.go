// Package browser runs driver.mjs, next to it, for the Go tests that
// drive web phone pages in a real browser: headless Chromium through
// playwright-core (test/e2e, test/interop/kamailio) or Firefox ESR through
// puppeteer-core (test/interop/firefox, inside a network namespace through
// Scenario.Prefix). A test builds a Scenario of phones and steps, Start
// runs the driver on it, and the Run hands over the driver's events as
// steps start and each phone's result at the end.
//
// The driver, its pages and web/node_modules are found from this file's
// directory, so the tests of any package can use it. A missing
// tool skips the test, or fails it when CI is set: CI must run the browser
// tests, and scripts/test.sh installs what they need.
package browser

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fromRoot is the absolute path of rel, a slash-separated path from the
// module's root: two directories above this file, as the compiler saw it
// (a binary built with -trimpath has no such path: t fails then).
func fromRoot(t testing.TB, rel string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		t.Fatalf("test/browser: no absolute source path (%q) to find the module's root from", file)
	}
	return filepath.Join(filepath.Dir(file), "..", "..", filepath.FromSlash(rel))
}

// Path is the absolute path of name in test/browser, e.g. "sipjs" (the
// SIP.js phone page); the test fails when it is not there.
func Path(t testing.TB, name string) string {
	t.Helper()
	p := fromRoot(t, "test/browser/"+name)
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// NodeModule is the absolute path of name in web/node_modules, e.g.
// "sip.js/lib". The test is skipped (failed under CI) when it is missing.
func NodeModule(t testing.TB, name string) string {
	t.Helper()
	p := fromRoot(t, "web/node_modules/"+name)
	if _, err := os.Stat(p); err != nil {
		need(t, "web/node_modules is incomplete ("+p+"): run scripts/test.sh, which runs npm ci in web/")
	}
	return p
}

// NeedChromium returns the Chromium executable. The test is skipped
// (failed under CI) when Chromium, node or playwright-core is missing.
func NeedChromium(t testing.TB) string {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		chromium, err = exec.LookPath("/usr/bin/chromium")
	}
	var missing []string
	if err != nil {
		missing = append(missing, "chromium (Debian package chromium)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (Debian package npm)")
	}
	if _, err := os.Stat(fromRoot(t, "web/node_modules/playwright-core/package.json")); err != nil {
		missing = append(missing, "playwright-core (npm ci in web/)")
	}
	if len(missing) > 0 {
		need(t, "browser tests need "+strings.Join(missing, ", ")+": run scripts/test.sh, which installs them")
	}
	return chromium
}

// need skips t with msg, or fails it when CI is set.
func need(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// WriteTone writes a WAV file of a two-tone signal (440 Hz + 660 Hz,
// 48 kHz mono, 16 bit, 2 s: Chromium loops it) for Chromium's fake
// microphone (Scenario.AudioFile) in the test's temporary directory and
// returns its path.
func WriteTone(t testing.TB) string {
	t.Helper()
	const rate, secs = 48000, 2
	pcm := make([]byte, rate*secs*2)
	for i := range rate * secs {
		x := 0.25*math.Sin(2*math.Pi*440*float64(i)/rate) + 0.25*math.Sin(2*math.Pi*660*float64(i)/rate)
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(x*math.MaxInt16)))
	}
	var h []byte
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(36+len(pcm)))
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16) // fmt chunk size
	h = binary.LittleEndian.AppendUint16(h, 1)  // PCM
	h = binary.LittleEndian.AppendUint16(h, 1)  // mono
	h = binary.LittleEndian.AppendUint32(h, rate)
	h = binary.LittleEndian.AppendUint32(h, rate*2) // bytes per second
	h = binary.LittleEndian.AppendUint16(h, 2)      // block align
	h = binary.LittleEndian.AppendUint16(h, 16)     // bits per sample
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(len(pcm)))
	p := filepath.Join(t.TempDir(), "tone.wav")
	if err := os.WriteFile(p, append(h, pcm...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
