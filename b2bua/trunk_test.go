package b2bua

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/txn"
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

// TestTrunkChallengeSHA256: a carrier that challenges the SBC's INVITE
// with SHA-256 only (RFC 8760) gets the INVITE again with a SHA-256
// answer computed from the trunk's password, in the same dialog.
func TestTrunkChallengeSHA256(t *testing.T) {
	h := newCallHarness(t, nil)
	h.trunkWithPassword(t)
	a := h.call(t)
	inv := h.txs.next(t, sip.INVITE)
	res := txn.NewResponse(inv.req, 407, "Proxy Authentication Required")
	sipmsg.SetTag(mustTo(t, res), "carrier")
	res.AppendHeader(sipmsg.Generic("Proxy-Authenticate",
		`Digest realm="carrier.example", nonce="n0nce", algorithm=SHA-256, qop="auth"`))
	inv.call.post(event{kind: evResponse, client: inv, res: res})
	again := h.txs.next(t, sip.INVITE)
	if sipmsg.CallID(again.req) != sipmsg.CallID(inv.req) {
		t.Fatalf("credentials sent in another dialog")
	}
	auth := sipmsg.Header(again.req, "Proxy-Authorization")
	p := digestParams(t, auth)
	sum := func(s string) string { x := sha256.Sum256([]byte(s)); return hex.EncodeToString(x[:]) }
	ha1 := sum("sbc:carrier.example:secret")
	ha2 := sum("INVITE:" + again.req.Recipient().String())
	want := sum(ha1 + ":n0nce:" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	if p["algorithm"] != "SHA-256" || p["username"] != "sbc" || p["qop"] != "auth" || p["response"] != want {
		t.Fatalf("Proxy-Authorization %q, want a SHA-256 answer with response %s", auth, want)
	}
	again.answer(200, callerSDP)
	h.txs.ack(t)
	if res := a.final(t); res.StatusCode() != 200 {
		t.Fatalf("caller got %d after the trunk's challenge, want 200", res.StatusCode())
	}
}

// digestParams reads a Digest credentials value's parameters, unquoted.
func digestParams(t *testing.T, v string) map[string]string {
	t.Helper()
	rest, ok := strings.CutPrefix(v, "Digest ")
	if !ok {
		t.Fatalf("not Digest credentials: %q", v)
	}
	out := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		out[name] = strings.Trim(value, `"`)
	}
	return out
}

// trunkWithPassword routes the harness's calls to a trunk "pbx" whose
// digest challenges the SBC answers as user sbc, password secret.
func (h *callHarness) trunkWithPassword(t *testing.T) {
	t.Helper()
	table, err := routing.New(routing.TableSpec{
		Trunks: []routing.TrunkSpec{{Name: "pbx", URI: "sip:192.0.2.20:5060", Username: "sbc", Password: "secret"}},
		Routes: []routing.RouteSpec{{Name: "out", Target: routing.TargetTrunks, Trunks: []string{"pbx"}}},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h.s.SetRoutes(table)
}
