package sdpconv

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

// sbcAddr is the SBC media address in every test.
var sbcAddr = netip.MustParseAddr("192.0.2.1")

// sbcICE is the SBC's ICE-lite state toward browsers in tests.
func sbcICE(setup string) *ICE {
	return &ICE{
		Ufrag: "sbcU", Pwd: "sbcPasswordSbcPassword01",
		Candidates:   []string{"1 1 udp 2130706431 192.0.2.1 30000 typ host"},
		Fingerprints: []string{"sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00"},
		Setup:        setup, Lite: true,
	}
}

// localFor is the SBC transport for n m-lines toward to: ports from
// 40000 (+2 per m-line, wrapping after 1000), an SSRC and crypto on each.
func localFor(n int, to Kind, setup string) Local {
	l := Local{
		Addr:   sbcAddr,
		Origin: sdp.Origin{Username: "sbc", SessionID: 42, SessionVersion: 1},
		CName:  "sbc-cname",
	}
	for i := range n {
		l.Media = append(l.Media, LocalMedia{
			Port:   40000 + 2*(i%1000),
			Crypto: "1 AES_CM_128_HMAC_SHA1_80 inline:c2JjLXRlc3Qta2V5LXNiYy10ZXN0LWtleS1zYmMtdGU=",
			SSRC:   0x5bc00000 + uint32(i),
		})
	}
	if to == KindWebRTC {
		l.ICE = sbcICE(setup)
	}
	return l
}

// load reads testdata/name with CRLF line ends, as SDP travels.
func load(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return crlf(string(b))
}

func crlf(s string) []byte {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

func mustParse(t testing.TB, body []byte) *Description {
	t.Helper()
	d, err := Parse(body)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return d
}

// reparse checks that a rendered body parses with pion/sdp and with Parse
// (when one m-line is enabled) and returns the lines of each section:
// [0] the session, then one per m-line.
func reparse(t testing.TB, body []byte) (*Description, [][]string) {
	t.Helper()
	if err := new(sdp.SessionDescription).Unmarshal(body); err != nil {
		t.Fatalf("pion unmarshal of rendered sdp: %v\n%s", err, body)
	}
	if !strings.HasSuffix(string(body), "\r\n") || strings.Contains(strings.ReplaceAll(string(body), "\r\n", ""), "\n") {
		t.Fatalf("rendered sdp does not use CRLF:\n%q", body)
	}
	d := mustParse(t, body)
	return d, sections(body)
}

// sections splits a body into session lines and per-m-line lines.
func sections(body []byte) [][]string {
	out := [][]string{nil}
	for l := range strings.SplitSeq(strings.TrimSuffix(string(body), "\r\n"), "\r\n") {
		if strings.HasPrefix(l, "m=") {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], l)
	}
	return out
}

// checkLines fails unless every line of want is in lines and no line of
// lines starts with a prefix of not.
func checkLines(t testing.TB, what string, lines, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("%s: missing line %q in\n%s", what, w, strings.Join(lines, "\n"))
		}
	}
	for _, n := range not {
		for _, l := range lines {
			if strings.HasPrefix(l, n) {
				t.Errorf("%s: unexpected line %q", what, l)
			}
		}
	}
}

// names lists the codecs of m as "pt name/rate".
func names(m Media) []string {
	var out []string
	for _, c := range m.Codecs {
		out = append(out, c.String()+"@"+strconv.Itoa(int(c.PT)))
	}
	return out
}
