package b2bua

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/routing/dnsres"
	"github.com/sbc-project/sbc/b2bua/routing/dnsres/dnstest"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// optionsPeer answers every OPTIONS with code on 127.0.5.x.
func optionsPeer(t *testing.T, ip string, code int) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(ip+":0")))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		parser := sipmsg.NewParser(sipmsg.Limits{})
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if m, err := parser.Parse(append([]byte(nil), buf[:n]...)); err == nil {
				if req, ok := m.(sip.Request); ok && req.Method() == sip.OPTIONS {
					_, _ = c.WriteToUDPAddrPort(sipmsg.Render(txn.NewResponse(req, code, "x")), from)
				}
			}
		}
	})
	t.Cleanup(func() { c.Close(); wg.Wait() })
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
}

// TestProbeSRVTargets: a trunk located through SRV is up when any target
// answers OPTIONS, as calls fail over among them, and down when none does.
func TestProbeSRVTargets(t *testing.T) {
	busy := optionsPeer(t, "127.0.5.80", 503)
	alive := optionsPeer(t, "127.0.5.81", 200)
	srv := dnstest.Start(t, "127.0.5.53")
	srv.Set(t,
		"_sip._udp.up.test. 60 IN SRV 10 0 "+strconv.Itoa(int(busy))+" busy.test.",
		"_sip._udp.up.test. 60 IN SRV 20 0 "+strconv.Itoa(int(alive))+" alive.test.",
		"_sip._udp.down.test. 60 IN SRV 10 0 "+strconv.Itoa(int(busy))+" busy.test.",
		"busy.test. 60 IN A 127.0.5.80",
		"alive.test. 60 IN A 127.0.5.81",
	)
	res, err := dnsres.New(dnsres.Config{Servers: []string{srv.Addr}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	table, err := routing.New(routing.TableSpec{Resolver: res, Trunks: []routing.TrunkSpec{
		{Name: "up", URI: "sip:up.test;transport=udp"}, {Name: "down", URI: "sip:down.test;transport=udp"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{}, Hooks{Routes: table, Media: func(string) (MediaSession, error) { return nopMedia{}, nil }},
		slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	if _, err := s.Listen("udp", transport.UDP, "127.0.5.82:0", transport.ListenOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		trunk string
		up    bool
	}{{"up", true}, {"down", false}} {
		tr, _ := table.Trunk(tc.trunk)
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		err := s.Probe(ctx, tr)
		cancel()
		if (err == nil) != tc.up {
			t.Errorf("Probe(%s) = %v, want up %v", tc.trunk, err, tc.up)
		}
	}
}
