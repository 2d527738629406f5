package b2bua

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/timeline"
	"github.com/sbc-project/sbc/policy"
)

// refusingPolicy refuses every call at the dial rules stage.
type refusingPolicy struct{}

func (refusingPolicy) Early(context.Context, *policy.Request) policy.Decision { return policy.Pass }
func (refusingPolicy) Late(context.Context, *policy.Request) policy.Decision {
	return policy.Decision{Action: policy.Answer, Code: 403, Reason: "Forbidden (dial rules)", Cause: "premium",
		Stage: policy.StageDialRules}
}
func (refusingPolicy) Banned(netip.Addr, string) bool          { return false }
func (refusingPolicy) Report(netip.Addr, string, policy.Event) {}
func (refusingPolicy) MaxDuration() time.Duration              { return 0 }

// whats lists the events of the call with caller Call-ID c1 as
// kind/what.
func whats(t *testing.T, st *timeline.Store) ([]string, []timeline.EventView) {
	t.Helper()
	tl, ok := st.Find("c1")
	if !ok {
		t.Fatal("no timeline for Call-ID c1")
	}
	v := tl.View()
	if v.Live {
		t.Fatalf("timeline still live after the call's record: %+v", v)
	}
	var out []string
	for _, e := range v.Events {
		out = append(out, e.Kind+"/"+e.What)
	}
	return out, v.Events
}

func TestTimelinePolicyRefusal(t *testing.T) {
	h := newCallHarness(t, refusingPolicy{})
	st := timeline.NewStore(timeline.Spec{Keep: 10, MaxEvents: 50})
	h.s.hooks.Timelines = st
	a := h.call(t)
	if res := a.final(t); res.StatusCode() != 403 {
		t.Fatalf("caller got %d, want 403", res.StatusCode())
	}
	rec := h.rec.next(t)
	got, evs := whats(t, st)
	want := []string{"sip/INVITE", "sip/100 INVITE", "policy/reject", "end/end"}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	if d := evs[2].Detail; d["reason"] != "premium" || d["stage"] != policy.StageDialRules || d["code"] != 403.0 {
		t.Errorf("reject detail %v", d)
	}
	if d := evs[3].Detail; d["cause"] != string(rec.Cause) || d["side"] != string(rec.Side) || d["code"] != 403.0 {
		t.Errorf("end detail %v, record cause %s side %s", d, rec.Cause, rec.Side)
	}
	if _, ok := st.Find(rec.ID); !ok {
		t.Error("timeline not found by the record's id")
	}
}

func TestTimelineAnsweredCall(t *testing.T) {
	h := newCallHarness(t, nil)
	st := timeline.NewStore(timeline.Spec{Keep: 10, MaxEvents: 50})
	h.s.hooks.Timelines = st
	tag, b := h.answered(t)
	if _, ok := st.Find(sipmsg.CallID(b.req)); !ok {
		t.Fatal("live call not found by its callee leg's Call-ID")
	}
	h.inDialog(t, "BYE", 2, tag, "").final(t)
	h.txs.next(t, sip.BYE).answer(200, "")
	rec := h.rec.next(t)
	got, evs := whats(t, st)
	want := []string{"sip/INVITE", "sip/100 INVITE", "route/attempt", "end/end"}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	if d := evs[2].Detail; d["trunk"] != "pbx" || d["attempt"] != 1.0 {
		t.Errorf("attempt detail %v", d)
	}
	if d := evs[3].Detail; d["cause"] != string(rec.Cause) || d["side"] != "a" || d["code"] != 200.0 {
		t.Errorf("end detail %v", d)
	}
}

// TestTimelineFailover: the first trunk answers 503, the second 200; the
// timeline shows the attempt, the failover from the first with its code,
// the second attempt.
func TestTimelineFailover(t *testing.T) {
	h := newCallHarness(t, nil)
	table, err := routing.New(routing.TableSpec{
		Trunks: []routing.TrunkSpec{{Name: "pbx", URI: "sip:192.0.2.20:5060"}, {Name: "pbx2", URI: "sip:192.0.2.21:5060"}},
		Routes: []routing.RouteSpec{{Name: "out", Target: routing.TargetTrunks, Trunks: []string{"pbx", "pbx2"}}},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h.s.SetRoutes(table)
	st := timeline.NewStore(timeline.Spec{Keep: 10, MaxEvents: 50})
	h.s.hooks.Timelines = st
	a := h.call(t)
	h.txs.next(t, sip.INVITE).answer(503, "")
	h.txs.next(t, sip.INVITE).answer(200, callerSDP)
	h.txs.ack(t)
	tag := sipmsg.ToTag(a.final(t))
	h.inDialog(t, "ACK", 1, tag, "")
	h.inDialog(t, "BYE", 2, tag, "").final(t)
	h.txs.next(t, sip.BYE).answer(200, "")
	h.rec.next(t)
	got, evs := whats(t, st)
	want := []string{"sip/INVITE", "sip/100 INVITE", "route/attempt", "route/failover", "route/attempt", "end/end"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if d := evs[3].Detail; d["trunk"] != "pbx" || d["code"] != 503.0 {
		t.Errorf("failover detail %v", d)
	}
	if d := evs[4].Detail; d["trunk"] != "pbx2" || d["attempt"] != 2.0 {
		t.Errorf("second attempt detail %v", d)
	}
}
