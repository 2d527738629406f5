package firefox

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/test/browser"
	"github.com/sbc-project/sbc/test/interop/sbcproc"
)

const (
	sipPort  = 5060 // the SBC's SIP over UDP, on sbcIP
	wsPort   = 8080 // its SIP over WebSocket, and the JsSIP web phone page
	pagePort = 8090 // the driver's page server (the SIP.js phone)
	uasPort  = 5070 // SIPp answering as the PBX, on uasIP
	pbxUser  = "1000"
	digits   = "159#"
)

// sbcConfig is the SBC of the tests: WebSocket for the browsers (whose
// pages may come from the page server too), UDP for SIPp, the echo, the
// PBX (SIPp) for 1000, and registered web users for calls from SIPp.
func sbcConfig(dir string) string {
	return fmt.Sprintf(`node_id: firefox-interop
log: {level: info, format: json}
sip:
  listeners:
    - {name: udp, transport: udp, addr: "%[1]s:%[2]d", symmetric: true}
    - {name: ws, transport: ws, addr: "%[1]s:%[3]d"}
media:
  bind_ip: %[1]s
  rtp_ports: 20000-20199
trunks:
  - {name: pbx, uri: "sip:%[4]s:%[5]d;transport=udp", options_interval: 0s}
users:
  - {username: alice, password: alice-secret}
  - {username: bob, password: bob-secret}
routes:
  - {name: echo, match: {ruri_user: ^echo$}, target: echo}
  - {name: web-to-pbx, match: {listener: ws, ruri_user: ^%[6]s$}, target: trunks, trunks: [pbx]}
  - {name: web, match: {listener: ws}, target: registered}
  - {name: pbx-to-web, match: {listener: udp}, target: registered}
policy:
  websocket:
    allowed_origins: ["http://%[1]s:%[3]d", "http://%[1]s:%[7]d"]
cdr:
  - {name: jsonl, type: jsonl, dir: %[8]s}
cdr_spool: %[9]s
admin: {addr: "127.0.0.1:9090", drain_timeout: 1s}
`, sbcIP, sipPort, wsPort, uasIP, uasPort, pbxUser, pagePort, sbcproc.CDRDir(dir), sbcproc.SpoolDir(dir))
}

// client is a browser SIP stack: where its page is, for a user.
type client struct {
	name string
	url  func(user, password string) string
}

var clients = []client{
	{"jssip", func(user, password string) string {
		// The SBC's own web phone, served on its WS listener.
		q := url.Values{"user": {user}, "password": {password}, "register": {"1"}, "autoconnect": {"1"}, "autoanswer": {"1"}}
		return fmt.Sprintf("http://%s:%d/?%s", sbcIP, wsPort, q.Encode())
	}},
	{"sipjs", func(user, password string) string {
		q := url.Values{"user": {user}, "password": {password}, "register": {"1"}, "autoconnect": {"1"}, "autoanswer": {"1"},
			"server": {fmt.Sprintf("ws://%s:%d", sbcIP, wsPort)}, "domain": {sbcIP}}
		return fmt.Sprintf("http://%s:%d/?%s", sbcIP, pagePort, q.Encode())
	}},
}

// The two tests run in parallel, each in a namespace of its own.
func TestFirefoxJsSIP(t *testing.T) { t.Parallel(); testClient(t, clients[0], "alice") }
func TestFirefoxSIPjs(t *testing.T) { t.Parallel(); testClient(t, clients[1], "bob") }

// testClient: Firefox with the client's page, registered as user, calls
// the echo (its tone comes back; its digits reach the echo as RFC 4733),
// then the PBX (SIPp echoing RTP), then is called by SIPp through the SBC
// and answers; getStats shows audio both ways in each call, and each call
// leaves an answered CDR with media both ways.
func testClient(t *testing.T, c client, user string) {
	sbcproc.NeedTools(t, map[string]string{"firefox-esr": "firefox-esr", "node": "nodejs", "sipp": "sip-tester", "ip": "iproute2"})
	browser.NodeModule(t, "puppeteer-core/package.json")
	page, lib := browser.Path(t, "sipjs"), filepath.Dir(browser.NodeModule(t, "sip.js/lib/index.js"))
	ns := newNetns(t)
	dir := t.TempDir()
	sbc := sbcproc.Start(t, sbcproc.Options{Config: sbcConfig(dir), Dir: dir, Prefix: ns.prefix()})
	uas := startSIPp(t, ns, "call_caller_bye_uas.xml", fmt.Sprintf("%s:%d", uasIP, uasPort), 6000, "")

	steps := []browser.Step{
		browser.Do("wait", "status", "registered"),
		browser.Do("call", "target", "echo"), browser.Do("wait", "call", "in-call"),
		browser.Do("audio", "packets", 50, "label", "echo"), browser.Do("dtmf", "digits", digits),
		browser.Do("hangup"), browser.Do("wait", "call", "ended"),
		browser.Do("call", "target", pbxUser), browser.Do("wait", "call", "in-call"),
		browser.Do("audio", "packets", 50, "label", "pbx"),
		browser.Do("hangup"), browser.Do("wait", "call", "ended"),
		browser.Do("mark", "name", "ready"),
		browser.Do("wait", "call", "in-call", "timeoutMs", 30000),
		browser.Do("audio", "packets", 50, "label", "incoming"),
		browser.Do("wait", "call", "ended", "timeoutMs", 30000),
	}
	sc := browser.Scenario{Browser: "firefox", SecureHosts: []string{sbcIP}, TimeoutMs: 20000, FailureShots: t.TempDir(),
		Serve:  &browser.Serve{Addr: fmt.Sprintf("%s:%d", sbcIP, pagePort), Dirs: map[string]string{"/": page + "/", "/sip.js/": lib + "/"}},
		Phones: []browser.Phone{{Name: c.name, URL: c.url(user, user+"-secret"), Steps: steps}},
		Prefix: ns.prefix(), Deadline: 3 * time.Minute}
	r := browser.Start(t, sc)
	r.WaitEvent(c.name, "mark", "ready", 60*time.Second)
	uas.wait(t, 5*time.Second)
	caller := startSIPp(t, ns, "call_caller_bye_uac.xml", fmt.Sprintf("%s:%d", callerIP, 5080), 6100,
		fmt.Sprintf("%s:%d", sbcIP, sipPort), "-s", user, "-d", "4000")
	r.WaitExit(60 * time.Second)
	res := r.MustPass()[c.name]
	caller.wait(t, 10*time.Second)
	for _, label := range []string{"echo", "pbx", "incoming"} {
		if s := res.Stats(t, label); s.PacketsReceived < 50 || s.PacketsSent <= 0 || s.BytesReceived <= 0 || s.TotalAudioEnergy <= 0 {
			t.Errorf("%s call: getStats shows no audio both ways: %+v", label, s)
		}
	}
	checkRecords(t, sbc, sbc.WaitRecords(t, 3, 10*time.Second))
}

// checkRecords checks the three calls' CDRs: answered, media both ways,
// each on its route; the echo received the digits by RFC 4733.
func checkRecords(t *testing.T, sbc *sbcproc.Proc, recs []cdr.Record) {
	t.Helper()
	if len(recs) != 3 {
		t.Fatalf("%d CDRs, want 3: %+v", len(recs), recs)
	}
	want := []struct{ trunk, transport, side string }{{"echo", "ws", "a"}, {"pbx", "ws", "a"}, {"", "udp", "a"}}
	for i, r := range recs {
		w := want[i]
		if r.Disposition != "ANSWERED" || r.ATransport != w.transport || r.HangupSide != w.side ||
			(w.trunk != "" && r.Trunk != w.trunk) || r.AToBPackets == 0 || r.BToAPackets == 0 {
			t.Errorf("CDR %d: %s %s trunk %q side %s, media %d/%d packets; want ANSWERED over %s trunk %q side %s with media both ways",
				i, r.Disposition, r.ATransport, r.Trunk, r.HangupSide, r.AToBPackets, r.BToAPackets, w.transport, w.trunk, w.side)
		}
	}
	got, via := sbc.Digits(t, recs[0].BCallID)
	if got != digits || slices.ContainsFunc(via, func(v string) bool { return v != "rfc4733" }) {
		t.Errorf("the echo received digits %q by %v, want %q by rfc4733", got, via, digits)
	}
}
