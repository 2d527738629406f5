package cluster

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/security"
	"github.com/sbc-project/sbc/test/redistest"
)

// sharingNode is a node with its own bans, shared.
type sharingNode struct {
	*Node
	bans  *security.Bans
	share *BanShare
}

func startSharing(t *testing.T, id, redisAddr string, logs *syncBuffer) sharingNode {
	t.Helper()
	bans, err := security.OpenBans("", nil)
	if err != nil {
		t.Fatal(err)
	}
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, nil))
	}
	n := New(testSpec(id, redisAddr, "127.0.46.11:5070"), Local{}, log)
	s := ShareBans(n, bans)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { s.Run(ctx); done <- struct{}{} }()
	go func() { n.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done; _ = n.Close() })
	waitFor(t, id+" joined", n.RedisUp)
	return sharingNode{n, bans, s}
}

func banned(b *security.Bans, ip string) bool {
	_, ok := b.Banned(netip.MustParseAddr(ip), true)
	return ok
}

// A scanner banned on node 1 is banned on nodes 2 and 3 within a second;
// an operator's lift on node 3 lifts it everywhere.
func TestBansShared(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	n1 := startSharing(t, "n1", r.Addr, nil)
	n2 := startSharing(t, "n2", r.Addr, nil)
	n3 := startSharing(t, "n3", r.Addr, nil)
	waitFor(t, "subscriptions", func() bool { return numsub(t, r) == 3 })

	start := time.Now()
	n1.bans.Ban(netip.MustParseAddr("192.0.2.66"), "scanner", time.Hour, security.Evidence{Scope: security.ScopeUDP, Events: 5})
	waitFor(t, "the ban on nodes 2 and 3", func() bool { return banned(n2.bans, "192.0.2.66") && banned(n3.bans, "192.0.2.66") })
	if took := time.Since(start); took > time.Second {
		t.Errorf("the ban took %s to reach the other nodes, want under 1 s", took)
	}
	e := n2.bans.List()[0]
	if e.Reason != "scanner" || e.Scope != "udp" || e.Evidence != 5 || e.Until == nil {
		t.Fatalf("the ban as node 2 holds it: %+v", e)
	}
	if _, ok := n2.bans.Banned(netip.MustParseAddr("192.0.2.66"), false); ok {
		t.Fatal("a UDP-only ban applies to connections on node 2")
	}

	if err := n3.bans.Add("198.51.100.0/24", "operator", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the operator's ban on node 1", func() bool { return banned(n1.bans, "198.51.100.20") })
	n3.bans.Remove("192.0.2.66")
	waitFor(t, "the lift everywhere", func() bool { return !banned(n1.bans, "192.0.2.66") && !banned(n2.bans, "192.0.2.66") })
	if !banned(n2.bans, "198.51.100.20") {
		t.Fatal("the lift of one ban took another")
	}
}

// numsub is how many clients listen on the bans channel. PUBSUB NUMSUB
// answers *2 $len channel :count and Do returns the first line only, so a
// script returns the count alone.
func numsub(t *testing.T, r *redistest.Server) int {
	reply, err := r.Do("EVAL", "return redis.call('PUBSUB','NUMSUB',KEYS[1])[2]", "1", "test:bans")
	if err != nil || !strings.HasPrefix(reply, ":") {
		return -1
	}
	n := 0
	for _, c := range reply[1:] {
		n = n*10 + int(c-'0')
	}
	return n
}

// Bans made while Redis is down reach the peers when it returns; a node
// that joins later gets every ban in force.
func TestBansResyncAfterOutage(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	n1 := startSharing(t, "n1", r.Addr, nil)
	n2 := startSharing(t, "n2", r.Addr, nil)
	waitFor(t, "subscriptions", func() bool { return numsub(t, r) == 2 })

	r.Stop()
	waitFor(t, "both nodes see the outage", func() bool { return !n1.RedisUp() && !n2.RedisUp() })
	n1.bans.Ban(netip.MustParseAddr("192.0.2.77"), "flood during the outage", time.Hour, security.Evidence{Scope: security.ScopeAll, Events: 9})
	if !banned(n1.bans, "192.0.2.77") {
		t.Fatal("node 1 did not ban locally with Redis down")
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ban on node 2 after Redis returned", func() bool { return banned(n2.bans, "192.0.2.77") })

	n3 := startSharing(t, "n3", r.Addr, nil)
	waitFor(t, "the ban on a node that joined later", func() bool { return banned(n3.bans, "192.0.2.77") })
}

// Garbage in the bans hash or on the channel is logged with its key and
// ignored; good bans next to it still apply.
func TestBansBadData(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	logs := &syncBuffer{}
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, cmd := range [][]string{
		{"HSET", "test:bans", "192.0.2.1", "{not json", "192.0.2.2", `{"node":"x","addr":"192.0.2.9","reason":"mismatch"}`,
			"192.0.2.3", `{"node":"x","addr":"192.0.2.3","reason":"bad scope","until":"` + until + `","scope":"tcp","evidence":1}`,
			"192.0.2.4", `{"node":"x","addr":"192.0.2.4","reason":"good","until":"` + until + `","scope":"all"}`},
	} {
		if reply, err := r.Do(cmd...); err != nil || strings.HasPrefix(reply, "-") {
			t.Fatalf("%v: %q %v", cmd, reply, err)
		}
	}
	n1 := startSharing(t, "n1", r.Addr, logs)
	waitFor(t, "the good ban", func() bool { return banned(n1.bans, "192.0.2.4") })
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.9"} {
		if banned(n1.bans, ip) {
			t.Errorf("%s banned from bad data", ip)
		}
	}
	waitFor(t, "subscription", func() bool { return numsub(t, r) == 1 })
	if _, err := r.Do("PUBLISH", "test:bans", "garbage"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the channel's garbage logged", func() bool { return strings.Contains(logs.String(), "unreadable ban change") })
	for _, want := range []string{"key=test:bans field=192.0.2.1", "field=192.0.2.2", "scope", "channel=test:bans"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if !n1.RedisUp() {
		t.Fatal("bad data taken for an outage")
	}
}
