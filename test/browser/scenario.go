package browser

import (
	"encoding/json"
	"testing"
	"time"
)

// Step is one driver step: {"do": name, key: value...}; driver.mjs lists
// the steps and their keys.
type Step map[string]any

// Do builds a step from its name and key/value pairs (keys are strings).
func Do(name string, kv ...any) Step {
	s := Step{"do": name}
	for i := 0; i+1 < len(kv); i += 2 {
		s[kv[i].(string)] = kv[i+1]
	}
	return s
}

// Phone is one page of the scenario and the steps run on it in order.
type Phone struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// StartFile, when set, holds the phone back (no page yet) until the
	// test creates this file: the test's go-ahead.
	StartFile string `json:"startFile,omitempty"`
	Steps     []Step `json:"steps"`
}

// Serve has the driver serve static files over http at Addr: URL prefix
// to absolute directory.
type Serve struct {
	Addr string            `json:"addr"`
	Dirs map[string]string `json:"dirs"`
}

// Scenario is the driver's input (its JSON is documented in driver.mjs)
// and how the test runs it (the fields not sent to the driver). The zero
// value of every field is the driver's default.
type Scenario struct {
	Browser           string   `json:"browser,omitempty"`  // "firefox"; default Chromium
	Chromium          string   `json:"chromium,omitempty"` // NeedChromium's executable
	AudioFile         string   `json:"audioFile,omitempty"`
	IgnoreHTTPSErrors bool     `json:"ignoreHTTPSErrors,omitempty"`
	SPKI              string   `json:"spki,omitempty"`
	SecureHosts       []string `json:"secureHosts,omitempty"` // Firefox: secure contexts over http
	TimeoutMs         int      `json:"timeoutMs,omitempty"`
	FailureShots      string   `json:"failureShots,omitempty"`      // directory of screenshots of failed phones
	HostResolverRules string   `json:"hostResolverRules,omitempty"` // e.g. "MAP a.example 127.0.0.1"
	Serve             *Serve   `json:"serve,omitempty"`
	Phones            []Phone  `json:"phones"`

	// Deadline bounds the driver's whole run (it is killed then); zero:
	// DefaultDeadline. The test's own waits should fail first.
	Deadline time.Duration `json:"-"`
	// Prefix runs node through a command, e.g. {"ip", "netns", "exec",
	// name}; that command must exec node (keep its PID).
	Prefix []string `json:"-"`
	// Gates maps a mark, "phone/name", to a file the Run creates when
	// that phone reaches that mark: the go-ahead another phone's waitFile
	// step waits for.
	Gates map[string]string `json:"-"`
}

// DefaultDeadline bounds a driver run whose scenario sets no Deadline.
const DefaultDeadline = 90 * time.Second

// AudioStats are the page's stats(): getStats summed over audio RTP.
type AudioStats struct {
	PacketsReceived  float64 `json:"packetsReceived"`
	PacketsSent      float64 `json:"packetsSent"`
	BytesReceived    float64 `json:"bytesReceived"`
	TotalAudioEnergy float64 `json:"totalAudioEnergy"`
}

// PhoneResult is how one phone ended: OK, or the step that failed and why,
// with what its steps kept (Marks, by label) and the page's state.
type PhoneResult struct {
	OK         bool                       `json:"ok"`
	Error      string                     `json:"error"`
	Step       string                     `json:"step"`
	Screenshot string                     `json:"screenshot"`
	Marks      map[string]json.RawMessage `json:"marks"`
	State      json.RawMessage            `json:"state"`
	DOM        DOM                        `json:"dom"`
	PageErrors []string                   `json:"pageErrors"`
}

// DOM is what the page showed at the end: #status, the call state and
// #error.
type DOM struct {
	Status    string `json:"status"`
	CallState string `json:"callState"`
	Error     string `json:"error"`
}

// UnmarshalJSON reads the driver's dom, which is a string when the page
// could not be read: that reason goes to Error, so the rest of the result
// is still read.
func (d *DOM) UnmarshalJSON(b []byte) error {
	var reason string
	if json.Unmarshal(b, &reason) == nil {
		*d = DOM{Error: "page not read: " + reason}
		return nil
	}
	type plain DOM
	return json.Unmarshal(b, (*plain)(d))
}

// Stats returns the stats an audio step kept under label; t gets an error
// when there are none.
func (r PhoneResult) Stats(t testing.TB, label string) AudioStats {
	t.Helper()
	var s AudioStats
	if err := json.Unmarshal(r.Marks[label], &s); err != nil {
		t.Errorf("no stats %q: %v", label, err)
	}
	return s
}

// Text returns a string a step kept under label ("" when none).
func (r PhoneResult) Text(label string) string {
	var s string
	_ = json.Unmarshal(r.Marks[label], &s)
	return s
}
