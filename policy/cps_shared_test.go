package policy

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// The call-rate tokens a node's calls take are recorded only once shared,
// reported once, and other nodes' tokens drained from the buckets hold
// the user (or trunk) back as its own calls would, down to one burst of
// debt; a rate without a limit is left alone.
func TestAdmissionCPSShared(t *testing.T) {
	a, clk := newTestAdmission(AdmissionSpec{UserCPS: Bucket{Rate: 1, Burst: 2}, TrunkCPS: Bucket{Rate: 1, Burst: 2}})
	try := func(user string) Decision { return a.Check(context.Background(), call("pbx", user, "192.0.2.1")) }
	if d := try("alice"); d.Action != Continue {
		t.Fatalf("alice before sharing: %+v", d)
	}
	if got := a.CPSTaken(); got != nil {
		t.Fatalf("tokens recorded before sharing: %+v", got)
	}
	a.ShareCPS()
	clk.advance(2 * time.Second)
	if d := try("alice"); d.Action != Continue {
		t.Fatalf("alice: %+v", d)
	}
	got := a.CPSTaken()
	slices.SortFunc(got, func(x, y CPSTaken) int { return strings.Compare(x.Key, y.Key) })
	if want := []CPSTaken{{Key: "alice", N: 1}, {Trunk: true, Key: "pbx", N: 1}}; !slices.Equal(got, want) {
		t.Fatalf("CPSTaken = %+v, want %+v", got, want)
	}
	if got := a.CPSTaken(); got != nil {
		t.Fatalf("tokens reported twice: %+v", got)
	}

	// bob's calls on other nodes took his burst: he waits a token here.
	a.CPSDrain([]CPSTaken{{Key: "bob", N: 2}, {Key: "", N: 5}, {Key: "carol", N: -1}})
	if d := try("bob"); d.Cause != "cps_user" {
		t.Fatalf("bob after his peers' calls: %+v, want cps_user", d)
	}
	if d := try("carol"); d.Action != Continue {
		t.Fatalf("carol: %+v", d)
	}
	// A flood on the other nodes leaves at most one burst of debt.
	a.CPSDrain([]CPSTaken{{Key: "dave", N: 1000}})
	clk.advance(2999 * time.Millisecond)
	if d := try("dave"); d.Action == Continue {
		t.Fatal("dave admitted before his debt was paid")
	}
	clk.advance(time.Millisecond)
	if d := try("dave"); d.Action != Continue {
		t.Fatalf("dave still refused after one burst of debt and a token: %+v", d)
	}
	// The trunk's peers' calls count against the trunk's rate.
	clk.advance(10 * time.Second)
	a.CPSDrain([]CPSTaken{{Trunk: true, Key: "pbx", N: 2}})
	if d := try("erin"); d.Cause != "cps_trunk" {
		t.Fatalf("a call to pbx after its peers' calls: %+v, want cps_trunk", d)
	}
	// Unlimited rates are left alone.
	u, _ := newTestAdmission(AdmissionSpec{})
	u.CPSDrain([]CPSTaken{{Key: "bob", N: 100}})
	if d := u.Check(context.Background(), call("pbx", "bob", "192.0.2.1")); d.Action != Continue {
		t.Fatalf("bob without a rate limit: %+v", d)
	}
}
