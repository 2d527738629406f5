package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := NewSigner("n1", "0123456789abcdef")
	a.now = func() time.Time { return now }
	b := NewSigner("n2", "0123456789abcdef")
	b.now = a.now
	v := a.Sign("call-1@x", "sip:tok@127.0.0.11:5070;transport=tcp")
	if node, err := b.Verify(v, "call-1@x", "sip:tok@127.0.0.11:5070;transport=tcp"); err != nil || node != "n1" {
		t.Fatalf("Verify = %q, %v", node, err)
	}
	other := NewSigner("n3", "another-secret-value")
	other.now = a.now
	for _, tc := range []struct {
		name, value, callID, ruri, want string
		s                               *Signer
	}{
		{"missing", "", "call-1@x", "sip:tok@127.0.0.11:5070;transport=tcp", "no X-SBC-Cluster", b},
		{"other secret", v, "call-1@x", "sip:tok@127.0.0.11:5070;transport=tcp", "mac does not match", other},
		{"other call", v, "call-2@x", "sip:tok@127.0.0.11:5070;transport=tcp", "mac does not match", b},
		{"other target", v, "call-1@x", "sip:other@127.0.0.11:5070;transport=tcp", "mac does not match", b},
		{"node changed", strings.Replace(v, "node=n1", "node=n9", 1), "call-1@x", "sip:tok@127.0.0.11:5070;transport=tcp", "mac does not match", b},
		{"garbage", "node", "c", "r", "not key=value", b},
		{"no mac", "node=n1;ts=1", "c", "r", "want node, ts and mac", b},
	} {
		if _, err := tc.s.Verify(tc.value, tc.callID, tc.ruri); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Verify error %v, want %q", tc.name, err, tc.want)
		}
	}
	b.now = func() time.Time { return now.Add(31 * time.Second) }
	if _, err := b.Verify(v, "call-1@x", "sip:tok@127.0.0.11:5070;transport=tcp"); err == nil || !strings.Contains(err.Error(), "more than 30s") {
		t.Fatalf("a stale proof: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("node=n1;ts=1800000000;mac=abc")
	f.Add(";;=;")
	s := NewSigner("n2", "0123456789abcdef")
	f.Fuzz(func(t *testing.T, v string) {
		if _, err := s.Verify(v, "c", "r"); err == nil {
			t.Fatalf("Verify(%q) accepted a made-up proof", v)
		}
	})
}
