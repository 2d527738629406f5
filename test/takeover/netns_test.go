package takeover

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// The topology: three network namespaces the test creates and deletes,
// named sbci19-<pid>-<n>. "world" holds the far ends (the test's own
// sockets, made there by inWorld) on a bridge; each node has a namespace
// of its own, linked to the bridge by a veth pair. The service address
// (the floating IP) starts on node 1's link and moves to node 2's as
// keepalived would move it: deleted from the dead node, added to the
// survivor, and the world's neighbour entry for it flushed (keepalived's
// gratuitous ARP does that on a real LAN).
const (
	worldIP   = "10.119.0.2" // the far ends (SIP UAs, RTP endpoints, browsers)
	worldIP2  = "10.119.0.3" // a second far-end address
	node1IP   = "10.119.0.11"
	node2IP   = "10.119.0.12"
	serviceIP = "10.119.0.100" // the floating service address
)

var nsSeq atomic.Int32

// topology is the three namespaces of one test.
type topology struct {
	world, node1, node2 string
}

// newTopology builds the namespaces and links; everything is deleted when
// the test ends, after the processes started in them (their cleanups run
// first).
func newTopology(t *testing.T) *topology {
	t.Helper()
	if os.Geteuid() != 0 {
		msg := "the takeover test creates network namespaces: it needs root"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	name := func() string { return fmt.Sprintf("sbci19-%d-%d", os.Getpid(), nsSeq.Add(1)) }
	tp := &topology{world: name(), node1: name(), node2: name()}
	for _, ns := range []string{tp.world, tp.node1, tp.node2} {
		ip(t, "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		})
		ip(t, "-n", ns, "link", "set", "lo", "up")
	}
	w := tp.world
	ip(t, "-n", w, "link", "add", "br0", "type", "bridge")
	for _, a := range []string{worldIP, worldIP2} {
		ip(t, "-n", w, "addr", "add", a+"/24", "dev", "br0")
	}
	ip(t, "-n", w, "link", "set", "br0", "up")
	for i, n := range []struct{ ns, ip string }{{tp.node1, node1IP}, {tp.node2, node2IP}} {
		port := fmt.Sprintf("p%d", i+1)
		ip(t, "-n", w, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n.ns)
		ip(t, "-n", w, "link", "set", port, "master", "br0")
		ip(t, "-n", w, "link", "set", port, "up")
		ip(t, "-n", n.ns, "addr", "add", n.ip+"/24", "dev", "eth0")
		ip(t, "-n", n.ns, "link", "set", "eth0", "up")
	}
	ip(t, "-n", tp.node1, "addr", "add", serviceIP+"/32", "dev", "eth0")
	return tp
}

// moveService moves the service address from node 1 to node 2, as
// keepalived does when node 1 stops answering.
func (tp *topology) moveService(t *testing.T) {
	t.Helper()
	ip(t, "-n", tp.node1, "addr", "del", serviceIP+"/32", "dev", "eth0")
	ip(t, "-n", tp.node2, "addr", "add", serviceIP+"/32", "dev", "eth0")
	ip(t, "-n", tp.world, "neigh", "flush", "to", serviceIP)
}

// command is name with args, run in namespace ns: ip netns exec execs
// it, so the PID is the command's own.
func command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// inNamespace runs f on an OS thread moved into namespace ns: the sockets
// f opens belong to ns for their life, whichever thread uses them later.
// The thread is not given back to the runtime (it ends with the
// goroutine), so no other goroutine ever runs in ns by accident.
func inNamespace(t *testing.T, ns string, f func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		defer func() { done <- nil }()
		f()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
