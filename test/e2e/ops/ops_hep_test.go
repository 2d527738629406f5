package ops

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/internal/hep"
	"github.com/sbc-project/sbc/test/e2e"
)

var reStartLine = regexp.MustCompile(`^(?:SIP/2\.0 (\d{3})|([A-Z]+) )`)

// TestHEPBothLegs places one call to the echo destination with HEP export
// on and decodes what a collector receives: every SIP message of both
// legs, in HEP3 with the node's capture id and password, the two legs'
// Call-IDs under one correlation id (the caller's Call-ID), and addresses
// that say who sent what to whom.
func TestHEPBothLegs(t *testing.T) {
	col := e2e.NewHEPCollector(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
		c.HEP = config.HEP{Addr: col.Addr(), CaptureID: 77, Password: "homer-pw"}
	}})
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := ua.Invite("echo", "")
	call.Answered(ua.Expect(200))
	call.Ack()
	call.Bye()
	ua.Expect(200)

	legs := map[string][]hepSeen{} // by Call-ID
	echo := sbc.App.Echo().Addr()
	e2e.WaitFor(t, 5*time.Second, "both legs' BYE exchanges", func() bool {
		legs = map[string][]hepSeen{}
		for _, b := range col.Packets() {
			p, err := hep.Decode(b)
			if err != nil {
				t.Fatalf("collector got a bad packet: %v", err)
			}
			if p.Type != hep.ProtoSIP || p.CaptureID != 77 || p.AuthKey != "homer-pw" || p.Transport != hep.TransportUDP {
				t.Fatalf("packet header %+v", p)
			}
			if p.Correlation != call.CallID {
				t.Fatalf("packet correlated to %q, want the caller's Call-ID %q:\n%s", p.Correlation, call.CallID, p.Payload)
			}
			id := e2e.ReCallID.FindStringSubmatch(string(p.Payload))
			m := reStartLine.FindStringSubmatch(string(p.Payload))
			if id == nil || m == nil {
				t.Fatalf("payload is not SIP:\n%s", p.Payload)
			}
			var dir string
			switch {
			case p.Dst == sbc.UDP:
				dir = "in"
			case p.Src == sbc.UDP:
				dir = "out"
			default:
				t.Fatalf("packet neither from nor to the SBC's %v: %v -> %v", sbc.UDP, p.Src, p.Dst)
			}
			if id[1] != call.CallID && p.Src != echo && p.Dst != echo {
				t.Fatalf("b-leg packet %v -> %v not to or from the echo destination %v", p.Src, p.Dst, echo)
			}
			legs[id[1]] = append(legs[id[1]], hepSeen{dir, m[1] + m[2]})
		}
		return len(legs) == 2 && countOf(legs, "in BYE") >= 1 && countOf(legs, "out BYE") >= 1 &&
			countOf(legs, "in 200") >= 2 && countOf(legs, "out 200") >= 2
	})
	a := legs[call.CallID]
	var b []hepSeen
	for id, l := range legs {
		if id != call.CallID {
			b = l
		}
	}
	for _, want := range []string{"in INVITE", "out 200", "in ACK", "in BYE", "out 200"} { // no 100: the answer came within 200 ms
		if !slices.Contains(a, newSeen(want)) {
			t.Errorf("caller leg lacks %s: %v", want, a)
		}
	}
	for _, want := range []string{"out INVITE", "in 200", "out ACK", "out BYE", "in 200"} {
		if !slices.Contains(b, newSeen(want)) {
			t.Errorf("callee leg lacks %s: %v", want, b)
		}
	}
	t.Logf("caller leg %v\ncallee leg %v", a, b)
}

// hepSeen is one message a collector saw: in (to the SBC) or out, and
// the method or status code.
type hepSeen struct{ dir, what string }

func newSeen(s string) hepSeen {
	dir, what, _ := strings.Cut(s, " ")
	return hepSeen{dir, what}
}

// countOf counts the messages like want ("in BYE") on every leg.
func countOf(legs map[string][]hepSeen, want string) int {
	n := 0
	for _, l := range legs {
		for _, s := range l {
			if s == newSeen(want) {
				n++
			}
		}
	}
	return n
}
