package app

import (
	"net/netip"
	"testing"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/internal/config"
)

// TestRouteTableTransfer: trunks[].transfer and routes[].transfer reach
// the route table; a route without one transfers locally.
func TestRouteTableTransfer(t *testing.T) {
	c := &config.Config{
		SIP:    config.SIP{Listeners: []config.Listener{{Transport: "udp", Addr: "127.0.0.1:5060"}}},
		Trunks: []config.Trunk{{Name: "pbx", URI: "sip:127.0.0.9:5060", Transfer: routing.TransferRelay}},
		Routes: []config.Route{
			{Name: "r1", Match: config.Match{RURIUser: "^1"}, Target: config.TargetTrunks, Trunks: []string{"pbx"},
				Transfer: routing.TransferRefuse},
			{Name: "r2", Target: config.TargetEcho},
		},
	}
	tab, err := newRouteTable(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	r1, _ := tab.Route(routing.Request{Listener: "udp", RURIUser: "100"})
	r2, _ := tab.Route(routing.Request{Listener: "udp", RURIUser: "200"})
	tr, _ := tab.TrunkBySource(netip.MustParseAddr("127.0.0.9"))
	if r1 == nil || r2 == nil || tr == nil || r1.Transfer != routing.TransferRefuse || r2.Transfer != routing.TransferLocal ||
		tr.Transfer != routing.TransferRelay {
		t.Errorf("route r1 %+v, route r2 %+v, trunk %+v", r1, r2, tr)
	}
}
