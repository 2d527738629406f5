package kamailio

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/test/interop/sbcproc"
	"github.com/sbc-project/sbc/test/redistest"
	"github.com/sbc-project/sbc/test/sipptest"
)

// Addresses of the cluster test.
const (
	clLBIP      = "127.0.6.60"
	clNode1IP   = "127.0.6.61"
	clNode2IP   = "127.0.6.62"
	clCarrierIP = "127.0.6.63" // the SIPp carrier
	clPhoneIP   = "127.0.6.64" // the SIPp phone
	clRedisIP   = "127.0.6.65"
	clSecret    = "the-cluster-secret-of-this-test"
	clUser      = "carol"
	clAOR       = clUser + "@example.com" // the To of the phone's REGISTER
)

// clusterNode is one SBC process running the shipped
// configs/cluster-behind-kamailio.yaml.
type clusterNode struct {
	id, ip   string
	sip      int    // UDP listener (the LB's dispatcher.list)
	internal string // cluster.internal_addr
	admin    string
	users    string // auth.users_file
	proc     *sbcproc.Proc
	watch    *optionsWatch
}

func newClusterNode(t *testing.T, id, ip string) *clusterNode {
	return &clusterNode{id: id, ip: ip, sip: freePort(t, ip),
		internal: net.JoinHostPort(ip, strconv.Itoa(freePort(t, ip))),
		admin:    net.JoinHostPort(ip, strconv.Itoa(freePort(t, ip)))}
}

// start runs the node as the shipped file's comment tells an operator
// to: the file with its example addresses replaced (listener, Redis, the
// LB, files under a temporary directory), the per-node keys and the
// secret from the environment.
func (n *clusterNode) start(t *testing.T, lb netip.AddrPort, redis, users string) {
	t.Helper()
	shipped, err := os.ReadFile(filepath.Join(configsDir, "cluster-behind-kamailio.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	n.users = users
	n.watch = newOptionsWatch(t, n.ip)
	yaml := strings.NewReplacer(
		"addr: 0.0.0.0:5060", "addr: "+net.JoinHostPort(n.ip, strconv.Itoa(n.sip)),
		"bind_ip: 0.0.0.0", "bind_ip: "+n.ip,
		`addrs: ["192.0.2.40:6379"]`, `addrs: ["`+redis+`"]`,
		"uri: sip:192.0.2.20:5060", "uri: sip:"+lb.String(),
		"uri: sip:198.51.100.10:5060", "uri: sip:"+clCarrierIP+":5060",
		// No carrier answers probes here; phones in this test call no one.
		"options_interval: 30s", "options_interval: 0s",
		"# users_file: /etc/sbc/users", "users_file: "+users,
		"dir: /var/lib/sbc/cdr", "dir: "+sbcproc.CDRDir(dir),
		"cdr_spool: /var/lib/sbc/cdr-spool", "cdr_spool: "+sbcproc.SpoolDir(dir),
		"file: /var/lib/sbc/bans.json", "file: "+filepath.Join(dir, "bans.json"),
		"addr: 127.0.0.1:9090", "addr: "+n.admin,
		// SIPp knows only MD5 and reads only the first challenge.
		"realm: sbc.example.com", "realm: sbc.example.com\n  algorithms: [MD5]",
		// The SIPp phone's out-of-call scenario takes calls, not OPTIONS
		// keepalives; the race detector on two busy cores is not overload.
		"max_expires: 600s", "max_expires: 600s\n  keepalive_interval: 10m",
		"public_addr: 192.0.2.21", "public_addr: 192.0.2.21\n  overload_delay: 0s",
	).Replace(string(shipped))
	yaml += "\nhep:\n  addr: " + n.watch.addr() + "\n"
	for i, line := range strings.Split(yaml, "\n") {
		setting, _, _ := strings.Cut(line, "#")
		if strings.Contains(setting, "public_addr:") || strings.Contains(setting, "public_ip:") ||
			strings.Contains(setting, "internal_addr:") {
			continue // the environment overrides them
		}
		if strings.Contains(setting, "192.0.2.") || strings.Contains(setting, "198.51.100.") || strings.Contains(setting, "/var/lib/sbc") {
			t.Fatalf("cluster-behind-kamailio.yaml line %d still names the example network: %q", i+1, line)
		}
	}
	n.proc = sbcproc.Start(t, sbcproc.Options{Config: yaml, Dir: dir, Env: n.env()})
	p := n.proc
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's log:\n%s", n.id, p.LogTail())
		}
	})
}

// env is what differs per node, from the environment, as README's
// "Behind a Kamailio dispatcher" sets it (TestClusterReadme).
func (n *clusterNode) env() []string {
	return []string{"SBC_NODE_ID=" + n.id, "SBC_SIP_PUBLIC_ADDR=" + n.ip, "SBC_MEDIA_PUBLIC_IP=" + n.ip,
		"SBC_CLUSTER_INTERNAL_ADDR=" + n.internal, "SBC_CLUSTER_SECRET=" + clSecret}
}

// peers is "id/state,..." as the node's /api/v1/cluster lists them.
func (n *clusterNode) peers(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + n.admin + "/api/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ Nodes []struct{ ID, State string } }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range st.Nodes {
		ids = append(ids, x.ID+"/"+x.State)
	}
	return strings.Join(ids, ",")
}

// answered are the node's ANSWERED records; every record must name it.
func (n *clusterNode) answered(t *testing.T) []cdr.Record {
	t.Helper()
	var out []cdr.Record
	for _, r := range n.proc.Records(t) {
		if r.NodeID != n.id {
			t.Fatalf("node %s wrote a record naming node %q", n.id, r.NodeID)
		}
		if r.Disposition == "ANSWERED" {
			out = append(out, r)
		}
	}
	return out
}

// clusterLB runs the shipped dispatcher.cfg in front of the nodes' UDP
// listeners (set 1, each inactive until it answers a probe), probing every
// second, taking calls from the carrier and REGISTERs from the phone.
func clusterLB(t *testing.T, lb netip.AddrPort, nodes ...*clusterNode) *kamailioProc {
	t.Helper()
	var list []byte
	for _, n := range nodes {
		list = fmt.Appendf(list, clListLine, n.ip, n.sip)
	}
	path := filepath.Join(t.TempDir(), "dispatcher.list")
	if err := os.WriteFile(path, list, 0o644); err != nil {
		t.Fatal(err)
	}
	return startKamailio(t, filepath.Join(kamailioCF, "dispatcher.cfg"), lb, clDefines(lb, path)...)
}

// clListLine is a node's line in the dispatcher list (README's).
const clListLine = "1 sip:%s:%d 9\n"

// clDefines are the LB's -A defines.
func clDefines(lb netip.AddrPort, list string) []string {
	return []string{"LB_IP=" + clLBIP, "LB_PORT=" + strconv.Itoa(int(lb.Port())), quote("DS_LIST", list),
		quote("TRUSTED_NET", clCarrierIP+"/32"), quote("PHONE_NET", clPhoneIP+"/32"),
		"DS_PING_INTERVAL=1", "KAM_CHILDREN=2"}
}

// testdataPath is a file of this package's testdata, absolute (SIPp runs
// in its own directory).
func testdataPath(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startPhone is the SIPp phone: it registers carol through the LB with
// digest, then answers calls (echoing their RTP) until stopped.
func startPhone(ctx context.Context, t *testing.T, lb netip.AddrPort, port, media int) *sipptest.Proc {
	t.Helper()
	return sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("register_answer_uac.xml"),
		Remote: lb.String(), LocalIP: clPhoneIP, LocalPort: port, Timeout: 110 * time.Second,
		Args: []string{"-s", clUser, "-au", clUser, "-ap", clUser + "-secret", "-d", "100000",
			"-oocsf", testdataPath(t, "phone_answer_ooc.xml"), "-rtp_echo", "-mi", clPhoneIP, "-mp", strconv.Itoa(media)}})
}

// carrierCall is one call from the carrier through the LB for carol,
// playing audio for hold before its BYE.
func carrierCall(ctx context.Context, t *testing.T, lb netip.AddrPort, hold time.Duration) sipptest.Result {
	t.Helper()
	return sipptest.Start(ctx, t, sipptest.Options{Scenario: testdataPath(t, "carrier_pcap_uac.xml"),
		Remote: lb.String(), LocalIP: clCarrierIP, Timeout: 30 * time.Second,
		Args: []string{"-s", clUser, "-d", strconv.FormatInt(hold.Milliseconds(), 10),
			"-mi", clCarrierIP, "-mp", strconv.Itoa(evenFreePort(t, clCarrierIP))}}).Wait()
}

// holder returns the node whose binding of carol is in Redis, once there
// is exactly one.
func holder(t *testing.T, r *redistest.Server, nodes ...*clusterNode) *clusterNode {
	t.Helper()
	var found *clusterNode
	waitFor(t, "carol's binding in Redis", 20*time.Second, func() bool {
		found = nil
		for _, n := range nodes {
			if reply, err := r.Do("EXISTS", "sbc:reg:"+clAOR+":"+n.id); err == nil && reply == ":1" {
				if found != nil {
					return false
				}
				found = n
			}
		}
		return found != nil
	})
	return found
}

// wantMedia checks a record carried audio both ways.
func wantMedia(t *testing.T, what string, r cdr.Record) {
	t.Helper()
	if r.AToBPackets < 40 || r.BToAPackets < 40 {
		t.Errorf("%s: %d packets A→B, %d B→A; want audio both ways (%+v)", what, r.AToBPackets, r.BToAPackets, r)
	}
}

// deadTrap listens where a dead node was: on its SIP port (UDP: what the
// LB sends it) and its internal address (TCP: what its peers send it). It
// counts the requests but OPTIONS (the LB's probes, left unanswered) and
// the connections, which it closes at once.
type deadTrap struct {
	requests, conns atomic.Int64
	close           func() // frees the addresses (also when the test ends)
}

func newDeadTrap(t *testing.T, n *clusterNode) *deadTrap {
	t.Helper()
	d := &deadTrap{}
	u, err := net.ListenPacket("udp", net.JoinHostPort(n.ip, strconv.Itoa(n.sip)))
	if err != nil {
		t.Fatalf("the dead node's SIP port: %v", err)
	}
	l, err := net.Listen("tcp", n.internal)
	if err != nil {
		u.Close()
		t.Fatalf("the dead node's internal address: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			k, _, err := u.ReadFrom(buf)
			if err != nil {
				return
			}
			if !bytes.HasPrefix(buf[:k], []byte("OPTIONS ")) && !bytes.HasPrefix(buf[:k], []byte("SIP/2.0 ")) {
				d.requests.Add(1)
			}
		}
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			d.conns.Add(1)
			c.Close()
		}
	})
	d.close = sync.OnceFunc(func() { u.Close(); l.Close(); wg.Wait() })
	t.Cleanup(d.close)
	return d
}
