// Package firefox tests the SBC with Firefox ESR as an independent WebRTC
// endpoint, with two SIP stacks nobody here wrote: JsSIP (the SBC's own web
// phone page) and SIP.js (test/browser/sipjs). Each test runs in a network
// namespace it creates (netns_test.go): the SBC binary, Firefox driven by
// puppeteer-core (test/browser/driver.mjs), and SIPp as the PBX and as a
// caller. Audio is checked from the browser's getStats() and the SBC's
// CDRs, RFC 4733 digits from the SBC's echo destination.
package firefox

import (
	"testing"

	"github.com/sbc-project/sbc/test/interop/sbcproc"
)

func TestMain(m *testing.M) { sbcproc.Main(m) }
