package takeover

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/test/interop/sbcproc"
)

func TestMain(m *testing.M) { sbcproc.Main(m) }

// The SIP service and the cluster.
const (
	sipPort    = 5060
	redisPort  = 6379
	secret     = "takeover-test-secret-0123456789"
	plainCalls = 20
)

// nodeYAML is one node's config: the SIP listener on every address of
// its namespace (node 2 receives on the service address once it moved
// there), media and SDP on the service address, calls from the caller's
// address to the PBX, the cluster with replicated calls.
func nodeYAML(id, internal, pbx, dir, hookOut string) string {
	return fmt.Sprintf(`node_id: %s
log: {level: info, format: json}
sip:
  listeners:
    - {name: udp, transport: udp, addr: "0.0.0.0:%d"}
    - {name: ws, transport: ws, addr: "0.0.0.0:%d"}
  public_addr: %s
  overload_delay: 0s
media:
  bind_ip: %s
  public_ip: %s
  rtp_ports: 30000-30999
users:
  - {username: %s, password: %s}
trunks:
  - {name: pbx, uri: "sip:%s", options_interval: 0s}
routes:
  - {name: register, match: {listener: ws, from_domain: %s}, target: registered}
  - name: out
    match: {source_cidrs: ["%s/32"]}
    target: trunks
    trunks: [pbx]
    trusted_sources: ["%s/32"]
cdr:
  - {name: jsonl, type: jsonl, dir: %s}
cdr_spool: %s
policy: {bans: {file: %s}}
admin: {addr: ""}
cluster:
  redis: {addrs: ["%s:%d"], key_prefix: "takeover:"}
  internal_addr: %s
  heartbeat: 100ms
  node_ttl: 500ms
  replicate_calls: true
  takeover_command: ["/bin/sh", "-c", "echo \"$SBC_NODE_ID took $SBC_DEAD_NODE\" >> %s"]
`, id, sipPort, wsPort, serviceIP, serviceIP, serviceIP, webUser, webPass, pbx, regDomain, worldIP, worldIP, sbcproc.CDRDir(dir), sbcproc.SpoolDir(dir),
		filepath.Join(dir, "bans.json"), worldIP, redisPort, internal, hookOut)
}

// startSBC runs a node's sbc process in its namespace.
func startSBC(t *testing.T, ns, id, internal, pbx, hookOut string) (*sbcproc.Proc, string) {
	t.Helper()
	dir := t.TempDir()
	p := sbcproc.Start(t, sbcproc.Options{Config: nodeYAML(id, internal, pbx, dir, hookOut), Dir: dir,
		Prefix: []string{"ip", "netns", "exec", ns}, Env: []string{"SBC_CLUSTER_SECRET=" + secret}})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's log:\n%s", id, p.LogTail())
		}
	})
	return p, sbcproc.CDRDir(dir)
}

// startRedis runs redis-server in the world namespace and waits until it
// takes connections.
func startRedis(t *testing.T, tp *topology) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not found: scripts/test.sh installs it")
		}
		t.Skip("redis-server not found: apt-get install redis-server")
	}
	cmd := command(tp.world, "redis-server", "--bind", worldIP, "--port", fmt.Sprint(redisPort), "--save", "",
		"--appendonly", "no", "--dir", t.TempDir(), "--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning")
	// No Pdeathsig: it follows the forking thread, and inNamespace ends
	// threads (the one that forked may be among them); the cleanup kills
	// the server by its PID.
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, "redis-server", 10*time.Second, func() bool {
		var c net.Conn
		var err error
		inNamespace(t, tp.world, func() { c, err = net.DialTimeout("tcp", fmt.Sprintf("%s:%d", worldIP, redisPort), time.Second) })
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// sipCall is one SIP⇄SIP call: its far ends' media and its two dialogs.
type sipCall struct {
	id             string
	a, b           *rtpEnd
	aTag, bTag     string // the SBC's tags toward A (in its 200) and the PBX's own
	bCallID, bFrom string // the B leg's dialog at the PBX
	bTo            string
}

// TestCallsSurviveNodeCrash is issue 19's CI test with processes: two
// sbc processes in network namespaces of their own sharing Redis and the
// service address (on node 1 at first); 20 SIP⇄SIP calls with RTP both
// ways and 5 WebRTC calls (pion browsers registered over a WebSocket with
// digest and an RFC 5626 instance: web_test.go) up through node 1; node
// 1 is killed with SIGKILL and the address moves to node 2 as keepalived
// would; the browsers connect again and register again; node 2 takes the
// calls over (its takeover command runs once); every far end's audio
// continues within 2 s, the browsers' ICE never disconnected; then half
// the calls are hung up by the caller (the browser: over its new
// WebSocket) and half by the PBX, through node 2: every BYE reaches the
// other side and is answered, and node 2 writes each call's CDR once,
// noting node 1.
func TestCallsSurviveNodeCrash(t *testing.T) {
	tp := newTopology(t)
	startRedis(t, tp)
	caller, pbx := newSIPEnd(t, tp, worldIP), newSIPEnd(t, tp, worldIP2)
	hookOut := filepath.Join(t.TempDir(), "hook")
	n1, cdr1 := startSBC(t, tp.node1, "node-1", node1IP+":5070", pbx.addr(), hookOut)
	_, cdr2 := startSBC(t, tp.node2, "node-2", node2IP+":5070", pbx.addr(), hookOut)
	calls := make([]*sipCall, plainCalls)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	for i := range calls {
		calls[i] = setupSIPCall(t, tp, caller, pbx, i)
		calls[i].a.run(stop, &wg)
		calls[i].b.run(stop, &wg)
	}
	webs := make([]*webCall, webCalls)
	for i := range webs {
		webs[i] = setupWebCall(t, tp, pbx, i)
		webs[i].br.run(stop, &wg)
		webs[i].b.run(stop, &wg)
	}
	waitFor(t, "audio both ways on every call through node 1", 20*time.Second, func() bool {
		return heard(calls, webs, func(a *arrivals) int { return a.count() })
	})
	n1.Kill()
	cut := time.Now()
	tp.moveService(t)
	for _, c := range webs {
		c.reconnect(t)
	}
	waitFor(t, "audio both ways on every call through node 2", 20*time.Second, func() bool {
		return heard(calls, webs, func(a *arrivals) int { return a.gap(cut).after })
	})
	for _, c := range calls {
		checkGap(t, c.id+" toward the caller", c.a.rx.gap(cut))
		checkGap(t, c.id+" toward the PBX", c.b.rx.gap(cut))
	}
	for _, c := range webs {
		checkGap(t, c.id+" toward the browser", c.br.rx.gap(cut))
		checkGap(t, c.id+" toward the PBX", c.b.rx.gap(cut))
		if bad := c.br.bad(); len(bad) > 0 {
			t.Errorf("%s: the browser's ICE went %v", c.id, bad)
		}
	}
	for i, c := range calls {
		hangUp(t, caller, pbx, c, i%2 == 0)
	}
	for i, c := range webs {
		c.hangUp(t, pbx, i%2 == 0)
	}
	checkRecords(t, cdr1, cdr2, hookOut)
}

// heard tells whether every far end of every call has received 25
// packets, as n counts them.
func heard(calls []*sipCall, webs []*webCall, n func(*arrivals) int) bool {
	for _, c := range calls {
		if n(&c.a.rx) < 25 || n(&c.b.rx) < 25 {
			return false
		}
	}
	for _, c := range webs {
		if n(&c.br.rx) < 25 || n(&c.b.rx) < 25 {
			return false
		}
	}
	return true
}

// setupSIPCall places call i from the caller through the service address
// to the PBX, which answers; RTP starts at both ends.
func setupSIPCall(t *testing.T, tp *topology, caller, pbx *sipEnd, i int) *sipCall {
	t.Helper()
	c := &sipCall{id: fmt.Sprintf("takeover-%02d", i), a: newRTPEnd(t, tp, worldIP, 0xa1000000+uint32(i)),
		b: newRTPEnd(t, tp, worldIP2, 0xb1000000+uint32(i))}
	sbc := fmt.Sprintf("%s:%d", serviceIP, sipPort)
	caller.send(sbc, append(c.request("INVITE", 1, caller.addr()), "Content-Type: application/sdp", "", string(c.a.sdp()))...)
	inv := pbx.recv("INVITE ", "")
	c.bCallID, c.bFrom, c.bTo = header(inv, "Call-ID"), header(inv, "From"), header(inv, "To")+";tag=pbx"+c.id
	pbx.respond(replyTo(inv), inv, "200 OK", "pbx"+c.id, "Content-Type: application/sdp", "", string(c.b.sdp()))
	pbx.recv("ACK ", c.bCallID)
	ok := caller.recv("SIP/2.0 200", c.id)
	c.aTag = tagOf(header(ok, "To"))
	caller.send(sbc, c.request("ACK", 1, caller.addr())...)
	c.a.dst <- servicePort(t, body(ok))
	c.b.dst <- servicePort(t, body(inv))
	return c
}

// request is a request of the A dialog from the caller.
func (c *sipCall) request(method string, cseq int, from string) []string {
	to := fmt.Sprintf("<sip:1000@%s>", serviceIP)
	if c.aTag != "" {
		to += ";tag=" + c.aTag
	}
	return []string{fmt.Sprintf("%s sip:1000@%s:%d SIP/2.0", method, serviceIP, sipPort),
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s%s%d;rport", from, c.id, strings.ToLower(method), cseq),
		"Max-Forwards: 70", "From: <sip:alice@" + worldIP + ">;tag=a" + c.id, "To: " + to, "Call-ID: " + c.id,
		fmt.Sprintf("CSeq: %d %s", cseq, method), "Contact: <sip:alice@" + from + ">"}
}

// hangUp ends c through node 2: the caller's BYE (byCaller) or the
// PBX's, which must reach the other end and be answered end to end.
func hangUp(t *testing.T, caller, pbx *sipEnd, c *sipCall, byCaller bool) {
	t.Helper()
	sbc := fmt.Sprintf("%s:%d", serviceIP, sipPort)
	if byCaller {
		caller.send(sbc, c.request("BYE", 2, caller.addr())...)
		bye := pbx.recv("BYE ", c.bCallID)
		pbx.respond(replyTo(bye), bye, "200 OK", "")
		caller.recv("SIP/2.0 200", c.id)
		return
	}
	pbx.send(sbc, fmt.Sprintf("BYE sip:sbc@%s SIP/2.0", sbc), "Via: SIP/2.0/UDP "+pbx.addr()+";branch=z9hG4bKpbxbye"+c.id,
		"Max-Forwards: 70", "From: "+c.bTo, "To: "+c.bFrom, "Call-ID: "+c.bCallID, "CSeq: 9 BYE")
	bye := caller.recv("BYE ", c.id)
	caller.respond(replyTo(bye), bye, "200 OK", "")
	pbx.recv("SIP/2.0 200", c.bCallID)
}

// checkRecords: node 1 wrote nothing, node 2 one record per call, each
// taken over from node 1; the takeover command ran once.
func checkRecords(t *testing.T, cdr1, cdr2, hookOut string) {
	t.Helper()
	if recs := readRecords(t, cdr1); len(recs) != 0 {
		t.Errorf("the dead node wrote %d records", len(recs))
	}
	byCall := map[string]int{}
	waitFor(t, "node 2's records", 10*time.Second, func() bool { return len(readRecords(t, cdr2)) >= plainCalls+webCalls })
	for _, r := range readRecords(t, cdr2) {
		byCall[fmt.Sprint(r["a_call_id"])]++
		if r["taken_over_from"] != "node-1" || r["node_id"] != "node-2" {
			t.Errorf("record of %v: node %v, taken over from %v", r["a_call_id"], r["node_id"], r["taken_over_from"])
		}
	}
	var ids []string
	for i := range plainCalls {
		ids = append(ids, fmt.Sprintf("takeover-%02d", i))
	}
	for i := range webCalls {
		ids = append(ids, fmt.Sprintf(webCallFmt, i))
	}
	for _, id := range ids {
		if byCall[id] != 1 {
			t.Errorf("%s: %d records", id, byCall[id])
		}
	}
	if len(byCall) != len(ids) {
		t.Errorf("records of %d calls, want %d: %v", len(byCall), len(ids), byCall)
	}
	if out, _ := os.ReadFile(hookOut); string(out) != "node-2 took node-1\n" {
		t.Errorf("takeover command ran: %q", out)
	}
}

// readRecords reads every JSON-lines record under dir.
func readRecords(t *testing.T, dir string) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	var recs []map[string]any
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err == nil {
				recs = append(recs, m)
			}
		}
		fh.Close()
	}
	return recs
}
