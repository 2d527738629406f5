package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/sbc-project/sbc/test/redistest"
)

// TestDeadPeerLeftOutAtNodeTTL: a node that dies is left out of the peers
// calls are forked to as soon as its entry expires (node_ttl after its
// last heartbeat), not at this node's next heartbeat after that: the view
// of the peers is refreshed once a heartbeat, up to a heartbeat late.
func TestDeadPeerLeftOutAtNodeTTL(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	spec := testSpec("a", r.Addr, "127.0.46.11:5070")
	spec.Heartbeat = time.Minute // its view of the peers stays that of one beat
	spec.NodeTTL = time.Minute   // and its own entry outlives the dead node's (400 ms)
	a := New(spec, Local{}, nil)
	dead := New(testSpec("dead", r.Addr, "127.0.46.13:5070"), Local{}, nil)
	t.Cleanup(func() { _ = a.Client().Close(); _ = dead.Client().Close() })
	ctx := context.Background()
	dead.Beat(ctx) // one heartbeat, then silence: a crash
	a.Beat(ctx)
	if got := a.activePeers(); len(got) != 1 || got[0].ID != "dead" {
		t.Fatalf("after both beat, a's active peers are %+v, want the other node", got)
	}
	waitFor(t, "the dead node's entry to expire", func() bool { return peerIDs(a.Status(ctx)) == "a/active" })
	if got := a.activePeers(); len(got) != 0 {
		t.Errorf("the dead node's entry expired, a still forks calls to %+v", got)
	}
}
