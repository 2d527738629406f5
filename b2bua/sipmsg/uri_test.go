package sipmsg

import (
	"testing"

	"github.com/ghettovoice/gosip/sip"
)

// TestParseURIs: the examples of RFC 3261 19.1.3, the IPv6 references of
// RFC 5118 4.3 and 4.4, tel: (RFC 3966) and schemes the SBC does not
// serve: each reads as the RFC says and renders back as written.
func TestParseURIs(t *testing.T) {
	cases := []struct {
		text       string
		user, host string
		port       int // 0: none
		absolute   bool
	}{
		{text: "sip:alice@atlanta.com", user: "alice", host: "atlanta.com"},
		{text: "sip:alice:secretword@atlanta.com;transport=tcp", user: "alice", host: "atlanta.com"},
		{text: "sips:alice@atlanta.com?subject=project%20x&priority=urgent", user: "alice", host: "atlanta.com"},
		{text: "sip:+1-212-555-1212:1234@gateway.com;user=phone", user: "+1-212-555-1212", host: "gateway.com"},
		{text: "sips:1212@gateway.com", user: "1212", host: "gateway.com"},
		{text: "sip:alice@192.0.2.4", user: "alice", host: "192.0.2.4"},
		{text: "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com", host: "atlanta.com"},
		{text: "sip:alice;day=tuesday@atlanta.com", user: "alice;day=tuesday", host: "atlanta.com"},
		// RFC 5118 4.3: the port is inside the brackets, so it is part of the address.
		{text: "sip:[2001:db8::10:5070]", host: "[2001:db8::10:5070]"},
		{text: "sip:[2001:db8::10]:5070", host: "[2001:db8::10]", port: 5070},
		{text: "sip:user@[::ffff:192.0.2.2]", user: "user", host: "[::ffff:192.0.2.2]"},
		{text: "tel:+12125551234;phone-context=+1", user: "+12125551234", absolute: true},
		{text: "urn:service:sos", absolute: true},
		{text: "soap.beep://192.0.2.103:3002", absolute: true},
	}
	for _, c := range cases {
		u, err := parseURI(nil, c.text)
		if err != nil {
			t.Errorf("%s: %v", c.text, err)
			continue
		}
		user := ""
		if u.User() != nil {
			user = u.User().String()
		}
		port := 0
		if u.Port() != nil {
			port = int(*u.Port())
		}
		_, abs := u.(*AbsoluteURI)
		if user != c.user || u.Host() != c.host || port != c.port || abs != c.absolute {
			t.Errorf("%s: user %q host %q port %d absolute %v", c.text, user, u.Host(), port, abs)
		}
		if u.String() != c.text {
			t.Errorf("%s renders as %s", c.text, u.String())
		}
	}
	for _, bad := range []string{"sip:2001:db8::10", "sip:[2001:db8::10", "sip:a@b c", "sip:a@host:99999",
		"<sip:a@b>", "sip:", "1sip:a@b", "sip:a@[2001:db8:::192.0.2.1]", "sip:a@exa<mple.com"} {
		if u, err := parseURI(nil, bad); err == nil {
			t.Errorf("%s accepted as %s", bad, u)
		}
	}
}

// TestParamsRenderAsReceived: parameters keep their case, order, quotes and
// escapes; names match case-insensitively; a value the SBC sets that is not
// a token is quoted.
func TestParamsRenderAsReceived(t *testing.T) {
	p := NewParams()
	rest, err := parseHeaderParams(nil, p, `;Branch=z9hG4bK-.!%66*_+`+"`"+`'~ ; +sip.instance="<urn:uuid:1>";lr`, 1)
	if err != nil || rest != "" {
		t.Fatal(err, rest)
	}
	if got := p.ToString(';'); got != "Branch=z9hG4bK-.!%66*_+`'~;+sip.instance=\"<urn:uuid:1>\";lr" {
		t.Errorf("renders as %s", got)
	}
	if v, ok := p.Get("branch"); !ok || v.String() != "z9hG4bK-.!%66*_+`'~" {
		t.Errorf("branch %v %v", v, ok)
	}
	if v, _ := p.Get("+SIP.INSTANCE"); Unquote(v.String()) != "<urn:uuid:1>" {
		t.Errorf("instance %v", v)
	}
	p.Add("reason", sip.String{Str: "a b;c"})
	p.Remove("lr")
	if got := p.ToString(';'); got != "Branch=z9hG4bK-.!%66*_+`'~;+sip.instance=\"<urn:uuid:1>\";reason=\"a b;c\"" {
		t.Errorf("after changes renders as %s", got)
	}
}
