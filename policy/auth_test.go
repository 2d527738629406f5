package policy

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
)

// fakeAuth is an Authenticator with a fixed answer that counts its calls.
type fakeAuth struct {
	user, group string
	ok, failed  bool
	challenge   [2]string
	calls       int
}

func (f *fakeAuth) Check(context.Context) (string, string, bool, [2]string, bool) {
	f.calls++
	return f.user, f.group, f.ok, f.challenge, f.failed
}

// multiAuth also offers several challenges.
type multiAuth struct {
	fakeAuth
	all [][2]string
}

func (m *multiAuth) Challenges() [][2]string { return m.all }

func TestAuth(t *testing.T) {
	sha := [2]string{"Proxy-Authenticate", `Digest realm="sbc", algorithm=SHA-256`}
	md5 := [2]string{"Proxy-Authenticate", `Digest realm="sbc", algorithm=MD5`}
	good := func() Authenticator { return &fakeAuth{user: "alice", group: "intl", ok: true} }
	noGroup := func() Authenticator { return &fakeAuth{user: "web", ok: true} }
	none := func() Authenticator { return &fakeAuth{challenge: sha} }
	wrong := func() Authenticator { return &fakeAuth{challenge: sha, failed: true} }
	both := func() Authenticator { return &multiAuth{fakeAuth{challenge: sha}, [][2]string{sha, md5}} }
	noChallenge := func() Authenticator { return &fakeAuth{failed: true} }
	nilAuth := func() Authenticator { return nil }

	const pass = 0
	tests := []struct {
		name      string
		target    Target
		transport string
		trusted   bool
		auth      func() Authenticator
		code      int // pass: goes on
		cause     string
		headers   [][2]string
		user      string
		group     string
		asked     bool // the Authenticator was asked
		reported  bool
	}{
		{"echo without auth", TargetEcho, "wss", false, none, pass, "", nil, "", "", false, false},
		{"trusted to trunk", TargetTrunks, "udp", true, none, pass, "", nil, "", "default", false, false},
		{"trusted without authenticator", TargetTrunks, "udp", true, nilAuth, pass, "", nil, "", "default", false, false},
		{"trunk ok", TargetTrunks, "wss", false, good, pass, "", nil, "alice", "intl", true, false},
		{"trunk ok default group", TargetTrunks, "tls", false, noGroup, pass, "", nil, "web", "default", true, false},
		{"trunk no credentials", TargetTrunks, "wss", false, none, 407, "auth_required", [][2]string{sha}, "", "", true, false},
		{"trunk from udp no credentials", TargetTrunks, "udp", false, none, 407, "auth_required", [][2]string{sha}, "", "", true, false},
		{"trunk wrong credentials", TargetTrunks, "wss", false, wrong, 407, "auth_failed", [][2]string{sha}, "", "", true, true},
		{"every challenge", TargetTrunks, "wss", false, both, 407, "auth_required", [][2]string{sha, md5}, "", "", true, false},
		{"no authenticator", TargetTrunks, "wss", false, nilAuth, 403, "auth_unavailable", nil, "", "", false, false},
		{"no challenge", TargetTrunks, "wss", false, noChallenge, 403, "auth_failed", nil, "", "", true, true},
		{"web to web", TargetRegistered, "ws", false, none, 407, "auth_required", [][2]string{sha}, "", "", true, false},
		{"web to web ok", TargetRegistered, "wss", false, good, pass, "", nil, "alice", "intl", true, false},
		{"pbx to web", TargetRegistered, "udp", false, none, pass, "", nil, "", "", false, false},
		{"unknown target", TargetUnknown, "udp", false, none, 407, "auth_required", [][2]string{sha}, "", "", true, false},
	}
	src := netip.MustParseAddrPort("[::ffff:192.0.2.7]:5060")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reported []string
			stage := NewAuth("default",
				func(a netip.Addr, transport string) { reported = append(reported, a.String()+" "+transport) })
			a := tt.auth()
			r := &Request{Src: src, Transport: tt.transport, Target: tt.target, Trusted: tt.trusted, Auth: a}
			got := stage.Check(context.Background(), r)
			if tt.code == pass {
				if got.Action != Continue {
					t.Fatalf("Check = %+v, want pass", got)
				}
			} else {
				if got.Action != Answer || got.Code != tt.code || got.Cause != tt.cause || got.Stage != StageAuth {
					t.Fatalf("Check = %+v, want %d %s", got, tt.code, tt.cause)
				}
				if !reflect.DeepEqual(got.Headers, tt.headers) {
					t.Fatalf("headers = %q, want %q", got.Headers, tt.headers)
				}
			}
			if r.User != tt.user || r.Group != tt.group {
				t.Errorf("user, group = %q, %q; want %q, %q", r.User, r.Group, tt.user, tt.group)
			}
			asked := false
			switch f := a.(type) {
			case *fakeAuth:
				asked = f.calls > 0
			case *multiAuth:
				asked = f.calls > 0
			}
			if asked != tt.asked {
				t.Errorf("authenticator asked = %v, want %v", asked, tt.asked)
			}
			want := []string(nil)
			if tt.reported {
				want = []string{"192.0.2.7 " + tt.transport}
			}
			if !reflect.DeepEqual(reported, want) {
				t.Errorf("reported %v, want %v", reported, want)
			}
		})
	}
}

// TestAuthNilReport checks that a stage without a report function still
// refuses wrong credentials.
func TestAuthNilReport(t *testing.T) {
	stage := NewAuth("", nil)
	r := &Request{Target: TargetTrunks, Auth: &fakeAuth{challenge: [2]string{"Proxy-Authenticate", "Digest"}, failed: true}}
	if got := stage.Check(context.Background(), r); got.Code != 407 || got.Cause != "auth_failed" {
		t.Fatalf("Check = %+v", got)
	}
}
