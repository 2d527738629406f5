package media

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A media node in a process of its own, for the restore tests: the test
// binary run again as TestRestoreNode, driven over stdin and stdout one
// JSON line at a time, and killed with SIGKILL as a crash would: its
// sockets close without a packet (no DTLS close_notify, nothing).

// nodeRequest is one command to the node: "offer" or "answer" (SDP from
// Side), or "state".
type nodeRequest struct {
	Op   string `json:"op"`
	Side Side   `json:"side"`
	SDP  string `json:"sdp,omitempty"`
}

// nodeReply is the node's answer to one request.
type nodeReply struct {
	SDP   string        `json:"sdp,omitempty"`
	State *SessionState `json:"state,omitempty"`
	Err   string        `json:"err,omitempty"`
}

// Environment of the node process.
const (
	nodeEnvBind  = "MEDIA_RESTORE_NODE"       // the media address
	nodeEnvPorts = "MEDIA_RESTORE_NODE_PORTS" // "min-max"
)

// TestRestoreNode is the node process; it does nothing in a normal run.
func TestRestoreNode(t *testing.T) {
	bind := os.Getenv(nodeEnvBind)
	if bind == "" {
		t.Skip("the restore tests' node process (runs only when they start it)")
	}
	var min, max int
	if _, err := fmt.Sscanf(os.Getenv(nodeEnvPorts), "%d-%d", &min, &max); err != nil {
		t.Fatalf("%s: %v", nodeEnvPorts, err)
	}
	m, err := NewManager(Config{Addrs: []Addr{{Bind: netip.MustParseAddr(bind)}}, PortMin: min, PortMax: max}, testLog())
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	s := m.NewSession("restore-call")
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req nodeRequest
		var rep nodeReply
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			t.Fatalf("request: %v", err)
		}
		var out []byte
		switch req.Op {
		case "offer":
			out, err = s.Offer(req.Side, []byte(req.SDP))
		case "answer":
			out, err = s.Answer(req.Side, []byte(req.SDP))
		case "state":
			st := s.State()
			rep.State = &st
		}
		rep.SDP = string(out)
		if err != nil {
			rep.Err = err.Error()
		}
		if err := enc.Encode(rep); err != nil {
			t.Fatalf("reply: %v", err)
		}
	}
	m.Close()
}

// node is a running node process.
type node struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  *json.Encoder
	stdout *bufio.Reader
	stderr *bytes.Buffer
	mu     sync.Mutex
}

// startNode runs a node with media address bind and ports min-max; it is
// killed when the test ends.
func startNode(t *testing.T, bind string, min, max int) *node {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestoreNode$", "-test.count=1")
	cmd.Env = append(os.Environ(), nodeEnvBind+"="+bind, nodeEnvPorts+"="+strconv.Itoa(min)+"-"+strconv.Itoa(max))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, cmd: cmd, stdin: json.NewEncoder(in), stdout: bufio.NewReaderSize(out, 1<<20), stderr: new(bytes.Buffer)}
	cmd.Stderr = n.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(n.kill)
	return n
}

// do sends req and returns the node's reply.
func (n *node) do(req nodeRequest) nodeReply {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.stdin.Encode(req); err != nil {
		n.t.Fatalf("node %s: %v", req.Op, err)
	}
	for {
		line, err := n.stdout.ReadBytes('\n')
		if err != nil {
			n.t.Fatalf("node %s: %v (stderr: %s)", req.Op, err, n.stderr)
		}
		if !bytes.HasPrefix(line, []byte("{")) { // the test binary's own output
			continue
		}
		var rep nodeReply
		if err := json.Unmarshal(line, &rep); err != nil {
			n.t.Fatalf("node %s reply: %v", req.Op, err)
		}
		if rep.Err != "" {
			n.t.Fatalf("node %s: %s", req.Op, rep.Err)
		}
		return rep
	}
}

// sdp sends an offer or answer from side and returns what the node
// rendered toward the other side.
func (n *node) sdp(op string, from Side, body []byte) []byte {
	n.t.Helper()
	return []byte(n.do(nodeRequest{Op: op, Side: from, SDP: string(body)}).SDP)
}

// state returns the node's session state, through JSON as it would go
// through Redis.
func (n *node) state() SessionState {
	n.t.Helper()
	st := n.do(nodeRequest{Op: "state"}).State
	raw, err := json.Marshal(st)
	if err != nil {
		n.t.Fatalf("state to json: %v", err)
	}
	var back SessionState
	if err := json.Unmarshal(raw, &back); err != nil {
		n.t.Fatalf("state from json: %v\n%s", err, raw)
	}
	if !strings.Contains(string(raw), `"streams"`) {
		n.t.Fatalf("state without streams: %s", raw)
	}
	return back
}

// kill ends the node with SIGKILL, as a crash would. Idempotent.
func (n *node) kill() {
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
}

// arrivals records when packets arrive on a peer, for the gap.
type arrivals struct {
	mu   sync.Mutex
	at   []time.Time
	seq  []uint16
	ssrc []uint32
}

func (a *arrivals) add(pkt []byte) {
	if len(pkt) < 12 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.at = append(a.at, time.Now())
	a.seq = append(a.seq, uint16(pkt[2])<<8|uint16(pkt[3]))
	a.ssrc = append(a.ssrc, uint32(pkt[8])<<24|uint32(pkt[9])<<16|uint32(pkt[10])<<8|uint32(pkt[11]))
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

// check fails unless packets arrived on both sides of cut, with one SSRC,
// sequence numbers that only move forward, and a gap around cut of at
// most maxGap; it returns the gap.
func (a *arrivals) check(t *testing.T, name string, cut time.Time, maxGap time.Duration) time.Duration {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var before, after int
	var gap time.Duration
	for i, at := range a.at {
		if at.Before(cut) {
			before++
		} else {
			after++
		}
		if i == 0 {
			continue
		}
		if d := at.Sub(a.at[i-1]); d > gap {
			gap = d
		}
		if a.ssrc[i] != a.ssrc[0] {
			t.Errorf("%s: packet %d has SSRC %#x, the stream had %#x", name, i, a.ssrc[i], a.ssrc[0])
		}
		if d := a.seq[i] - a.seq[i-1]; d == 0 || d > 0x8000 {
			t.Errorf("%s: packet %d has sequence number %d after %d", name, i, a.seq[i], a.seq[i-1])
		}
	}
	if before == 0 || after == 0 {
		t.Fatalf("%s: %d packets before the crash, %d after", name, before, after)
	}
	if gap > maxGap {
		t.Errorf("%s: %v without a packet, want at most %v", name, gap, maxGap)
	}
	t.Logf("%s: %d packets before the crash, %d after; longest gap %v", name, before, after, gap)
	return gap
}
