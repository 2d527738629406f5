package takeover

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"github.com/sbc-project/sbc/media"
)

// A media node: the test binary run again as TestTakeoverNode inside a
// node's namespace, holding media sessions by call name, driven over
// stdin and stdout one JSON line at a time, and killed with SIGKILL as a
// crash would kill it.

type nodeRequest struct {
	Op    string          `json:"op"` // offer, answer, state, restore, close
	Call  string          `json:"call"`
	Side  media.Side      `json:"side"`
	SDP   string          `json:"sdp,omitempty"`
	State json.RawMessage `json:"state,omitempty"`
}

type nodeReply struct {
	SDP   string          `json:"sdp,omitempty"`
	State json.RawMessage `json:"state,omitempty"`
	Stats *media.Stats    `json:"stats,omitempty"`
	Err   string          `json:"err,omitempty"`
}

const (
	envBind  = "TAKEOVER_NODE_BIND"
	envPorts = "TAKEOVER_NODE_PORTS"
)

// TestTakeoverNode is the node process; it does nothing in a normal run.
func TestTakeoverNode(t *testing.T) {
	bind := os.Getenv(envBind)
	if bind == "" {
		t.Skip("the takeover test's node process (runs only when it starts it)")
	}
	var min, max int
	if _, err := fmt.Sscanf(os.Getenv(envPorts), "%d-%d", &min, &max); err != nil {
		t.Fatalf("%s: %v", envPorts, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	m, err := media.NewManager(media.Config{Addrs: []media.Addr{{Bind: netip.MustParseAddr(bind)}}, PortMin: min, PortMax: max}, log)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	defer m.Close()
	calls := map[string]*media.Session{}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req nodeRequest
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			t.Fatalf("request: %v", err)
		}
		if err := enc.Encode(serve(m, calls, req)); err != nil {
			t.Fatalf("reply: %v", err)
		}
	}
}

// serve runs one request on the node.
func serve(m *media.Manager, calls map[string]*media.Session, req nodeRequest) nodeReply {
	var rep nodeReply
	var out []byte
	var err error
	s := calls[req.Call]
	switch {
	case req.Op == "restore":
		if s, err = m.RestoreJSON(req.State); err == nil {
			calls[req.Call] = s
		}
	case s == nil && req.Op == "offer":
		s = m.NewSession(req.Call)
		calls[req.Call] = s
		out, err = s.Offer(req.Side, []byte(req.SDP))
	case s == nil:
		err = fmt.Errorf("no call %q", req.Call)
	case req.Op == "offer":
		out, err = s.Offer(req.Side, []byte(req.SDP))
	case req.Op == "answer":
		out, err = s.Answer(req.Side, []byte(req.SDP))
	case req.Op == "state":
		rep.State, err = s.ReplicaState()
	case req.Op == "close":
		s.Close()
		st := s.Stats()
		rep.Stats = &st
		delete(calls, req.Call)
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	rep.SDP = string(out)
	if err != nil {
		rep.Err = err.Error()
	}
	return rep
}

// node is a running node process.
type node struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  *json.Encoder
	stdout *bufio.Reader
	stderr *lockedBuffer
	mu     sync.Mutex
}

// startNode runs a node in namespace ns with its media on bind, ports
// min-max; it is killed when the test ends.
func startNode(t *testing.T, name, ns, bind string, min, max int) *node {
	t.Helper()
	cmd := command(ns, os.Args[0], "-test.run=^TestTakeoverNode$", "-test.count=1")
	cmd.Env = append(os.Environ(), envBind+"="+bind, envPorts+"="+strconv.Itoa(min)+"-"+strconv.Itoa(max))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, name: name, cmd: cmd, stdin: json.NewEncoder(in), stdout: bufio.NewReaderSize(out, 1<<20), stderr: new(lockedBuffer)}
	cmd.Stderr = n.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, n.stderr)
		}
	})
	return n
}

// do sends req and returns the node's reply; an error reply fails the
// test.
func (n *node) do(req nodeRequest) nodeReply {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.stdin.Encode(req); err != nil {
		n.t.Fatalf("%s %s: %v", n.name, req.Op, err)
	}
	for {
		line, err := n.stdout.ReadBytes('\n')
		if err != nil {
			n.t.Fatalf("%s %s: %v (log: %s)", n.name, req.Op, err, n.stderr)
		}
		if !bytes.HasPrefix(line, []byte("{")) { // the test binary's own output
			continue
		}
		var rep nodeReply
		if err := json.Unmarshal(line, &rep); err != nil {
			n.t.Fatalf("%s %s reply: %v", n.name, req.Op, err)
		}
		if rep.Err != "" {
			n.t.Fatalf("%s %s %s: %s", n.name, req.Op, req.Call, rep.Err)
		}
		return rep
	}
}

// kill ends the node with SIGKILL. Idempotent.
func (n *node) kill() {
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
}

// lockedBuffer is a bytes.Buffer written by a process's stderr copier
// and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
