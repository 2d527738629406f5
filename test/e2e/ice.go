package e2e

import (
	"context"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
)

// ICEOnly is a browser that gets as far as ICE and no further: a full,
// controlling pion/ice agent on loopback that connects to the SBC's
// ICE-lite candidates and then never answers DTLS. Packets the SBC sends
// over the pair (its DTLS ClientHello) are read and dropped.
type ICEOnly struct {
	agent *ice.Agent
	Ufrag string
	Pwd   string
	Cands []string // "candidate:..." attribute values
	conn  *ice.Conn
	wg    sync.WaitGroup
}

func NewICEOnly(t *testing.T) *ICEOnly {
	t.Helper()
	a, err := ice.NewAgentWithOptions(
		ice.WithNetworkTypes([]ice.NetworkType{ice.NetworkTypeUDP4}),
		ice.WithIncludeLoopback(),
		ice.WithIPFilter(func(ip net.IP) bool { return ip.IsLoopback() }),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
	)
	if err != nil {
		t.Fatalf("ice agent: %v", err)
	}
	o := &ICEOnly{agent: a}
	t.Cleanup(o.close)
	gathered := make(chan struct{})
	var once sync.Once
	if err := a.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			once.Do(func() { close(gathered) })
		}
	}); err != nil {
		t.Fatalf("ice agent: %v", err)
	}
	if err := a.GatherCandidates(); err != nil {
		t.Fatalf("ice gather: %v", err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("ice gathering did not complete")
	}
	if o.Ufrag, o.Pwd, err = a.GetLocalUserCredentials(); err != nil {
		t.Fatalf("ice credentials: %v", err)
	}
	local, err := a.GetLocalCandidates()
	if err != nil || len(local) == 0 {
		t.Fatalf("no local ice candidate: %v", err)
	}
	for _, c := range local {
		o.Cands = append(o.Cands, "candidate:"+c.Marshal())
	}
	return o
}

var (
	reICEUfrag = regexp.MustCompile(`(?m)^a=ice-ufrag:(\S+)`)
	reICEPwd   = regexp.MustCompile(`(?m)^a=ice-pwd:(\S+)`)
	reICECand  = regexp.MustCompile(`(?m)^a=(candidate:.*?)\r?$`)
)

// connect runs ICE against the SBC's answer and fails the test unless a
// pair is selected.
func (o *ICEOnly) Connect(t *testing.T, answer string) {
	t.Helper()
	u, p := reICEUfrag.FindStringSubmatch(answer), reICEPwd.FindStringSubmatch(answer)
	if u == nil || p == nil {
		t.Fatalf("answer without ICE credentials:\n%s", answer)
	}
	for _, m := range reICECand.FindAllStringSubmatch(answer, -1) {
		c, err := ice.UnmarshalCandidate(strings.TrimSpace(m[1]))
		if err != nil {
			t.Fatalf("sbc candidate %q: %v", m[1], err)
		}
		if err := o.agent.AddRemoteCandidate(c); err != nil {
			t.Fatalf("add sbc candidate: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := o.agent.Dial(ctx, u[1], p[1])
	if err != nil {
		t.Fatalf("ice toward the sbc: %v", err)
	}
	o.conn = conn
	o.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	})
}

func (o *ICEOnly) close() {
	_ = o.agent.Close()
	if o.conn != nil {
		_ = o.conn.Close()
	}
	o.wg.Wait()
}
