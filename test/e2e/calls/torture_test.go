package calls

import (
	"fmt"
	"github.com/sbc-project/sbc/test/e2e"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// tortureDirs hold the messages of RFC 4475 section 3 (bit-exact, named as
// in the RFC: wsinv.dat...) and of RFC 5118 section 4 (ipv6-good.dat...).
var tortureDirs = []string{"../../../b2bua/testdata/torture", "../../../b2bua/testdata/torture5118"}

// noAnswer stands for "no response" among expected outcomes.
const noAnswer = 0

// tortureCase is what the RFCs say an element answers to one message.
type tortureCase struct {
	section string
	kind    tortureKind
	codes   []int // kind answer: the final responses the RFC names
	udpOnly bool  // its point is UDP datagram framing (RFC 4475 3.1.1.8, 3.1.2.2)
}

type tortureKind int

const (
	handled tortureKind = iota // valid: answered, as routing decides, never 400
	answer                     // answered with one of codes
	refused                    // invalid: 400 or dropped
	silent                     // a response: nothing to answer
	either                     // the RFC lets an element accept or refuse it
)

func valid(sec string) tortureCase { return tortureCase{section: sec, kind: handled} }
func answers(sec string, c ...int) tortureCase {
	return tortureCase{section: sec, kind: answer, codes: c}
}
func invalid(sec string) tortureCase { return tortureCase{section: sec, kind: refused} }

var tortureCases = map[string]tortureCase{
	// RFC 4475 3.1.1, valid messages.
	"wsinv": valid("4475-3.1.1.1"), "intmeth": answers("4475-3.1.1.2", 501), "esc01": valid("4475-3.1.1.3"),
	"escnull": valid("4475-3.1.1.4"), "esc02": answers("4475-3.1.1.5", 501), "lwsdisp": valid("4475-3.1.1.6"),
	"longreq":    valid("4475-3.1.1.7"),
	"dblreq":     {section: "4475-3.1.1.8", kind: handled, udpOnly: true},
	"semiuri":    valid("4475-3.1.1.9"),
	"transports": valid("4475-3.1.1.10"), "mpart01": valid("4475-3.1.1.11"),
	"unreason": {section: "4475-3.1.1.12", kind: silent}, "noreason": {section: "4475-3.1.1.13", kind: silent},
	// 3.1.2, invalid messages.
	"badinv01": invalid("4475-3.1.2.1"), "clerr": {section: "4475-3.1.2.2", kind: refused, udpOnly: true},
	"ncl": invalid("4475-3.1.2.3"), "scalar02": invalid("4475-3.1.2.4"), "scalarlg": invalid("4475-3.1.2.5"),
	"quotbal": invalid("4475-3.1.2.6"), "ltgtruri": invalid("4475-3.1.2.7"), "lwsruri": invalid("4475-3.1.2.8"),
	"lwsstart": {section: "4475-3.1.2.9", kind: either}, "trws": {section: "4475-3.1.2.10", kind: either},
	"escruri": {section: "4475-3.1.2.11", kind: either}, "baddate": valid("4475-3.1.2.12"), // "should not reject"
	"regbadct": {section: "4475-3.1.2.13", kind: either}, "badaspec": {section: "4475-3.1.2.14", kind: either},
	"baddn": {section: "4475-3.1.2.15", kind: either}, "badvers": answers("4475-3.1.2.16", 505),
	"mismatch01": answers("4475-3.1.2.17", 400), "mismatch02": answers("4475-3.1.2.18", 501),
	"bigcode": {section: "4475-3.1.2.19", kind: silent},
	// 3.2 Transaction layer semantics.
	"badbranch": valid("4475-3.2.1"),
	// 3.3 Application-layer semantics.
	"insuf": answers("4475-3.3.1", 400), "unkscm": answers("4475-3.3.2", 416), "novelsc": answers("4475-3.3.3", 416),
	"unksm2":   answers("4475-3.3.4", 400), // a registrar: the To of a REGISTER is the AOR, a SIP URI
	"bext01":   answers("4475-3.3.5", 420),
	"invut":    answers("4475-3.3.6", 415),
	"regaut01": valid("4475-3.3.7"), "multi01": answers("4475-3.3.8", 400), "mcl01": invalid("4475-3.3.9"),
	"bcast":    {section: "4475-3.3.10", kind: silent},
	"zeromf":   answers("4475-3.3.11", 200, 483), // an endpoint answers it, a proxy 483
	"cparam01": valid("4475-3.3.12"), "cparam02": valid("4475-3.3.13"), "regescrt": valid("4475-3.3.14"),
	"sdp01": valid("4475-3.3.15"), // 406, or an answer without SDP
	// 3.4 Backward compatibility.
	"inv2543": valid("4475-3.4.1"),
	// RFC 5118 section 4.
	"ipv6-good": valid("5118-4.1"), "ipv6-bad": answers("5118-4.2", 400), "port-ambiguous": valid("5118-4.3"),
	"port-unambiguous": valid("5118-4.4"), "via-received-param-with-delim": valid("5118-4.5"),
	"via-received-param-no-delim": valid("5118-4.5"), "ipv6-in-sdp": valid("5118-4.6"),
	"mult-ip-in-header": valid("5118-4.7"), "mult-ip-in-sdp": valid("5118-4.8"), "ipv4-mapped-ipv6": valid("5118-4.9"),
	"ipv6-bug-abnf-3-colons": {section: "5118-4.10", kind: either}, "ipv6-correct-abnf-2-colons": valid("5118-4.10"),
}

// tortureResult is what came back for one message on one transport.
type tortureResult struct {
	codes []int // final responses, in order; empty: none
	err   string
}

func (r tortureResult) final() int {
	if len(r.codes) == 0 {
		return noAnswer
	}
	return r.codes[0]
}

// TestRFC4475Torture sends every RFC 4475 and RFC 5118 message to a
// running SBC over UDP and, except the two about datagram framing, over
// TCP, each from a loopback address of its own, and checks the answer
// that reaches the sending socket against what the RFCs say. The SBC
// routes calls to nothing here, so a valid INVITE is answered by routing
// (404). It must still answer OPTIONS afterwards.
func TestRFC4475Torture(t *testing.T) {
	msgs := readTorture(t)
	// One SBC per transport: the same message sent twice would be taken
	// for a retransmission.
	sbcUDP, sbcTCP := e2e.StartSBC(t, e2e.SBCOptions{}), e2e.StartSBC(t, e2e.SBCOptions{})
	names := sortedNames(msgs)
	udp := sendAll(t, names, func(i int, name string) tortureResult {
		return sendUDP(sourceAddr(0, i), sbcUDP.UDP.String(), msgs[name])
	})
	tcp := sendAll(t, names, func(i int, name string) tortureResult {
		if tortureCases[name].udpOnly {
			return tortureResult{err: "skipped"}
		}
		return sendTCP(sourceAddr(1, i), sbcTCP.TCP.String(), [][]byte{msgs[name]}, 1)
	})
	for _, name := range names {
		tc := tortureCases[name]
		t.Run(tc.section+"_"+name, func(t *testing.T) {
			u, s := udp[name], tcp[name]
			t.Logf("%s: udp %v %s, tcp %v %s", name, u.codes, u.err, s.codes, s.err)
			checkTorture(t, "udp", tc, u.final())
			if !tc.udpOnly {
				checkTorture(t, "tcp", tc, s.final())
			}
		})
	}
	for _, sbc := range []*e2e.SBC{sbcUDP, sbcTCP} {
		ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
		ua.Send(e2e.OptionsTo(ua))
		ua.Expect(200)
	}
}

// TestTortureStreams: the stream cases. wsinv arrives over TCP in 7-byte
// segments and is handled as if it came whole; two OPTIONS written in one
// segment are both answered.
func TestTortureStreams(t *testing.T) {
	sbc := e2e.StartSBC(t, e2e.SBCOptions{})
	msgs := readTorture(t)
	var segments [][]byte
	for data := msgs["wsinv"]; len(data) > 0; {
		n := min(7, len(data))
		segments = append(segments, data[:n])
		data = data[n:]
	}
	r := sendTCP(sourceAddr(2, 1), sbc.TCP.String(), segments, 1)
	if f := r.final(); f == noAnswer || f == 400 {
		t.Errorf("wsinv in 7-byte segments: answered %v %s, want a final answer other than 400", r.codes, r.err)
	}
	two := optionsText("pipe-1", 1) + optionsText("pipe-2", 2)
	r = sendTCP(sourceAddr(2, 2), sbc.TCP.String(), [][]byte{[]byte(two)}, 2)
	if !slices.Equal(r.codes, []int{200, 200}) {
		t.Errorf("two pipelined OPTIONS: answered %v %s, want 200 twice", r.codes, r.err)
	}
}

func optionsText(callID string, seq int) string {
	return fmt.Sprintf("OPTIONS sip:sbc@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.2.2;branch=z9hG4bK%s\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:t@example.com>;tag=%d\r\nTo: <sip:sbc@127.0.0.1>\r\nCall-ID: %s\r\n"+
		"CSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n", callID, seq, callID, seq)
}

// sourceAddr is the i-th loopback source address of a group: every
// message comes from an address of its own, as from a stranger each.
func sourceAddr(group, i int) string {
	return fmt.Sprintf("127.%d.%d.%d", 10+group, 1+i/250, 1+i%250)
}

// checkTorture checks one final answer (noAnswer: none) against the RFC.
func checkTorture(t *testing.T, transport string, tc tortureCase, got int) {
	t.Helper()
	switch tc.kind {
	case handled:
		if got == noAnswer || got == 400 {
			t.Errorf("%s: valid message answered %d, want a final answer other than 400", transport, got)
		}
	case answer:
		if !slices.Contains(tc.codes, got) {
			t.Errorf("%s: answered %d, RFC %s: %v", transport, got, tc.section, tc.codes)
		}
	case refused:
		if got != 400 && got != noAnswer {
			t.Errorf("%s: invalid message answered %d, want 400 or nothing", transport, got)
		}
	case silent:
		if got != noAnswer {
			t.Errorf("%s: a response was answered %d", transport, got)
		}
	}
}

// readTorture loads the messages and checks that the table covers exactly
// them: the 49 of RFC 4475 and the 12 of RFC 5118.
func readTorture(t *testing.T) map[string][]byte {
	t.Helper()
	msgs := make(map[string][]byte)
	for _, dir := range tortureDirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.dat"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(filepath.Base(f), ".dat")
			if _, ok := tortureCases[name]; !ok {
				t.Errorf("%s has no expectation", name)
			}
			msgs[name] = b
		}
	}
	if len(msgs) != 61 || len(tortureCases) != 61 {
		t.Fatalf("%d messages, %d expectations: RFC 4475 and 5118 have 49 and 12", len(msgs), len(tortureCases))
	}
	return msgs
}

func sortedNames(m map[string][]byte) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// sendAll sends every message at once and collects what came back.
func sendAll(t *testing.T, names []string, send func(i int, name string) tortureResult) map[string]tortureResult {
	t.Helper()
	var mu sync.Mutex
	res := make(map[string]tortureResult, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			r := send(i, name)
			mu.Lock()
			res[name] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	return res
}

// How long a socket waits: for a final answer after a provisional one
// (routing, a registrar's lookups), and in silence before it concludes
// none is coming. Generous: the machine may be loaded.
const (
	tortureFinalWait = 20 * time.Second
	tortureQuiet     = 3 * time.Second
)

// readDeadline is when a socket gives up: after tortureQuiet of silence,
// or tortureFinalWait once a provisional said an answer is coming.
func readDeadline(provisional bool) time.Time {
	if provisional {
		return time.Now().Add(tortureFinalWait)
	}
	return time.Now().Add(tortureQuiet)
}

// sendUDP sends one datagram from a socket bound to src and returns the
// final responses that reach that socket (and no other).
func sendUDP(src, sbc string, data []byte) tortureResult {
	laddr, err := net.ResolveUDPAddr("udp", src+":0")
	if err != nil {
		return tortureResult{err: err.Error()}
	}
	raddr, err := net.ResolveUDPAddr("udp", sbc)
	if err != nil {
		return tortureResult{err: err.Error()}
	}
	c, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		return tortureResult{err: err.Error()}
	}
	defer c.Close()
	if _, err := c.Write(data); err != nil {
		return tortureResult{err: err.Error()}
	}
	var r tortureResult
	buf := make([]byte, 65535)
	deadline := readDeadline(false)
	for {
		_ = c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			return r
		}
		code := e2e.StatusCode(buf[:n])
		if code >= 200 {
			r.codes = append(r.codes, code)
			return r
		}
		if code > 0 {
			deadline = readDeadline(true)
		}
	}
}

// sendTCP connects from src, writes the segments one by one (each its own
// write with Nagle off) and returns the final responses read until want
// of them came, or the connection is quiet or closed.
func sendTCP(src, sbc string, segments [][]byte, want int) tortureResult {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", sbc)
	if err != nil {
		return tortureResult{err: err.Error()}
	}
	c := conn.(*net.TCPConn)
	defer c.Close()
	_ = c.SetNoDelay(true)
	for _, seg := range segments {
		if _, err := c.Write(seg); err != nil {
			return tortureResult{err: err.Error()}
		}
	}
	var r tortureResult
	var stream []byte
	buf := make([]byte, 65535)
	deadline := readDeadline(false)
	for {
		_ = c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		stream = append(stream, buf[:n]...)
		for {
			msg, rest, ok := e2e.NextMessage(stream)
			if !ok {
				break
			}
			stream = rest
			// Not parsed: a 400 echoes the request's header lines, which
			// may not parse.
			code := e2e.StatusCode(msg)
			if code >= 200 {
				r.codes = append(r.codes, code)
			} else if code > 0 {
				deadline = readDeadline(true)
			}
		}
		if len(r.codes) >= want {
			return r
		}
		if err != nil {
			if len(r.codes) == 0 && !isTimeout(err) {
				r.err = "closed: " + err.Error()
			}
			return r
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
