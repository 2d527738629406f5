package b2bua

import (
	"slices"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// TestNewestPerContact: of one phone's bindings on several nodes (same
// user, same Contact) only the newest is rung; other users, other
// Contacts and bindings without a Contact all are, in their order.
func TestNewestPerContact(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	d := func(name, aor, contact string, age time.Duration) dest {
		u, err := sipmsg.ParseURI("sip:" + aor)
		if err != nil {
			t.Fatal(err)
		}
		return dest{name: name, aor: u, contact: contact, registered: t0.Add(-age)}
	}
	names := func(ds []dest) []string {
		var out []string
		for _, x := range ds {
			out = append(out, x.name)
		}
		return out
	}
	phone := "sip:carol@192.0.2.9:5060"
	for _, tc := range []struct {
		name  string
		dests []dest
		want  []string
	}{
		{"one", []dest{d("local", "carol@example.com", phone, 0)}, []string{"local"}},
		{"a peer's newer", []dest{d("local", "carol@example.com", phone, time.Minute), d("peer", "carol@example.com", phone, time.Second)}, []string{"peer"}},
		{"the local newer", []dest{d("local", "carol@example.com", phone, time.Second), d("peer", "carol@example.com", phone, time.Minute)}, []string{"local"}},
		{"a tie: the local", []dest{d("local", "carol@example.com", phone, time.Second), d("peer", "carol@example.com", phone, time.Second)}, []string{"local"}},
		{"two phones", []dest{d("desk", "carol@example.com", phone, time.Minute), d("mobile", "carol@example.com", "sip:carol@192.0.2.10:5060", 0)}, []string{"desk", "mobile"}},
		{"two users", []dest{d("carol", "carol@example.com", phone, time.Minute), d("dave", "dave@example.com", phone, 0)}, []string{"carol", "dave"}},
		{"no contact said", []dest{d("old-peer", "carol@example.com", "", 0), d("local", "carol@example.com", phone, time.Minute), d("peer", "carol@example.com", phone, 0)}, []string{"old-peer", "peer"}},
	} {
		if got := names(newestPerContact(tc.dests)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: rings %v, want %v", tc.name, got, tc.want)
		}
	}
}
