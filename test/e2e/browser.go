package e2e

import (
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/test/browser"
)

// The browser tests drive the SBC's own web phone page (served on its
// WSS and WS listeners at /) in headless Chromium through playwright-core:
// test/browser runs its driver.mjs on a scenario of phones and steps and
// hands over the events as steps start and a result at the end. The SBC
// runs in-process, so the tests check its calls, CDRs and the echo
// destination's DTMF record directly. Chromium's fake microphone plays a
// tone file written by the test.

// ArtifactsDir is where screenshots go: $SBC_TEST_ARTIFACTS, else
// test/e2e/artifacts (ignored by git; the tests run in test/e2e/<package>).
func ArtifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SBC_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "artifacts")
	}
	dir, err := filepath.Abs(dir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatalf("artifacts directory: %v", err)
	}
	return dir
}

// PhoneURL is the web phone page on a listener: https for WSS, http for
// WS, with the query parameters of the page contract.
func PhoneURL(addr netip.AddrPort, secure bool, q url.Values) string {
	scheme := "http"
	if secure {
		scheme = "https"
	}
	return scheme + "://" + addr.String() + "/?" + q.Encode()
}

// Touch creates the empty file path: a go-ahead the driver waits for
// (waitFile, StartFile).
func Touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// NewScenario is a scenario with the tone as microphone, accepting the
// SBC's self-signed certificate, and failure screenshots in the artifacts.
func NewScenario(t *testing.T, phones ...browser.Phone) browser.Scenario {
	t.Helper()
	return browser.Scenario{Chromium: browser.NeedChromium(t), AudioFile: browser.WriteTone(t), IgnoreHTTPSErrors: true,
		TimeoutMs: 15000, FailureShots: ArtifactsDir(t), Phones: phones}
}

// EchoCallSteps connects, calls the echo, waits for its own tone back and
// keeps the stats under "echo".
func EchoCallSteps() []browser.Step {
	return []browser.Step{
		browser.Do("wait", "status", "connected"),
		browser.Do("call", "target", "echo"),
		browser.Do("wait", "call", "in-call"),
		browser.Do("audio", "packets", 50, "label", "echo"),
	}
}

// HangupSteps hangs up and waits until the page shows the call ended.
func HangupSteps() []browser.Step {
	return []browser.Step{browser.Do("hangup"), browser.Do("wait", "call", "ended")}
}

var Autoconnect = url.Values{"autoconnect": {"1"}}

// CheckAudio fails unless the stats show audio both ways.
func CheckAudio(t *testing.T, who string, s browser.AudioStats) {
	t.Helper()
	if s.PacketsReceived <= 0 || s.TotalAudioEnergy <= 0 || s.PacketsSent <= 0 {
		t.Errorf("%s: no audio both ways: %+v", who, s)
	}
}

// OnlyRecord closes the SBC and returns its one CDR.
func OnlyRecord(t *testing.T, sbc *SBC, sinks CDRSinks) cdr.Record {
	t.Helper()
	if err := sbc.App.Close(); err != nil {
		t.Fatal(err)
	}
	recs := sinks.Records(t)
	if len(recs) != 1 {
		t.Fatalf("%d call records, want 1: %+v", len(recs), recs)
	}
	return recs[0]
}
