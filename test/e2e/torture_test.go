package e2e

import (
	"bytes"
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

// tortureDir holds the messages of RFC 4475 section 3, bit-exact, one file
// per test named as in the RFC (wsinv.dat...).
const tortureDir = "../../b2bua/testdata/torture"

// noAnswer stands for "no response" among expected outcomes.
const noAnswer = 0

// tortureCase is what the SBC does with one RFC 4475 message. For valid
// messages any answer but 400 is fine (none too: a stray response is
// dropped); for invalid ones rfc lists the final responses the RFC allows
// (noAnswer: silence is fine). Where the SBC does something else
// today, deviation says why and now lists what it does, so the test fails
// when that changes (better or worse) and the table is updated.
type tortureCase struct {
	section   string
	valid     bool  // valid syntax (3.1.1, 3.2, 3.3, 3.4), not 3.1.2
	rfc       []int // acceptable final codes for invalid ones
	liberal   bool  // invalid, but the RFC lets an element accept it: any answer
	udpOnly   bool  // its point is UDP datagram framing (3.1.1.8, 3.1.2.2)
	deviation string
	now       []int // what the SBC answers over TCP, when deviation is set
}

var tortureCases = map[string]tortureCase{
	// 3.1.1 Valid Messages
	"wsinv": {section: "3.1.1.1", valid: true, now: []int{400},
		deviation: "gosip rejects the From with an escaped quote and LWS around ';' (Missing or bad From)"},
	"intmeth": {section: "3.1.1.2", valid: true, now: []int{noAnswer},
		deviation: "gosip rejects the To with escaped BEL/NUL/DEL in the display name and the unusual From (Missing or bad From); no 400 can echo them, so it is dropped"},
	"esc01":   {section: "3.1.1.3", valid: true},
	"escnull": {section: "3.1.1.4", valid: true},
	"esc02": {section: "3.1.1.5", valid: true, now: []int{noAnswer},
		deviation: "gosip rejects the Via with '%' in the branch (Missing or bad Via); without a Via no 400 can be sent, so it is dropped"},
	"lwsdisp": {section: "3.1.1.6", valid: true},
	"longreq": {section: "3.1.1.7", valid: true, now: []int{400},
		deviation: "its top Via has no branch: the transaction layer supports RFC 3261 branches only (400 Missing or bad Via branch)"},
	"dblreq":     {section: "3.1.1.8", valid: true, udpOnly: true},
	"semiuri":    {section: "3.1.1.9", valid: true},
	"transports": {section: "3.1.1.10", valid: true},
	"mpart01":    {section: "3.1.1.11", valid: true},
	"unreason":   {section: "3.1.1.12", valid: true},
	"noreason":   {section: "3.1.1.13", valid: true},

	// 3.1.2 Invalid Messages: 400 or silence, unless the RFC names another
	// answer or lets a liberal element accept the message.
	"badinv01":   {section: "3.1.2.1", rfc: []int{400, noAnswer}},
	"clerr":      {section: "3.1.2.2", rfc: []int{400, noAnswer}, udpOnly: true},
	"ncl":        {section: "3.1.2.3", rfc: []int{400, noAnswer}},
	"scalar02":   {section: "3.1.2.4", rfc: []int{400, noAnswer}},
	"scalarlg":   {section: "3.1.2.5", rfc: []int{400, noAnswer}},
	"quotbal":    {section: "3.1.2.6", rfc: []int{400, noAnswer}},
	"ltgtruri":   {section: "3.1.2.7", rfc: []int{400, noAnswer}},
	"lwsruri":    {section: "3.1.2.8", rfc: []int{400, noAnswer}},
	"lwsstart":   {section: "3.1.2.9", liberal: true},
	"trws":       {section: "3.1.2.10", liberal: true},
	"escruri":    {section: "3.1.2.11", liberal: true},
	"baddate":    {section: "3.1.2.12", valid: true}, // "should not reject"
	"regbadct":   {section: "3.1.2.13", liberal: true},
	"badaspec":   {section: "3.1.2.14", liberal: true},
	"baddn":      {section: "3.1.2.15", liberal: true},
	"badvers":    {section: "3.1.2.16", rfc: []int{505}},
	"mismatch01": {section: "3.1.2.17", rfc: []int{400}},
	"mismatch02": {section: "3.1.2.18", rfc: []int{501}, now: []int{400},
		deviation: "the parser refuses a CSeq method that differs from the request method before the method is looked at; RFC: 501"},
	"bigcode": {section: "3.1.2.19", rfc: []int{noAnswer}}, // a response: dropped

	// 3.2 Transaction Layer Semantics
	"badbranch": {section: "3.2.1", valid: true, now: []int{400},
		deviation: "branch is the bare magic cookie: no RFC 2543 transaction matching (400 Missing or bad Via branch)"},

	// 3.3 Application-Layer Semantics
	"insuf": {section: "3.3.1", rfc: []int{400}, now: []int{noAnswer},
		deviation: "without From, To and Call-ID the 400 cannot be built (RFC 3261 8.2.6.2), so it is dropped"},
	"unkscm": {section: "3.3.2", rfc: []int{416}, now: []int{400},
		deviation: "gosip cannot parse a Request-URI of an unknown scheme; RFC: 416"},
	"novelsc": {section: "3.3.3", rfc: []int{416}, now: []int{400},
		deviation: "gosip cannot parse a soap.beep Request-URI; RFC: 416"},
	"unksm2": {section: "3.3.4", valid: true, now: []int{400},
		deviation: "gosip cannot parse From/To URIs of an unknown scheme (Missing or bad From)"},
	"bext01":   {section: "3.3.5", valid: true},
	"invut":    {section: "3.3.6", valid: true},
	"regaut01": {section: "3.3.7", valid: true},
	"multi01": {section: "3.3.8", rfc: []int{400}, now: []int{404},
		deviation: "gosip keeps one of the repeated single-value headers (Call-ID, From, To, Max-Forwards, CSeq) instead of refusing; the INVITE then finds no route"},
	"mcl01":    {section: "3.3.9", rfc: []int{400, noAnswer}},
	"bcast":    {section: "3.3.10", valid: true},
	"zeromf":   {section: "3.3.11", rfc: []int{200, 483}}, // an endpoint answers it, a proxy 483
	"cparam01": {section: "3.3.12", valid: true},
	"cparam02": {section: "3.3.13", valid: true},
	"regescrt": {section: "3.3.14", valid: true},
	"sdp01":    {section: "3.3.15", valid: true},

	// 3.4 Backward Compatibility
	"inv2543": {section: "3.4.1", valid: true, now: []int{400},
		deviation: "RFC 2543 request without a Via branch: the transaction layer supports RFC 3261 branches only (400 Missing or bad Via branch)"},
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

// TestRFC4475Torture sends every RFC 4475 message to a running SBC over UDP
// and, except the two about datagram framing, over TCP, then checks that
// the SBC still answers OPTIONS (a panic anywhere fails the whole test
// binary). Over TCP, where every answer returns on the connection, the
// final response is checked against the table; over UDP the SBC answers a
// parse error to the source address and anything else to the Via's port,
// so only "a parse-error 400 came back or not" is checked, and must agree
// with TCP.
func TestRFC4475Torture(t *testing.T) {
	msgs := readTorture(t)
	// One SBC per transport: the same message sent twice would be taken
	// for a retransmission.
	sbcUDP, sbcTCP := startSBC(t, sbcOptions{}), startSBC(t, sbcOptions{})
	udp := sendAll(t, msgs, func(name string, data []byte) tortureResult { return sendUDP(sbcUDP.udp.String(), data) })
	tcp := sendAll(t, msgs, func(name string, data []byte) tortureResult {
		if tortureCases[name].udpOnly {
			return tortureResult{err: "skipped"}
		}
		return sendTCP(sbcTCP.tcp.String(), data)
	})

	for _, name := range sortedNames(msgs) {
		tc := tortureCases[name]
		t.Run(tc.section+"_"+name, func(t *testing.T) {
			u, s := udp[name], tcp[name]
			t.Logf("%s: udp %v, tcp %v %s", name, u.codes, s.codes, s.err)
			if tc.udpOnly {
				checkTorture(t, tc, u.final())
				return
			}
			checkTorture(t, tc, s.final())
			if tc.valid && tc.deviation == "" && u.final() == 400 {
				t.Errorf("udp: valid message refused as unparsable (400)")
			}
		})
	}
	for _, sbc := range []*sbcUnderTest{sbcUDP, sbcTCP} {
		ua := dialUA(t, "UDP", sbc.udp.String())
		ua.send(optionsTo(ua))
		ua.expect(200)
	}
}

// checkTorture checks one final answer (noAnswer: none) against the table.
func checkTorture(t *testing.T, tc tortureCase, got int) {
	t.Helper()
	switch {
	case tc.deviation != "":
		if !slices.Contains(tc.now, got) {
			t.Errorf("known deviation (%s) changed: answered %d, recorded %v; update the table", tc.deviation, got, tc.now)
		}
	case tc.valid: // handled, not refused as unparsable
		if got == 400 {
			t.Errorf("valid message refused with 400")
		}
	case tc.liberal:
		// Rejected or accepted: both are what the RFC allows.
	default:
		if !slices.Contains(tc.rfc, got) {
			t.Errorf("answered %d, RFC 4475 %s allows %v", got, tc.section, tc.rfc)
		}
	}
}

// readTorture loads the messages and checks that the table covers exactly
// them.
func readTorture(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(tortureDir, "*.dat"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(map[string][]byte, len(files))
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
	if len(msgs) != len(tortureCases) {
		t.Fatalf("%d messages in %s, %d in the table", len(msgs), tortureDir, len(tortureCases))
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

// sendAll sends every message at once, each on its own socket, and
// collects what came back.
func sendAll(t *testing.T, msgs map[string][]byte, send func(name string, data []byte) tortureResult) map[string]tortureResult {
	t.Helper()
	var mu sync.Mutex
	res := make(map[string]tortureResult, len(msgs))
	var wg sync.WaitGroup
	for name, data := range msgs {
		wg.Go(func() {
			r := send(name, data)
			mu.Lock()
			res[name] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	return res
}

// tortureWait is how long a socket listens for an answer after the last
// thing it got.
const tortureWait = time.Second

// sendUDP sends one datagram from a fresh socket and returns the final
// responses that reach it.
func sendUDP(sbc string, data []byte) tortureResult {
	c, err := net.Dial("udp", sbc)
	if err != nil {
		return tortureResult{err: err.Error()}
	}
	defer c.Close()
	if _, err := c.Write(data); err != nil {
		return tortureResult{err: err.Error()}
	}
	var r tortureResult
	buf := make([]byte, 65535)
	for {
		_ = c.SetReadDeadline(time.Now().Add(tortureWait))
		n, err := c.Read(buf)
		if err != nil {
			return r
		}
		if code := finalCode(buf[:n]); code != 0 {
			r.codes = append(r.codes, code)
		}
	}
}

// sendTCP sends one message on a fresh connection and returns the final
// responses read from it until it is quiet or closed.
func sendTCP(sbc string, data []byte) tortureResult {
	c, err := net.Dial("tcp", sbc)
	if err != nil {
		return tortureResult{err: err.Error()}
	}
	defer c.Close()
	if _, err := c.Write(data); err != nil {
		return tortureResult{err: err.Error()}
	}
	var r tortureResult
	var stream []byte
	buf := make([]byte, 65535)
	for {
		_ = c.SetReadDeadline(time.Now().Add(tortureWait))
		n, err := c.Read(buf)
		stream = append(stream, buf[:n]...)
		for {
			msg, rest, ok := nextMessage(stream)
			if !ok {
				break
			}
			stream = rest
			// Not parsed: a 400 echoes the request's header lines, which
			// may not parse.
			if code := finalCode(msg); code != 0 {
				r.codes = append(r.codes, code)
			}
		}
		if err != nil {
			if len(r.codes) == 0 && !isTimeout(err) {
				r.err = "closed: " + err.Error()
			}
			return r
		}
	}
}

// nextMessage splits the first whole message (headers and Content-Length
// body) off a stream.
func nextMessage(stream []byte) (msg, rest []byte, ok bool) {
	end := bytes.Index(stream, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, stream, false
	}
	head := stream[:end+4]
	body := 0
	for _, line := range strings.Split(string(head), "\r\n") {
		k, v, found := strings.Cut(line, ":")
		if found && (strings.EqualFold(strings.TrimSpace(k), "Content-Length") || strings.TrimSpace(k) == "l") {
			body = atoiOr0(strings.TrimSpace(v))
		}
	}
	if len(stream) < len(head)+body {
		return nil, stream, false
	}
	return stream[:len(head)+body], stream[len(head)+body:], true
}

// finalCode is the status code of a final response (200-699), else 0.
func finalCode(msg []byte) int {
	line, _, _ := bytes.Cut(msg, []byte("\r\n"))
	f := strings.Fields(string(line))
	if len(f) < 2 || f[0] != "SIP/2.0" {
		return 0
	}
	if code := atoiOr0(f[1]); code >= 200 && code < 700 {
		return code
	}
	return 0
}

func atoiOr0(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' || n > 1e6 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
