package b2bua

import (
	"testing"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// TestSipURI: the request-URI built from a parsed trunk URI is the one the
// SIP stack reads from its text, user escapes and IPv6 brackets included.
func TestSipURI(t *testing.T) {
	tests := []struct {
		name, trunk, user, want string
	}{
		{"udp", "sip:pbx.example.com", "+12125550100", "sip:+12125550100@pbx.example.com:5060"},
		{"tcp and no user", "sip:trunk1@10.0.0.5:5080;transport=tcp;lr", "", "sip:10.0.0.5:5080;transport=tcp"},
		{"tls", "sip:carrier.example;transport=tls", "alice", "sip:alice@carrier.example:5061;transport=tls"},
		{"sips", "sips:[2001:db8::1]", "bob", "sips:bob@[2001:db8::1]:5061"},
		{"user parameters and escapes", "sip:[::1]:5070", "+1555;npdi a", "sip:+1555;npdi%20a@[::1]:5070"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			table, err := routing.New(routing.TableSpec{Trunks: []routing.TrunkSpec{{Name: "t", URI: tc.trunk}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			tr, _ := table.Trunk("t")
			got := sipURI(tr.RequestURI(tc.user))
			if got.String() != tc.want {
				t.Errorf("sipURI = %s, want %s", got, tc.want)
			}
			want, err := sipmsg.ParseURI(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equals(want) {
				t.Errorf("sipURI = %#v, the stack reads %s as %#v", got, tc.want, want)
			}
		})
	}
}
