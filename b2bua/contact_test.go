package b2bua

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/security"
)

// TestContactSIPSOnlyWhereRequired: the SBC's Contact toward a caller on
// TLS is a SIPS URI only when RFC 3261 12.1.1 requires it (a sips
// Request-URI or top Record-Route, or a sips Contact without
// Record-Route); a sip: call over TLS gets a sip: Contact, which the
// caller can send its ACK to.
func TestContactSIPSOnlyWhereRequired(t *testing.T) {
	tests := []struct {
		name, ruri, contact, recordRoute string
		want                             string
	}{
		{"sip over TLS", "sip:bob@sbc.example", "sip:alice@192.0.2.10:5061;transport=tls", "", "sip:"},
		{"sips Request-URI", "sips:bob@sbc.example", "sips:alice@192.0.2.10:5061", "", "sips:"},
		{"sips Contact, no Record-Route", "sip:bob@sbc.example", "sips:alice@192.0.2.10:5061", "", "sips:"},
		{"sips top Record-Route", "sip:bob@sbc.example", "sip:alice@192.0.2.10:5061;transport=tls", "<sips:proxy.example;lr>", "sips:"},
		{"sip top Record-Route before a sips Contact", "sip:bob@sbc.example", "sips:alice@192.0.2.10:5061",
			"<sip:proxy.example;transport=tls;lr>", "sip:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newCallHarness(t, nil)
			listenTLS(t, h)
			a := newFakeServerTx(tlsInvite(t, tc.ruri, tc.contact, tc.recordRoute))
			a.src = transport.Target{Kind: transport.TLS, Addr: netip.MustParseAddrPort("192.0.2.10:5061"), Listener: "tls"}
			h.s.newCall(a.req, a)
			b := h.txs.next(t, sip.INVITE)
			b.answer(200, callerSDP)
			h.txs.ack(t)
			res := a.final(t)
			ct, ok := res.Contact()
			if res.StatusCode() != 200 || !ok {
				t.Fatalf("caller got %d, Contact %v", res.StatusCode(), ct)
			}
			got := ct.Address.String()
			if !strings.HasPrefix(got, tc.want) || !strings.Contains(got, "transport=tls") {
				t.Fatalf("Contact %s, want a %s URI with transport=tls", got, tc.want)
			}
		})
	}
}

// TestSIPSDialogAsUAC: toward a callee (RFC 3261 8.1.1.8) the Contact is
// SIPS when the Request-URI or the top Route is, and only on a secure
// transport.
func TestSIPSDialogAsUAC(t *testing.T) {
	uri := func(s string) sip.Uri {
		u, err := sipmsg.ParseURI(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	route := func(s string) []sip.Header { return []sip.Header{&sip.RouteHeader{Addresses: []sip.Uri{uri(s)}}} }
	tests := []struct {
		name  string
		ruri  sip.Uri
		route []sip.Header
		kind  transport.Kind
		want  string
	}{
		{"sip over TLS", uri("sip:bob@192.0.2.20:5061;transport=tls"), nil, transport.TLS, "sip:sbc@"},
		{"sips", uri("sips:bob@192.0.2.20"), nil, transport.TLS, "sips:sbc@"},
		{"sips top Route", uri("sip:bob@192.0.2.20"), route("sips:proxy.example;lr"), transport.TLS, "sips:sbc@"},
		{"sip top Route", uri("sips:bob@192.0.2.20"), route("sip:proxy.example;lr"), transport.TLS, "sips:sbc@"},
		{"sips over WSS", uri("sips:bob@df7jal23ls0d.invalid"), nil, transport.WSS, "sips:sbc@"},
		{"sip over TCP", uri("sip:bob@192.0.2.20;transport=tcp"), nil, transport.TCP, "sip:sbc@"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct := ourContact("192.0.2.1", 5061, tc.kind, sipsDialog(tc.ruri, tc.route, nil)).(*sip.ContactHeader)
			if got := ct.Address.String(); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("Contact %s, want %s...", got, tc.want)
			}
		})
	}
}

// listenTLS gives the harness's server a TLS listener, for its Contact
// and Via toward TLS legs.
func listenTLS(t *testing.T, h *callHarness) {
	t.Helper()
	certPEM, keyPEM, err := security.SelfSigned([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Listen("tls", transport.TLS, "127.0.0.1:0",
		transport.ListenOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}); err != nil {
		t.Fatal(err)
	}
}

// tlsInvite is the caller's INVITE over TLS with the given Request-URI,
// Contact and Record-Route ("" for none).
func tlsInvite(t *testing.T, ruri, contact, recordRoute string) sip.Request {
	t.Helper()
	rr := ""
	if recordRoute != "" {
		rr = "Record-Route: " + recordRoute + "\r\n"
	}
	raw := fmt.Sprintf("INVITE %s SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bKtls1\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:alice@caller.example>;tag=a1\r\nTo: <%s>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <%s>\r\n%sContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		ruri, ruri, contact, rr, len(callerSDP), callerSDP)
	msg, err := sipmsg.NewParser(sipmsg.Limits{}).Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse INVITE: %v", err)
	}
	return msg.(sip.Request)
}
