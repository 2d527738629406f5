package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/redistest"
)

// A call survives its node (issue 19, cluster.replicate_calls): node 1
// on 127.0.15.21 carries a call from a caller (127.0.15.22) to a PBX
// (127.0.15.23) with RTP both ways; node 1 is killed (no BYE, no record,
// its Redis entries left to expire), or drained with migration (POST
// /api/v1/drain?migrate=true: its calls let go, their states kept, the
// node gone from the cluster at once); node 2 starts on the same
// addresses, as a survivor would once the service address moved to it,
// takes the call over from Redis (127.0.15.46), its media flows again on
// the same ports, the takeover command ran once with node 1's id, the
// PBX's BYE ends both legs, and node 2 writes the one record, noting
// node 1; node 1, started again on its CDR spool, records nothing of the
// call.

// sipEnd is a SIP endpoint speaking text over UDP, with an RTP socket
// that sends a packet every 20 ms once started and counts what arrives.
type sipEnd struct {
	t        *testing.T
	sip, rtp *net.UDPConn
	got      atomic.Int64
	msgs     chan string
}

func newSIPEnd(t *testing.T, ip string) *sipEnd {
	t.Helper()
	e := &sipEnd{t: t, msgs: make(chan string, 32)}
	var err error
	if e.sip, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}); err != nil {
		t.Fatal(err)
	}
	if e.rtp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.sip.Close(); _ = e.rtp.Close() })
	go e.readSIP()
	go e.readRTP()
	return e
}

func (e *sipEnd) readSIP() {
	buf := make([]byte, 65535)
	for {
		n, err := e.sip.Read(buf)
		if err != nil {
			close(e.msgs)
			return
		}
		e.msgs <- string(buf[:n])
	}
}

func (e *sipEnd) readRTP() {
	buf := make([]byte, 2048)
	for {
		if _, err := e.rtp.Read(buf); err != nil {
			return
		}
		e.got.Add(1)
	}
}

func (e *sipEnd) addr() string { return e.sip.LocalAddr().String() }

func (e *sipEnd) sdp() string {
	ap := e.rtp.LocalAddr().(*net.UDPAddr)
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
		ap.IP, ap.IP, ap.Port)
}

// send sends a SIP message to dst, with its Content-Length.
func (e *sipEnd) send(dst string, lines ...string) {
	e.t.Helper()
	msg := strings.Join(lines, "\r\n")
	head, body, _ := strings.Cut(msg, "\r\n\r\n")
	msg = head + fmt.Sprintf("\r\nContent-Length: %d\r\n\r\n", len(body)) + body
	to, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.sip.WriteToUDP([]byte(msg), to); err != nil {
		e.t.Fatal(err)
	}
}

// recv waits for the message whose first line starts with first.
func (e *sipEnd) recv(first string) string {
	e.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-e.msgs:
			if strings.HasPrefix(m, first) {
				return m
			}
		case <-timeout:
			e.t.Fatalf("%s: no %q", e.addr(), first)
		}
	}
}

// answer responds to req with status, echoing its dialog headers.
func (e *sipEnd) answer(dst, req, status string, extra ...string) {
	e.t.Helper()
	lines := []string{"SIP/2.0 " + status}
	for _, name := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		for _, v := range sipHeaders(req, name) {
			if name == "To" && !strings.Contains(v, "tag=") {
				v += ";tag=pbx1"
			}
			lines = append(lines, name+": "+v)
		}
	}
	lines = append(lines, "Contact: <sip:end@"+e.addr()+">")
	e.send(dst, append(lines, extra...)...)
}

// rtpTo sends RTP to dst every 20 ms until ctx ends.
func (e *sipEnd) rtpTo(ctx context.Context, dst *net.UDPAddr) {
	pkt := make([]byte, 172)
	pkt[0], pkt[1] = 0x80, 0
	ssrc := uint32(time.Now().UnixNano())
	for seq := uint16(0); ctx.Err() == nil; seq++ {
		pkt[2], pkt[3] = byte(seq>>8), byte(seq)
		ts := uint32(seq) * 160
		pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		pkt[8], pkt[9], pkt[10], pkt[11] = byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc)
		_, _ = e.rtp.WriteToUDP(pkt, dst)
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func sipHeaders(msg, name string) []string {
	var out []string
	for _, l := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

func sipHeader(msg, name string) string {
	if h := sipHeaders(msg, name); len(h) > 0 {
		return h[0]
	}
	return ""
}

// sdpMedia is the RTP address of an SDP body: its c= address and first
// m= port.
func sdpMedia(t *testing.T, msg string) *net.UDPAddr {
	t.Helper()
	var ip string
	var port int
	for _, l := range strings.Split(msg, "\r\n") {
		if v, ok := strings.CutPrefix(l, "c=IN IP4 "); ok {
			ip = v
		}
		if v, ok := strings.CutPrefix(l, "m=audio "); ok && port == 0 {
			port, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	if ip == "" || port == 0 {
		t.Fatalf("no media address in:\n%s", msg)
	}
	return &net.UDPAddr{IP: net.ParseIP(ip), Port: port}
}

func redisClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func freeUDP(t *testing.T, ip string) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func freeTCP(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// survivorConfig is one node of the pair: the same service addresses,
// its own id, internal address and CDR directory.
func survivorConfig(t *testing.T, id, prefix, redis, sipAddr, pbx, caller, hookOut string) (*config.Config, string) {
	t.Helper()
	c := testConfig()
	c.NodeID = id
	c.SIP.Listeners = []config.Listener{{Name: "udp", Transport: "udp", Addr: sipAddr, Symmetric: true}}
	c.SIP.PublicAddr = "127.0.15.21"
	c.SIP.OverloadDelay = 0
	c.Media.BindIP, c.Media.PublicIP, c.Media.RTPPorts = "127.0.15.21", "127.0.15.21", "41000-41999"
	c.Trunks = []config.Trunk{{Name: "pbx", URI: "sip:" + pbx, OptionsTimeout: time.Second, FailureThreshold: 1}}
	c.Routes = []config.Route{{Name: "out", Match: config.Match{SourceCIDRs: []string{caller + "/32"}},
		Target: config.TargetTrunks, Trunks: []string{"pbx"}, TrustedSources: []string{caller + "/32"}}}
	dir := t.TempDir()
	c.CDRSpool = filepath.Join(dir, "spool")
	c.CDR = []config.CDRWriter{{Name: "json", Type: config.CDRJSONL, Dir: filepath.Join(dir, "cdr")}}
	c.Admin.Addr = "127.0.15.21:0"
	c.Cluster = config.Cluster{Redis: config.ClusterRedis{Addrs: []string{redis}, KeyPrefix: prefix},
		InternalAddr: freeTCP(t, map[string]string{"node-1": "127.0.15.24", "node-2": "127.0.15.25"}[id]), Secret: testClusterSecret,
		Heartbeat: 100 * time.Millisecond, NodeTTL: 500 * time.Millisecond,
		ReplicateCalls: true, TakeoverCommand: []string{"/bin/sh", "-c", `echo "$SBC_NODE_ID took $SBC_DEAD_NODE" >> ` + hookOut}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c, filepath.Join(dir, "cdr")
}

func TestCallSurvivesItsNode(t *testing.T) {
	r := redistest.Start(t, "127.0.15.46")
	t.Run("crash", func(t *testing.T) { testCallSurvivesItsNode(t, r, "crash:", (*App).Kill) })
	t.Run("drain with migration", func(t *testing.T) {
		testCallSurvivesItsNode(t, r, "migrate:", func(a *App) {
			addr, _ := a.AdminAddr()
			res, err := http.Post("http://"+addr.String()+"/api/v1/drain?migrate=true", "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				t.Fatalf("drain with migration: %s", res.Status)
			}
			<-a.Drained() // as the sbc command does
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// testCallSurvivesItsNode runs the call; stop stops node 1. The nodes'
// keys in Redis start with prefix.
func testCallSurvivesItsNode(t *testing.T, r *redistest.Server, prefix string, stop func(*App)) {
	caller, pbx := newSIPEnd(t, "127.0.15.22"), newSIPEnd(t, "127.0.15.23")
	sbc := freeUDP(t, "127.0.15.21")
	hookOut := filepath.Join(t.TempDir(), "hook")
	cfg1, cdr1 := survivorConfig(t, "node-1", prefix, r.Addr, sbc, pbx.addr(), "127.0.15.22", hookOut)
	cfg2, cdr2 := survivorConfig(t, "node-2", prefix, r.Addr, sbc, pbx.addr(), "127.0.15.22", hookOut)
	node1, err := New(cfg1, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node1.Close() })

	dialog := func(method string, seq int, toTag string, extra ...string) []string {
		to := "<sip:1000@127.0.15.21>"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		return append([]string{fmt.Sprintf("%s sip:1000@%s SIP/2.0", method, sbc),
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s%d;rport", caller.addr(), strings.ToLower(method), seq),
			"Max-Forwards: 70", "From: <sip:alice@127.0.15.22>;tag=a1", "To: " + to, "Call-ID: survive-app",
			fmt.Sprintf("CSeq: %d %s", seq, method), "Contact: <sip:alice@" + caller.addr() + ">"}, extra...)
	}
	caller.send(sbc, dialog("INVITE", 1, "", "Content-Type: application/sdp", "", caller.sdp())...)
	inv := pbx.recv("INVITE ")
	pbx.answer(sbc, inv, "200 OK", "Content-Type: application/sdp", "", pbx.sdp())
	pbx.recv("ACK ")
	ok := caller.recv("SIP/2.0 200")
	tag := toTagOf(sipHeader(ok, "To"))
	caller.send(sbc, dialog("ACK", 1, tag)...)

	ctx, stopRTP := context.WithCancel(context.Background())
	defer stopRTP()
	go caller.rtpTo(ctx, sdpMedia(t, ok))
	go pbx.rtpTo(ctx, sdpMedia(t, inv))
	flowing := func(what string) {
		t.Helper()
		a, b := caller.got.Load(), pbx.got.Load()
		eventually(t, what, func() bool { return caller.got.Load() > a+10 && pbx.got.Load() > b+10 })
	}
	flowing("RTP both ways through node 1")
	rc := redisClient(t, r.Addr)
	eventually(t, "the call replicated", func() bool { return rc.HLen(ctx, prefix+"replica:node-1").Val() == 1 })
	for _, st := range rc.HVals(ctx, prefix+"replica:node-1").Val() {
		t.Logf("a call's state with its media: %d bytes", len(st))
	}

	stop(node1)
	node2, err := New(cfg2, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node2.Close() })
	eventually(t, "node 2 carrying the call", func() bool { return node2.Server().ActiveCalls() == 1 })
	flowing("RTP both ways through node 2")

	pbx.send(sbc, "BYE sip:sbc@"+sbc+" SIP/2.0", "Via: SIP/2.0/UDP "+pbx.addr()+";branch=z9hG4bKpbxbye",
		"Max-Forwards: 70", "From: "+sipHeader(inv, "To")+";tag=pbx1", "To: "+sipHeader(inv, "From"),
		"Call-ID: "+sipHeader(inv, "Call-ID"), "CSeq: 9 BYE")
	bye := caller.recv("BYE ")
	caller.answer(sbc, bye, "200 OK")
	pbx.recv("SIP/2.0 200")
	eventually(t, "the call ended on node 2", func() bool { return node2.Server().ActiveCalls() == 0 })
	if err := node2.Close(); err != nil {
		t.Fatal(err)
	}
	// Node 1 comes back with its CDR journal, where the call is still up:
	// node 2 took it over, so node 1 records nothing of it (no sbc_restart).
	again, err := New(cfg1, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	if recs := readRecords(t, cdr1); len(recs) != 0 {
		t.Errorf("node 1 wrote %d records: %v", len(recs), recs)
	}
	recs := readRecords(t, cdr2)
	if len(recs) != 1 || recs[0]["taken_over_from"] != "node-1" || recs[0]["a_call_id"] != "survive-app" ||
		recs[0]["node_id"] != "node-2" || recs[0]["disposition"] != "ANSWERED" {
		t.Errorf("node 2's records: %v", recs)
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
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			recs = append(recs, m)
		}
		fh.Close()
	}
	return recs
}

func toTagOf(to string) string {
	_, tag, _ := strings.Cut(to, "tag=")
	tag, _, _ = strings.Cut(tag, ";")
	return tag
}
