package app

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/trunkreg"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/internal/config"
)

// openRegistrar accepts every REGISTER (no digest) on 127.0.5.70 and
// keeps the Expires of each.
type openRegistrar struct {
	conn *net.UDPConn
	mu   sync.Mutex
	exps []int
}

func startOpenRegistrar(t *testing.T) *openRegistrar {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.5.70:0")))
	if err != nil {
		t.Fatal(err)
	}
	r := &openRegistrar{conn: c}
	var wg sync.WaitGroup
	wg.Go(func() {
		parser := sipmsg.NewParser(sipmsg.Limits{})
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			m, err := parser.Parse(append([]byte(nil), buf[:n]...))
			req, ok := m.(sip.Request)
			if err != nil || !ok || req.Method() != sip.REGISTER {
				continue
			}
			e, _ := sipmsg.HeaderInt(req, "Expires")
			r.mu.Lock()
			r.exps = append(r.exps, e)
			r.mu.Unlock()
			_, _ = c.WriteToUDPAddrPort(sipmsg.Render(txn.NewResponse(req, 200, "OK")), from)
		}
	})
	t.Cleanup(func() { c.Close(); wg.Wait() })
	return r
}

func (r *openRegistrar) expires() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.exps...)
}

// TestReloadTrunkRegistration: a reload that adds trunks[].register
// registers, one that removes it unregisters (Expires: 0).
func TestReloadTrunkRegistration(t *testing.T) {
	reg := startOpenRegistrar(t)
	uri := "sip:" + reg.conn.LocalAddr().String()
	var mu sync.Mutex
	next := testConfig()
	next.Trunks = []config.Trunk{{Name: "carrier", URI: uri, OptionsTimeout: time.Second, FailureThreshold: 1}}
	first := *next
	first.Trunks = append([]config.Trunk(nil), next.Trunks...)
	a, err := New(&first, slog.New(slog.DiscardHandler), Options{Load: func() (*config.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		c := *next
		c.Trunks = append([]config.Trunk(nil), next.Trunks...)
		return &c, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if st := a.trunks(); len(st) != 1 || st[0].Registration != nil {
		t.Fatalf("trunks before any register: %+v", st)
	}
	mu.Lock()
	next.Trunks[0].Register = config.TrunkRegister{Username: "acct1", Password: "pw"}
	mu.Unlock()
	if _, err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	waitTrue(t, "registered after the reload", func() bool {
		r := a.trunks()[0].Registration
		return r != nil && r.State == string(trunkreg.StateRegistered)
	})
	if e := reg.expires(); len(e) != 1 || e[0] != int(config.DefaultRegisterExpires/time.Second) {
		t.Errorf("REGISTERs with Expires %v, want one with the default %s", e, config.DefaultRegisterExpires)
	}
	mu.Lock()
	next.Trunks[0].Register = config.TrunkRegister{}
	mu.Unlock()
	if _, err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	waitTrue(t, "unregistered after the reload", func() bool {
		e := reg.expires()
		return len(e) == 2 && e[1] == 0
	})
	if r := a.trunks()[0].Registration; r != nil {
		t.Errorf("registration still listed: %+v", r)
	}
}

func waitTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
