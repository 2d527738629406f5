package app

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/transport/tlstest"
	"github.com/sbc-project/sbc/internal/config"
)

func TestRouteTableDefaultConfig(t *testing.T) {
	tab, err := newRouteTable(config.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		user   string
		wantOK bool
	}{
		{"echo user routes to echo", "echo", true},
		{"other user has no route", "alice", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, ok := tab.Route(routing.Request{Listener: "wss", Src: netip.MustParseAddr("127.0.0.1"), RURIUser: tc.user})
			if ok != tc.wantOK || (ok && rt.Target != routing.TargetEcho) {
				t.Errorf("Route(%q) = %+v, %v; want ok %v with target echo", tc.user, rt, ok, tc.wantOK)
			}
		})
	}
}

// TestRouteTableListenerName: a listener without a name is matched by its
// transport.
func TestRouteTableListenerName(t *testing.T) {
	c := &config.Config{
		SIP:    config.SIP{Listeners: []config.Listener{{Transport: "udp", Addr: "127.0.0.1:5060"}}},
		Routes: []config.Route{{Name: "r", Match: config.Match{Listener: "udp"}, Target: config.TargetEcho}},
	}
	tab, err := newRouteTable(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tab.Route(routing.Request{Listener: "udp"}); !ok {
		t.Error("listener defaulted to transport: no route")
	}
}

// TestRouteTableTrunkTLS: a trunk's TLS files are read when the table is
// built, and a problem names the trunk and the key.
func TestRouteTableTrunkTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "trunk ca")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	certFile, keyFile := tlstest.WritePair(t, dir, "sbc", ca.Issue(t, "sbc.example"))
	good := config.Trunk{Name: "t", URI: "sip:pbx.example.com;transport=tls",
		TLS: config.TrunkTLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}}
	tab, err := newRouteTable(&config.Config{Trunks: []config.Trunk{good}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr, _ := tab.Trunk("t"); tr.TLS == nil || tr.TLS.RootCAs == nil || len(tr.TLS.Certificates) != 1 {
		t.Fatalf("tls trunk config %+v: want the CA and the client certificate", tr.TLS)
	}
	for _, bad := range []struct {
		name string
		tls  config.TrunkTLS
		want string
	}{
		{"missing ca", config.TrunkTLS{CAFile: filepath.Join(dir, "none.pem")}, "tls.ca_file"},
		{"key without cert", config.TrunkTLS{KeyFile: keyFile}, "tls.cert_file"},
	} {
		trunk := config.Trunk{Name: "t", URI: "sip:pbx.example.com;transport=tls", TLS: bad.tls}
		_, err := newRouteTable(&config.Config{Trunks: []config.Trunk{trunk}}, nil)
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), `trunks[0] "t"`) {
			t.Errorf("%s: %v, want an error naming trunks[0] \"t\" and %q", bad.name, err, bad.want)
		}
	}
}
