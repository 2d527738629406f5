package firefox

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// Firefox never offers or pairs loopback ICE candidates, so these tests
// cannot put the SBC on 127.0.0.x: each runs in a network namespace of its
// own, named sbci17-<pid>-<n>, whose veth pair v0/v1 carries the addresses
// below; the SBC, Firefox and SIPp all run inside it (ip netns exec). A
// fresh namespace has no other user, so the ports are fixed.
const (
	sbcIP    = "10.117.2.1" // the SBC's SIP, WS and media address; the page server
	uasIP    = "10.117.2.3" // SIPp answering (the PBX)
	callerIP = "10.117.2.4" // SIPp calling the registered browser
)

var nsSeq atomic.Int32

// netns is a network namespace the test created.
type netns struct{ name string }

// newNetns creates a namespace with loopback up and a veth pair holding
// the test's addresses; it is deleted when the test ends, after the
// processes started in it (their cleanups run first).
func newNetns(t *testing.T) netns {
	t.Helper()
	if os.Geteuid() != 0 {
		msg := "the Firefox interop tests create a network namespace: they need root"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ns := netns{name: fmt.Sprintf("sbci17-%d-%d", os.Getpid(), nsSeq.Add(1))}
	ip(t, "netns", "add", ns.name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns.name, err, out)
		}
	})
	ip(t, "-n", ns.name, "link", "set", "lo", "up")
	ip(t, "-n", ns.name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	for _, a := range []string{sbcIP, uasIP, callerIP} {
		ip(t, "-n", ns.name, "addr", "add", a+"/24", "dev", "v0")
	}
	ip(t, "-n", ns.name, "link", "set", "v0", "up")
	ip(t, "-n", ns.name, "link", "set", "v1", "up")
	return ns
}

// prefix runs a command inside the namespace: ip netns exec keeps the PID
// (it execs the command), so the test stops what it starts by that PID.
func (ns netns) prefix() []string { return []string{"ip", "netns", "exec", ns.name} }

// command is name with args, to be run inside the namespace.
func (ns netns) command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append(append(ns.prefix()[1:], name), args...)...)
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
